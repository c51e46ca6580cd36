//! Target urls and the policy that keeps jobs away from private and local networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use super::host_map::HostMap;
use crate::ttl_cache::TtlCache;

/// The longest url a job may target, in characters.
pub const MAX_URL_LEN: usize = 2048;

/// What the contract says of a target url's text (ECMA-262, as JSON Schema reads it). It
/// must admit every url [`TargetUrl::parse`] accepts, so a validating client never refuses
/// one the server would take: an http(s) scheme in any case (after leading spaces, which the
/// parser trims), then anything but control characters; the rest (a host, its policy) is the
/// server's to refuse with a named field.
pub const TARGET_URL_PATTERN: &str = r"^ *[hH][tT][tT][pP][sS]?:[^\x00-\x1F\x7F]*$";

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
    /// A user name or password in the url: it would be stored and shown with the job.
    #[error("url must not carry a user name or password; send credentials in headers")]
    Credentials,
    /// A control character (a tab, a line break, NUL …) anywhere: the url parser would drop
    /// tabs and line breaks silently, so what is stored would not be what was sent.
    #[error("url must not contain control characters (found {0:?})")]
    ControlCharacter(char),
    /// Port 0, which nothing listens on.
    #[error("port 0 is not a port to connect to")]
    PortZero,
    /// A host name that DNS cannot hold.
    #[error("{0:?} is not a valid host name")]
    HostName(String),
}

impl TargetUrl {
    /// Parses and checks a target url.
    pub fn parse(input: &str) -> Result<TargetUrl, TargetUrlError> {
        if input.chars().count() > MAX_URL_LEN {
            return Err(TargetUrlError::TooLong);
        }
        if let Some(control) = input.chars().find(|c| c.is_ascii_control()) {
            return Err(TargetUrlError::ControlCharacter(control));
        }
        let url = Url::parse(input).map_err(|e| match e {
            url::ParseError::EmptyHost => TargetUrlError::NoHost,
            other => TargetUrlError::Malformed(other.to_string()),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetUrlError::Scheme(url.scheme().to_owned()));
        }
        match url.host() {
            Some(Host::Domain("")) => return Err(TargetUrlError::NoHost),
            Some(Host::Domain(name)) if !is_dns_name(name) => {
                return Err(TargetUrlError::HostName(name.to_owned()));
            }
            Some(_) => {}
            None => return Err(TargetUrlError::NoHost),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetUrlError::Credentials);
        }
        if url.port() == Some(0) {
            return Err(TargetUrlError::PortZero);
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

/// Whether `name` (as `url` gives it: lower-case, IDNA-encoded) fits DNS: at most 253
/// characters, labels of 1 to 63 letters, digits, `-` or `_`, not starting or ending with `-`.
pub fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
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
    hosts: Option<&'static HostMap>,
}

impl TargetPolicy {
    /// A policy that refuses non-public addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        TargetPolicy {
            allow_private,
            hosts: None,
        }
    }

    /// The same policy, answering the names `hosts` maps from it instead of DNS (the
    /// addresses are checked all the same).
    pub fn with_hosts(self, hosts: HostMap) -> Self {
        TargetPolicy {
            hosts: (!hosts.is_empty()).then(|| hosts.interned()),
            ..self
        }
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

    /// The addresses a connection to `host:port` may use: the host resolved (an IP literal as
    /// it is) within [`CONNECT_RESOLVE_TIMEOUT`], every address checked. A lookup that fails or
    /// times out refuses; the caller connects only to what this returns, so the address
    /// checked is the address used.
    pub async fn resolve(self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Some(addr) = self.hosts.and_then(|map| map.lookup(bare)) {
            let addrs = vec![SocketAddr::new(addr, port)];
            self.check_resolved(host, addrs.iter().copied())?;
            return Ok(addrs);
        }
        let lookup = tokio::net::lookup_host((bare, port));
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout(CONNECT_RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => return Err(ResolveError::lookup(host, e.to_string())),
                Err(_) => {
                    let took = format!("no answer within {} s", CONNECT_RESOLVE_TIMEOUT.as_secs());
                    return Err(ResolveError::lookup(host, took));
                }
            };
        self.check_resolved(host, addrs.iter().copied())?;
        Ok(addrs)
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

/// How long resolving a host for a connection may take before the connection is refused.
pub const CONNECT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a host may not be connected to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The policy refuses one of its addresses.
    #[error(transparent)]
    Refused(#[from] TargetRefused),
    /// It does not resolve (in time).
    #[error("cannot resolve {host}: {reason}")]
    Lookup {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

impl ResolveError {
    fn lookup(host: &str, reason: String) -> ResolveError {
        ResolveError::Lookup {
            host: host.to_owned(),
            reason,
        }
    }
}

/// How long a submit-time lookup (or its failure) is reused.
const RESOLVE_CACHE_TTL: Duration = Duration::from_secs(60);
/// Names remembered at most; the cache starts over when full.
const RESOLVE_CACHE_SIZE: usize = 10_000;

/// Submit-time answers (or failures) by host and port.
type Lookups = TtlCache<(String, u16), Option<Vec<SocketAddr>>>;

/// Resolves `name` within [`SUBMIT_RESOLVE_TIMEOUT`], reusing answers (and failures) for a
/// minute, so a burst of submissions to one site costs one lookup, not one each.
async fn resolve_cached(name: &str, port: u16) -> Option<Vec<SocketAddr>> {
    static CACHE: std::sync::OnceLock<Lookups> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| TtlCache::new(RESOLVE_CACHE_TTL, RESOLVE_CACHE_SIZE));
    let key = (name.to_owned(), port);
    if let Some(addrs) = cache.get(&key) {
        return addrs;
    }
    let lookup = tokio::net::lookup_host((name, port));
    let addrs = match tokio::time::timeout(SUBMIT_RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => Some(addrs.collect::<Vec<_>>()),
        _ => None,
    };
    cache.put(key, addrs.clone());
    addrs
}

/// The class of an address that is not on the public internet, or `None` when it is public.
pub fn non_public_class(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

/// IPv4 ranges that are not reachable on the public internet: the IANA IPv4
/// Special-Purpose Address Registry, plus multicast and the reserved space above it.
const V4_SPECIAL: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "unspecified"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "CGNAT"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignment"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let ip = u32::from(ip);
    V4_SPECIAL.iter().find_map(|(net, len, class)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
        (ip & mask == u32::from(*net) & mask).then_some(*class)
    })
}

/// The IPv4 address in the last 32 bits of an IPv6 address.
fn last_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// Only global unicast (2000::/3) reaches the public internet, less the IANA IPv6
/// Special-Purpose ranges inside it; an IPv4 address carried in IPv6 (mapped, or NAT64's
/// well-known prefix) is judged as the IPv4 address it is. Everything else — including the
/// deprecated IPv4-compatible (::/96) and translated (::ffff:0:0:0/96) forms, local NAT64
/// (64:ff9b:1::/48), discard-only and reserved space — is refused.
fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_class(last_v4(ip));
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    match s[0] {
        0x2001 if s[1] < 0x0200 => Some("IETF protocol assignment (Teredo, ORCHID, benchmarking)"),
        0x2001 if s[1] == 0x0db8 => Some("documentation"),
        0x2002 => Some("6to4"),
        0x3fff if s[1] < 0x1000 => Some("documentation"),
        first if first & 0xe000 == 0x2000 => None,
        first if first & 0xfe00 == 0xfc00 => Some("private"),
        first if first & 0xffc0 == 0xfe80 => Some("link-local"),
        first if first & 0xffc0 == 0xfec0 => Some("site-local"),
        first if first & 0xff00 == 0xff00 => Some("multicast"),
        _ => Some("reserved"),
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
            "http://[::7f00:1]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[64:ff9b:1::808:808]/",
            "http://[2002:7f00:1::]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://[2001:db8::1]/",
            "http://[3fff::1]/",
            "http://[100::1]/",
            "http://[fec0::1]/",
            "http://[ff02::1]/",
            "http://192.0.0.8/",
            "http://192.0.2.1/",
            "http://198.51.100.7/",
            "http://203.0.113.9/",
            "http://198.18.0.1/",
            "http://198.19.255.255/",
            "http://192.88.99.1/",
            "http://255.255.255.255/",
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
            "http://[64:ff9b::808:808]/",
            "http://[::ffff:8.8.8.8]/",
            "http://198.20.0.1/",
            "http://192.0.3.1/",
        ] {
            assert!(!refused(good), "{good} should be allowed");
        }
        let allow = TargetPolicy::new(true);
        let url = TargetUrl::parse("http://127.0.0.1/").expect("valid url");
        assert!(allow.check_literal(url.url()).is_ok());
    }

    /// Every url the parser accepts matches the contract's pattern: every ASCII character and
    /// a few others, put at each place of urls with queries, fragments, ports and escapes.
    #[test]
    fn the_contracts_pattern_admits_every_url_the_parser_accepts() {
        let pattern = regex::Regex::new(TARGET_URL_PATTERN).expect("the pattern compiles");
        let bases = [
            "https://example.com/search?q=shoes&size=42+eu#reviews",
            "HTTP://Example.COM:65535/a%20b/c=d;e,f@g!h$i'j(k)*l",
            "http:example.com/no-slashes",
            "  https://bücher.example/Ünïcode path/?x=[1]&y={2}|3^4`5",
        ];
        let extra = ['é', '\u{85}', '\u{a0}', '\u{2028}', '\u{1F600}'];
        let chars = (0u8..=127).map(char::from).chain(extra);
        for ch in chars {
            for base in bases {
                for at in base.char_indices().map(|(i, _)| i).chain([base.len()]) {
                    let mut url = base.to_owned();
                    url.insert(at, ch);
                    if TargetUrl::parse(&url).is_ok() {
                        assert!(
                            pattern.is_match(&url),
                            "{url:?} is accepted but the contract refuses it"
                        );
                    }
                }
            }
        }
        for base in bases {
            assert!(TargetUrl::parse(base).is_ok(), "{base}");
            assert!(pattern.is_match(base), "{base}");
        }
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
        assert_eq!(
            TargetUrl::parse("https://user:secret@example.com/"),
            Err(TargetUrlError::Credentials)
        );
        assert_eq!(
            TargetUrl::parse("https://example.com:0/"),
            Err(TargetUrlError::PortZero)
        );
        for bad in [
            "http://exa mple.com/",
            "http://a..b/",
            "http://-a.com/",
            "http://a%21b.com/",
            &format!("http://{}.com/", "a".repeat(64)),
        ] {
            assert!(
                matches!(
                    TargetUrl::parse(bad),
                    Err(TargetUrlError::HostName(_) | TargetUrlError::Malformed(_))
                ),
                "{bad} should be refused"
            );
        }
        for control in [
            "http://exa\tmple.com/",
            "ht\ntp://example.com/",
            "http://a.com/\r\n",
        ] {
            assert!(
                matches!(
                    TargetUrl::parse(control),
                    Err(TargetUrlError::ControlCharacter(_))
                ),
                "{control:?} should be refused"
            );
        }
        assert!(TargetUrl::parse("https://bücher.example/").is_ok());
        assert!(TargetUrl::parse("https://_dmarc.example.com/").is_ok());
        let ok = TargetUrl::parse("https://Example.COM./a?b=c").expect("valid");
        assert_eq!(ok.domain(), "example.com");
    }
}
