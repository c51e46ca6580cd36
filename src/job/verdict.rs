//! What one finished attempt says about a site: it got through, it was blocked, it was told
//! to slow down, or the site itself failed. Blocks and successes teach strategy choice,
//! throttles teach pacing, site errors teach neither.

use super::names::named_enum;
use super::{ErrorKind, JobError};

named_enum!(
    /// The class of an attempt's outcome, as the domain memory learns from it.
    Verdict {
        /// 2xx with content and no challenge.
        Success => "success",
        /// 401/403, a challenge or captcha the visitor sees, or an empty or JavaScript-only
        /// shell where content was expected.
        Blocked => "blocked",
        /// 429, or 503 with `Retry-After`.
        Throttled => "throttled",
        /// 404, 5xx, the network: the site failed, whoever asked.
        SiteError => "site_error",
    }
);

impl Verdict {
    /// The verdict on an attempt's outcome; `None` when the outcome says nothing about the
    /// site (the job's own fault, a cancel, the browser crashing, a refused target).
    pub fn of<T>(outcome: &Result<T, JobError>) -> Option<Verdict> {
        let error = match outcome {
            Ok(_) => return Some(Verdict::Success),
            Err(error) => error,
        };
        match error.kind {
            ErrorKind::Blocked => Some(Verdict::Blocked),
            ErrorKind::HttpStatus if is_throttle(error) => Some(Verdict::Throttled),
            ErrorKind::HttpStatus | ErrorKind::Navigation | ErrorKind::Timeout => {
                Some(Verdict::SiteError)
            }
            _ => None,
        }
    }
}

/// 429, or 503 with `Retry-After`: the site asks for less, not for something else.
fn is_throttle(error: &JobError) -> bool {
    match error.status_code {
        Some(429) => true,
        Some(503) => error.retry_after_ms.is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<u64>) -> Result<(), JobError> {
        let mut error = JobError::new(ErrorKind::HttpStatus, format!("answered {code}"));
        error.status_code = Some(code);
        error.retry_after_ms = retry_after;
        Err(error)
    }

    #[test]
    fn statuses_are_classified_as_the_issue_says() {
        assert_eq!(Verdict::of(&Ok::<(), JobError>(())), Some(Verdict::Success));
        assert_eq!(Verdict::of(&status(429, None)), Some(Verdict::Throttled));
        assert_eq!(
            Verdict::of(&status(503, Some(1000))),
            Some(Verdict::Throttled)
        );
        assert_eq!(Verdict::of(&status(503, None)), Some(Verdict::SiteError));
        assert_eq!(Verdict::of(&status(404, None)), Some(Verdict::SiteError));
        let blocked: Result<(), _> = Err(JobError::new(ErrorKind::Blocked, "challenge"));
        assert_eq!(Verdict::of(&blocked), Some(Verdict::Blocked));
        let ours: Result<(), _> = Err(JobError::new(ErrorKind::Script, "bad step"));
        assert_eq!(Verdict::of(&ours), None);
    }
}
