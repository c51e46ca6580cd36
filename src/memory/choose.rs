//! How `auto` picks the rung a job starts on, and when it looks again at a cheaper one.
//!
//! The ladder is `http`, `vanilla`, `stealth` directly, then the dearest open rung through
//! each proxy tier the job may use, cheapest tier first ([`Ladder::open`]); every step of it
//! is learned apart, so "rung" below means a step.
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
use crate::job::step::NO_PROXY;
use crate::job::{Rung, Step};

/// The posterior mean at which a rung is worth starting on.
pub const GOOD_ENOUGH: f64 = 0.5;
/// The least chance that a job's success is followed by a probe of the rung below.
pub const PROBE_FLOOR: f64 = 1.0 / 3.0;

/// The steps a job may use, cheapest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder(Vec<Step>);

impl Ladder {
    /// The steps open to a job: `http` only for kinds that can run without a browser,
    /// browser rungs only where there is a browser, `stealth` unless the policy forbids it,
    /// a single rung when the policy pins one; all of them direct, then the dearest through
    /// each of `tiers` (cheapest first) that the policy does not forbid. A policy's
    /// `proxy_tier` sends every rung through that tier instead (`none`: every rung direct).
    pub fn open(
        needs_browser: bool,
        has_browser: bool,
        policy: &DomainPolicy,
        tiers: &[String],
    ) -> Ladder {
        let rungs: Vec<Rung> = match policy.pin {
            Some(pin) => vec![pin],
            None => Rung::ALL
                .iter()
                .copied()
                .filter(|rung| match rung {
                    Rung::Http => !needs_browser || !has_browser,
                    Rung::Vanilla => has_browser,
                    Rung::Stealth => has_browser && !policy.forbid_stealth,
                })
                .collect(),
        };
        let direct = rungs.iter().copied().map(Step::direct);
        match policy.proxy_tier.as_deref() {
            Some(NO_PROXY) => Ladder(direct.collect()),
            Some(tier) => Ladder(rungs.iter().map(|rung| Step::via(*rung, tier)).collect()),
            None => {
                let dearest = rungs.last().copied().unwrap_or(Rung::Http);
                let climbs = tiers
                    .iter()
                    .filter(|tier| !policy.forbid_proxy_tiers.contains(tier))
                    .map(|tier| Step::via(dearest, tier));
                Ladder(direct.chain(climbs).collect())
            }
        }
    }

    /// A ladder of one step: a fixed strategy neither chooses nor climbs.
    pub fn single(step: Step) -> Ladder {
        Ladder(vec![step])
    }

    /// The steps, cheapest first.
    pub fn rungs(&self) -> &[Step] {
        &self.0
    }

    fn position(&self, step: &Step) -> Option<usize> {
        self.0.iter().position(|s| s == step)
    }

    /// The step above `step`, if any.
    pub fn above(&self, step: &Step) -> Option<&Step> {
        self.0.get(self.position(step)? + 1)
    }

    /// The step below `step`, if any.
    pub fn below(&self, step: &Step) -> Option<&Step> {
        self.0.get(self.position(step)?.checked_sub(1)?)
    }
}

/// Where a job starts, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The step the job starts on.
    pub rung: Step,
    /// Why, in words.
    pub reason: String,
}

/// Picks the starting rung from `evidence` (the host's, or its domain's for a host never
/// seen; `prior` says which).
pub fn choose(ladder: &Ladder, evidence: &Evidence, prior: bool) -> Choice {
    let rungs = ladder.rungs();
    let Some(cheapest) = rungs.first().cloned() else {
        // An empty ladder cannot be built (there is always http or a browser); be safe.
        return Choice {
            rung: Step::direct(Rung::Http),
            reason: "no rung is open: plain http".to_owned(),
        };
    };
    if rungs.len() == 1 {
        return Choice {
            reason: format!("{cheapest} is the only rung open to this job"),
            rung: cheapest,
        };
    }
    if !evidence.is_informative() {
        return Choice {
            reason: format!("nothing known of this site yet: starting with {cheapest}"),
            rung: cheapest,
        };
    }
    let source = if prior { "its domain's" } else { "this host's" };
    for rung in rungs {
        let stats = evidence.of(rung);
        let estimate = stats.success_estimate();
        if estimate >= GOOD_ENOUGH {
            return Choice {
                rung: rung.clone(),
                reason: format!(
                    "{rung}: the cheapest rung whose estimated success ({estimate:.2}) is at \
                     least {GOOD_ENOUGH}, from {source} record ({:.1} successes, {:.1} blocks)",
                    stats.successes, stats.blocks
                ),
            };
        }
    }
    let last = rungs[rungs.len() - 1].clone();
    Choice {
        rung: last.clone(),
        reason: format!(
            "{last}: no rung is estimated to get through at least half the time; the dearest \
             is the best chance"
        ),
    }
}

/// The chance that a success on some rung is followed by a probe of `below`: 1 halved per
/// block in a row, never under [`PROBE_FLOOR`].
pub fn probe_chance(evidence: &Evidence, below: &Step) -> f64 {
    let streak = evidence.of(below).block_streak.min(30);
    (0.5f64.powi(streak as i32)).max(PROBE_FLOOR)
}

/// Whether to probe `below` now.
pub fn should_probe(evidence: &Evidence, below: &Step, rng: &mut impl Rng) -> bool {
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

    fn tiers() -> Vec<String> {
        vec!["datacenter".to_owned(), "residential".to_owned()]
    }

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
                ladder: Ladder::open(false, true, &DomainPolicy::default(), &tiers()),
            }
        }

        /// Whether `step` is at or above `needed` on the ladder.
        fn gets_through(&self, step: &Step, needed: &Step) -> bool {
            let at = |s: &Step| self.ladder.rungs().iter().position(|r| r == s);
            at(step) >= at(needed)
        }

        fn observe(&mut self, job: usize, step: &Step, needed: &Step) -> Verdict {
            let verdict = if self.gets_through(step, needed) {
                Verdict::Success
            } else {
                Verdict::Blocked
            };
            self.seen.insert(
                0,
                Observation {
                    host: "a.test".into(),
                    job_id: Uuid::from_u128(job as u128),
                    rung: step.rung,
                    tier: step.tier.clone(),
                    verdict,
                    latency_ms: 10,
                    at: Utc::now(),
                },
            );
            self.seen.truncate(WINDOW as usize);
            verdict
        }

        /// One auto job where steps below `needed` are blocked: (started on, finished on).
        fn job(&mut self, job: usize, needed: &Step) -> (Step, Step) {
            let evidence = Evidence::weigh(&self.seen, Utc::now());
            let first = choose(&self.ladder, &evidence, false).rung;
            let mut step = first.clone();
            while self.observe(job, &step, needed) == Verdict::Blocked {
                match self.ladder.above(&step) {
                    Some(next) => step = next.clone(),
                    None => return (first, step),
                }
            }
            if first == step
                && let Some(below) = self.ladder.below(&step).cloned()
                && should_probe(&evidence, &below, &mut self.rng)
            {
                self.observe(job, &below, needed);
            }
            (first, step)
        }
    }

    #[test]
    fn each_site_converges_on_the_cheapest_step_that_works() {
        let steps = Site::new(0).ladder.rungs().to_vec();
        assert_eq!(steps.len(), 5, "{steps:?}");
        for seed in 0..200 {
            for needed in &steps {
                let mut site = Site::new(seed);
                let jobs: Vec<(Step, Step)> = (0..20).map(|n| site.job(n, needed)).collect();
                let wrong = jobs[10..].iter().filter(|(_, r)| r != needed).count();
                assert!(wrong <= 1, "seed {seed}, {needed}: {jobs:?}");
                assert_eq!(
                    &jobs[19].0, needed,
                    "a known site starts where it gets through"
                );
            }
        }
    }

    #[test]
    fn a_site_that_stops_blocking_is_rediscovered() {
        let http = Step::direct(Rung::Http);
        for needed_first in [
            Step::direct(Rung::Vanilla),
            Step::via(Rung::Stealth, "residential"),
        ] {
            let mut missed = 0;
            for seed in 0..1000 {
                let mut site = Site::new(seed);
                let jobs: Vec<Step> = (0..40)
                    .map(|n| {
                        let needed = if n < 20 { &needed_first } else { &http };
                        site.job(n, needed).1
                    })
                    .collect();
                if !jobs[38..].iter().all(|r| *r == http) {
                    missed += 1;
                }
            }
            // Each step down is found by a probe, so a site five steps up takes longer.
            assert!(
                missed <= 30,
                "{needed_first}: missed in {missed} of 1000 runs"
            );
        }
    }

    #[test]
    fn probes_decay_with_blocks_in_a_row_to_the_floor() {
        let mut site = Site::new(1);
        let (http, vanilla) = (Step::direct(Rung::Http), Step::direct(Rung::Vanilla));
        assert_eq!(probe_chance(&Evidence::default(), &http), 1.0);
        for n in 0..10 {
            site.observe(n, &http, &vanilla);
        }
        let evidence = Evidence::weigh(&site.seen, Utc::now());
        assert_eq!(evidence.of(&http).block_streak, 10);
        assert_eq!(probe_chance(&evidence, &http), PROBE_FLOOR);
    }

    #[test]
    fn a_pin_or_a_missing_browser_narrows_the_ladder() {
        let direct = |rungs: &[Rung]| rungs.iter().copied().map(Step::direct).collect::<Vec<_>>();
        let pinned = DomainPolicy {
            pin: Some(Rung::Stealth),
            ..DomainPolicy::default()
        };
        assert_eq!(
            Ladder::open(false, true, &pinned, &[]).rungs(),
            direct(&[Rung::Stealth])
        );
        let no_stealth = DomainPolicy {
            forbid_stealth: true,
            ..DomainPolicy::default()
        };
        let ladder = Ladder::open(false, true, &no_stealth, &[]);
        assert_eq!(ladder.rungs(), direct(&[Rung::Http, Rung::Vanilla]));
        assert_eq!(
            ladder.below(&Rung::Vanilla.into()),
            Some(&Rung::Http.into())
        );
        assert_eq!(ladder.below(&Rung::Http.into()), None);
        assert_eq!(
            Ladder::open(true, true, &DomainPolicy::default(), &[]).rungs(),
            direct(&[Rung::Vanilla, Rung::Stealth])
        );
        assert_eq!(
            Ladder::open(false, false, &DomainPolicy::default(), &[]).rungs(),
            direct(&[Rung::Http])
        );
    }

    #[test]
    fn tiers_extend_the_ladder_unless_the_policy_pins_or_forbids_them() {
        let open = |policy: &DomainPolicy, browser: bool| {
            let ladder = Ladder::open(false, browser, policy, &tiers());
            ladder
                .rungs()
                .iter()
                .map(Step::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            open(&DomainPolicy::default(), true),
            [
                "http",
                "vanilla",
                "stealth",
                "stealth via datacenter",
                "stealth via residential"
            ]
        );
        assert_eq!(
            open(&DomainPolicy::default(), false),
            ["http", "http via datacenter", "http via residential"]
        );
        let forbid = DomainPolicy {
            forbid_proxy_tiers: vec!["datacenter".to_owned()],
            forbid_stealth: true,
            ..DomainPolicy::default()
        };
        assert_eq!(
            open(&forbid, true),
            ["http", "vanilla", "vanilla via residential"]
        );
        let pin = DomainPolicy {
            proxy_tier: Some("residential".to_owned()),
            ..DomainPolicy::default()
        };
        assert_eq!(
            open(&pin, true),
            [
                "http via residential",
                "vanilla via residential",
                "stealth via residential"
            ]
        );
        let direct = DomainPolicy {
            proxy_tier: Some("none".to_owned()),
            ..DomainPolicy::default()
        };
        assert_eq!(open(&direct, true), ["http", "vanilla", "stealth"]);
    }
}
