//! How hard the purge may lean on the database: a share of its time. After each batch the
//! purge rests for as long as the batch took, scaled so that deleting fills at most that
//! share. A batch slowed by a busy database makes the rest longer by itself, so the purge
//! gives way exactly when the submissions need the database most.

use std::time::Duration;

/// The share of wall time the purge may spend deleting, 1 to 100 percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeShare(u8);

impl PurgeShare {
    /// What the settings default to: one tenth. On two cores it deleted about 400 expired
    /// jobs a second beside a 1,000 req/s load whose POST p99 it raised by 3 and 12 % (two
    /// runs of the `purge` benchmark; DESIGN.md, "Artifacts and retention").
    pub const DEFAULT: PurgeShare = PurgeShare(10);

    /// `percent` (1–100), or `None` outside that range.
    pub fn percent(percent: u8) -> Option<PurgeShare> {
        (1..=100).contains(&percent).then_some(PurgeShare(percent))
    }

    /// How long to rest after a batch that took `took`.
    pub fn rest_after(self, took: Duration) -> Duration {
        let idle = u32::from(100 - self.0);
        took * idle / u32::from(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenth_rests_nine_times_the_batch() {
        let share = PurgeShare::percent(10).expect("in range");
        assert_eq!(
            share.rest_after(Duration::from_millis(40)),
            Duration::from_millis(360)
        );
    }

    #[test]
    fn all_of_it_never_rests() {
        let share = PurgeShare::percent(100).expect("in range");
        assert_eq!(share.rest_after(Duration::from_secs(3)), Duration::ZERO);
    }

    #[test]
    fn no_share_is_refused() {
        assert_eq!(PurgeShare::percent(0), None);
        assert_eq!(PurgeShare::percent(101), None);
    }
}
