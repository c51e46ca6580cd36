//! Proxy pools as an operator writes them (`PROXY_POOLS`, JSON): each pool's name, tier,
//! rotation, per-proxy cap and proxies (urls with their credentials). Parsed and checked
//! once at start; `Debug` never shows a credential.

use serde::Deserialize;

use crate::engine::egress::upstream::ProxyCredentials;
use crate::engine::egress::{Upstream, UpstreamScheme};
pub use crate::engine::options::is_proxy_name as is_name;

/// The most pools one deployment may configure.
pub const MAX_POOLS: usize = 64;
/// The most proxies one pool may hold.
pub const MAX_PROXIES: usize = 1_000;
/// The longest proxy url.
pub const MAX_URL: usize = 2048;
/// The highest per-proxy cap a pool may set.
pub const MAX_PER_PROXY: u32 = 10_000;
/// The per-proxy cap on concurrent attempts when a pool sets none.
pub const DEFAULT_MAX_PER_PROXY: u32 = 8;

/// How a pool spreads attempts over its proxies.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// Each attempt takes the next proxy in turn.
    #[default]
    RoundRobin,
    /// Each attempt takes the proxy unused for longest.
    LeastRecentlyUsed,
}

impl Rotation {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rotation::RoundRobin => "round_robin",
            Rotation::LeastRecentlyUsed => "least_recently_used",
        }
    }
}

impl std::str::FromStr for Rotation {
    type Err = String;

    fn from_str(text: &str) -> Result<Rotation, String> {
        match text {
            "round_robin" => Ok(Rotation::RoundRobin),
            "least_recently_used" => Ok(Rotation::LeastRecentlyUsed),
            other => Err(format!("unknown rotation {other:?}")),
        }
    }
}

/// One pool as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// Its name (what jobs name, with `proxy`).
    pub name: String,
    /// Its tier (`datacenter`, `residential`, …): tiers are ordered by cost.
    pub tier: String,
    /// How attempts are spread.
    pub rotation: Rotation,
    /// The most attempts one proxy carries at once.
    pub max_per_proxy: u32,
    /// Its proxies.
    pub proxies: Vec<Upstream>,
}

impl std::fmt::Debug for PoolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSpec")
            .field("name", &self.name)
            .field("tier", &self.tier)
            .field("proxies", &self.proxies.len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolText {
    name: String,
    tier: String,
    #[serde(default)]
    rotation: Rotation,
    max_per_proxy: Option<u32>,
    proxies: Vec<ProxyText>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ProxyText {
    Url(String),
    Named { name: Option<String>, url: String },
}

/// Parses `PROXY_POOLS`. Errors name the pool and proxy by position and never quote a url
/// (it may hold a password).
pub fn parse_pools(text: &str) -> Result<Vec<PoolSpec>, String> {
    let pools: Vec<PoolText> = serde_json::from_str(text).map_err(|e| {
        format!(
            "expected a JSON array of pools ({{name, tier, rotation, max_per_proxy, proxies}}): \
             line {} column {}",
            e.line(),
            e.column()
        )
    })?;
    if pools.len() > MAX_POOLS {
        return Err(format!("at most {MAX_POOLS} pools"));
    }
    let mut names = std::collections::HashSet::new();
    let mut parsed = Vec::with_capacity(pools.len());
    for (at, pool) in pools.into_iter().enumerate() {
        let spec = pool_spec(pool).map_err(|why| format!("pool {at}: {why}"))?;
        if !names.insert(spec.name.clone()) {
            return Err(format!("pool {at}: the name {:?} is taken", spec.name));
        }
        parsed.push(spec);
    }
    Ok(parsed)
}

fn pool_spec(pool: PoolText) -> Result<PoolSpec, String> {
    if pool.proxies.is_empty() || pool.proxies.len() > MAX_PROXIES {
        return Err(format!("a pool holds 1 to {MAX_PROXIES} proxies"));
    }
    let entries = pool
        .proxies
        .into_iter()
        .enumerate()
        .map(|(at, proxy)| match proxy {
            ProxyText::Url(url) => ProxyEntry::unnamed(&pool.name, at, url),
            ProxyText::Named {
                name: Some(name),
                url,
            } => ProxyEntry { name, url },
            ProxyText::Named { name: None, url } => ProxyEntry::unnamed(&pool.name, at, url),
        })
        .collect();
    let draft = PoolDraft {
        name: pool.name,
        tier: pool.tier,
        rotation: pool.rotation,
        max_per_proxy: pool.max_per_proxy.unwrap_or(DEFAULT_MAX_PER_PROXY),
        proxies: entries,
    };
    draft.spec()
}

/// One proxy as written: its name and its url (with the credentials: `Debug` hides it).
#[derive(Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ProxyEntry {
    /// Its name in the pool.
    pub name: String,
    /// Its url.
    pub url: String,
}

impl std::fmt::Debug for ProxyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyEntry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ProxyEntry {
    /// The proxy at `at` of `pool` written without a name: `<pool>-<at + 1>`.
    pub fn unnamed(pool: &str, at: usize, url: String) -> ProxyEntry {
        ProxyEntry {
            name: format!("{pool}-{}", at + 1),
            url,
        }
    }
}

/// A pool as an operator wrote it, before it is checked: from `PROXY_POOLS`, or from the
/// API (where its proxies are kept sealed, as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDraft {
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: String,
    /// How attempts are spread.
    pub rotation: Rotation,
    /// The most attempts one proxy carries at once.
    pub max_per_proxy: u32,
    /// Its proxies, as written.
    pub proxies: Vec<ProxyEntry>,
}

impl PoolDraft {
    /// The pool, checked. Errors name a proxy by position, never its url.
    pub fn spec(&self) -> Result<PoolSpec, String> {
        if !is_name(&self.name) || !is_name(&self.tier) {
            return Err("name and tier must be 1 to 64 of a-z, 0-9, - and _".to_owned());
        }
        if self.name == super::NONE {
            return Err(format!("the name {:?} is taken", self.name));
        }
        if self.proxies.is_empty() || self.proxies.len() > MAX_PROXIES {
            return Err(format!("a pool holds 1 to {MAX_PROXIES} proxies"));
        }
        if !(1..=MAX_PER_PROXY).contains(&self.max_per_proxy) {
            return Err(format!("max_per_proxy must be from 1 to {MAX_PER_PROXY}"));
        }
        let mut names = std::collections::HashSet::new();
        let mut proxies = Vec::with_capacity(self.proxies.len());
        for (at, entry) in self.proxies.iter().enumerate() {
            if !names.insert(entry.name.as_str()) {
                return Err(format!("proxy {at}: the name {:?} is taken", entry.name));
            }
            let proxy = upstream(entry.name.clone(), &entry.url)
                .map_err(|why| format!("proxy {at}: {why}"))?;
            proxies.push(proxy);
        }
        Ok(PoolSpec {
            name: self.name.clone(),
            tier: self.tier.clone(),
            rotation: self.rotation,
            max_per_proxy: self.max_per_proxy,
            proxies,
        })
    }
}

/// One proxy from its url: `http://` or `socks5://` (or `socks5h://`), a host, a port, and
/// credentials when it wants them.
pub fn upstream(name: String, text: &str) -> Result<Upstream, String> {
    if !is_name(&name) {
        return Err("a proxy's name must be 1 to 64 of a-z, 0-9, - and _".to_owned());
    }
    if text.len() > MAX_URL {
        return Err(format!("a proxy url is at most {MAX_URL} bytes"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("not a url ({e})"))?;
    let scheme = match url.scheme() {
        "http" => UpstreamScheme::Http,
        "socks5" | "socks5h" => UpstreamScheme::Socks5,
        other => {
            return Err(format!(
                "scheme {other:?}: expected http, socks5 or socks5h"
            ));
        }
    };
    let host = url.host_str().ok_or("no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("no port")?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "credentials are not UTF-8".to_owned())
    };
    let credentials = match (url.username(), url.password()) {
        ("", None) => None,
        (user, password) => Some(ProxyCredentials {
            username: decode(user)?,
            password: decode(password.unwrap_or_default())?,
        }),
    };
    if url.path() != "/" && !url.path().is_empty() || url.query().is_some() {
        return Err("a proxy url has no path or query".to_owned());
    }
    Ok(Upstream {
        name,
        scheme,
        host,
        port,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse_and_errors_never_quote_a_password() {
        let pools = parse_pools(
            r#"[{"name": "res", "tier": "residential", "rotation": "least_recently_used",
                 "proxies": ["http://al%40ice:hunter2@10.0.0.2:8888",
                             {"name": "sock", "url": "socks5://10.0.0.3:1080"}]}]"#,
        )
        .expect("valid");
        let res = &pools[0];
        assert_eq!(res.rotation, Rotation::LeastRecentlyUsed);
        assert_eq!(res.max_per_proxy, DEFAULT_MAX_PER_PROXY);
        assert_eq!(res.proxies[0].name, "res-1");
        let credentials = res.proxies[0].credentials.as_ref().expect("credentials");
        assert_eq!(credentials.username, "al@ice");
        assert_eq!(credentials.password, "hunter2");
        assert_eq!(res.proxies[1].scheme, UpstreamScheme::Socks5);
        assert!(!format!("{pools:?}").contains("hunter2"));
        for bad in [
            r#"[{"name": "x", "tier": "t", "proxies": ["ftp://u:hunter2@h:1"]}]"#,
            r#"[{"name": "x", "tier": "t", "proxies": ["http://u:hunter2@h:1/path"]}]"#,
            r#"[{"name": "X", "tier": "t", "proxies": ["http://u:hunter2@h:1"]}]"#,
            r#"[{"name": "x", "tier": "t", "proxies": []}]"#,
            r#"[{"name": "none", "tier": "t", "proxies": ["http://h:1"]}]"#,
            r#"[{"name": "x", "tier": "t", "proxies": ["http://h:1"], "extra": 1}]"#,
            r#"[{"name": "x", "tier": "t", "max_per_proxy": 0, "proxies": ["http://h:1"]}]"#,
        ] {
            let error = parse_pools(bad).expect_err(bad);
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}

/// The `PROXY_POOLS` setting: the pools, none when unset or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolsSetting(pub Vec<PoolSpec>);

impl std::str::FromStr for PoolsSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<PoolsSetting, String> {
        if text.trim().is_empty() {
            return Ok(PoolsSetting::default());
        }
        parse_pools(text).map(PoolsSetting)
    }
}

/// One entry of `TENANT_PROXIES`: `tenant=choice`, the pool or tier (or `none`) a tenant's
/// jobs use when they name none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantProxy {
    /// The tenant.
    pub tenant: String,
    /// A pool's name, a tier, or `none`.
    pub choice: String,
}

impl std::str::FromStr for TenantProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<TenantProxy, String> {
        let (tenant, choice) = text.split_once('=').ok_or_else(|| {
            format!("{text:?}: expected tenant=pool (or tenant=tier, tenant=none)")
        })?;
        let (tenant, choice) = (tenant.trim(), choice.trim());
        crate::auth::check_tenant(tenant).map_err(|why| format!("{tenant:?}: {why}"))?;
        if !is_name(choice) {
            return Err(format!(
                "{choice:?}: a pool or tier is 1 to 64 of a-z, 0-9, - and _"
            ));
        }
        Ok(TenantProxy {
            tenant: tenant.to_owned(),
            choice: choice.to_owned(),
        })
    }
}
