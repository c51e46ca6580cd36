//! The JSON body extractor: content type, size limit and syntax, each with a precise problem.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use futures::{Stream, StreamExt};
use serde_json::Value;

use super::problem::Problem;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A request body that is JSON, at most [`MAX_BODY_BYTES`], and well-formed.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Value);

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// How much of an unwanted body is read and thrown away, so that the client receives the
/// answer instead of a reset connection (closing a socket with unread data resets it).
const DRAIN_LIMIT: usize = 8 * MAX_BODY_BYTES;
/// How long throwing away an unwanted body may take.
const DRAIN_TIME: Duration = Duration::from_secs(5);

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
        format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

fn unreadable(error: axum::Error) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "unreadable-body",
        "Unreadable body",
        format!("the request body could not be read: {error}"),
    )
}

/// Reads and discards the rest of a body, then answers `problem`. When the body is too large
/// or too slow to discard, the answer also closes the connection.
async fn after_draining(
    mut body: impl Stream<Item = Result<Bytes, axum::Error>> + Unpin,
    mut problem: Problem,
) -> Problem {
    let drained = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0usize;
        while let Some(chunk) = body.next().await {
            seen += chunk.map_err(drop)?.len();
            if seen > DRAIN_LIMIT {
                return Err(());
            }
        }
        Ok(())
    })
    .await;
    if !matches!(drained, Ok(Ok(()))) {
        problem.close_connection = true;
    }
    problem
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        let (parts, body) = request.into_parts();
        let mut body = body.into_data_stream();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_json(content_type) {
            let given = if content_type.is_empty() {
                "none".to_owned()
            } else {
                format!("{content_type:?}")
            };
            let problem = Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!("Content-Type must be application/json (given: {given})"),
            );
            return Err(after_draining(body, problem).await);
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
            return Err(after_draining(body, too_large()).await);
        }
        let mut bytes = Vec::with_capacity(declared.unwrap_or_default());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(unreadable)?;
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(after_draining(body, too_large()).await);
            }
            bytes.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "Malformed JSON",
                format!("the body is not valid JSON: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
