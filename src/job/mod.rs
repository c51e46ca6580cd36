//! Domain types: what a job is, the states it moves through, and its typed errors.

pub mod browser_spec;
pub mod spec;
pub mod target;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use spec::{FieldError, JobSpec, Payload};
pub use target::TargetUrl;

/// The tenant every job belongs to until authentication assigns tenants.
pub const DEFAULT_TENANT: &str = "default";

/// Declares a closed set of names stored as text and exchanged as snake_case strings.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The accepted names, comma-separated, for error messages.
            pub fn expected() -> String {
                [$($text),+].join(", ")
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { expected: Self::expected() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A name that is not one of an enum's accepted values.
#[derive(Debug, Clone, thiserror::Error)]
#[error("expected one of: {expected}")]
pub struct UnknownName {
    /// The accepted names.
    pub expected: String,
}

named_enum!(
    /// Where a job is in its lifecycle.
    JobState {
        /// Waiting to run (now, or at `run_at`).
        Queued => "queued",
        /// Claimed by a worker that holds its lease.
        Running => "running",
        /// Finished with a result.
        Succeeded => "succeeded",
        /// Finished with an error, attempts exhausted or not retryable.
        Failed => "failed",
        /// Stopped on request.
        Cancelled => "cancelled",
    }
);

impl JobState {
    /// Whether the job can no longer change state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

named_enum!(
    /// How a job reaches the web.
    Strategy {
        /// Plain HTTP: fast, no JavaScript.
        Http => "http",
        /// Chromium as shipped.
        Vanilla => "vanilla",
        /// Chromium with evasions against automation detection.
        Stealth => "stealth",
        /// Let the per-domain memory choose, escalating when blocked.
        Auto => "auto",
    }
);

named_enum!(
    /// What a job does.
    JobType {
        /// Load a page and extract metadata, links, text and selected data.
        NavigateExtract => "navigate_extract",
        /// Capture an image of the page.
        Screenshot => "screenshot",
        /// Print the page to PDF.
        Pdf => "pdf",
        /// Run a list of browser steps.
        Script => "script",
        /// Do nothing (optionally sleep); for tests and load runs.
        Noop => "noop",
    }
);

impl JobType {
    /// Whether the job type can only run in a browser.
    pub fn needs_browser(self) -> bool {
        matches!(self, JobType::Screenshot | JobType::Pdf | JobType::Script)
    }
}

named_enum!(
    /// The typed reason a job attempt failed.
    ErrorKind {
        /// The attempt ran past the job's timeout.
        Timeout => "timeout",
        /// The target could not be reached (DNS, connection, TLS, redirects).
        Navigation => "navigation",
        /// The target answered with an HTTP error status.
        HttpStatus => "http_status",
        /// The target recognised automation and refused the content.
        Blocked => "blocked",
        /// A script step or expression failed.
        Script => "script",
        /// The browser died while running the job.
        BrowserCrashed => "browser_crashed",
        /// No browser is installed or it could not start.
        BrowserUnavailable => "browser_unavailable",
        /// The payload cannot be executed as given.
        InvalidPayload => "invalid_payload",
        /// The target is refused by the target policy (private or local address).
        TargetPolicy => "target_policy",
        /// The job was cancelled while running.
        Cancelled => "cancelled",
        /// A fault inside control-plane.
        Internal => "internal",
    }
);

impl ErrorKind {
    /// Whether an error of this kind is worth another attempt by default.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::Navigation
                | ErrorKind::Blocked
                | ErrorKind::BrowserCrashed
                | ErrorKind::Internal
        )
    }
}

/// A job priority: 1 is the most urgent, 5 the least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Priority(u8);

impl Priority {
    /// The most urgent level.
    pub const HIGHEST: Priority = Priority(1);
    /// The least urgent level.
    pub const LOWEST: Priority = Priority(5);
    /// Every level, most urgent first.
    pub const LEVELS: [Priority; 5] = [
        Priority(1),
        Priority(2),
        Priority(3),
        Priority(4),
        Priority(5),
    ];

    /// A priority from its number, if it is within 1..=5.
    pub fn new(level: i64) -> Option<Priority> {
        (1..=5).contains(&level).then_some(Priority(level as u8))
    }

    /// The level number (1..=5).
    pub fn get(self) -> u8 {
        self.0
    }

    /// The zero-based index of the level (0 for priority 1).
    pub fn index(self) -> usize {
        usize::from(self.0 - 1)
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority(3)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A typed failure of one job attempt, as stored and shown to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// A human-readable explanation.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The HTTP status the target answered, for `http_status` and `blocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// How long the target asked us to wait (`Retry-After`), in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Why a `blocked` job was judged blocked (`challenge`, `captcha`, `empty_body`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Urls of debugging artifacts kept from the failed attempt (`failure.png`, `failure.html`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
}

impl JobError {
    /// An error of `kind` whose retryability is the kind's default.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        JobError {
            kind,
            message: message.into(),
            retryable: kind.is_retryable(),
            status_code: None,
            retry_after_ms: None,
            reason: None,
            artifacts: Vec::new(),
        }
    }

    /// The same error with retryability overridden.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// A job as stored: its spec, where it is in its lifecycle, and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Time-ordered identifier (UUID v7).
    pub id: Uuid,
    /// The tenant that owns the job.
    pub tenant_id: String,
    /// The target's host name, lower-case.
    pub domain: String,
    /// The target url.
    pub url: String,
    /// What the job does.
    pub job_type: JobType,
    /// How the job reaches the web.
    pub strategy: Strategy,
    /// 1 (most urgent) to 5.
    pub priority: Priority,
    /// Job-type specific options.
    pub payload: Value,
    /// How many attempts the job may use.
    pub max_attempts: u32,
    /// How long one attempt may run, in milliseconds.
    pub timeout_ms: u32,
    /// Where the job is in its lifecycle.
    pub state: JobState,
    /// The number of attempts started so far.
    pub attempt: u32,
    /// When the job is (or was) due to run.
    pub run_at: DateTime<Utc>,
    /// Until when the running attempt's worker holds the job.
    pub lease_until: Option<DateTime<Utc>>,
    /// The worker that runs (or last ran) the job.
    pub worker_id: Option<String>,
    /// The result of the successful attempt.
    pub result: Option<Value>,
    /// The error of the last failed attempt.
    pub error: Option<JobError>,
    /// When the job was submitted.
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// When the job last changed.
    pub updated_at: DateTime<Utc>,
}

/// A job claimed by a worker: everything the executor needs, plus the fencing token.
#[derive(Debug, Clone)]
pub struct RunningJob {
    /// The job's id.
    pub id: Uuid,
    /// The target's host name.
    pub domain: String,
    /// The target url.
    pub url: String,
    /// What the job does.
    pub job_type: JobType,
    /// How the job reaches the web.
    pub strategy: Strategy,
    /// The job's priority.
    pub priority: Priority,
    /// Job-type specific options.
    pub payload: Value,
    /// This attempt's number (1-based); with `worker_id` it fences every later write.
    pub attempt: u32,
    /// How many attempts the job may use.
    pub max_attempts: u32,
    /// How long this attempt may run, in milliseconds.
    pub timeout_ms: u32,
    /// The worker holding the lease.
    pub worker_id: String,
}

impl RunningJob {
    /// The running attempt of a job just claimed by `worker_id`.
    pub fn claimed(job: Job, worker_id: &str) -> RunningJob {
        RunningJob {
            id: job.id,
            domain: job.domain,
            url: job.url,
            job_type: job.job_type,
            strategy: job.strategy,
            priority: job.priority,
            payload: job.payload,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            timeout_ms: job.timeout_ms,
            worker_id: worker_id.to_owned(),
        }
    }
}

/// One entry of a job's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct JobEvent {
    /// Monotonic event number.
    pub id: i64,
    /// The job the event belongs to.
    pub job_id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened (`created`, `started`, `succeeded`, `retrying`, `failed`, …).
    pub kind: String,
    /// The attempt the event belongs to (0 before the first attempt).
    pub attempt: u32,
    /// The worker involved, if any.
    pub worker_id: Option<String>,
    /// Event-specific details.
    pub detail: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().ok(), Some(*state));
        }
        for kind in ErrorKind::ALL {
            let json = serde_json::to_value(kind).ok();
            assert_eq!(json, Some(Value::String(kind.as_str().into())));
        }
        assert!("turbo".parse::<Strategy>().is_err());
    }

    #[test]
    fn priority_bounds() {
        assert_eq!(Priority::new(0), None);
        assert_eq!(Priority::new(6), None);
        assert_eq!(Priority::new(1), Some(Priority::HIGHEST));
        assert_eq!(Priority::default().get(), 3);
        assert_eq!(Priority::LOWEST.index(), 4);
    }
}
