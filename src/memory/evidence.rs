//! From a host's recent observations to what is believed about each rung: discounted
//! success and block counts (the Beta posteriors strategy choice samples from), and the
//! figures the API shows.
//!
//! Each observation weighs `DISCOUNT^j · ½^(age / HALF_LIFE)`, where `j` counts the jobs
//! observed at the host since (the attempts of one job share a weight). Counting by jobs
//! lets a site that changes its defences be relearned within a few jobs however busy it is;
//! counting by time lets a quiet site be looked at afresh after a day.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Verdict;
use crate::job::{Rung, Step};

/// How much one job's worth of newer evidence discounts older evidence.
pub const DISCOUNT: f64 = 0.9;
/// After how long evidence weighs half, whatever happened since.
pub const HALF_LIFE_HOURS: f64 = 24.0;
/// Observations read per host (or per domain): beyond this, evidence weighs under 0.9^30.
pub const WINDOW: u32 = 64;
/// Weight of a new latency in the moving average.
const LATENCY_WEIGHT: f64 = 0.2;

/// One finished attempt at a host, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The host.
    pub host: String,
    /// The job (its attempts share a weight).
    pub job_id: Uuid,
    /// The rung it ran with.
    pub rung: Rung,
    /// The proxy tier it left through (none: directly).
    pub tier: Option<String>,
    /// What it came to.
    pub verdict: Verdict,
    /// How long it took.
    pub latency_ms: u32,
    /// When it finished.
    pub at: DateTime<Utc>,
}

impl Observation {
    /// The ladder's step it ran on.
    pub fn step(&self) -> Step {
        Step {
            rung: self.rung,
            tier: self.tier.clone(),
        }
    }
}

/// What is believed about one step (a rung, direct or through a tier) at a host or domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RungStats {
    /// Discounted successes.
    pub successes: f64,
    /// Discounted blocks.
    pub blocks: f64,
    /// Discounted throttles (429, 503 with Retry-After).
    pub throttles: f64,
    /// Discounted site errors (404, 5xx, network).
    pub site_errors: f64,
    /// Moving average of successful attempts' latency, in milliseconds.
    pub ewma_latency_ms: Option<f64>,
    /// The last success.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last block.
    pub last_block_at: Option<DateTime<Utc>>,
    /// Blocks in a row since its last success (undiscounted).
    pub block_streak: u32,
}

impl RungStats {
    /// The mean of the success posterior Beta(1 + successes, 1 + blocks).
    pub fn success_estimate(&self) -> f64 {
        (1.0 + self.successes) / (2.0 + self.successes + self.blocks)
    }
}

/// Beliefs about every step, from one set of observations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// Per step of the ladder.
    pub rungs: BTreeMap<Step, RungStats>,
    /// How many observations it rests on.
    pub observations: usize,
}

impl Evidence {
    /// Weighs `observations` (newest first) as of `now`.
    pub fn weigh(observations: &[Observation], now: DateTime<Utc>) -> Evidence {
        let mut evidence = Evidence {
            observations: observations.len(),
            ..Evidence::default()
        };
        let mut jobs_since = 0i32;
        let mut previous: Option<Uuid> = None;
        for seen in observations {
            if previous.is_some_and(|job| job != seen.job_id) {
                jobs_since += 1;
            }
            previous = Some(seen.job_id);
            let hours = (now - seen.at).num_milliseconds().max(0) as f64 / 3_600_000.0;
            let weight = DISCOUNT.powi(jobs_since) * 0.5f64.powf(hours / HALF_LIFE_HOURS);
            evidence.count(seen, weight);
        }
        for seen in observations.iter().rev() {
            evidence.average_latency(seen);
        }
        evidence
    }

    /// Newest first: a block counts towards the streak until the rung's newest success.
    fn count(&mut self, seen: &Observation, weight: f64) {
        let stats = self.rungs.entry(seen.step()).or_default();
        match seen.verdict {
            Verdict::Success => {
                stats.successes += weight;
                stats.last_success_at = stats.last_success_at.or(Some(seen.at));
            }
            Verdict::Blocked => {
                stats.blocks += weight;
                stats.last_block_at = stats.last_block_at.or(Some(seen.at));
                if stats.last_success_at.is_none() {
                    stats.block_streak += 1;
                }
            }
            Verdict::Throttled => stats.throttles += weight,
            Verdict::SiteError => stats.site_errors += weight,
        }
    }

    /// Oldest first: each success moves its rung's average towards its latency.
    fn average_latency(&mut self, seen: &Observation) {
        if seen.verdict != Verdict::Success {
            return;
        }
        let stats = self.rungs.entry(seen.step()).or_default();
        let latency = f64::from(seen.latency_ms);
        stats.ewma_latency_ms = Some(match stats.ewma_latency_ms {
            None => latency,
            Some(average) => average + LATENCY_WEIGHT * (latency - average),
        });
    }

    /// What is believed about `step` (nothing seen: all zero).
    pub fn of(&self, step: &Step) -> RungStats {
        self.rungs.get(step).copied().unwrap_or_default()
    }

    /// Whether any success or block was seen (what strategy choice can learn from).
    pub fn is_informative(&self) -> bool {
        self.rungs.values().any(|s| s.successes + s.blocks > 0.0)
    }

    /// The typical latency of a successful attempt, over every rung.
    pub fn typical_latency_ms(&self) -> Option<f64> {
        self.rungs
            .values()
            .filter_map(|s| s.ewma_latency_ms)
            .reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(job: u128, rung: Rung, verdict: Verdict, hours_ago: i64) -> Observation {
        Observation {
            host: "a.test".into(),
            job_id: Uuid::from_u128(job),
            rung,
            tier: None,
            verdict,
            latency_ms: 100,
            at: Utc::now() - chrono::Duration::hours(hours_ago),
        }
    }

    #[test]
    fn older_jobs_weigh_less_and_one_jobs_attempts_weigh_the_same() {
        let observations = [
            seen(3, Rung::Vanilla, Verdict::Success, 0),
            seen(3, Rung::Http, Verdict::Blocked, 0),
            seen(2, Rung::Http, Verdict::Blocked, 0),
        ];
        let evidence = Evidence::weigh(&observations, Utc::now());
        let http = evidence.of(&Rung::Http.into());
        assert!((http.blocks - (1.0 + DISCOUNT)).abs() < 1e-6, "{http:?}");
        assert!((evidence.of(&Rung::Vanilla.into()).successes - 1.0).abs() < 1e-6);
        assert!(evidence.of(&Rung::Stealth.into()).successes == 0.0);
        assert!(evidence.of(&Rung::Vanilla.into()).success_estimate() > 0.6);
    }

    #[test]
    fn a_day_old_observation_weighs_half() {
        let evidence = Evidence::weigh(&[seen(1, Rung::Http, Verdict::Success, 24)], Utc::now());
        assert!((evidence.of(&Rung::Http.into()).successes - 0.5).abs() < 0.01);
    }
}
