//! What a profile carries from one job to the next, as the engines load and capture it: a
//! returning visitor's cookies, the `localStorage` of the origins it was on, and the
//! identity it showed. This is the plain form; it only ever reaches the database sealed
//! (see [`super::seal`]).

use serde::{Deserialize, Serialize};
use url::Url;

use crate::engine::options::{CookieSpec, Viewport};

/// The most cookies a profile keeps (the rest of a capture is refused).
pub const MAX_COOKIES: usize = 1_000;
/// The most origins whose `localStorage` a profile keeps.
pub const MAX_ORIGINS: usize = 50;
/// The most bytes a profile's state takes as JSON, before sealing.
pub const MAX_STATE_BYTES: usize = 2 * 1024 * 1024;

/// One cookie as the browser holds it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Cookie {
    /// Name.
    pub name: String,
    /// Value (the secret part).
    pub value: String,
    /// Domain, with a leading dot when it is sent to subdomains too.
    pub domain: String,
    /// Path.
    pub path: String,
    /// Expiry, Unix seconds; none for a session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
    /// Hidden from page scripts.
    #[serde(default)]
    pub http_only: bool,
    /// Sent over HTTPS only.
    #[serde(default)]
    pub secure: bool,
    /// `Strict`, `Lax` or `None`, as the site set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cookie")
            .field("name", &self.name)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Cookie {
    /// Whether a request to `url` carries this cookie (RFC 6265's domain, path and secure
    /// rules), at `now` (Unix seconds).
    pub fn sent_to(&self, url: &Url, now: f64) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let domain = self.domain.to_ascii_lowercase();
        let domain_matches = match domain.strip_prefix('.') {
            Some(parent) => host == parent || host.ends_with(&format!(".{parent}")),
            None => host == domain,
        };
        let path = url.path();
        let path_matches = path == self.path
            || (path.starts_with(&self.path)
                && (self.path.ends_with('/') || path[self.path.len()..].starts_with('/')));
        let live = self.expires.is_none_or(|at| at <= 0.0 || at > now);
        domain_matches && path_matches && live && (!self.secure || url.scheme() == "https")
    }
}

/// The `localStorage` of one origin.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginStorage {
    /// `scheme://host[:port]`.
    pub origin: String,
    /// Its items, key → value, in the order the page listed them.
    pub local_storage: Vec<(String, String)>,
}

impl std::fmt::Debug for OriginStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginStorage")
            .field("origin", &self.origin)
            .field("items", &self.local_storage.len())
            .finish()
    }
}

/// Who the visitor said it was: what a job leaves out is taken from here, so a returning
/// visitor does not change its face between visits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user agent a job set (none: the browser's own, cleaned under stealth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Its locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Its time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Its window (the stealth screen follows from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewport: Option<Viewport>,
    /// The proxy pool or tier its requests went through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// Everything a profile holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    /// Every cookie of the browser context.
    #[serde(default)]
    pub cookies: Vec<Cookie>,
    /// `localStorage`, per origin.
    #[serde(default)]
    pub origins: Vec<OriginStorage>,
    /// The identity it showed.
    #[serde(default)]
    pub identity: Identity,
}

/// Why a captured state cannot be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooLarge {
    /// Over [`MAX_COOKIES`].
    #[error("the browser held {0} cookies; a profile keeps at most {MAX_COOKIES}")]
    Cookies(usize),
    /// Over [`MAX_ORIGINS`].
    #[error("localStorage of {0} origins; a profile keeps at most {MAX_ORIGINS}")]
    Origins(usize),
    /// Over [`MAX_STATE_BYTES`].
    #[error("the state takes {0} bytes; a profile keeps at most {MAX_STATE_BYTES}")]
    Bytes(usize),
}

impl ProfileState {
    /// The cookies a request to `url` sends, as a job's own cookies are written.
    pub fn cookies_for(&self, url: &Url) -> Vec<CookieSpec> {
        let now = chrono::Utc::now().timestamp() as f64;
        self.cookies
            .iter()
            .filter(|c| c.sent_to(url, now))
            .map(|c| CookieSpec {
                name: c.name.clone(),
                value: c.value.clone(),
                domain: None,
                path: None,
                secure: c.secure,
                http_only: c.http_only,
            })
            .collect()
    }

    /// The origins it keeps storage for, in order.
    pub fn origin_names(&self) -> Vec<String> {
        self.origins.iter().map(|o| o.origin.clone()).collect()
    }

    /// `origin`'s storage replaced by `items` (an origin with none is dropped).
    pub fn with_storage(mut self, origin: &str, items: Vec<(String, String)>) -> ProfileState {
        self.origins.retain(|o| o.origin != origin);
        if !items.is_empty() {
            self.origins.push(OriginStorage {
                origin: origin.to_owned(),
                local_storage: items,
            });
        }
        self
    }

    /// The state as JSON, within the caps.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TooLarge> {
        if self.cookies.len() > MAX_COOKIES {
            return Err(TooLarge::Cookies(self.cookies.len()));
        }
        if self.origins.len() > MAX_ORIGINS {
            return Err(TooLarge::Origins(self.origins.len()));
        }
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        if bytes.len() > MAX_STATE_BYTES {
            return Err(TooLarge::Bytes(bytes.len()));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(domain: &str, path: &str, secure: bool) -> Cookie {
        Cookie {
            name: "sid".into(),
            value: "v".into(),
            domain: domain.into(),
            path: path.into(),
            expires: None,
            http_only: true,
            secure,
            same_site: None,
        }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a url")
    }

    #[test]
    fn cookies_follow_the_domain_path_and_secure_rules() {
        let host_only = cookie("shop.test", "/", false);
        assert!(host_only.sent_to(&url("http://shop.test/a"), 0.0));
        assert!(!host_only.sent_to(&url("http://www.shop.test/a"), 0.0));
        let wide = cookie(".shop.test", "/", false);
        assert!(wide.sent_to(&url("http://www.shop.test/"), 0.0));
        assert!(wide.sent_to(&url("http://shop.test/"), 0.0));
        assert!(!wide.sent_to(&url("http://notshop.test/"), 0.0));
        let scoped = cookie("shop.test", "/account", false);
        assert!(scoped.sent_to(&url("http://shop.test/account/orders"), 0.0));
        assert!(!scoped.sent_to(&url("http://shop.test/accounts"), 0.0));
        let secure = cookie("shop.test", "/", true);
        assert!(!secure.sent_to(&url("http://shop.test/"), 0.0));
        assert!(secure.sent_to(&url("https://shop.test/"), 0.0));
        let expired = Cookie {
            expires: Some(100.0),
            ..cookie("shop.test", "/", false)
        };
        assert!(!expired.sent_to(&url("http://shop.test/"), 200.0));
    }

    #[test]
    fn caps_refuse_what_a_profile_cannot_keep() {
        let many = ProfileState {
            cookies: vec![cookie("a.test", "/", false); MAX_COOKIES + 1],
            ..ProfileState::default()
        };
        assert_eq!(many.to_bytes(), Err(TooLarge::Cookies(MAX_COOKIES + 1)));
        let big = ProfileState::default().with_storage(
            "http://a.test",
            vec![("k".into(), "x".repeat(MAX_STATE_BYTES))],
        );
        assert!(matches!(big.to_bytes(), Err(TooLarge::Bytes(_))));
    }

    #[test]
    fn storage_of_an_origin_is_replaced_whole() {
        let state = ProfileState::default()
            .with_storage("http://a.test", vec![("k".into(), "1".into())])
            .with_storage("http://b.test", vec![("k".into(), "2".into())])
            .with_storage("http://a.test", vec![("j".into(), "3".into())])
            .with_storage("http://b.test", Vec::new());
        assert_eq!(state.origin_names(), vec!["http://a.test".to_owned()]);
        assert_eq!(
            state.origins[0].local_storage,
            vec![("j".into(), "3".into())]
        );
    }
}
