//! The registrable domain (eTLD+1, from the public suffix list) that aggregates a site's
//! hosts: `www.shop.example.co.uk` and `img.example.co.uk` are both `example.co.uk`. It is
//! the unit of pacing and the prior for a host never seen.

use std::net::IpAddr;

/// The registrable domain of `host` (already lower-cased by the target parser). IP
/// addresses, single labels and names that are themselves a public suffix stand for
/// themselves.
pub fn registrable(host: &str) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return bare.to_owned();
    }
    let name = bare.trim_end_matches('.');
    match psl::domain_str(name) {
        Some(domain) => domain.to_owned(),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_fold_into_their_registrable_domain() {
        assert_eq!(registrable("www.shop.example.co.uk"), "example.co.uk");
        assert_eq!(registrable("img.example.com"), "example.com");
        assert_eq!(registrable("example.com"), "example.com");
        assert_eq!(registrable("a.b.plain.test"), "plain.test");
        assert_eq!(registrable("127.0.0.1"), "127.0.0.1");
        assert_eq!(registrable("[::1]"), "::1");
        assert_eq!(registrable("localhost"), "localhost");
        assert_eq!(registrable("github.io"), "github.io");
        assert_eq!(registrable("someone.github.io"), "someone.github.io");
    }
}
