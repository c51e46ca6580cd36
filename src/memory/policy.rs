//! An operator's overrides for one registrable domain: pin a rung, forbid stealth, and set
//! the pace (concurrency cap, rate, burst, minimum delay). Parsed from a request body with
//! every bad field named.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::fields::{Fields, wrong_type};
use crate::job::step::{MAX_FORBIDDEN_TIERS, NO_PROXY, is_proxy_name};
use crate::job::{FieldError, Problems, Rung};

/// Requests in flight at once per domain when no policy says otherwise.
pub const DEFAULT_CAP: u32 = 4;
/// The largest concurrency cap a policy may set.
pub const MAX_CAP: u32 = 1_000;
/// The highest rate a policy may set, in requests per second.
pub const MAX_RATE: f64 = 10_000.0;
/// The lowest rate a policy may set, in requests per second (one request in 1,000 s).
pub const MIN_RATE: f64 = 0.001;
/// The largest burst a policy may set.
pub const MAX_BURST: u32 = 1_000;
/// The longest minimum delay a policy may set, in milliseconds (one hour).
pub const MAX_MIN_DELAY_MS: u32 = 3_600_000;

/// A domain's overrides; absent (or null) fields keep the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainPolicy {
    /// Always run this rung: no choice of engine, no escalation to another (the ladder may
    /// still climb into proxy tiers unless `proxy_tier` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Rung>,
    /// Never escalate to (or start with) stealth.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub forbid_stealth: bool,
    /// Always leave through this proxy tier (every rung `auto` tries goes through it), or
    /// `none`: always directly. Absent: `auto` climbs into the tiers after the direct rungs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_tier: Option<String>,
    /// Proxy tiers `auto` never climbs into at this domain (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Option<Vec<String>>)]
    pub forbid_proxy_tiers: Vec<String>,
    /// Requests in flight at once across every worker (default 4), 1 ..= 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub cap: Option<u32>,
    /// Requests per second across every worker (default unlimited), 0.001 ..= 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.001, maximum = 10000)]
    pub rate: Option<f64>,
    /// Requests that may go at once above the rate (default 1), 0 ..= 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1000)]
    pub burst: Option<u32>,
    /// The least time between two requests' starts, in milliseconds, 0 ..= 3600000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 3600000)]
    pub min_delay_ms: Option<u32>,
}

impl DomainPolicy {
    /// The concurrency cap in force.
    pub fn cap(&self) -> u32 {
        self.cap.unwrap_or(DEFAULT_CAP)
    }

    /// The burst in force (default 1; none when a minimum delay is set, which is a promise
    /// of spacing).
    pub fn burst(&self) -> u32 {
        match (self.burst, self.min_delay_ms) {
            (Some(burst), _) => burst,
            (None, Some(delay)) if delay > 0 => 0,
            (None, _) => 1,
        }
    }

    /// Parses a policy body, naming every bad field.
    pub fn parse(body: &Value) -> Result<DomainPolicy, Vec<FieldError>> {
        let problems = Problems::new();
        let parsed = Fields::of(body, "", &problems).and_then(|mut f| {
            let pin = f.choice::<Rung>("pin");
            let forbid_stealth = f.flag("forbid_stealth");
            let cap = f.int("cap", 1..=i64::from(MAX_CAP));
            let rate = f.with("rate", rate);
            let burst = f.int("burst", 0..=i64::from(MAX_BURST));
            let min_delay_ms = f.int("min_delay_ms", 0..=i64::from(MAX_MIN_DELAY_MS));
            let proxy_tier = f.with("proxy_tier", tier_name);
            let forbid_proxy_tiers = f.with("forbid_proxy_tiers", tier_names);
            if let (Some(Some(pinned)), Some(Some(forbidden))) = (&proxy_tier, &forbid_proxy_tiers)
                && forbidden.contains(pinned)
            {
                f.report(
                    "forbid_proxy_tiers",
                    "conflict",
                    format!("cannot forbid the tier {pinned:?} and pin it at once"),
                );
            }
            if pin == Some(Some(Rung::Stealth)) && forbid_stealth == Some(true) {
                f.report(
                    "forbid_stealth",
                    "conflict",
                    "cannot forbid stealth and pin it at once",
                );
            }
            f.finish();
            let narrow = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
            Some(DomainPolicy {
                pin: pin?,
                forbid_stealth: forbid_stealth?,
                cap: narrow(cap?),
                rate: rate?,
                burst: narrow(burst?),
                min_delay_ms: narrow(min_delay_ms?),
                proxy_tier: proxy_tier?,
                forbid_proxy_tiers: forbid_proxy_tiers?.unwrap_or_default(),
            })
        });
        let parsed = if problems.is_empty() { parsed } else { None };
        problems.verdict(parsed)
    }
}

fn tier_name(value: &Value) -> Result<String, (&'static str, String)> {
    match value.as_str() {
        Some(name) if name == NO_PROXY || is_proxy_name(name) => Ok(name.to_owned()),
        Some(_) => Err((
            "invalid",
            "must be `none` or a tier: 1 to 64 of a-z, 0-9, - and _".to_owned(),
        )),
        None => Err(wrong_type("a string", value)),
    }
}

fn tier_names(value: &Value) -> Result<Vec<String>, (&'static str, String)> {
    let Some(names) = value.as_array() else {
        return Err(wrong_type("an array of tier names", value));
    };
    if names.len() > MAX_FORBIDDEN_TIERS {
        return Err((
            "too_many",
            format!("at most {MAX_FORBIDDEN_TIERS} tiers may be forbidden"),
        ));
    }
    names
        .iter()
        .map(|name| match name.as_str() {
            Some(tier) if is_proxy_name(tier) && tier != NO_PROXY => Ok(tier.to_owned()),
            _ => Err((
                "invalid",
                "each must be a tier: 1 to 64 of a-z, 0-9, - and _".to_owned(),
            )),
        })
        .collect()
}

fn rate(value: &Value) -> Result<f64, (&'static str, String)> {
    let Some(rate) = value.as_f64() else {
        return Err(wrong_type("a number", value));
    };
    if (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(rate)
    } else {
        Err((
            "out_of_range",
            format!("must be between {MIN_RATE} and {MAX_RATE} requests per second"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_policy_parses() {
        let policy = DomainPolicy::parse(&json!({
            "pin": "vanilla", "cap": 2, "rate": 5, "burst": 0, "min_delay_ms": 100
        }))
        .expect("valid");
        assert_eq!(policy.pin, Some(Rung::Vanilla));
        assert_eq!(policy.cap(), 2);
        assert_eq!(policy.rate, Some(5.0));
        assert_eq!(policy.burst(), 0);
    }

    #[test]
    fn bad_fields_are_named() {
        let errors = DomainPolicy::parse(&json!({
            "pin": "auto", "cap": 0, "rate": -1, "speed": 3
        }))
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for field in ["pin", "cap", "rate", "speed"] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
        let conflict = DomainPolicy::parse(&json!({"pin": "stealth", "forbid_stealth": true}))
            .expect_err("conflict");
        assert_eq!(conflict[0].field, "forbid_stealth");
        let conflict = DomainPolicy::parse(
            &json!({"proxy_tier": "residential", "forbid_proxy_tiers": ["residential"]}),
        )
        .expect_err("conflict");
        assert_eq!(conflict[0].field, "forbid_proxy_tiers");
        for bad in [
            json!({"proxy_tier": "Résidentiel"}),
            json!({"forbid_proxy_tiers": ["none"]}),
        ] {
            let errors = DomainPolicy::parse(&bad).expect_err("invalid");
            assert!(errors[0].field.contains("proxy_tier"), "{errors:?}");
        }
    }
}
