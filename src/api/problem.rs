//! RFC 9457 problem details: every error the API answers, as `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::job::FieldError;
use crate::queue::QueueError;
use crate::store::StoreError;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECS: u32 = 5;

/// An error answer (RFC 9457): status, a stable type, a human detail and the bad fields.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// The request fields at fault, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds to wait before retrying, sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u32>,
    /// Close the connection after answering (the request body was not read to its end).
    #[serde(skip)]
    pub close_connection: bool,
    /// Ask for a bearer key (`WWW-Authenticate`), on a 401.
    #[serde(skip)]
    pub challenge: bool,
}

impl Problem {
    /// A problem with a status, a type slug and a title.
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            kind: format!("/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            close_connection: false,
            challenge: false,
        }
    }

    /// 422: the body is well-formed JSON but some fields are not acceptable.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-fields",
            "Invalid fields",
            format!("invalid fields: {}", names.join(", ")),
        );
        problem.errors = errors;
        problem
    }

    /// The same 422 about a part of a larger request: each field named under `prefix`
    /// (`jobs[3].`); any other problem as it is.
    pub fn within(self, prefix: &str) -> Self {
        if self.errors.is_empty() || self.status != 422 {
            return self;
        }
        let errors = self
            .errors
            .into_iter()
            .map(|mut error| {
                error.field = format!("{prefix}{}", error.field);
                error
            })
            .collect();
        Problem::invalid_fields(errors)
    }

    /// 400: a path or query parameter is malformed.
    pub fn bad_parameter(field: &str, code: &'static str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut problem = Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid parameter",
            format!("{field}: {detail}"),
        );
        problem.errors = vec![FieldError::new(field, code, detail)];
        problem
    }

    /// 401: no key, or one that is not accepted.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut problem = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        );
        problem.challenge = true;
        problem
    }

    /// 403: the key is good but its role does not allow the request.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 429: a quota is used up; `retry_after` seconds until it is not.
    pub fn quota(detail: impl Into<String>, retry_after: u32) -> Self {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota-exceeded",
            "Quota exceeded",
            detail,
        );
        problem.retry_after = Some(retry_after.max(1));
        problem
    }

    /// 429: too many requests of the caller wait on jobs or stream their events; retry in a
    /// second. The connection is closed, so a refused waiter holds none.
    pub fn too_many_waits(detail: impl Into<String>) -> Self {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-waits",
            "Too many open waits",
            detail,
        );
        problem.retry_after = Some(1);
        problem.close_connection = true;
        problem
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 409: the resource is in a state that forbids the request.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 503: a dependency is unreachable; retry later.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut problem = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        problem.retry_after = Some(RETRY_AFTER_SECS);
        problem
    }

    /// 503: the database stopped answering during a commit: what it stored is unknown.
    pub fn outcome_unknown(detail: impl Into<String>) -> Self {
        let mut problem = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome-unknown",
            "Outcome unknown",
            detail,
        );
        problem.retry_after = Some(RETRY_AFTER_SECS);
        problem
    }

    /// 500: a fault inside control-plane (logged; the detail stays generic).
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "an internal error occurred; it has been logged",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"control-plane\""),
            );
        }
        if self.close_connection {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %error, "database unavailable");
                Problem::unavailable("the database is unavailable; retry later")
            }
            StoreError::TimedOut(detail) => {
                tracing::warn!(error = %detail, "a statement ran out of time");
                Problem::unavailable(detail.context().to_owned())
            }
            other => {
                tracing::error!(error = %other, "store error");
                Problem::internal()
            }
        }
    }
}

impl From<AuthError> for Problem {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Store(store) => Problem::from(store),
            refused => Problem::unauthorized(refused.to_string()),
        }
    }
}

impl From<QueueError> for Problem {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Unavailable(_) => {
                tracing::warn!(error = %error, "queue unavailable");
                Problem::unavailable("the queue is unavailable; retry later")
            }
            other => {
                tracing::error!(error = %other, "queue error");
                Problem::internal()
            }
        }
    }
}
