//! How `auto` picks the rung a job starts on, and when it looks again at a cheaper one.
//!
//! Each rung's success at a host is a Beta(1 + successes, 1 + blocks) posterior over
//! discounted counts ([`super::evidence`]). A job starts on the cheapest rung (`http` <
//! `vanilla` < `stealth`) whose posterior mean reaches [`GOOD_ENOUGH`]: a rung nothing is
//! known of (mean ½) is tried before a dearer one, a rung that blocked more than it got
//! through is passed over. A block climbs the ladder within the job.
//!
//! Exploration is kept off the job's path: after a job got through on a rung, the rung just
//! below is probed with a plain page load, with a chance that decays from 1 by half with
//! each block in a row down to [`PROBE_FLOOR`]. A site that stops blocking is found within
//! a few jobs (the probe's success raises the cheaper rung's posterior until it is chosen
//! again), and a site known to need stealth still starts every job on stealth.

use rand::Rng;
use serde::Serialize;

use super::evidence::Evidence;
use super::policy::DomainPolicy;
use crate::job::Rung;

/// The posterior mean at which a rung is worth starting on.
pub const GOOD_ENOUGH: f64 = 0.5;
/// The least chance that a job's success is followed by a probe of the rung below.
pub const PROBE_FLOOR: f64 = 1.0 / 3.0;

/// The rungs a job may use, cheapest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder(Vec<Rung>);

impl Ladder {
    /// The rungs open to a job: `http` only for kinds that can run without a browser,
    /// browser rungs only where there is a browser, `stealth` unless the policy forbids it,
    /// a single rung when the policy pins one.
    pub fn open(needs_browser: bool, has_browser: bool, policy: &DomainPolicy) -> Ladder {
        if let Some(pin) = policy.pin {
            return Ladder::single(pin);
        }
        let rungs = Rung::ALL
            .iter()
            .copied()
            .filter(|rung| match rung {
                Rung::Http => !needs_browser || !has_browser,
                Rung::Vanilla => has_browser,
                Rung::Stealth => has_browser && !policy.forbid_stealth,
            })
            .collect();
        Ladder(rungs)
    }

    /// A ladder of one rung: a fixed strategy neither chooses nor climbs.
    pub fn single(rung: Rung) -> Ladder {
        Ladder(vec![rung])
    }

    /// The rungs, cheapest first.
    pub fn rungs(&self) -> &[Rung] {
        &self.0
    }

    /// The rung above `rung`, if any.
    pub fn above(&self, rung: Rung) -> Option<Rung> {
        self.0.iter().copied().find(|r| *r > rung)
    }

    /// The rung below `rung`, if any.
    pub fn below(&self, rung: Rung) -> Option<Rung> {
        self.0.iter().copied().rev().find(|r| *r < rung)
    }
}

/// Where a job starts, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The rung the job starts on.
    pub rung: Rung,
    /// Why, in words.
    pub reason: String,
}

/// Picks the starting rung from `evidence` (the host's, or its domain's for a host never
/// seen; `prior` says which).
pub fn choose(ladder: &Ladder, evidence: &Evidence, prior: bool) -> Choice {
    let rungs = ladder.rungs();
    let Some(&cheapest) = rungs.first() else {
        // An empty ladder cannot be built (there is always http or a browser); be safe.
        return Choice {
            rung: Rung::Http,
            reason: "no rung is open: plain http".to_owned(),
        };
    };
    if rungs.len() == 1 {
        return Choice {
            rung: cheapest,
            reason: format!("{cheapest} is the only rung open to this job"),
        };
    }
    if !evidence.is_informative() {
        return Choice {
            rung: cheapest,
            reason: format!("nothing known of this site yet: starting with {cheapest}"),
        };
    }
    let source = if prior { "its domain's" } else { "this host's" };
    for &rung in rungs {
        let stats = evidence.of(rung);
        let estimate = stats.success_estimate();
        if estimate >= GOOD_ENOUGH {
            return Choice {
                rung,
                reason: format!(
                    "{rung}: the cheapest rung whose estimated success ({estimate:.2}) is at \
                     least {GOOD_ENOUGH}, from {source} record ({:.1} successes, {:.1} blocks)",
                    stats.successes, stats.blocks
                ),
            };
        }
    }
    let last = rungs[rungs.len() - 1];
    Choice {
        rung: last,
        reason: format!(
            "{last}: no rung is estimated to get through at least half the time; the dearest \
             is the best chance"
        ),
    }
}

/// The chance that a success on some rung is followed by a probe of `below`: 1 halved per
/// block in a row, never under [`PROBE_FLOOR`].
pub fn probe_chance(evidence: &Evidence, below: Rung) -> f64 {
    let streak = evidence.of(below).block_streak.min(30);
    (0.5f64.powi(streak as i32)).max(PROBE_FLOOR)
}

/// Whether to probe `below` now.
pub fn should_probe(evidence: &Evidence, below: Rung, rng: &mut impl Rng) -> bool {
    rng.random_bool(probe_chance(evidence, below).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Verdict;
    use crate::memory::evidence::{Observation, WINDOW};
    use chrono::Utc;
    use rand::SeedableRng;
    use uuid::Uuid;

    struct Site {
        seen: Vec<Observation>,
        rng: rand::rngs::StdRng,
        ladder: Ladder,
    }

    impl Site {
        fn new(seed: u64) -> Site {
            Site {
                seen: Vec::new(),
                rng: rand::rngs::StdRng::seed_from_u64(seed),
                ladder: Ladder::open(false, true, &DomainPolicy::default()),
            }
        }

        fn observe(&mut self, job: usize, rung: Rung, needed: Rung) -> Verdict {
            let verdict = if rung >= needed {
                Verdict::Success
            } else {
                Verdict::Blocked
            };
            self.seen.insert(
                0,
                Observation {
                    host: "a.test".into(),
                    job_id: Uuid::from_u128(job as u128),
                    rung,
                    verdict,
                    latency_ms: 10,
                    at: Utc::now(),
                },
            );
            self.seen.truncate(WINDOW as usize);
            verdict
        }

        /// One auto job where rungs below `needed` are blocked: (started on, finished on).
        fn job(&mut self, job: usize, needed: Rung) -> (Rung, Rung) {
            let evidence = Evidence::weigh(&self.seen, Utc::now());
            let first = choose(&self.ladder, &evidence, false).rung;
            let mut rung = first;
            while self.observe(job, rung, needed) == Verdict::Blocked {
                match self.ladder.above(rung) {
                    Some(next) => rung = next,
                    None => return (first, rung),
                }
            }
            if first == rung
                && let Some(below) = self.ladder.below(rung)
                && should_probe(&evidence, below, &mut self.rng)
            {
                self.observe(job, below, needed);
            }
            (first, rung)
        }
    }

    #[test]
    fn each_site_converges_on_the_cheapest_rung_that_works() {
        for seed in 0..300 {
            for needed in Rung::ALL.iter().copied() {
                let mut site = Site::new(seed);
                let jobs: Vec<(Rung, Rung)> = (0..20).map(|n| site.job(n, needed)).collect();
                let wrong = jobs[10..].iter().filter(|(_, r)| *r != needed).count();
                assert!(wrong <= 1, "seed {seed}, {needed}: {jobs:?}");
                assert_eq!(
                    jobs[19].0, needed,
                    "a known site starts where it gets through"
                );
            }
        }
    }

    #[test]
    fn a_site_that_stops_blocking_is_rediscovered() {
        let mut missed = 0;
        for seed in 0..1000 {
            let mut site = Site::new(seed);
            let jobs: Vec<Rung> = (0..40)
                .map(|n| {
                    let needed = if n < 20 { Rung::Vanilla } else { Rung::Http };
                    site.job(n, needed).1
                })
                .collect();
            if !jobs[38..].iter().all(|r| *r == Rung::Http) {
                missed += 1;
            }
        }
        assert!(missed <= 5, "missed in {missed} of 1000 runs");
    }

    #[test]
    fn probes_decay_with_blocks_in_a_row_to_the_floor() {
        let mut site = Site::new(1);
        assert_eq!(probe_chance(&Evidence::default(), Rung::Http), 1.0);
        for n in 0..10 {
            site.observe(n, Rung::Http, Rung::Vanilla);
        }
        let evidence = Evidence::weigh(&site.seen, Utc::now());
        assert_eq!(evidence.of(Rung::Http).block_streak, 10);
        assert_eq!(probe_chance(&evidence, Rung::Http), PROBE_FLOOR);
    }

    #[test]
    fn a_pin_or_a_missing_browser_narrows_the_ladder() {
        let pinned = DomainPolicy {
            pin: Some(Rung::Stealth),
            ..DomainPolicy::default()
        };
        assert_eq!(Ladder::open(false, true, &pinned).rungs(), &[Rung::Stealth]);
        let no_stealth = DomainPolicy {
            forbid_stealth: true,
            ..DomainPolicy::default()
        };
        let ladder = Ladder::open(false, true, &no_stealth);
        assert_eq!(ladder.rungs(), &[Rung::Http, Rung::Vanilla]);
        assert_eq!(ladder.below(Rung::Vanilla), Some(Rung::Http));
        assert_eq!(ladder.below(Rung::Http), None);
        assert_eq!(
            Ladder::open(true, true, &DomainPolicy::default()).rungs(),
            &[Rung::Vanilla, Rung::Stealth]
        );
        assert_eq!(
            Ladder::open(false, false, &DomainPolicy::default()).rungs(),
            &[Rung::Http]
        );
    }
}
