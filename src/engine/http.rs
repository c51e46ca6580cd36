//! The http engine: a plain GET with reqwest whose every connection and redirect obeys the
//! target policy. Fast; no JavaScript.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::{Duration, Instant};

use reqwest::header::{
    ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
    USER_AGENT,
};
use reqwest::redirect;
use url::Url;

use super::Attempt;
use super::body::{ContentKind, content_kind, decode};
use super::egress::{Egress, Route};
use super::judge::{self, Signals};
use super::options::CookieSpec;
use super::tally::Tally;
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

/// What one GET sends besides the url.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchRequest<'a> {
    /// Extra request headers.
    pub headers: Option<&'a BTreeMap<String, String>>,
    /// A user agent replacing the default.
    pub user_agent: Option<&'a str>,
    /// Cookies sent with the request.
    pub cookies: &'a [CookieSpec],
    /// A locale sent as `Accept-Language`.
    pub locale: Option<&'a str>,
}

/// A successful answer (status below 400, not an anti-bot page), its body read up to
/// [`MAX_BODY_BYTES`].
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status.
    pub status: u16,
    /// The url that answered, after redirects.
    pub final_url: Url,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Retry-After` header (throttling and maintenance answers).
    pub retry_after: Option<String>,
    /// The `cf-mitigated` header (a CDN's challenge).
    pub cf_mitigated: Option<String>,
    /// The body as read.
    pub body: Vec<u8>,
    /// Whether the body was cut at [`MAX_BODY_BYTES`].
    pub body_truncated: bool,
    /// How long the request took until the body was read.
    pub fetch_ms: u64,
}

impl Fetched {
    /// The body as text, decoded by its declared or sniffed charset.
    pub fn text(&self) -> String {
        decode(&self.body, self.content_type.as_deref())
    }

    /// What kind of content the body is.
    pub fn kind(&self, text: &str) -> ContentKind {
        content_kind(self.content_type.as_deref(), text)
    }
}

/// A reqwest client whose every connection leaves through an egress of its own, which
/// resolves, checks and connects (or relays through the route's upstream proxy).
pub struct Outbound {
    /// The client.
    pub client: reqwest::Client,
    /// The egress its connections go through: it explains refusals.
    pub egress: Egress,
}

impl Outbound {
    /// Opens an egress on `route` and a client from `builder` that uses it for everything.
    pub async fn open(
        policy: TargetPolicy,
        route: Route,
        tally: Tally,
        builder: reqwest::ClientBuilder,
    ) -> Result<Outbound, JobError> {
        let egress = Egress::start(policy, route, tally).await.map_err(|e| {
            JobError::new(
                ErrorKind::Internal,
                format!("cannot start the job's network proxy: {e}"),
            )
        })?;
        let proxy = reqwest::Proxy::all(egress.proxy_server())
            .map_err(|e| JobError::new(ErrorKind::Internal, e.to_string()))?;
        let tls = super::tls::client_config().map_err(|e| JobError::new(ErrorKind::Internal, e))?;
        let client = builder
            .proxy(proxy)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| JobError::new(ErrorKind::Internal, e.to_string()))?;
        Ok(Outbound { client, egress })
    }

    /// Classifies a failure of this client's request: as the egress explains it when it
    /// refused or could not carry the request, else as [`request_error`].
    pub fn error(&self, error: reqwest::Error) -> JobError {
        match self.egress.explain() {
            Some(explained) if !error.is_timeout() => explained,
            _ => request_error(error),
        }
    }
}

/// A client for webhook deliveries, through an egress that lives as long as it does: the
/// target policy's checks, and no redirects (a receiver answers where it was asked; a
/// redirect counts as a failed delivery).
pub async fn webhook_client(policy: TargetPolicy) -> Result<Outbound, JobError> {
    let builder = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .user_agent(concat!(
            "control-plane-webhooks/",
            env!("CARGO_PKG_VERSION")
        ))
        .connect_timeout(Duration::from_secs(10));
    Outbound::open(policy, Route::Direct, Tally::default(), builder).await
}

/// Runs plain GETs, each attempt through an egress of its own.
#[derive(Debug, Clone)]
pub struct HttpClient {
    policy: TargetPolicy,
}

impl HttpClient {
    /// A client whose every connection and redirect obeys `policy`.
    pub fn new(policy: TargetPolicy) -> HttpClient {
        HttpClient { policy }
    }

    /// The client of one attempt: redirects checked, connections through its egress.
    async fn outbound(&self, route: &Route, tally: &Tally) -> Result<Outbound, JobError> {
        let policy = self.policy;
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if !matches!(attempt.url().scheme(), "http" | "https") {
                let scheme = attempt.url().scheme().to_owned();
                return attempt.error(format!("redirect to a {scheme}: url"));
            }
            // Said early and plainly here; the egress would refuse the connection anyway.
            match policy.check_literal(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let builder = reqwest::Client::builder()
            .redirect(redirects)
            .user_agent(DEFAULT_USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0);
        Outbound::open(policy, route.clone(), tally.clone(), builder).await
    }

    /// GETs the attempt's url within its timeout, leaving by its route. Error statuses and
    /// anti-bot answers are errors, judged from the status, headers and the start of the body.
    pub async fn fetch(
        &self,
        attempt: &Attempt,
        request: &FetchRequest<'_>,
    ) -> Result<Fetched, JobError> {
        let timeout = attempt.timeout;
        let url = Url::parse(&attempt.url)
            .map_err(|e| JobError::new(ErrorKind::InvalidPayload, format!("bad url: {e}")))?;
        self.policy
            .check_literal(&url)
            .map_err(|refused| refused_error(&refused))?;
        let started = Instant::now();
        let outbound = self.outbound(&attempt.route, &attempt.tally).await?;
        let response = outbound
            .client
            .get(url)
            .headers(headers(request))
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| outbound.error(e))?;
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            return Err(refusal(response).await);
        }
        let final_url = response.url().clone();
        let content_type = header(&response, CONTENT_TYPE);
        let retry_after = header(&response, reqwest::header::RETRY_AFTER);
        let cf_mitigated = header(&response, HeaderName::from_static("cf-mitigated"));
        let (body, body_truncated) = read_body(response).await.map_err(|e| outbound.error(e))?;
        Ok(Fetched {
            status: status.as_u16(),
            final_url,
            content_type,
            retry_after,
            cf_mitigated,
            body,
            body_truncated,
            fetch_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// The headers a request sends: the job's own, its user agent, cookies and locale.
fn headers(request: &FetchRequest<'_>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in request.headers.into_iter().flatten() {
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
    headers
}

fn header(response: &reqwest::Response, name: HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Judges an error answer from its status, headers and the start of its body (challenge
/// pages say what they are).
async fn refusal(mut response: reqwest::Response) -> JobError {
    let status = response.status().as_u16();
    let url = response.url().to_string();
    let retry_after = header(&response, RETRY_AFTER);
    let cf_mitigated = header(&response, HeaderName::from_static("cf-mitigated"));
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&body);
    let signals = Signals {
        url: &url,
        status,
        retry_after: retry_after.as_deref(),
        cf_mitigated: cf_mitigated.as_deref(),
        body: &text,
        html: true,
        empty: false,
    };
    match judge::judge(&signals) {
        Err(error) => error,
        // Unreachable for a status of 400 or more; said plainly rather than assumed.
        Ok(()) => JobError::new(ErrorKind::HttpStatus, format!("{url} answered {status}")),
    }
}

/// Reads the body up to [`MAX_BODY_BYTES`]; the flag says whether more was sent.
async fn read_body(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

fn refused_error(refused: &TargetRefused) -> JobError {
    JobError::new(ErrorKind::TargetPolicy, refused.to_string())
}

/// Classifies a reqwest failure: refused targets, timeouts, or navigation errors.
pub fn request_error(error: reqwest::Error) -> JobError {
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

/// An error with its causes, each said once.
pub fn error_chain(error: &dyn StdError) -> String {
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
