//! How long finished jobs are kept: one age per terminal state, from the settings or a
//! tenant's own.

use std::time::Duration;

use crate::job::JobState;

/// The shortest age a job can be kept: shorter would race the clients reading its result.
pub const MIN_RETAIN: Duration = Duration::from_secs(60);
/// The longest age that is not "forever": 9,999 days (about 27 years).
pub const MAX_RETAIN: Duration = Duration::from_secs(9_999 * DAY);
/// The pattern of an age written as text (also the contract's): `forever`, or 1 to 9,999
/// minutes, hours or days.
pub const RETAIN_PATTERN: &str = "^(forever|[1-9][0-9]{0,3}[mhd])$";

const MINUTE: u64 = 60;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

/// How long a finished job of one state is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainFor {
    /// Deleted once it finished this long ago.
    Age(Duration),
    /// Never deleted by retention (only by `DELETE /api/v1/jobs/{id}`).
    Forever,
}

impl RetainFor {
    /// The age, if jobs are ever deleted.
    pub fn age(self) -> Option<Duration> {
        match self {
            RetainFor::Age(age) => Some(age),
            RetainFor::Forever => None,
        }
    }

    /// An age given in seconds (60 to 9,999 days' worth).
    pub fn from_seconds(seconds: u64) -> Result<RetainFor, String> {
        let age = Duration::from_secs(seconds);
        if !(MIN_RETAIN..=MAX_RETAIN).contains(&age) {
            return Err(format!(
                "{seconds} s is outside 60 to {} seconds (1 minute to 9,999 days)",
                MAX_RETAIN.as_secs()
            ));
        }
        Ok(RetainFor::Age(age))
    }
}

impl std::fmt::Display for RetainFor {
    /// `forever`, or the age in the largest of days, hours and minutes that divides it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let RetainFor::Age(age) = self else {
            return f.write_str("forever");
        };
        let seconds = age.as_secs();
        match [(DAY, 'd'), (HOUR, 'h'), (MINUTE, 'm')]
            .into_iter()
            .find(|(unit, _)| seconds % unit == 0)
        {
            Some((unit, letter)) => write!(f, "{}{letter}", seconds / unit),
            None => write!(f, "{seconds}s"),
        }
    }
}

impl std::str::FromStr for RetainFor {
    type Err = String;

    /// `forever`, or 1 to 9,999 minutes, hours or days (`90m`, `36h`, `7d`): exactly
    /// [`RETAIN_PATTERN`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "forever" {
            return Ok(RetainFor::Forever);
        }
        let wrong = || {
            format!(
                "{text:?}: expected `forever`, or 1 to 9999 followed by m, h or d (7d, 36h, 90m)"
            )
        };
        // The unit is the last character, not the last byte: text is anyone's.
        let Some((count, unit)) = text.char_indices().last().map(|(at, _)| text.split_at(at))
        else {
            return Err(wrong());
        };
        let unit = match unit {
            "m" => MINUTE,
            "h" => HOUR,
            "d" => DAY,
            _ => return Err(wrong()),
        };
        let digits_ok = (1..=4).contains(&count.len())
            && count.bytes().all(|b| b.is_ascii_digit())
            && !count.starts_with('0');
        if !digits_ok {
            return Err(wrong());
        }
        let count: u64 = count.parse().map_err(|_| wrong())?;
        RetainFor::from_seconds(count * unit)
    }
}

/// How long jobs are kept after they succeeded, failed or were cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// After success.
    pub succeeded: RetainFor,
    /// After failing for good.
    pub failed: RetainFor,
    /// After being cancelled.
    pub cancelled: RetainFor,
}

/// A tenant's own ages; a state it leaves unset follows the settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOverride {
    /// After success.
    pub succeeded: Option<RetainFor>,
    /// After failing for good.
    pub failed: Option<RetainFor>,
    /// After being cancelled.
    pub cancelled: Option<RetainFor>,
}

impl RetentionOverride {
    /// The tenant's own age for `state`, if it set one.
    pub fn for_state(&self, state: JobState) -> Option<RetainFor> {
        match state {
            JobState::Succeeded => self.succeeded,
            JobState::Failed => self.failed,
            JobState::Cancelled => self.cancelled,
            JobState::Queued | JobState::Running => None,
        }
    }
}

impl Retention {
    /// The settings' defaults: a week for successes, thirty days for the rest (what to look
    /// into stays longer than what worked).
    pub const DEFAULT: Retention = Retention {
        succeeded: RetainFor::Age(Duration::from_secs(7 * 24 * 3600)),
        failed: RetainFor::Age(Duration::from_secs(30 * 24 * 3600)),
        cancelled: RetainFor::Age(Duration::from_secs(30 * 24 * 3600)),
    };

    /// The terminal states with their ages.
    pub fn by_state(&self) -> [(JobState, RetainFor); 3] {
        [
            (JobState::Succeeded, self.succeeded),
            (JobState::Failed, self.failed),
            (JobState::Cancelled, self.cancelled),
        ]
    }

    /// How long a job that finished in `state` is kept (`None` for a state that is not
    /// terminal: such a job is never deleted).
    pub fn for_state(&self, state: JobState) -> Option<RetainFor> {
        self.by_state()
            .into_iter()
            .find(|(s, _)| *s == state)
            .map(|(_, retain)| retain)
    }

    /// These ages with a tenant's own in place of those it set.
    pub fn with(self, own: &RetentionOverride) -> Retention {
        Retention {
            succeeded: own.succeeded.unwrap_or(self.succeeded),
            failed: own.failed.unwrap_or(self.failed),
            cancelled: own.cancelled.unwrap_or(self.cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_within_their_bounds_and_read_back() {
        assert_eq!(
            "7d".parse::<RetainFor>(),
            Ok(RetainFor::Age(Duration::from_secs(7 * 86_400)))
        );
        assert_eq!("forever".parse::<RetainFor>(), Ok(RetainFor::Forever));
        for text in ["7d", "36h", "90m", "9999d", "1m", "forever"] {
            let parsed: RetainFor = text.parse().expect(text);
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(
            RetainFor::Age(Duration::from_secs(48 * 3600)).to_string(),
            "2d"
        );
        for bad in [
            "30s", "0d", "07d", "10000d", "1y", "soon", "", "d", "Forever", "7 d", "\u{80}",
            "7\u{e9}", "\u{e9}d",
        ] {
            assert!(bad.parse::<RetainFor>().is_err(), "{bad}");
        }
        assert!(RetainFor::from_seconds(59).is_err());
        assert!(RetainFor::from_seconds(60).is_ok());
    }

    #[test]
    fn a_tenant_overrides_only_what_it_set() {
        let own = RetentionOverride {
            failed: Some(RetainFor::Forever),
            ..RetentionOverride::default()
        };
        let merged = Retention::DEFAULT.with(&own);
        assert_eq!(merged.failed, RetainFor::Forever);
        assert_eq!(merged.succeeded, Retention::DEFAULT.succeeded);
        assert_eq!(merged.for_state(JobState::Running), None);
    }
}
