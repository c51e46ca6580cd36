//! Who may call what: the key check in front of `/api`, and one extractor per permission,
//! so a handler states what it needs in its signature and cannot forget to check it.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::{self, AUTHORIZATION};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::Problem;
use crate::auth::{Action, Caller};

/// Authenticates every `/api` request and records its [`Caller`] for the handlers.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let credentials = credentials(request.headers());
    match state.auth.caller(credentials.as_deref()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

/// The cookie that holds the key a browser signed in to the dashboard with.
pub const COOKIE: &str = "cp_key";

/// The key a request carries: its `Authorization` header, else the dashboard's cookie (as a
/// bearer header), so the dashboard's own calls to the API are authenticated like any other.
pub fn credentials(headers: &HeaderMap) -> Option<Vec<u8>> {
    if let Some(header) = headers.get(AUTHORIZATION) {
        return Some(header.as_bytes().to_vec());
    }
    cookie(headers).map(|key| format!("Bearer {key}").into_bytes())
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// The caller of a request that passed [`authenticate`], if it may do `action`.
fn permitted(parts: &Parts, action: Action) -> Result<Caller, Problem> {
    let caller = parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
        tracing::error!("a permission was asked for on a route without authentication");
        Problem::internal()
    })?;
    if caller.role.allows(action) {
        Ok(caller)
    } else {
        Err(Problem::forbidden(format!(
            "a {} key cannot do this; it needs a key with the {} role",
            caller.role,
            match action {
                Action::Read => "read",
                Action::Write => "submit",
                Action::Administer => "admin",
            }
        )))
    }
}

macro_rules! permission {
    ($(#[$doc:meta])* $name:ident => $action:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = Problem;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
                permitted(parts, $action).map($name)
            }
        }
    };
}

permission!(
    /// A caller that may read its scope's jobs.
    Reader => Action::Read
);
permission!(
    /// A caller that may submit and change its tenant's jobs.
    Writer => Action::Write
);
permission!(
    /// A caller that operates the service.
    Operator => Action::Administer
);
