//! One step of `auto`'s ladder: an engine rung, leaving the worker directly or through a
//! proxy tier. The ladder is `http`, `vanilla`, `stealth` directly, then the dearest open
//! rung through each proxy tier, cheapest tier first; the memory learns each step apart.

use std::fmt;

use super::Rung;

/// What a job's `proxy` option (or a domain policy's `proxy_tier`) says to go without a proxy.
pub const NO_PROXY: &str = "none";

/// The most proxy tiers a domain policy may forbid.
pub const MAX_FORBIDDEN_TIERS: usize = 64;

/// Whether `name` may name a proxy pool, tier or proxy: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
pub fn is_proxy_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A rung, and the proxy tier its connections leave by (none: directly).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Step {
    /// The engine.
    pub rung: Rung,
    /// The proxy tier, or none for the worker's own address.
    pub tier: Option<String>,
}

impl Step {
    /// `rung`, leaving directly.
    pub fn direct(rung: Rung) -> Step {
        Step { rung, tier: None }
    }

    /// `rung` through a proxy of `tier`.
    pub fn via(rung: Rung, tier: &str) -> Step {
        Step {
            rung,
            tier: Some(tier.to_owned()),
        }
    }
}

impl From<Rung> for Step {
    fn from(rung: Rung) -> Step {
        Step::direct(rung)
    }
}

/// `stealth`, or `stealth via residential`: how the API and the decisions' reasons name it.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tier {
            None => write!(f, "{}", self.rung),
            Some(tier) => write!(f, "{} via {tier}", self.rung),
        }
    }
}

/// As its name, so a table of steps is a JSON object keyed by name.
impl serde::Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_reads_as_its_rung_and_tier() {
        assert_eq!(Step::direct(Rung::Http).to_string(), "http");
        assert_eq!(
            Step::via(Rung::Stealth, "residential").to_string(),
            "stealth via residential"
        );
    }
}
