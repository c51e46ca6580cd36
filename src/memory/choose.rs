//! How `auto` picks the rung a job starts on: Thompson sampling over each rung's Beta
//! posterior, cheapest first.
//!
//! For each rung in cost order (`http` < `vanilla` < `stealth`) a success rate is drawn from
//! Beta(1 + successes, 1 + blocks); the job starts on the first rung whose draw reaches
//! [`GOOD_ENOUGH`]. A block then climbs the ladder within the job, so starting too low costs
//! one cheap attempt while starting too high costs every later job the cheaper rung. The
//! draw is what probes: a rung that blocked recently draws low, but as newer jobs discount
//! that evidence its posterior widens again, so a site that stops blocking is found within a
//! few jobs (about one job in four probes a rung that keeps blocking, one in a hundred a
//! rung that keeps working is skipped).

use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::Serialize;

use super::evidence::Evidence;
use super::policy::DomainPolicy;
use crate::job::Rung;

/// The drawn success rate at which a rung is worth trying first.
pub const GOOD_ENOUGH: f64 = 0.3;

/// The rungs a job may use, cheapest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder(Vec<Rung>);

impl Ladder {
    /// The rungs open to a job: `http` only for kinds that can run without a browser,
    /// browser rungs only where there is a browser, `stealth` unless the policy forbids it,
    /// a single rung when the policy pins one.
    pub fn open(needs_browser: bool, has_browser: bool, policy: &DomainPolicy) -> Ladder {
        if let Some(pin) = policy.pin {
            return Ladder(vec![pin]);
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

    /// The rungs, cheapest first.
    pub fn rungs(&self) -> &[Rung] {
        &self.0
    }

    /// The rung above `rung`, if any.
    pub fn above(&self, rung: Rung) -> Option<Rung> {
        self.0.iter().copied().find(|r| *r > rung)
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
pub fn choose(ladder: &Ladder, evidence: &Evidence, prior: bool, rng: &mut impl Rng) -> Choice {
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
    let mut best = (cheapest, -1.0);
    for &rung in rungs {
        let stats = evidence.of(rung);
        let draw = sample(1.0 + stats.successes, 1.0 + stats.blocks, rng);
        if draw >= GOOD_ENOUGH {
            return Choice {
                rung,
                reason: format!(
                    "{rung}: sampled success {draw:.2} >= {GOOD_ENOUGH} from {source} record \
                     ({:.1} successes, {:.1} blocks)",
                    stats.successes, stats.blocks
                ),
            };
        }
        if draw > best.1 {
            best = (rung, draw);
        }
    }
    Choice {
        rung: best.0,
        reason: format!(
            "{}: no rung sampled >= {GOOD_ENOUGH}; the best draw was {:.2}",
            best.0, best.1
        ),
    }
}

fn sample(alpha: f64, beta: f64, rng: &mut impl Rng) -> f64 {
    // Both parameters are >= 1 by construction, so the distribution always exists.
    Beta::new(alpha, beta).map_or(0.5, |d| d.sample(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Verdict;
    use crate::memory::evidence::Observation;
    use chrono::Utc;
    use rand::SeedableRng;
    use uuid::Uuid;

    /// Runs `jobs` auto jobs at a site where rungs below `needed(job)` are blocked; returns
    /// the rung each job finished on.
    fn simulate(jobs: usize, needed: impl Fn(usize) -> Rung, seed: u64) -> Vec<Rung> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let ladder = Ladder::open(false, true, &DomainPolicy::default());
        let mut seen: Vec<Observation> = Vec::new();
        let mut finished = Vec::new();
        for job in 0..jobs {
            let evidence = Evidence::weigh(&seen, Utc::now());
            let mut rung = choose(&ladder, &evidence, false, &mut rng).rung;
            loop {
                let verdict = if rung >= needed(job) {
                    Verdict::Success
                } else {
                    Verdict::Blocked
                };
                seen.insert(
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
                match ladder.above(rung) {
                    Some(next) if verdict == Verdict::Blocked => rung = next,
                    _ => break,
                }
            }
            seen.truncate(WINDOW_FOR_TESTS);
            finished.push(rung);
        }
        finished
    }

    const WINDOW_FOR_TESTS: usize = crate::memory::evidence::WINDOW as usize;

    #[test]
    fn each_site_converges_on_the_cheapest_rung_that_works() {
        for seed in 0..300 {
            for needed in Rung::ALL.iter().copied() {
                let finished = simulate(20, |_| needed, seed);
                let wrong = finished[10..].iter().filter(|r| **r != needed).count();
                assert!(wrong <= 1, "seed {seed}, {needed}: {finished:?}");
            }
        }
    }

    #[test]
    fn a_site_that_stops_blocking_is_rediscovered() {
        for seed in 0..300 {
            let finished = simulate(
                40,
                |job| if job < 20 { Rung::Vanilla } else { Rung::Http },
                seed,
            );
            assert!(
                finished[37..].iter().all(|r| *r == Rung::Http),
                "seed {seed}: {finished:?}"
            );
        }
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
        assert_eq!(
            Ladder::open(false, true, &no_stealth).rungs(),
            &[Rung::Http, Rung::Vanilla]
        );
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
