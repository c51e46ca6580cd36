//! Retry policy: which failures get another attempt, and when (exponential backoff, full jitter).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value;

use crate::job::{Backoff, JobError, Settlement};
use crate::kinds::RunningJob;

/// The longest a target's `Retry-After` may postpone a retry.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Exponential backoff with full jitter: attempt n waits a random time in
/// `[0, min(cap, base · 2^(n-1))]`, and never less than the target's `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first attempt's backoff ceiling.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The backoff ceiling after failed attempt number `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        Backoff::new(self.base, self.cap).ceiling(attempt)
    }

    /// A delay after failed attempt number `attempt`, with full jitter.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        Backoff::new(self.base, self.cap).jittered(attempt, 0.0, rng)
    }

    /// Turns an attempt's outcome into how the job is settled.
    pub fn settle(
        &self,
        job: &RunningJob,
        outcome: Result<Value, JobError>,
        now: DateTime<Utc>,
    ) -> Settlement {
        match outcome {
            Ok(result) => Settlement::Succeeded(result),
            Err(error) if error.retryable && job.attempt < job.max_attempts => {
                let mut delay = self.delay(job.attempt, &mut rand::rng());
                if let Some(ms) = error.retry_after_ms {
                    delay = delay.max(Duration::from_millis(ms).min(MAX_RETRY_AFTER));
                }
                let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
                Settlement::Retry {
                    error,
                    run_at: now + delay,
                }
            }
            Err(error) => Settlement::Failed(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ErrorKind, JobError, Priority, Strategy};
    use crate::kinds::JobType;
    use rand::SeedableRng;

    fn job(attempt: u32, max_attempts: u32) -> RunningJob {
        RunningJob {
            id: uuid::Uuid::now_v7(),
            domain: "example.com".into(),
            url: "https://example.com/".into(),
            job_type: JobType::NavigateExtract,
            strategy: Strategy::Http,
            priority: Priority::default(),
            payload: serde_json::json!({}),
            attempt,
            max_attempts,
            timeout_ms: 1000,
            worker_id: "w".into(),
            tenant_id: "default".into(),
        }
    }

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(1), Duration::from_secs(1));
        assert_eq!(policy.ceiling(2), Duration::from_secs(2));
        assert_eq!(policy.ceiling(9), Duration::from_secs(256));
        assert_eq!(policy.ceiling(10), Duration::from_secs(300));
        assert_eq!(policy.ceiling(1000), Duration::from_secs(300));
    }

    #[test]
    fn delays_stay_within_the_ceiling() {
        let policy = RetryPolicy::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for attempt in 1..12 {
            for _ in 0..100 {
                assert!(policy.delay(attempt, &mut rng) <= policy.ceiling(attempt));
            }
        }
    }

    #[test]
    fn retryable_errors_retry_until_attempts_run_out() {
        let policy = RetryPolicy::default();
        let now = Utc::now();
        let error = JobError::new(ErrorKind::Navigation, "refused");
        assert!(matches!(
            policy.settle(&job(1, 3), Err(error.clone()), now),
            Settlement::Retry { run_at, .. } if run_at >= now && run_at <= now + chrono::Duration::seconds(1)
        ));
        assert!(matches!(
            policy.settle(&job(3, 3), Err(error.clone()), now),
            Settlement::Failed(_)
        ));
        let not_found = JobError::new(ErrorKind::HttpStatus, "404").retryable(false);
        assert!(matches!(
            policy.settle(&job(1, 3), Err(not_found), now),
            Settlement::Failed(_)
        ));
    }

    #[test]
    fn retry_after_postpones_the_retry() {
        let policy = RetryPolicy::default();
        let now = Utc::now();
        let mut error = JobError::new(ErrorKind::HttpStatus, "429").retryable(true);
        error.retry_after_ms = Some(30_000);
        let Settlement::Retry { run_at, .. } = policy.settle(&job(1, 3), Err(error), now) else {
            panic!("expected a retry");
        };
        assert!(run_at >= now + chrono::Duration::seconds(30));
    }
}
