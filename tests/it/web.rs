//! The fixture web: one server on 127.0.0.1 answering many host names (the apps map them
//! with `RESOLVE`), each defended differently, and recording what reached it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};

/// What the apps under test need to reach every fixture host.
pub const RESOLVE: &str = "*.test=127.0.0.1";

/// Content, with a script that merely mentions a challenge and a captcha widget: a judge
/// that reads script source would call this page blocked.
const PLAIN: &str = r#"<!doctype html><html><head><title>Plain shop</title>
<script>var notice = "Just a moment..."; var widget = "g-recaptcha"; var x = "cf-chl";</script>
</head><body><h1>Plain shop</h1><p>Everything is in the HTML.</p><a href="/more">More</a></body></html>"#;

/// Nothing without JavaScript.
const SPA: &str = r#"<!doctype html><html><head><title>App</title></head><body><div id="app"></div>
<script>document.getElementById('app').innerHTML = '<h1>Rendered</h1><p>Made by script.</p>';</script>
</body></html>"#;

/// Shows its content only to browsers that do not look automated.
const GATE: &str = r#"<!doctype html><html><head><title>Gate</title></head><body><div id="app"></div>
<script>
var bot = navigator.webdriver || /HeadlessChrome/.test(navigator.userAgent);
document.getElementById('app').innerHTML = bot
  ? '<h1>Access denied</h1><p>Verify you are human to continue.</p>'
  : '<h1>Welcome</h1><p>Real content for real visitors.</p>';
</script></body></html>"#;

/// A challenge interstitial, answered 200 to everyone.
const CHALLENGE: &str = r#"<!doctype html><html><head><title>Just a moment...</title></head>
<body><div class="cf-turnstile"></div><p>Checking your browser before accessing the site.</p></body></html>"#;

/// One request as the site saw it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// When it arrived.
    pub at: Instant,
    /// What it was answered.
    pub status: u16,
}

#[derive(Default)]
struct Host {
    started: Vec<Instant>,
    arrivals: Vec<Arrival>,
    in_flight: u32,
    max_in_flight: u32,
}

/// A host's own limits: above them it answers 429 with `Retry-After: 1`.
#[derive(Debug, Clone, Copy)]
pub struct SiteLimit {
    /// Requests at once.
    pub concurrent: u32,
    /// Requests in any second.
    pub per_second: usize,
    /// Answer the very first request 429, as a limit tripped before the test began.
    pub throttle_first: bool,
}

#[derive(Default)]
struct Shared {
    hosts: Mutex<HashMap<String, Host>>,
    limits: Mutex<HashMap<String, SiteLimit>>,
    flip_blocks_http: AtomicBool,
}

impl Shared {
    fn lock_hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Host>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fixture web.
pub struct Web {
    /// Its port.
    pub port: u16,
    shared: Arc<Shared>,
}

impl Web {
    /// Serves until the test ends.
    pub async fn start() -> Web {
        let shared = Arc::new(Shared::default());
        shared.flip_blocks_http.store(true, Ordering::SeqCst);
        let router = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture web");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Web { port, shared }
    }

    /// The url of `path` on `host`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    /// Sets a host's own limits.
    pub fn limit(&self, host: &str, limit: SiteLimit) {
        let mut limits = self.shared.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits.insert(host.to_owned(), limit);
    }

    /// Whether `flip.test` refuses non-browser clients (it does at first).
    pub fn flip_blocks_http(&self, blocks: bool) {
        self.shared.flip_blocks_http.store(blocks, Ordering::SeqCst);
    }

    /// What reached `host` and was answered, in order of arrival.
    pub fn arrivals(&self, host: &str) -> Vec<Arrival> {
        let mut arrivals = self
            .shared
            .lock_hosts()
            .get(host)
            .map(|h| h.arrivals.clone())
            .unwrap_or_default();
        arrivals.sort_by_key(|a| a.at);
        arrivals
    }

    /// The most requests `host` had in flight at once.
    pub fn max_in_flight(&self, host: &str) -> u32 {
        self.shared
            .lock_hosts()
            .get(host)
            .map_or(0, |h| h.max_in_flight)
    }

    /// Requests in flight at `host` now.
    pub fn in_flight(&self, host: &str) -> u32 {
        self.shared
            .lock_hosts()
            .get(host)
            .map_or(0, |h| h.in_flight)
    }
}

/// The most arrivals within any window of `width`.
pub fn busiest(arrivals: &[Arrival], width: Duration) -> usize {
    let mut most = 0;
    for (i, first) in arrivals.iter().enumerate() {
        let within = arrivals[i..]
            .iter()
            .take_while(|a| a.at.duration_since(first.at) < width)
            .count();
        most = most.max(within);
    }
    most
}

fn looks_like_a_browser(headers: &HeaderMap) -> bool {
    headers.contains_key("upgrade-insecure-requests")
}

fn host_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    host.rsplit_once(':')
        .map_or(host, |(name, _)| name)
        .to_ascii_lowercase()
}

async fn answer(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let host = host_of(&headers);
    let limit = shared
        .limits
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&host)
        .copied();
    let arrived = Instant::now();
    let throttled = {
        let mut hosts = shared.lock_hosts();
        let seen = hosts.entry(host.clone()).or_default();
        seen.in_flight += 1;
        seen.max_in_flight = seen.max_in_flight.max(seen.in_flight);
        let recent = seen
            .started
            .iter()
            .filter(|at| arrived.duration_since(**at) < Duration::from_secs(1))
            .count();
        let first = seen.started.is_empty();
        seen.started.push(arrived);
        limit.is_some_and(|l| {
            (l.throttle_first && first) || seen.in_flight > l.concurrent || recent >= l.per_second
        })
    };
    let response = if throttled {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response()
    } else {
        page(&shared, &host, uri.path(), &headers).await
    };
    let mut hosts = shared.lock_hosts();
    let seen = hosts.entry(host).or_default();
    seen.in_flight -= 1;
    seen.arrivals.push(Arrival {
        at: arrived,
        status: response.status().as_u16(),
    });
    response
}

async fn page(shared: &Shared, host: &str, path: &str, headers: &HeaderMap) -> Response {
    let browser = looks_like_a_browser(headers);
    match host {
        "spa.test" => Html(SPA).into_response(),
        "headless.test" => Html(GATE).into_response(),
        "challenge.test" => Html(CHALLENGE).into_response(),
        "nobots.test" if !browser => (StatusCode::FORBIDDEN, "no robots").into_response(),
        "flip.test" if !browser && shared.flip_blocks_http.load(Ordering::SeqCst) => {
            (StatusCode::FORBIDDEN, "no robots today").into_response()
        }
        _ if path == "/hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Html(PLAIN).into_response()
        }
        _ if path.starts_with("/slow") => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Html(PLAIN).into_response()
        }
        _ => Html(PLAIN).into_response(),
    }
}
