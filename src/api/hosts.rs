//! Where requests may come from: the `Host` they name (so a DNS-rebinding page cannot reach
//! an API bound to loopback) and, for changes, the page that sent them (so a cross-site form
//! or `fetch` cannot cancel or submit jobs on an open API).

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::Problem;
use crate::job::FieldError;

/// The host names the API answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    /// Any name (an API bound to every interface, behind names it cannot know).
    Any,
    /// Only these names (`*.example.com` matches every subdomain).
    Only(Vec<String>),
}

impl AllowedHosts {
    /// `ALLOWED_HOSTS` when set; else, on a loopback address, the address and `localhost`
    /// only; else any name.
    pub fn new(configured: &[String], bind: SocketAddr) -> AllowedHosts {
        if configured.iter().any(|h| h.trim() == "*") {
            return AllowedHosts::Any;
        }
        if !configured.is_empty() {
            return AllowedHosts::Only(configured.iter().map(|h| host_name(h.trim())).collect());
        }
        if bind.ip().is_loopback() {
            let address = host_name(&bind.ip().to_string());
            let mut names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            if !names.contains(&address) {
                names.push(address);
            }
            return AllowedHosts::Only(names);
        }
        AllowedHosts::Any
    }

    /// Whether a `Host` header value names an allowed host.
    pub fn allows(&self, host: &str) -> bool {
        let AllowedHosts::Only(names) = self else {
            return true;
        };
        let host = host_name(host);
        names.iter().any(|name| match name.strip_prefix("*.") {
            Some(parent) => host.ends_with(&format!(".{parent}")),
            None => *name == host,
        })
    }
}

/// The lower-case name of a `Host` value without its port, brackets or trailing dot.
fn host_name(value: &str) -> String {
    let value = value.trim();
    let name = if let Some(rest) = value.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else if value.matches(':').count() == 1 {
        value.split(':').next().unwrap_or_default()
    } else {
        value
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Refuses requests for a host the API does not answer to, and changes sent by another site.
pub async fn check_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if let Some(host) = host
        && !state.allowed_hosts.allows(host)
    {
        return Problem::bad_parameter(
            "Host",
            "host_not_allowed",
            format!("this API does not answer to {host:?}; see ALLOWED_HOSTS"),
        )
        .into_response();
    }
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && let Some(refusal) = cross_site(headers, host) {
        return refusal.into_response();
    }
    next.run(request).await
}

/// A problem when a browser says this change comes from another site.
fn cross_site(headers: &HeaderMap, host: Option<&str>) -> Option<Problem> {
    let refuse = |detail: String| {
        let mut problem = Problem::forbidden(detail);
        problem.errors = vec![FieldError::new(
            "Origin",
            "cross_site",
            "cross-site requests are refused",
        )];
        problem
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        let same = match (authority, host) {
            (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
            _ => false,
        };
        return (!same).then(|| refuse(format!("a page at {origin:?} cannot change jobs here")));
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    matches!(site, Some("cross-site" | "same-site"))
        .then(|| refuse("a page of another site cannot change jobs here".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds_answer_only_to_local_names() {
        let hosts = AllowedHosts::new(&[], "127.0.0.1:8080".parse().expect("addr"));
        for good in [
            "localhost:8080",
            "127.0.0.1:8080",
            "LOCALHOST",
            "[::1]:8080",
            "localhost.",
        ] {
            assert!(hosts.allows(good), "{good}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.nip.io",
            "localhost.evil.example",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        assert_eq!(
            AllowedHosts::new(&[], "0.0.0.0:8080".parse().expect("addr")),
            AllowedHosts::Any
        );
        let named = AllowedHosts::new(
            &["api.example.com".into(), "*.internal".into()],
            "0.0.0.0:8080".parse().expect("addr"),
        );
        assert!(named.allows("api.example.com:443"));
        assert!(named.allows("cp.internal"));
        assert!(!named.allows("internal"));
        assert!(!named.allows("example.com"));
    }
}
