//! How long finished jobs are kept: one age per terminal state, from the settings or a
//! tenant's own.

use std::time::Duration;

use crate::job::JobState;

/// The shortest age a job can be kept: shorter would race the clients reading its result.
pub const MIN_RETAIN: Duration = Duration::from_secs(60);
/// The longest age that is not "forever" (ten years).
pub const MAX_RETAIN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

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
}

impl std::fmt::Display for RetainFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetainFor::Age(age) => write!(f, "{}", humantime::format_duration(*age)),
            RetainFor::Forever => f.write_str("forever"),
        }
    }
}

impl std::str::FromStr for RetainFor {
    type Err = String;

    /// `forever`, or a duration from 1 minute to 10 years (`7d`, `36h`, `90m`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("forever") {
            return Ok(RetainFor::Forever);
        }
        let age = humantime::parse_duration(text).map_err(|e| {
            format!("{e}; expected a duration such as 7d, 36h or 90m, or `forever`")
        })?;
        if !(MIN_RETAIN..=MAX_RETAIN).contains(&age) {
            return Err("must be from 1m to 10 years, or `forever`".to_owned());
        }
        Ok(RetainFor::Age(age))
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
    fn ages_parse_within_their_bounds() {
        assert_eq!(
            "7d".parse::<RetainFor>(),
            Ok(RetainFor::Age(Duration::from_secs(7 * 86_400)))
        );
        assert_eq!("Forever".parse::<RetainFor>(), Ok(RetainFor::Forever));
        for bad in ["30s", "11years", "soon", ""] {
            assert!(bad.parse::<RetainFor>().is_err(), "{bad}");
        }
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
