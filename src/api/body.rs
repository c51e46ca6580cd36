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

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
        format!("the request body exceeds {limit} bytes"),
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

/// How long reading a request body may take: a client that stalls mid-body gets a 408, not
/// a connection held until the request deadline.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn too_slow() -> Problem {
    let mut problem = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-timeout",
        "Request body too slow",
        format!(
            "the request body did not arrive within {} s",
            BODY_READ_TIMEOUT.as_secs()
        ),
    );
    problem.close_connection = true;
    problem
}

/// A request body that is JSON when present; an empty body (with or without a JSON content
/// type) reads as `{}`. Any other content type is refused, so a cross-site form cannot post
/// here. (A JSON `null` is a body that is not an object, refused as the contract says.)
#[derive(Debug, Clone)]
pub struct OptionalJsonBody(pub Value);

/// The largest batch body accepted: a thousand jobs of up to 16 KiB each.
pub const MAX_BATCH_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A batch's body: as [`JsonBody`], up to [`MAX_BATCH_BODY_BYTES`].
#[derive(Debug, Clone)]
pub struct BatchBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        read_json(request, false, MAX_BODY_BYTES)
            .await
            .map(JsonBody)
    }
}

impl<S: Send + Sync> FromRequest<S> for BatchBody {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        read_json(request, false, MAX_BATCH_BODY_BYTES)
            .await
            .map(BatchBody)
    }
}

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        read_json(request, true, MAX_BODY_BYTES)
            .await
            .map(OptionalJsonBody)
    }
}

/// Reads a JSON body: its content type, size, time and syntax, then refuses NULs in it.
async fn read_json(request: Request, optional: bool, limit: usize) -> Result<Value, Problem> {
    let (parts, body) = request.into_parts();
    let mut body = body.into_data_stream();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let bodiless = optional && content_type.is_empty();
    if !bodiless && !is_json(content_type) {
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
    if declared.is_some_and(|len| len > limit) {
        return Err(after_draining(body, too_large(limit)).await);
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or_default());
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(unreadable)?;
            if bytes.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(())
    })
    .await;
    match read {
        Ok(Ok(())) => {}
        Ok(Err(problem)) if problem.status == 413 => {
            return Err(after_draining(body, problem).await);
        }
        Ok(Err(problem)) => return Err(problem),
        Err(_) => return Err(too_slow()),
    }
    let empty = bytes.iter().all(u8::is_ascii_whitespace);
    // Generated clients send `Content-Type: application/json` with no body when a body is
    // optional and omitted; that is the same request as no body at all.
    if optional && empty {
        return Ok(Value::Object(Default::default()));
    }
    if bodiless {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "a request with a body needs Content-Type: application/json",
        ));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    match nul_at(&value, "") {
        Some(field) => Err(Problem::invalid_fields(vec![crate::job::FieldError::new(
            field,
            "nul_character",
            "text must not contain the NUL character (\\u0000)",
        )])),
        None => Ok(value),
    }
}

/// The path of the first string (or object key) holding a NUL, which PostgreSQL cannot store
/// in text or JSON and which no real request needs.
fn nul_at(value: &Value, path: &str) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(text) => text.contains('\0').then(|| path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "\\u0000")))
            } else {
                nul_at(item, &join(key))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{is_json, nul_at};
    use serde_json::json;

    #[test]
    fn nuls_are_found_with_their_path() {
        assert_eq!(nul_at(&json!({"url": "x"}), ""), None);
        assert_eq!(nul_at(&json!({"url": "a\u{0}"}), ""), Some("url".into()));
        assert_eq!(
            nul_at(&json!({"headers": {"x": ["ok", "b\u{0}"]}}), ""),
            Some("headers.x[1]".into())
        );
        assert_eq!(nul_at(&json!({"k\u{0}": 1}), ""), Some("k\\u0000".into()));
    }

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
