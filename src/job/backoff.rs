//! Exponential backoff: the one schedule every wait after a failure follows (a job's next
//! attempt, a webhook's next delivery, a worker asking a database that is away). Attempt n's
//! ceiling is `base · 2^(n-1)`, capped; jitter spreads the waits below the ceiling so that
//! what failed together does not come back together.

use std::time::Duration;

use rand::Rng;

/// An exponential schedule from `base` up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first attempt's ceiling.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
}

impl Backoff {
    /// A schedule from `base` up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap }
    }

    /// The ceiling after failed attempt number `attempt` (1-based; 0 counts as 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// A wait after failed attempt `attempt`: random between `floor` (a share of the
    /// ceiling: 0 for full jitter) and the ceiling.
    pub fn jittered(&self, attempt: u32, floor: f64, rng: &mut impl Rng) -> Duration {
        let share = rng.random_range(floor.clamp(0.0, 1.0)..=1.0);
        self.ceiling(attempt).mul_f64(share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_from_the_base_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let ceilings: Vec<u128> = (0..=8).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn jittered_waits_stay_between_the_floor_and_the_ceiling() {
        let backoff = Backoff::new(Duration::from_secs(4), Duration::from_secs(60));
        let mut rng = rand::rng();
        for _ in 0..1000 {
            let wait = backoff.jittered(2, 0.75, &mut rng);
            assert!(wait >= Duration::from_secs(6) && wait <= Duration::from_secs(8));
        }
    }
}
