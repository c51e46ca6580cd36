//! The fixture web site the tests point jobs at, served on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

/// A page 30,000 pixels wide.
const WIDE: &str = r#"<html><body style="margin:0"><div style="width:30000px;height:200px;background:linear-gradient(90deg,red,blue)">wide</div></body></html>"#;
/// A page 3,000,000 pixels tall: thousands of PDF pages.
const TALL: &str =
    r#"<html><body style="margin:0"><div style="height:3000000px">tall</div></body></html>"#;
/// A text whose characters include NUL (HTML parsers drop them; plain text keeps them).
const NUL_TEXT: &str = "before\u{0}after";

/// 2,000 nested divs of 100 characters each: `all` over `div` repeats each one's text in
/// every ancestor (about 200 MB).
fn nested_page() -> String {
    let depth = 2_000;
    format!(
        "<html><body>{}{}</body></html>",
        format!("<div>{}", "x".repeat(100)).repeat(depth),
        "</div>".repeat(depth)
    )
}

/// The home page: metadata, links and data for selectors.
pub const HOME: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Fixture Shop</title>
  <meta name="description" content="A shop that exists only in tests.">
  <link rel="canonical" href="/home">
  <style>body { font-family: sans-serif }</style>
</head>
<body>
  <h1>Welcome to the <em>Fixture</em> Shop</h1>
  <p class="price" data-currency="EUR">19.99</p>
  <ul>
    <li><a class="product" href="/products/1">First product</a></li>
    <li><a class="product" href="/products/2#reviews">Second product</a></li>
    <li><a class="product" href="https://elsewhere.example/3">Third product</a></li>
    <li><a href="/products/1">First product, again</a></li>
  </ul>
  <script>document.title = "changed by script";</script>
</body>
</html>"#;

#[derive(Clone, Default)]
struct Counters(Arc<Mutex<HashMap<String, u32>>>);

impl Counters {
    fn hit(&self, key: &str) -> u32 {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = map.entry(key.to_owned()).or_default();
        *count += 1;
        *count
    }
}

/// A running fixture site.
pub struct Site {
    /// Its base URL (`http://127.0.0.1:<port>`).
    pub base: String,
    counters: Counters,
}

impl Site {
    /// Serves the site on a random port until the test ends.
    pub async fn start() -> Site {
        Site::serve(None).await
    }

    /// Serves the site with the botd bundle at `/botd/botd.esm.js`.
    pub async fn start_with_botd(bundle: &'static [u8]) -> Site {
        Site::serve(Some(bundle)).await
    }

    async fn serve(botd: Option<&'static [u8]>) -> Site {
        let counters = Counters::default();
        let router = Router::new()
            .route("/", get(|| async { Html(HOME) }))
            .route("/products/{n}", get(product))
            .route("/flaky/{key}", get(flaky))
            .route("/status/{code}", get(status))
            .route("/slow", get(slow))
            .route("/redirect/{n}", get(redirect))
            .route("/late", get(|| async { Html(LATE) }))
            .route("/long", get(|| async { Html(long_page()) }))
            .route("/captcha", get(|| async { Html(CAPTCHA) }))
            .route("/challenge", get(challenge))
            .route(
                "/empty",
                get(|| async { Html("<html><head></head><body></body></html>") }),
            )
            .route("/form", get(|| async { Html(FORM) }))
            .route("/dialogs", get(|| async { Html(DIALOGS) }))
            .route("/hostile/wide", get(|| async { Html(WIDE) }))
            .route("/hostile/tall", get(|| async { Html(TALL) }))
            .route("/hostile/nested", get(|| async { Html(nested_page()) }))
            .route("/hostile/markup", get(|| async { Html(MARKUP) }))
            .route(
                "/hostile/nul",
                get(|| async { ([(header::CONTENT_TYPE, "text/plain")], NUL_TEXT) }),
            )
            .route(
                "/hostile/to-file",
                get(|| async {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, "file:///etc/passwd")],
                    )
                }),
            )
            .route("/form/result", get(form_result))
            .route("/cookies", get(cookies))
            .route("/echo", get(echo))
            .route("/consistency", get(|| async { Html(CONSISTENCY) }))
            .route(
                "/consistency/frame",
                get(|| async { Html(CONSISTENCY_FRAME) }),
            )
            .route(
                "/consistency/probe.js",
                get(|| async { javascript(CONSISTENCY_PROBE) }),
            )
            .route(
                "/consistency/worker.js",
                get(|| async {
                    javascript("importScripts('/consistency/probe.js'); postMessage(probe());")
                }),
            )
            .route(
                "/consistency/shared.js",
                get(|| async {
                    javascript("importScripts('/consistency/probe.js'); onconnect = e => e.ports[0].postMessage(probe());")
                }),
            )
            .route(
                "/consistency-service.js",
                get(|| async { javascript(CONSISTENCY_SERVICE) }),
            )
            .route("/botd", get(|| async { Html(BOTD_PAGE) }))
            .route(
                "/botd/botd.esm.js",
                get(move || async move {
                    match botd {
                        Some(script) => {
                            ([(header::CONTENT_TYPE, "text/javascript")], script).into_response()
                        }
                        None => (StatusCode::NOT_FOUND, "botd was not fetched").into_response(),
                    }
                }),
            )
            .with_state(counters.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture site");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Site { base, counters }
    }

    /// The URL of a path on the site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// How many times a counted path was requested.
    pub fn hits(&self, key: &str) -> u32 {
        let map = self.counters.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).copied().unwrap_or_default()
    }
}

async fn product(Path(n): Path<u32>) -> Html<String> {
    Html(format!(
        "<html><head><title>Product {n}</title></head><body><h1>Product {n}</h1></body></html>"
    ))
}

/// Fails with 503 `fail` times (default 2) per key, then answers 200.
async fn flaky(
    State(counters): State<Counters>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, u32>>,
) -> Response {
    let fail = query.get("fail").copied().unwrap_or(2);
    let hit = counters.hit(&key);
    if hit <= fail {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("try again (hit {hit})"),
        )
            .into_response()
    } else {
        Html(format!(
            "<html><head><title>Recovered after {fail}</title></head><body>ok</body></html>"
        ))
        .into_response()
    }
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
    let mut response = (status, format!("status {code}")).into_response();
    if code == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

async fn slow(Query(query): Query<HashMap<String, u64>>) -> Html<&'static str> {
    let ms = query.get("ms").copied().unwrap_or(5_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Html("<html><head><title>Slow</title></head><body>finally</body></html>")
}

async fn redirect(State(counters): State<Counters>, Path(n): Path<u32>) -> Response {
    counters.hit(&format!("/redirect/{n}"));
    if n == 0 {
        Html("<html><head><title>Landed</title></head><body>end of the chain</body></html>")
            .into_response()
    } else {
        Redirect::to(&format!("/redirect/{}", n - 1)).into_response()
    }
}

/// Content that JavaScript inserts 300 ms after load: the http strategy cannot see it.
pub const LATE: &str = r#"<!doctype html>
<html><head><title>Late content</title></head>
<body>
  <h1>Static heading</h1>
  <script>
    window.addEventListener('load', () => setTimeout(() => {
      const p = document.createElement('p');
      p.id = 'late';
      p.textContent = 'Inserted by JavaScript';
      document.body.appendChild(p);
    }, 300));
  </script>
</body></html>"#;

/// A captcha page answered with 200.
/// A page whose visible text is markup: what a dashboard must show as text, never run.
pub const MARKUP: &str = r#"<!doctype html>
<html><head><title>markup as text</title></head><body>
<h1>&lt;script&gt;window.pwned=1&lt;/script&gt;</h1>
<p>&quot;&gt;&lt;img src=x onerror=&quot;window.pwned=2&quot;&gt;</p>
</body></html>"#;

const CAPTCHA: &str = r#"<!doctype html>
<html><head><title>Verify you are human</title></head>
<body><form><div class="g-recaptcha" data-sitekey="test"></div><button>Continue</button></form></body></html>"#;

/// A form for script jobs: typing a name and submitting it greets the name.
/// A page that opens an alert, a confirm and a prompt as it loads, then shows the answers.
const DIALOGS: &str = r#"<!doctype html>
<html><head><title>Dialogs</title></head>
<body>
  <p id="answers">waiting</p>
  <script>
    alert("hello from the page");
    const confirmed = confirm("really?");
    const answered = prompt("your name?", "nobody");
    document.getElementById("answers").textContent =
      "confirm=" + confirmed + " prompt=" + JSON.stringify(answered);
  </script>
</body></html>"#;

const FORM: &str = r#"<!doctype html>
<html><head><title>Form</title></head>
<body>
  <form action="/form/result" method="get">
    <label>Name <input id="name" name="name" autocomplete="off"></label>
    <button id="submit" type="submit">Send</button>
  </form>
  <div style="height: 3000px"></div>
  <p id="bottom">the end</p>
</body></html>"#;

/// Reports what a detector compares, from the main frame, a same-origin iframe, and a
/// dedicated, a shared and a service worker (`/consistency/probe.js` is the one probe every
/// place runs).
const CONSISTENCY: &str = r#"<!doctype html>
<html><head><title>Consistency</title><script src="/consistency/probe.js"></script></head>
<body>
  <iframe id="frame" src="/consistency/frame"></iframe>
  <pre id="result"></pre>
  <script>
    // Counts who looks for elements: this page never does.
    window.__looks = 0;
    const querySelector = Document.prototype.querySelector;
    Document.prototype.querySelector = function (...args) { window.__looks++; return querySelector.apply(this, args); };
    const within = (ms, promise) => Promise.race([promise, new Promise(r => setTimeout(() => r({ error: 'no answer while ' + stage }), ms))]);
    const dedicated = () => new Promise(resolve => {
      const w = new Worker('/consistency/worker.js');
      w.onmessage = e => resolve(e.data);
    });
    const shared = () => new Promise(resolve => {
      const w = new SharedWorker('/consistency/shared.js');
      w.port.onmessage = e => resolve(e.data);
    });
    // The service worker answers a request of the page it controls with its own probe.
    let stage = 'not started';
    const service = async () => {
      stage = 'registering';
      await navigator.serviceWorker.register('/consistency-service.js');
      stage = 'waiting for an active worker';
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        stage = 'waiting to be controlled';
        await new Promise(r => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
      }
      stage = 'asking';
      return (await fetch('/consistency/from-service')).json();
    };
    window.addEventListener('load', async () => {
      const seen = { main: probe(), frame: document.getElementById('frame').contentWindow.probe() };
      for (const [place, start] of Object.entries({ dedicated, shared, service })) {
        try { seen[place] = await within(30000, start()); } catch (e) { seen[place] = { error: String(e) }; }
      }
      document.getElementById('result').textContent = JSON.stringify(seen);
    });
  </script>
</body></html>"#;

const CONSISTENCY_FRAME: &str = r#"<!doctype html><html><head><script src="/consistency/probe.js"></script></head><body></body></html>"#;

/// The probe: navigator, `Intl`, WebGL (a canvas, or an `OffscreenCanvas` in workers), and
/// in windows the screen and whether replaced functions look native.
const CONSISTENCY_PROBE: &str = r#"
self.probe = () => {
  const seen = {
    ua: navigator.userAgent,
    webdriver: navigator.webdriver === true,
    platform: navigator.platform,
    language: navigator.language,
    languages: navigator.languages.join(','),
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    intl_locale: Intl.DateTimeFormat().resolvedOptions().locale,
    eval_length: eval.toString().length,
    brands: navigator.userAgentData ? navigator.userAgentData.brands.map(b => b.brand + ' ' + b.version).join(', ') : 'none',
  };
  try {
    const canvas = typeof document === 'undefined' ? new OffscreenCanvas(1, 1) : document.createElement('canvas');
    const gl = canvas.getContext('webgl');
    const info = gl && gl.getExtension('WEBGL_debug_renderer_info');
    seen.webgl = info ? gl.getParameter(info.UNMASKED_VENDOR_WEBGL) + ' / ' + gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : 'none';
  } catch (e) { seen.webgl = 'error: ' + e; }
  if (typeof window !== 'undefined') {
    seen.screen = { width: screen.width, height: screen.height, avail_width: screen.availWidth,
      avail_height: screen.availHeight, outer_width: top.outerWidth, outer_height: top.outerHeight,
      inner_width: top.innerWidth, inner_height: top.innerHeight, pixel_ratio: devicePixelRatio };
  }
  // Whether a DevTools client hears this scope's console: it has V8 format each logged
  // error's stack, which runs a page's `Error.prepareStackTrace`.
  let heard = false;
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = (error, frames) => { heard = true; return prepare ? prepare(error, frames) : String(error); };
  try { console.log(new Error('')); } finally { Error.prepareStackTrace = prepare; }
  seen.console_heard = heard;
  // Whether functions a stealth browser replaces look native here.
  const source = Function.prototype.toString;
  const accessor = (owner, name) => owner && (Object.getOwnPropertyDescriptor(owner, name) || {}).get;
  const functions = {
    'Function.prototype.toString': Function.prototype.toString,
    'WebGLRenderingContext.prototype.getParameter': self.WebGLRenderingContext && WebGLRenderingContext.prototype.getParameter,
  };
  if (typeof window !== 'undefined') {
    functions['navigator.webdriver'] = accessor(Navigator.prototype, 'webdriver');
    functions['Permissions.prototype.query'] = Permissions.prototype.query;
    functions['window.outerWidth'] = accessor(window, 'outerWidth');
  } else {
    functions['navigator.userAgent'] = accessor(self.WorkerNavigator && WorkerNavigator.prototype, 'userAgent');
    functions['navigator.languages'] = accessor(self.WorkerNavigator && WorkerNavigator.prototype, 'languages');
  }
  seen.not_native = Object.entries(functions).filter(([, fn]) => typeof fn === 'function').flatMap(([name, fn]) => {
    const problems = [];
    if (source.call(fn) !== `function ${fn.name}() { [native code] }`) problems.push(`${name}: source ${source.call(fn)}`);
    if (Object.prototype.hasOwnProperty.call(fn, 'prototype')) problems.push(`${name}: has a prototype`);
    if (!fn.name) problems.push(`${name}: no name`);
    return problems;
  });
  return seen;
};
"#;

/// The service worker: takes the page at once and answers `/consistency/from-service`. Served
/// from the root so that its scope (its script's directory) holds `/consistency`.
const CONSISTENCY_SERVICE: &str = r#"importScripts('/consistency/probe.js');
addEventListener('install', () => skipWaiting());
addEventListener('activate', e => e.waitUntil(clients.claim()));
addEventListener('fetch', e => {
  if (e.request.url.endsWith('/from-service')) {
    e.respondWith(new Response(JSON.stringify(probe()), { headers: { 'content-type': 'application/json' } }));
  }
});
"#;

fn javascript(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript")], body).into_response()
}

/// Runs botd (served from the npm package the test fetched) and writes its verdict.
const BOTD_PAGE: &str = r#"<!doctype html>
<html><head><title>botd</title></head>
<body>
  <pre id="result"></pre>
  <script type="module">
    import { load } from '/botd/botd.esm.js';
    try {
      const botd = await load({ monitoring: false });
      const verdict = botd.detect();
      const components = botd.getComponents ? botd.getComponents() : null;
      window.__botd = { verdict, components };
      document.getElementById('result').textContent = JSON.stringify(verdict);
    } catch (e) {
      window.__botd = { error: String(e) };
      document.getElementById('result').textContent = 'error: ' + e;
    }
  </script>
</body></html>"#;

/// A page several viewports tall, for full-page screenshots.
fn long_page() -> String {
    let rows: String = (0..120)
        .map(|i| format!("<p style=\"height: 40px; margin: 0\">Row {i}</p>"))
        .collect();
    format!(
        "<!doctype html><html><head><title>Long</title></head><body style=\"margin:0\">{rows}</body></html>"
    )
}

/// A challenge interstitial answered with 429 and Retry-After.
async fn challenge() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "30")],
        Html("<!doctype html><html><head><title>Just a moment...</title></head><body>Checking your browser before accessing the site.</body></html>"),
    )
        .into_response()
}

async fn form_result(Query(query): Query<HashMap<String, String>>) -> Html<String> {
    let name = query.get("name").cloned().unwrap_or_default();
    let name = name.replace('<', "&lt;").replace('>', "&gt;");
    Html(format!(
        "<html><head><title>Greeting</title></head><body><p id=\"greeting\">Hello, {name}</p></body></html>"
    ))
}

/// Shows the cookies the request carried, and sets one of its own.
async fn cookies(headers: axum::http::HeaderMap) -> Response {
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (
        [(header::SET_COOKIE, "session=from-the-site; Path=/")],
        Html(format!(
            "<html><head><title>Cookies</title></head><body><pre id=\"cookies\">[{cookie}]</pre></body></html>"
        )),
    )
        .into_response()
}

/// Echoes request headers as JSON in the page.
async fn echo(headers: axum::http::HeaderMap) -> Html<String> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let body = serde_json::json!({
        "user_agent": get("user-agent"),
        "accept_language": get("accept-language"),
        "x_test": get("x-test"),
    });
    Html(format!(
        "<html><head><title>Echo</title></head><body><pre id=\"echo\">{}</pre></body></html>",
        body.to_string().replace('<', "&lt;")
    ))
}
