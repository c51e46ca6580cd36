//! Target urls and the policy that keeps jobs away from private and local networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// The longest url a job may target, in characters.
pub const MAX_URL_LEN: usize = 2048;

/// How long submission waits for DNS before accepting a url it could not resolve.
const SUBMIT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// An absolute http(s) url with a host, at most [`MAX_URL_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(Url);

/// Why a string is not a usable target url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetUrlError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("url is longer than {MAX_URL_LEN} characters")]
    TooLong,
    /// Not a parseable absolute url.
    #[error("not a valid absolute url: {0}")]
    Malformed(String),
    /// A scheme other than http or https.
    #[error("scheme must be http or https, not {0:?}")]
    Scheme(String),
    /// No host to connect to.
    #[error("url has no host")]
    NoHost,
}

impl TargetUrl {
    /// Parses and checks a target url.
    pub fn parse(input: &str) -> Result<TargetUrl, TargetUrlError> {
        if input.chars().count() > MAX_URL_LEN {
            return Err(TargetUrlError::TooLong);
        }
        let url = Url::parse(input).map_err(|e| match e {
            url::ParseError::EmptyHost => TargetUrlError::NoHost,
            other => TargetUrlError::Malformed(other.to_string()),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetUrlError::Scheme(url.scheme().to_owned()));
        }
        match url.host_str() {
            Some(host) if !host.is_empty() => {}
            _ => return Err(TargetUrlError::NoHost),
        }
        if url.as_str().len() > MAX_URL_LEN {
            return Err(TargetUrlError::TooLong);
        }
        Ok(TargetUrl(url))
    }

    /// The parsed url.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The url as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host as a domain name, lower-case without a trailing dot (IP literals as written by `url`).
    pub fn domain(&self) -> String {
        normalize_host(self.0.host_str().unwrap_or_default())
    }
}

/// Lower-cases a host name and drops a trailing dot, so `Example.COM.` equals `example.com`.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "target {host} is refused: {reason} address {addr} (set ALLOW_PRIVATE_TARGETS=true to allow)"
)]
pub struct TargetRefused {
    /// The host as given.
    pub host: String,
    /// The address that is not public.
    pub addr: IpAddr,
    /// The class of the address (`loopback`, `private`, …).
    pub reason: &'static str,
}

/// Decides whether a job may reach a host: public addresses only, unless private targets are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetPolicy {
    allow_private: bool,
}

impl TargetPolicy {
    /// A policy that refuses non-public addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        TargetPolicy { allow_private }
    }

    /// Whether private and local targets are allowed.
    pub fn allows_private(self) -> bool {
        self.allow_private
    }

    /// Checks one resolved address of `host`.
    pub fn check_addr(self, host: &str, addr: IpAddr) -> Result<(), TargetRefused> {
        if self.allow_private {
            return Ok(());
        }
        match non_public_class(addr) {
            Some(reason) => Err(TargetRefused {
                host: host.to_owned(),
                addr,
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Checks what can be known without DNS: IP literals and `localhost` names.
    pub fn check_literal(self, url: &Url) -> Result<(), TargetRefused> {
        if self.allow_private {
            return Ok(());
        }
        match url.host() {
            Some(Host::Ipv4(v4)) => self.check_addr(&v4.to_string(), IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => self.check_addr(&v6.to_string(), IpAddr::V6(v6)),
            Some(Host::Domain(name)) => {
                let name = normalize_host(name);
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err(TargetRefused {
                        host: name,
                        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                        reason: "loopback",
                    });
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Checks a url at submission: literals, then every address its host resolves to.
    ///
    /// A host that does not resolve (or not within two seconds) is accepted: the worker checks
    /// again when it connects, and reports a `navigation` error if it still cannot resolve.
    pub async fn check_url(self, url: &Url) -> Result<(), TargetRefused> {
        self.check_literal(url)?;
        if self.allow_private {
            return Ok(());
        }
        let Some(Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(80);
        if let Some(addrs) = resolve_cached(name, port).await {
            self.check_resolved(name, addrs)?;
        }
        Ok(())
    }

    /// Checks every address a host resolved to.
    pub fn check_resolved(
        self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<(), TargetRefused> {
        addrs
            .into_iter()
            .try_for_each(|addr| self.check_addr(host, addr.ip()))
    }
}

/// How long a submit-time lookup (or its failure) is reused.
const RESOLVE_CACHE_TTL: Duration = Duration::from_secs(60);
/// Names remembered at most; the cache starts over when full.
const RESOLVE_CACHE_SIZE: usize = 10_000;

type ResolveCache = std::sync::Mutex<
    std::collections::HashMap<(String, u16), (std::time::Instant, Option<Vec<SocketAddr>>)>,
>;

/// Resolves `name` within [`SUBMIT_RESOLVE_TIMEOUT`], reusing answers (and failures) for a
/// minute, so a burst of submissions to one site costs one lookup, not one each.
async fn resolve_cached(name: &str, port: u16) -> Option<Vec<SocketAddr>> {
    static CACHE: std::sync::OnceLock<ResolveCache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (name.to_owned(), port);
    if let Ok(cache) = cache.lock()
        && let Some((at, addrs)) = cache.get(&key)
        && at.elapsed() < RESOLVE_CACHE_TTL
    {
        return addrs.clone();
    }
    let lookup = tokio::net::lookup_host((name, port));
    let addrs = match tokio::time::timeout(SUBMIT_RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => Some(addrs.collect::<Vec<_>>()),
        _ => None,
    };
    if let Ok(mut cache) = cache.lock() {
        if cache.len() >= RESOLVE_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(key, (std::time::Instant::now(), addrs.clone()));
    }
    addrs
}

/// The class of an address that is not on the public internet, or `None` when it is public.
pub fn non_public_class(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("CGNAT")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) embeds an IPv4 address in the last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let o = ip.octets();
        return v4_class(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if segments[0] & 0xfe00 == 0xfc00 || segments[0] & 0xffc0 == 0xfec0 {
        Some("private")
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(input: &str) -> bool {
        let url = TargetUrl::parse(input).expect("valid url");
        TargetPolicy::new(false).check_literal(url.url()).is_err()
    }

    #[test]
    fn literals_are_classified() {
        for bad in [
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://0.0.0.0/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::a00:1]/",
            "http://localhost:8080/",
            "http://api.LOCALHOST./",
        ] {
            assert!(refused(bad), "{bad} should be refused");
        }
        for good in [
            "https://example.com/",
            "http://8.8.8.8/",
            "http://100.128.0.1/",
            "http://[2606:4700::1111]/",
        ] {
            assert!(!refused(good), "{good} should be allowed");
        }
        let allow = TargetPolicy::new(true);
        let url = TargetUrl::parse("http://127.0.0.1/").expect("valid url");
        assert!(allow.check_literal(url.url()).is_ok());
    }

    #[test]
    fn urls_are_parsed_strictly() {
        assert_eq!(
            TargetUrl::parse("ftp://example.com/"),
            Err(TargetUrlError::Scheme("ftp".into()))
        );
        assert_eq!(TargetUrl::parse("http://"), Err(TargetUrlError::NoHost));
        assert!(matches!(
            TargetUrl::parse("example.com"),
            Err(TargetUrlError::Malformed(_))
        ));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(TargetUrl::parse(&long), Err(TargetUrlError::TooLong));
        let ok = TargetUrl::parse("https://Example.COM./a?b=c").expect("valid");
        assert_eq!(ok.domain(), "example.com");
    }
}
