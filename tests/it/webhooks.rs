//! Webhooks: signed the Standard Webhooks way, retried after failures, delivered once, and
//! not lost when the process is killed between failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::cli::{Process, fetch_json, submit, wait_healthy};
use crate::common::{Backend, Options, TestApp, TestDatabase, TestPrefix, eventually, redis_url};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver saw of one message (one `webhook-id`).
#[derive(Debug, Default, Clone)]
struct Seen {
    failed: u32,
    delivered: u32,
    bad_signatures: u32,
    job_id: String,
}

/// What the receiver saw, by `webhook-id`.
type Messages = Arc<Mutex<HashMap<String, Seen>>>;

/// A receiver that answers 500 to the first `failures` requests of each message, then 204,
/// checking every signature with the secret (its own HMAC, not the server's code).
struct Receiver {
    url: String,
    seen: Messages,
}

impl Receiver {
    async fn start(failures: u32) -> Receiver {
        let seen: Messages = Arc::default();
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state((seen.clone(), failures));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").values().cloned().collect()
    }
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let key = STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac");
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let fresh = header("webhook-timestamp")
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
    fresh
        && header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected)
}

async fn receive(
    State((seen, failures)): State<(Messages, u32)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let job: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut seen = seen.lock().expect("lock");
    let entry = seen.entry(id).or_default();
    entry.job_id = job["data"]["id"].as_str().unwrap_or_default().to_owned();
    if !verify(&headers, &body) {
        entry.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if entry.failed < failures {
        entry.failed += 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    entry.delivered += 1;
    StatusCode::NO_CONTENT
}

fn noop_with_callback(url: &str) -> Value {
    json!({"url": "https://example.com/", "job_type": "noop", "callback": {"url": url}})
}

#[tokio::test]
async fn each_job_is_delivered_once_signed_after_two_failures_on_postgres() {
    delivered_once_after_two_failures(Backend::Postgres).await;
}

#[tokio::test]
async fn each_job_is_delivered_once_signed_after_two_failures_on_sqlite() {
    delivered_once_after_two_failures(Backend::Sqlite).await;
}

async fn delivered_once_after_two_failures(backend: Backend) {
    let receiver = Receiver::start(2).await;
    let app = TestApp::spawn_with(Options {
        backend,
        webhook_secret: Some(SECRET.to_owned()),
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let job = app.submit(&noop_with_callback(&receiver.url)).await;
        assert_eq!(job["callback"]["url"], receiver.url.as_str());
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        eventually(
            "the delivery is recorded",
            Duration::from_secs(30),
            || async {
                let kinds = app.event_kinds(id).await;
                let events: Value = app
                    .get(&format!("/api/v1/jobs/{id}/events"))
                    .await
                    .json()
                    .await
                    .ok()?;
                let outcomes: Vec<String> = events["events"]
                    .as_array()?
                    .iter()
                    .filter(|e| e["kind"] == "webhook")
                    .map(|e| e["detail"]["outcome"].as_str().unwrap_or("").to_owned())
                    .collect();
                (kinds.contains(&"succeeded".to_owned()) && outcomes.last()? == "delivered")
                    .then_some(())
                    .filter(|()| outcomes == ["failed", "failed", "delivered"])
            },
        )
        .await;
    }
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "one message per job: {seen:?}");
    for message in &seen {
        assert!(ids.contains(&message.job_id), "{message:?}");
        assert_eq!(
            (message.failed, message.delivered, message.bad_signatures),
            (2, 1, 0),
            "{message:?}"
        );
    }
    app.stop().await;
}

/// Submits a job with `callback`, asserting a 422; returns the problem.
async fn refused(app: &TestApp, callback: &str) -> Value {
    let response = app
        .post_json("/api/v1/jobs", &noop_with_callback(callback))
        .await;
    assert_eq!(response.status(), 422);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_callback_needs_a_secret_and_a_permitted_target() {
    let unsigned = TestApp::spawn().await;
    let problem = refused(&unsigned, "https://hooks.example.com/x").await;
    assert_eq!(problem["errors"][0]["field"], "callback", "{problem}");
    unsigned.stop().await;

    let strict = TestApp::spawn_with(Options {
        allow_private: false,
        webhook_secret: Some(SECRET.to_owned()),
        ..Options::default()
    })
    .await;
    let problem = refused(&strict, "http://127.0.0.1:9/hook").await;
    assert_eq!(problem["errors"][0]["field"], "callback.url", "{problem}");
    assert_eq!(strict.job_rows().await, 0, "nothing stored");
    strict.stop().await;
}

#[tokio::test]
async fn a_process_killed_between_failures_loses_no_delivery() {
    let receiver = Receiver::start(2).await;
    let (db, prefix) = (TestDatabase::create().await, TestPrefix::new());
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ("BROWSER", "off".to_owned()),
        ("WEBHOOK_SECRET", SECRET.to_owned()),
        ("WEBHOOK_RETRY_BASE", "2s".to_owned()),
    ];
    let client = reqwest::Client::new();
    let mut first = Process::spawn("all", &env);
    wait_healthy(&first, &client).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&client, &first.base, &noop_with_callback(&receiver.url)).await);
    }
    eventually(
        "every job's first delivery fails",
        Duration::from_secs(30),
        || async {
            let seen = receiver.seen();
            (seen.len() == 3 && seen.iter().all(|m| m.failed >= 1)).then_some(())
        },
    )
    .await;
    first.kill_9();
    let failed_before_kill: u32 = receiver.seen().iter().map(|m| m.failed).sum();
    assert!(
        receiver.seen().iter().all(|m| m.delivered == 0),
        "killed between failures"
    );

    let second = Process::spawn("all", &env);
    wait_healthy(&second, &client).await;
    eventually(
        "every job is delivered",
        Duration::from_secs(90),
        || async {
            let seen = receiver.seen();
            seen.iter().all(|m| m.delivered == 1).then_some(())
        },
    )
    .await;
    for id in &ids {
        eventually(
            "the delivery is recorded",
            Duration::from_secs(30),
            || async {
                let events =
                    fetch_json(&client, &format!("{}/api/v1/jobs/{id}/events", second.base))
                        .await?;
                events["events"]
                    .as_array()?
                    .iter()
                    .any(|e| e["kind"] == "webhook" && e["detail"]["outcome"] == "delivered")
                    .then_some(())
            },
        )
        .await;
    }
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for message in &seen {
        assert_eq!((message.failed, message.delivered), (2, 1), "{message:?}");
        assert_eq!(message.bad_signatures, 0);
    }
    println!(
        "killed after {failed_before_kill} failed deliveries; each job delivered once after two"
    );
}
