//! Every request's deadline: answered within [`REQUEST_DEADLINE`] (503 with `Retry-After`
//! instead of hanging when a dependency does not answer), plus its wait for one that asks
//! to wait. A submission is the exception that keeps its word: its deadline travels with it
//! ([`Deadline`]) to the write, which starts only before it and whose statements the
//! database ends by it, so its answer is what happened — stored or nothing stored — never a
//! 503 over a commit still running. The cut here is then only a backstop.

use std::time::Duration;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::live;
use super::problem::Problem;

/// The longest a request may take before it is answered 503 (a dependency hangs).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(15);

/// How long past its deadline a submission's answer may wait for the commit of a write its
/// deadline had already ended the statements of (the commit itself is quick).
pub const COMMIT_GRACE: Duration = Duration::from_secs(10);

/// When the request must be answered by; submissions write by it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

/// Answers 503 with Retry-After instead of hanging when a dependency does not answer.
pub async fn deadline(mut request: Request, next: Next) -> Response {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    request.extensions_mut().insert(Deadline(deadline));
    // A request that asks to wait may take its wait on top.
    let waits = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("wait=")));
    let submits = is_submission(&request);
    let limit = if waits {
        REQUEST_DEADLINE + live::MAX_WAIT
    } else if submits {
        REQUEST_DEADLINE + COMMIT_GRACE
    } else {
        REQUEST_DEADLINE
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) if submits => Problem::outcome_unknown(
            "the database stopped answering while the jobs were being committed: they may or may not be stored; \
             retry with the same Idempotency-Key (a key makes a retry safe), or look for them",
        )
        .into_response(),
        Err(_) => Problem::unavailable(format!(
            "no answer within {} s: the database or the queue is not answering",
            REQUEST_DEADLINE.as_secs()
        ))
        .into_response(),
    }
}

/// `POST /api/v1/jobs` and `POST /api/v1/jobs/batch`.
fn is_submission(request: &Request) -> bool {
    request.method() == Method::POST
        && matches!(request.uri().path(), "/api/v1/jobs" | "/api/v1/jobs/batch")
}
