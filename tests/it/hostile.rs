//! The holes an attacker found (issue 10), each shown closed with the attack itself: results
//! and captures that would exhaust memory, text the database cannot store, redirects out of
//! the web.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, Options, TestApp, on_both_backends};
use crate::site::Site;

const LONG: Duration = Duration::from_secs(60);

on_both_backends!(a_page_with_nul_characters_is_recorded);

async fn run(app: &TestApp, body: Value) -> Value {
    let job = app.submit(&body).await;
    let id = job["id"].as_str().expect("id").to_owned();
    app.wait_terminal(&id, LONG).await
}

/// Fails once, for good, with `too_large`.
fn assert_too_large(job: &Value) {
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["kind"], "too_large", "{job}");
    assert_eq!(job["error"]["retryable"], false, "{job}");
    assert_eq!(job["attempt"], 1, "not retried: {job}");
}

async fn a_page_with_nul_characters_is_recorded(backend: Backend) {
    let site = Site::start().await;
    let app = TestApp::on(backend).await;
    let job = run(
        &app,
        json!({"url": site.url("/hostile/nul"), "strategy": "http", "max_attempts": 1}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["text"], "before\u{fffd}after", "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_out_of_the_web_fails_under_http() {
    let site = Site::start().await;
    let app = TestApp::spawn().await;
    let job = run(
        &app,
        json!({"url": site.url("/hostile/to-file"), "strategy": "http", "max_attempts": 1}),
    )
    .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["kind"], "navigation", "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quadratic_selectors_fail_instead_of_growing_without_bound() {
    let site = Site::start().await;
    let app = TestApp::spawn().await;
    let job = run(
        &app,
        json!({"url": site.url("/hostile/nested"), "strategy": "http", "max_attempts": 3,
               "payload": {"selectors": {"all": {"selector": "div", "all": true}}}}),
    )
    .await;
    assert_too_large(&job);
}

fn browser() -> Options {
    Options {
        browser: true,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_evaluate_values_never_leave_the_page() {
    let site = Site::start().await;
    let app = TestApp::spawn_with(browser()).await;
    let job = run(
        &app,
        json!({"url": site.url("/"), "job_type": "script", "max_attempts": 3,
               "payload": {"steps": [{"evaluate": "'x'.repeat(50 * 1024 * 1024)"}]}}),
    )
    .await;
    assert_too_large(&job);
    let small = run(
        &app,
        json!({"url": site.url("/"), "job_type": "script",
               "payload": {"steps": [{"evaluate": "({n: 6 * 7}) // a trailing comment"}]}}),
    )
    .await;
    assert_eq!(small["state"], "succeeded", "{small}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_screenshots_and_pdfs_fail_before_the_browser_paints_them() {
    let site = Site::start().await;
    let app = TestApp::spawn_with(browser()).await;
    let wide = run(
        &app,
        json!({"url": site.url("/hostile/wide"), "job_type": "screenshot", "max_attempts": 3,
               "payload": {"full_page": true}}),
    )
    .await;
    assert_too_large(&wide);
    let tall = run(
        &app,
        json!({"url": site.url("/hostile/tall"), "job_type": "pdf", "max_attempts": 3}),
    )
    .await;
    assert_too_large(&tall);
    // An ordinary page still prints.
    let pdf = run(&app, json!({"url": site.url("/"), "job_type": "pdf"})).await;
    assert_eq!(pdf["state"], "succeeded", "{pdf}");
}

/// A client that sends half its headers and stops (or opens a keep-alive connection and
/// says nothing) is cut off after the header deadline, so slow clients cannot pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut partial = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("write");
    let mut silent = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let mut kept_alive = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    kept_alive
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let deadline = control_plane::app::HEADER_READ_TIMEOUT + Duration::from_secs(20);
    for (name, stream) in [
        ("partial headers", &mut partial),
        ("silent", &mut silent),
        ("idle after a request", &mut kept_alive),
    ] {
        let mut buffer = [0u8; 1024];
        let closed = tokio::time::timeout(deadline, async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{name}: the connection is still open");
    }
    assert_eq!(app.get("/health").await.status(), 200);
}

/// Even with private targets allowed, no job reaches its worker's DevTools endpoint (from
/// there a page could list every job's url and close other tenants' pages) nor the service's
/// own API, on any engine and in any spelling of this machine's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_own_ports_are_out_of_reach_in_every_spelling_even_with_private_targets() {
    let app = TestApp::spawn_with(browser()).await;
    assert!(
        Options::default().allow_private,
        "the harness allows private targets"
    );
    let pool = app.pool.as_ref().expect("a browser pool");
    let devtools = pool
        .devtools_ports()
        .await
        .into_iter()
        .find(|port| std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok())
        .expect("a live DevTools port");
    let api: u16 = app
        .base
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the API's port");
    let spellings = [
        "127.0.0.1",
        "localhost",
        "127.1.2.3",
        "0.0.0.0",
        "[::]",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::127.0.0.1]",
        "[::ffff:0.0.0.0]",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
    ];
    let mut jobs = Vec::new();
    for (port, path) in [(devtools, "/json/list"), (api, "/api/v1/jobs")] {
        for host in spellings {
            for strategy in ["http", "vanilla", "stealth"] {
                let url = format!("http://{host}:{port}{path}");
                let body = json!({"url": url, "strategy": strategy, "max_attempts": 1});
                let id = app.submit(&body).await["id"]
                    .as_str()
                    .expect("an id")
                    .to_owned();
                jobs.push((id, url, strategy));
            }
        }
    }
    for (id, url, strategy) in jobs {
        let job = app.wait_terminal(&id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "failed", "{url} ({strategy}): {job}");
        assert_eq!(
            job["error"]["kind"], "target_policy",
            "{url} ({strategy}): {job}"
        );
        assert!(!job.to_string().contains("webSocketDebuggerUrl"), "{job}");
    }
    // The browsers are still there, and every other tenant's page with them.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", devtools)).is_ok(),
        "the DevTools endpoint was closed"
    );
}

/// A client that stops in the middle of its body is told 408 (it was slow), not 503 (the
/// database was blamed), and the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"url\": ",
        app.key
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let deadline = control_plane::api::body::BODY_READ_TIMEOUT + Duration::from_secs(20);
    let read = tokio::time::timeout(deadline, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer and the connection is still open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(app.db.scalar("SELECT count(*) FROM jobs").await, 0);
}

/// A retry is a request to run the job: a cancelled job that was scheduled for tomorrow runs
/// now when retried, not at its old `run_at` (the README says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_cancelled_scheduled_job_runs_it_now() {
    let app = TestApp::spawn().await;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let job = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "run_at": tomorrow.to_rfc3339()}))
        .await;
    let id = job["id"].as_str().expect("id");
    let cancelled = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{id}/cancel")))
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.status(), 200);
    let retried = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{id}/retry")))
        .send()
        .await
        .expect("retry");
    assert_eq!(retried.status(), 200);
    let done = app.wait_terminal(id, LONG).await;
    assert_eq!(done["state"], "succeeded", "{done}");
}
