//! Typed failures of job attempts.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::names::named_enum;
use super::{Rung, StrategyDecision};

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
        /// The result or an artifact is over its documented cap (the page is too big for
        /// what the job asked of it).
        TooLarge => "too_large",
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

/// A typed failure of one job attempt, as stored and shown to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// For `auto` jobs: where the attempt started, the rungs it tried and why, as a
    /// success's result shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_decision: Option<Box<StrategyDecision>>,
    /// What the failed attempt spent (browser time, requests by route), as a success's result
    /// states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<Box<super::Spent>>,
}

impl JobError {
    /// For an `auto` job, the rung its attempt ended on: the last one tried.
    pub fn ended_on(&self) -> Option<Rung> {
        self.strategy_decision
            .as_deref()
            .map(StrategyDecision::ended_on)
    }

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
            strategy_decision: None,
            spent: None,
        }
    }

    /// The same error with retryability overridden.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// The error recorded on a job whose worker's lease ran out.
    pub fn lease_expired() -> JobError {
        JobError::new(
            ErrorKind::Timeout,
            "the worker's lease expired before it reported an outcome (worker stopped or lost)",
        )
    }

    /// The error as stored and shown.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({"kind": "internal"}))
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialize_by_name() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_value(kind).ok();
            assert_eq!(json, Some(serde_json::Value::String(kind.as_str().into())));
        }
    }
}
