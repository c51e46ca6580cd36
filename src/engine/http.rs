//! The `http` strategy: a plain GET with reqwest, then HTML extraction. Fast; no JavaScript.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{
    ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
    USER_AGENT,
};
use reqwest::redirect;
use serde_json::{Value, json};
use url::Url;

use super::block::{self, Signals};
use super::extract::{self, truncate_to};
use crate::job::browser_spec::CookieSpec;
use crate::job::spec::SelectorSpec;
use crate::job::target::{TargetPolicy, TargetRefused};
use crate::job::{ErrorKind, JobError};

/// The most redirects a request follows.
pub const MAX_REDIRECTS: usize = 10;
/// The most body bytes read; the rest is dropped and the result says so.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// How much of an error answer's body is read to recognise challenge pages.
const ERROR_BODY_BYTES: usize = 64 * 1024;
/// The user agent sent unless the job sets one.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "Mozilla/5.0 (compatible; control-plane/",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Resolves host names and refuses those that resolve to non-public addresses, so a name
/// that passed the check at submission cannot be pointed at a private network later.
struct PolicyResolver {
    policy: TargetPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            policy.check_resolved(&host, addrs.iter().copied())?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Options of one `navigate_extract` request.
#[derive(Debug, Clone, Default)]
pub struct NavigateRequest<'a> {
    /// Named selectors for `data`.
    pub selectors: &'a [(String, SelectorSpec)],
    /// Extra request headers.
    pub headers: &'a [(String, String)],
    /// A user agent replacing the default.
    pub user_agent: Option<&'a str>,
    /// Cookies sent with the request.
    pub cookies: &'a [CookieSpec],
    /// A locale sent as `Accept-Language`.
    pub locale: Option<&'a str>,
}

/// Runs `navigate_extract` over plain HTTP.
#[derive(Debug, Clone)]
pub struct HttpExecutor {
    client: reqwest::Client,
    policy: TargetPolicy,
}

impl HttpExecutor {
    /// An executor whose every connection and redirect obeys `policy`.
    pub fn new(policy: TargetPolicy) -> Result<HttpExecutor, reqwest::Error> {
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if !matches!(attempt.url().scheme(), "http" | "https") {
                let scheme = attempt.url().scheme().to_owned();
                return attempt.error(format!("redirect to a {scheme}: url"));
            }
            // Host names are checked by the resolver; IP literals never reach it.
            match policy.check_literal(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .dns_resolver(Arc::new(PolicyResolver { policy }))
            .user_agent(DEFAULT_USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .no_proxy()
            .build()?;
        Ok(HttpExecutor { client, policy })
    }

    /// GETs `url` within `timeout` and extracts the page.
    pub async fn navigate_extract(
        &self,
        url: &str,
        request: &NavigateRequest<'_>,
        timeout: Duration,
    ) -> Result<Value, JobError> {
        let url = Url::parse(url)
            .map_err(|e| JobError::new(ErrorKind::InvalidPayload, format!("bad url: {e}")))?;
        self.policy
            .check_literal(&url)
            .map_err(|refused| refused_error(&refused))?;

        let mut headers = HeaderMap::new();
        for (name, value) in request.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        if let Some(ua) = request
            .user_agent
            .and_then(|ua| HeaderValue::from_str(ua).ok())
        {
            headers.insert(USER_AGENT, ua);
        }

        if !request.cookies.is_empty() {
            let cookie = request
                .cookies
                .iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; ");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                headers.insert(COOKIE, value);
            }
        }
        if let Some(value) = request
            .locale
            .and_then(|l| HeaderValue::from_str(&format!("{l},*;q=0.5")).ok())
        {
            headers.insert(ACCEPT_LANGUAGE, value);
        }

        let started = Instant::now();
        let mut response = self
            .client
            .get(url.clone())
            .headers(headers)
            .timeout(timeout)
            .send()
            .await
            .map_err(request_error)?;

        let status = response.status();
        let final_url = response.url().clone();
        if status.is_client_error() || status.is_server_error() {
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header(RETRY_AFTER);
            let cf_mitigated = header(HeaderName::from_static("cf-mitigated"));
            // Read a little of the body: challenge pages say what they are.
            let mut body = Vec::new();
            while body.len() < ERROR_BODY_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&body);
            let signals = Signals {
                status: status.as_u16(),
                retry_after: retry_after.as_deref(),
                cf_mitigated: cf_mitigated.as_deref(),
                body: &text,
                html: true,
                empty: false,
            };
            if let Some(blocked) = block::classify(&signals) {
                return Err(blocked);
            }
            let retryable = status.as_u16() == 429 || status.is_server_error();
            let mut error = JobError::new(
                ErrorKind::HttpStatus,
                format!("{final_url} answered {status}"),
            )
            .retryable(retryable);
            error.status_code = Some(status.as_u16());
            error.retry_after_ms = retry_after.as_deref().and_then(block::retry_after_ms);
            return Err(error);
        }

        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        let mut body_truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            let room = MAX_BODY_BYTES - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                body_truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let fetched_ms = started.elapsed().as_millis() as u64;
        let bytes = body.len();
        let text = decode(&body, content_type.as_deref());
        let selectors = request.selectors.to_vec();
        let base = final_url.clone();
        let kind = content_kind(content_type.as_deref(), &text);

        let extracted = tokio::task::spawn_blocking(move || match kind {
            ContentKind::Html => Some(extract::extract(&text, &base, &selectors)),
            ContentKind::Text => {
                let mut text = extract::collapse_whitespace(&text);
                let text_truncated = truncate_to(&mut text, extract::MAX_TEXT_BYTES);
                Some(extract::Extracted {
                    title: None,
                    description: None,
                    canonical: None,
                    links: Vec::new(),
                    links_truncated: false,
                    text,
                    text_truncated,
                    data: selectors
                        .iter()
                        .map(|(n, _)| (n.clone(), Value::Null))
                        .collect(),
                })
            }
            ContentKind::Binary => None,
        })
        .await
        .map_err(|e| JobError::new(ErrorKind::Internal, format!("extraction panicked: {e}")))?;

        let mut result = json!({
            "status_code": status.as_u16(),
            "final_url": final_url.as_str(),
            "content_type": content_type,
            "bytes": bytes,
            "body_truncated": body_truncated,
            "fetch_ms": fetched_ms,
        });
        if let Some(extracted) = &extracted {
            let signals = Signals {
                status: status.as_u16(),
                retry_after: None,
                cf_mitigated: None,
                body: &String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_BYTES)]),
                html: matches!(kind, ContentKind::Html),
                empty: extracted.title.is_none()
                    && extracted.text.is_empty()
                    && extracted.links.is_empty(),
            };
            if let Some(blocked) = block::classify(&signals) {
                return Err(blocked);
            }
        }
        if let (Some(extracted), Value::Object(map)) = (extracted, &mut result) {
            map.insert("title".into(), json!(extracted.title));
            map.insert("description".into(), json!(extracted.description));
            map.insert("canonical".into(), json!(extracted.canonical));
            map.insert("links".into(), json!(extracted.links));
            map.insert("links_truncated".into(), json!(extracted.links_truncated));
            map.insert("text".into(), json!(extracted.text));
            map.insert("text_truncated".into(), json!(extracted.text_truncated));
            map.insert("data".into(), Value::Object(extracted.data));
        }
        Ok(result)
    }
}

#[derive(Debug, Clone, Copy)]
enum ContentKind {
    Html,
    Text,
    Binary,
}

fn content_kind(content_type: Option<&str>, body: &str) -> ContentKind {
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some(m) if m.contains("html") || m.ends_with("xml") || m.ends_with("+xml") => {
            ContentKind::Html
        }
        Some(m) if m.starts_with("text/") || m.contains("json") || m.contains("javascript") => {
            ContentKind::Text
        }
        Some(_) => ContentKind::Binary,
        None if body.trim_start().starts_with('<') => ContentKind::Html,
        None => ContentKind::Text,
    }
}

/// Decodes a body by the charset of its content type, else a `<meta charset>`, else UTF-8.
fn decode(body: &[u8], content_type: Option<&str>) -> String {
    let label = content_type
        .and_then(charset_param)
        .or_else(|| sniff_meta_charset(body));
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _, _) = encoding.decode(body);
    text.into_owned()
}

fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn sniff_meta_charset(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(2048)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let rest = head[at..].trim_start_matches(['"', '\'']);
    let label: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!label.is_empty()).then_some(label)
}

fn refused_error(refused: &TargetRefused) -> JobError {
    JobError::new(ErrorKind::TargetPolicy, refused.to_string())
}

/// Classifies a reqwest failure: refused targets, timeouts, or navigation errors.
fn request_error(error: reqwest::Error) -> JobError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<TargetRefused>() {
            return refused_error(refused);
        }
        source = cause.source();
    }
    let detail = error_chain(&error);
    if error.is_timeout() {
        JobError::new(ErrorKind::Timeout, format!("request timed out: {detail}"))
    } else if error.is_redirect() {
        JobError::new(ErrorKind::Navigation, detail).retryable(false)
    } else if error.is_builder() {
        JobError::new(ErrorKind::InvalidPayload, detail)
    } else {
        JobError::new(ErrorKind::Navigation, detail)
    }
}

fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_private_addresses() {
        let strict = PolicyResolver {
            policy: TargetPolicy::new(false),
        };
        let name = "localhost".parse().expect("name");
        let error = match strict.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(error.downcast_ref::<TargetRefused>().is_some(), "{error}");
        let open = PolicyResolver {
            policy: TargetPolicy::new(true),
        };
        let name = "localhost".parse().expect("name");
        let addrs: Vec<SocketAddr> = match open.resolve(name).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => panic!("localhost must resolve: {e}"),
        };
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[test]
    fn charset_comes_from_header_then_meta() {
        let latin1 = b"<meta charset=\"iso-8859-1\"><p>caf\xe9</p>";
        assert!(decode(latin1, Some("text/html")).contains("café"));
        assert!(decode(b"caf\xc3\xa9", Some("text/plain; charset=UTF-8")).contains("café"));
        assert!(decode(b"caf\xe9", Some("text/plain; charset=\"windows-1252\"")).contains("café"));
    }

    #[test]
    fn content_kinds() {
        assert!(matches!(
            content_kind(Some("text/html; charset=utf-8"), ""),
            ContentKind::Html
        ));
        assert!(matches!(
            content_kind(Some("application/json"), ""),
            ContentKind::Text
        ));
        assert!(matches!(
            content_kind(Some("image/png"), ""),
            ContentKind::Binary
        ));
        assert!(matches!(content_kind(None, "  <html>"), ContentKind::Html));
    }
}
