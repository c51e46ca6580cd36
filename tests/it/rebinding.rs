//! DNS rebinding, for real: inside a private network namespace (loopback only) a stand-in
//! public host (93.184.216.34) serves an attack page, 127.0.0.1 serves an internal page, and
//! a small DNS server answers each rebinding name with the public address the first time and
//! 127.0.0.1 afterwards (one name never answers at all). Jobs under the default policy, with
//! `http`, `vanilla` and `stealth`, must never reach the internal page: not by navigation,
//! sub-resource, WebSocket, worker or redirect.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::json;

use crate::common::{Backend, Options, TestApp};

/// The stand-in public host, which exists only inside the namespace.
const PUBLIC: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 34);
const PORT: u16 = 8080;
const SECRET: &str = "INTERNAL SECRET";

/// Runs [`inside`] in a fresh network and mount namespace with its own resolver.
#[test]
fn dns_rebinding_never_reaches_internal_pages() {
    crate::netns::run_inside("rebinding::inside", &[PUBLIC]);
}

/// The attack, run by [`dns_rebinding_never_reaches_internal_pages`] inside its namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs inside the network namespace that dns_rebinding_never_reaches_internal_pages makes"]
async fn inside() {
    crate::netns::assert_inside();
    let dns = Dns::start().await;
    let internal = serve_internal().await;
    serve_public().await;
    let app = TestApp::spawn_with(Options {
        backend: Backend::Sqlite,
        allow_private: false,
        browser: true,
        concurrency: 2,
        ..Options::default()
    })
    .await;

    let mut jobs = Vec::new();
    for strategy in ["http", "vanilla", "stealth"] {
        // Navigation to a name that rebinds, and a redirect to one.
        jobs.push(
            json!({"url": format!("http://nav-{strategy}.rebind.test:{PORT}/"),
                         "strategy": strategy, "max_attempts": 1}),
        );
        jobs.push(
            json!({"url": format!("http://public.test:{PORT}/redirect?to=redirect-{strategy}"),
                         "strategy": strategy, "max_attempts": 1}),
        );
        // A script's `goto` to a name that rebinds (browser strategies only).
        if strategy != "http" {
            // Someone looked the name up before (taking its public answer), as with redirects.
            let name = format!("goto-{strategy}.rebind.test");
            let _ = tokio::net::lookup_host((name.as_str(), PORT)).await;
            jobs.push(json!({"url": format!("http://public.test:{PORT}/"), "job_type": "script",
                             "strategy": strategy, "max_attempts": 1,
                             "payload": {"steps": [{"goto": format!("http://goto-{strategy}.rebind.test:{PORT}/")}]}}));
        }
        // A name that never answers is refused, not let through.
        jobs.push(json!({"url": format!("http://silent.test:{PORT}/"),
                         "strategy": strategy, "max_attempts": 1}));
    }
    for strategy in ["vanilla", "stealth"] {
        // Sub-resources, WebSockets and every kind of worker, by rebinding name and by address.
        jobs.push(
            json!({"url": format!("http://public.test:{PORT}/attack?s={strategy}"),
                         "strategy": strategy, "max_attempts": 1,
                         "payload": {"wait_until": {"selector": "#done"},
                                     "evaluate": "document.querySelector('#done').textContent"}}),
        );
    }
    let mut ids = Vec::new();
    for body in &jobs {
        ids.push(
            app.submit(body).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let mut finished = Vec::new();
    for id in &ids {
        finished.push(app.wait_terminal(id, Duration::from_secs(90)).await);
    }
    for (body, job) in jobs.iter().zip(&finished) {
        assert!(
            !job.to_string().contains(SECRET),
            "{body} reached the internal page: {job}"
        );
        let attack = body["url"].as_str().is_some_and(|u| u.contains("/attack"));
        if attack {
            assert_eq!(
                job["state"], "succeeded",
                "the attack page itself loads: {job}"
            );
        } else {
            assert_eq!(job["state"], "failed", "{body}: {job}");
        }
    }
    assert_eq!(
        internal.hits(),
        0,
        "the internal server was reached: {:?}",
        internal.paths()
    );
    assert!(
        dns.asked("nav-vanilla.rebind.test") >= 1,
        "the DNS server was asked"
    );
    // Nothing but the jobs' own requests left the worker: Chromium looked up no update,
    // search or prefetch hosts of its own.
    let names = dns.names();
    assert!(
        names.iter().all(|name| name.ends_with(".test")),
        "names looked up that no job asked for: {names:?}"
    );
}

/// A DNS server on 127.0.0.1:53: `*.rebind.test` answers the public address the first time
/// and 127.0.0.1 after; `public.test` always answers the public address; `silent.test`
/// never answers; anything else is NXDOMAIN.
struct Dns {
    asked: Arc<Mutex<HashMap<String, u32>>>,
}

impl Dns {
    async fn start() -> Dns {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:53")
            .await
            .expect("bind port 53");
        let asked = Arc::new(Mutex::new(HashMap::new()));
        let counts = Arc::clone(&asked);
        tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            while let Ok((len, peer)) = socket.recv_from(&mut buffer).await {
                if let Some(answer) = answer(&buffer[..len], &counts) {
                    let _ = socket.send_to(&answer, peer).await;
                }
            }
        });
        Dns { asked }
    }

    fn names(&self) -> Vec<String> {
        self.asked
            .lock()
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn asked(&self, name: &str) -> u32 {
        self.asked
            .lock()
            .map_or(0, |a| a.get(name).copied().unwrap_or(0))
    }
}

/// The answer to one query, or `None` to stay silent.
fn answer(query: &[u8], asked: &Mutex<HashMap<String, u32>>) -> Option<Vec<u8>> {
    let (name, end) = question(query)?;
    let qtype = u16::from_be_bytes([query[end], query[end + 1]]);
    if let Ok(mut asked) = asked.lock() {
        asked.entry(name.clone()).or_default();
    }
    if name == "silent.test" {
        return None;
    }
    let address = if name == "public.test" {
        Some(PUBLIC)
    } else if name.ends_with(".rebind.test") {
        let mut asked = asked.lock().ok()?;
        let count = asked.entry(name.clone()).or_default();
        if qtype == 1 {
            *count += 1;
        }
        Some(if *count <= 1 {
            PUBLIC
        } else {
            Ipv4Addr::LOCALHOST
        })
    } else {
        None
    };
    let mut reply = Vec::with_capacity(end + 20);
    reply.extend_from_slice(&query[..2]);
    let rd = query[2] & 1;
    let rcode = if address.is_some() { 0 } else { 3 };
    reply.extend_from_slice(&[0x80 | rd, 0x80 | rcode]);
    let answers = u8::from(address.is_some() && qtype == 1);
    reply.extend_from_slice(&[0, 1, 0, answers, 0, 0, 0, 0]);
    reply.extend_from_slice(&query[12..end + 4]);
    if let (Some(ip), 1) = (address, answers) {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}

/// The question's name and where its type starts.
fn question(query: &[u8]) -> Option<(String, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    query.get(at + 3)?;
    Some((labels.join("."), at))
}

/// The internal server on 127.0.0.1: counts every request, whatever it asks for.
#[derive(Clone, Default)]
struct Internal {
    hits: Arc<AtomicU32>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Internal {
    fn hits(&self) -> u32 {
        self.hits.load(Ordering::SeqCst)
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

async fn serve_internal() -> Internal {
    let internal = Internal::default();
    let seen = internal.clone();
    let router = Router::new().fallback(move |request: Request| {
        let seen = seen.clone();
        async move {
            seen.hits.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut paths) = seen.paths.lock() {
                paths.push(request.uri().to_string());
            }
            (
                [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
                Html(format!(
                    "<html><title>{SECRET}</title><body>{SECRET}</body></html>"
                )),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)))
        .await
        .expect("bind the internal server");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    internal
}

/// The attack page: it tries the internal server every way a page can, by rebinding names
/// and by address, then writes what each attempt saw into `#done`.
const ATTACK: &str = r#"<!doctype html><html><head><title>attack</title></head><body>
<img src="http://img-S.rebind.test:8080/img">
<script>
const s = new URLSearchParams(location.search).get('s');
const within = (p) => Promise.race([p, new Promise(r => setTimeout(() => r('timeout'), 4000))]);
const read = (url) => fetch(url).then(r => r.text()).then(t => t.includes('INTERNAL') ? 'LEAK' : 'ok', () => 'refused');
const socket = (url) => new Promise(r => { try { const w = new WebSocket(url); w.onopen = () => r('LEAK'); w.onerror = () => r('refused'); } catch (e) { r('refused'); } });
const code = (url) => `fetch(${JSON.stringify(url)}).then(r => r.text()).then(t => postMessage(t.includes('INTERNAL') ? 'LEAK' : 'ok'), () => postMessage('refused'))`;
const worker = (url) => new Promise(r => { const w = new Worker(URL.createObjectURL(new Blob([code(url)]))); w.onmessage = e => r(e.data); w.onerror = () => r('refused'); });
const shared = (url) => new Promise(r => { const w = new SharedWorker(URL.createObjectURL(new Blob([`onconnect = e => { const port = e.ports[0]; const postMessage = m => port.postMessage(m); ${code(url)} }`]))); w.port.onmessage = e => r(e.data); w.onerror = () => r('refused'); });
Promise.all([
  within(read(`http://fetch-${s}.rebind.test:8080/fetch`)),
  within(read('http://127.0.0.1:8080/fetch')),
  within(socket(`ws://ws-${s}.rebind.test:8080/ws`)),
  within(socket('ws://127.0.0.1:8080/ws')),
  within(worker(`http://worker-${s}.rebind.test:8080/worker`)),
  within(worker('http://127.0.0.1:8080/worker')),
  within(shared(`http://shared-${s}.rebind.test:8080/shared`)),
  within(shared('http://127.0.0.1:8080/shared')),
]).then(results => {
  const done = document.createElement('p');
  done.id = 'done';
  done.textContent = results.join(',');
  document.body.append(done);
});
</script></body></html>"#;

async fn serve_public() {
    let router = Router::new()
        .route(
            "/",
            get(|| async { Html("<html><title>public</title><body>public</body></html>") }),
        )
        .route(
            "/attack",
            get(|request: Request| async move {
                let s = request
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("s="))
                    .unwrap_or("x")
                    .to_owned();
                Html(ATTACK.replace("img-S", &format!("img-{s}")))
            }),
        )
        .route(
            "/redirect",
            get(|request: Request| async move {
                let to = request
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("to="))
                    .unwrap_or("r")
                    .to_owned();
                let name = format!("{to}.rebind.test");
                // The attacker's own look-up takes the public answer: whoever resolves the
                // name next (the client following the redirect) gets 127.0.0.1.
                let _ = tokio::net::lookup_host((name.as_str(), PORT)).await;
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("http://{name}:{PORT}/"))],
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((PUBLIC, PORT)))
        .await
        .expect("bind the public server");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
}
