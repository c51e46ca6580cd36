//! Fixed answers for host names, like curl's `--resolve` or Chromium's host resolver rules:
//! `RESOLVE=shop.test=127.0.0.1,*.internal=10.0.0.5`. For tests and split-horizon setups;
//! the target policy still checks every address a rule gives.

use std::net::IpAddr;
use std::sync::Mutex;

/// The most rules `RESOLVE` may hold.
pub const MAX_RULES: usize = 256;

/// Host names (or `*.suffix` patterns) mapped to addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostMap {
    rules: Vec<(String, IpAddr)>,
}

impl HostMap {
    /// Parses `name=address` rules separated by commas; a name may start with `*.` to match
    /// every host under it.
    pub fn parse(text: &str) -> Result<HostMap, String> {
        let mut rules = Vec::new();
        for rule in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (name, addr) = rule
                .split_once('=')
                .ok_or_else(|| format!("{rule:?} is not name=address"))?;
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            let bare = name.strip_prefix("*.").unwrap_or(&name);
            if !super::target::is_dns_name(bare) {
                return Err(format!("{name:?} is not a host name (or *.suffix)"));
            }
            let addr: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("{addr:?} is not an IP address"))?;
            rules.push((name, addr));
        }
        if rules.len() > MAX_RULES {
            return Err(format!("at most {MAX_RULES} rules"));
        }
        Ok(HostMap { rules })
    }

    /// The address a rule gives `host`, if one matches.
    pub fn lookup(&self, host: &str) -> Option<IpAddr> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.rules.iter().find_map(|(name, addr)| {
            let matches = match name.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|head| head.ends_with('.')),
                None => *name == host,
            };
            matches.then_some(*addr)
        })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The map as a `'static` reference, so the target policy stays a small `Copy` value.
    /// Maps are interned: building many processes' worth of apps (tests) with the same
    /// rules keeps one copy.
    pub fn interned(self) -> &'static HostMap {
        static MAPS: Mutex<Vec<&'static HostMap>> = Mutex::new(Vec::new());
        let mut maps = MAPS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = maps.iter().find(|known| ***known == self) {
            return known;
        }
        let leaked: &'static HostMap = Box::leak(Box::new(self));
        maps.push(leaked);
        leaked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_suffix_patterns_resolve() {
        let map = HostMap::parse("shop.test=127.0.0.1, *.fixture.test=::1").expect("valid");
        assert_eq!(
            map.lookup("SHOP.test."),
            Some("127.0.0.1".parse().expect("ip"))
        );
        assert_eq!(
            map.lookup("a.b.fixture.test"),
            Some("::1".parse().expect("ip"))
        );
        assert_eq!(
            map.lookup("fixture.test"),
            None,
            "a pattern needs a label before it"
        );
        assert_eq!(map.lookup("notfixture.test"), None);
        assert!(HostMap::parse("shop.test").is_err());
        assert!(HostMap::parse("shop.test=nowhere").is_err());
        assert!(HostMap::parse("bad name=127.0.0.1").is_err());
        assert!(std::ptr::eq(map.clone().interned(), map.clone().interned()));
    }
}
