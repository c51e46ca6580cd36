//! When a failed delivery is tried again: the wait doubles from `WEBHOOK_RETRY_BASE` up to an
//! hour, with jitter so a receiver that comes back is not hit by every job at once, and the
//! delivery is given up a day after the job finished.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::job::Backoff;

/// The longest wait between two attempts.
pub const MAX_GAP: Duration = Duration::from_secs(3600);
/// How long after the job finished a delivery keeps being tried.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The next attempt after failed attempt number `attempt` (1-based), or `None` when the
/// delivery should be given up.
pub fn next_attempt(
    base: Duration,
    attempt: u32,
    finished_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Between three quarters and the whole gap.
    let jittered = Backoff::new(base, MAX_GAP).jittered(attempt, 0.75, &mut rand::rng());
    let at = now + chrono::Duration::from_std(jittered).ok()?;
    let give_up = finished_at + chrono::Duration::from_std(GIVE_UP_AFTER).ok()?;
    (at <= give_up).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_an_hour_and_stop_after_a_day() {
        let base = Duration::from_secs(5);
        let finished = Utc::now();
        let gap = |attempt| {
            let at = next_attempt(base, attempt, finished, finished).expect("within a day");
            (at - finished).to_std().expect("ahead")
        };
        assert!(gap(1) <= Duration::from_secs(5) && gap(1) >= Duration::from_millis(3750));
        assert!(gap(3) <= Duration::from_secs(20) && gap(3) >= Duration::from_secs(15));
        assert!(gap(30) <= MAX_GAP);
        let late = finished + chrono::Duration::hours(24);
        assert_eq!(next_attempt(base, 2, finished, late), None);
    }
}
