//! The JSON body extractor: content type, size limit and syntax, each with a precise problem.

use std::error::Error as StdError;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
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

fn too_large() -> Problem {
    let mut problem = Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
        format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
    );
    // The rest of the body is never read, so the connection cannot carry another request.
    problem.close_connection = true;
    problem
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        let headers = request.headers();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_json(content_type) {
            let given = if content_type.is_empty() {
                "none".to_owned()
            } else {
                format!("{content_type:?}")
            };
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!("Content-Type must be application/json (given: {given})"),
            ));
        }
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|e| {
                if is_length_limit(&e) {
                    too_large()
                } else {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "unreadable-body",
                        "Unreadable body",
                        format!("the request body could not be read: {e}"),
                    )
                }
            })?;
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
