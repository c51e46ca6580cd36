//! The dashboard at `/ui`: server-rendered pages (askama templates, which escape everything)
//! and one small script, under a strict Content-Security-Policy. Pages read the store
//! directly; the cancel and retry buttons call the API. A browser signs in once with a key,
//! kept in an HttpOnly, SameSite=Strict cookie that the API accepts in place of the header.

mod pages;
mod profiles;
mod views;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::api::AppState;
use crate::api::auth::credentials;
use crate::auth::{AuthMode, Caller};

/// Only this site's own script and styles; no inline script, no frames, no plugins. Even a
/// value that escaped escaping could not run.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SCRIPT: &str = include_str!("assets/app.js");
const STYLES: &str = include_str!("assets/app.css");

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(pages::home))
        .route("/ui/jobs", get(pages::jobs))
        .route("/ui/jobs/{id}", get(pages::job))
        .route("/ui/queue", get(pages::queue))
        .route("/ui/profiles", get(profiles::list))
        .route("/ui/profiles/{name}", get(profiles::one))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/assets/app.js", get(script))
        .route("/ui/assets/app.css", get(styles))
        .layer(axum::middleware::from_fn(harden))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn styles() -> Response {
    asset("text/css; charset=utf-8", STYLES)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "max-age=300")],
        body,
    )
        .into_response()
}

/// Adds the headers every dashboard response carries.
async fn harden(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Whether the browser reached us over https (directly or through a proxy that says so).
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Who is looking at a page: a caller with at least the read role. Without one, the browser
/// is sent to sign in.
pub struct Viewer {
    caller: Caller,
    /// Whether a key signed in (a "sign out" makes sense).
    signed_in: bool,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        let credentials = credentials(&parts.headers);
        let to_login = || (StatusCode::SEE_OTHER, [(LOCATION, "/ui/login")]).into_response();
        match state.auth.caller(credentials.as_deref()).await {
            Ok(caller) if caller.role.allows(crate::auth::Action::Read) => Ok(Viewer {
                caller,
                signed_in: state.auth.mode() == AuthMode::Keys,
            }),
            _ => Err(to_login()),
        }
    }
}

/// Renders `page` with `status`.
fn render(status: StatusCode, page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(body) => (status, axum::response::Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a dashboard page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}
