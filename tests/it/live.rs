//! Following jobs: `?wait=` answers as the job finishes, event streams deliver the timeline
//! live, and a thousand waiting requests cost no database reads while nothing changes.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::common::{Backend, Options, TestApp, eventually};

fn finished_at(job: &Value) -> DateTime<Utc> {
    job["finished_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a finished job has finished_at")
}

async fn wait_answers_as_the_job_finishes(backend: Backend) {
    let app = TestApp::on(backend).await;
    let job = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 700}}))
        .await;
    let id = job["id"].as_str().expect("id");
    let response = app.get(&format!("/api/v1/jobs/{id}?wait=30s")).await;
    let answered = Utc::now();
    assert_eq!(response.status(), 200);
    let job: Value = response.json().await.expect("json");
    assert_eq!(job["state"], "succeeded", "{job}");
    let late = answered - finished_at(&job);
    println!("wait answered {late} after the job finished ({backend:?})");
    assert!(
        late < chrono::Duration::milliseconds(100),
        "answered {late} after the job finished"
    );
    app.stop().await;
}

#[tokio::test]
async fn wait_answers_within_100ms_of_the_job_finishing_on_postgres() {
    wait_answers_as_the_job_finishes(Backend::Postgres).await;
}

#[tokio::test]
async fn wait_answers_within_100ms_of_the_job_finishing_on_sqlite() {
    wait_answers_as_the_job_finishes(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_wait_that_runs_out_answers_the_job_as_it_is() {
    let app = TestApp::spawn().await;
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let job = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "run_at": later}))
        .await;
    let id = job["id"].as_str().expect("id");
    let asked = Instant::now();
    let response = app.get(&format!("/api/v1/jobs/{id}?wait=1s")).await;
    let took = asked.elapsed();
    assert_eq!(response.status(), 200);
    let job: Value = response.json().await.expect("json");
    assert_eq!(job["state"], "queued");
    assert!(took >= Duration::from_secs(1), "answered early: {took:?}");

    for bad in ["wait=61s", "wait=soon", "colour=red"] {
        let response = app.get(&format!("/api/v1/jobs/{id}?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
        let problem: Value = response.json().await.expect("json");
        assert!(problem["errors"][0]["field"].is_string(), "{problem}");
    }
    app.stop().await;
}

/// One Server-Sent Event.
#[derive(Debug, Default, Clone)]
struct Sse {
    id: Option<String>,
    event: String,
    data: String,
}

/// Reads a whole event stream (until the server closes it) as events.
async fn read_stream(response: reqwest::Response) -> Vec<Sse> {
    let mut text = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), body.next())
        .await
        .expect("the stream goes on or ends within 30 s")
    {
        text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let mut event = Sse::default();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    event.id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("event:") {
                    event.event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    event.data.push_str(v.trim());
                }
            }
            // Keep-alive comments carry no event.
            (!event.event.is_empty()).then_some(event)
        })
        .collect()
}

async fn stream_delivers_every_event_in_order(backend: Backend) {
    let app = TestApp::on(backend).await;
    let job = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 300}}))
        .await;
    let id = job["id"].as_str().expect("id");
    let response = app
        .client
        .get(app.url(&format!("/api/v1/jobs/{id}/events")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let streamed = read_stream(response).await;
    let (end, timeline) = streamed.split_last().expect("events, then end");
    assert_eq!(end.event, "end");
    assert_eq!(
        serde_json::from_str::<Value>(&end.data).expect("json")["state"],
        "succeeded"
    );
    let stored: Value = app
        .get(&format!("/api/v1/jobs/{id}/events"))
        .await
        .json()
        .await
        .expect("json");
    let stored: Vec<(String, String)> = stored["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["id"].to_string(),
                e["kind"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let seen: Vec<(String, String)> = timeline
        .iter()
        .map(|e| (e.id.clone().unwrap_or_default(), e.event.clone()))
        .collect();
    assert_eq!(seen, stored, "every event, in order, once");
    assert!(seen.iter().any(|(_, kind)| kind == "succeeded"));

    // A client that reconnects after the last event it saw gets only the end.
    let last = seen.last().map(|e| e.0.clone()).unwrap_or_default();
    let resumed = app
        .client
        .get(app.url(&format!("/api/v1/jobs/{id}/events")))
        .header("accept", "text/event-stream")
        .header("last-event-id", last)
        .send()
        .await
        .expect("stream");
    let resumed = read_stream(resumed).await;
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0].event, "end");
    app.stop().await;
}

#[tokio::test]
async fn the_event_stream_delivers_every_event_in_order_then_closes_on_postgres() {
    stream_delivers_every_event_in_order(Backend::Postgres).await;
}

#[tokio::test]
async fn the_event_stream_delivers_every_event_in_order_then_closes_on_sqlite() {
    stream_delivers_every_event_in_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_thousand_waiting_clients_cost_no_database_queries_while_nothing_changes() {
    // An API-only process: every statement it sends is a request's.
    let app = TestApp::spawn_with(Options {
        workers: 0,
        scheduler: false,
        ..Options::default()
    })
    .await;
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let job = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "run_at": later}))
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    let queries = || app.store.database_use().queries;
    let before = queries();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    // They arrive a hundred at a time, then all wait at once.
    let waiting = app
        .metrics()
        .families()
        .http_in_flight
        .with_label_values(&["/api/v1/jobs/{id}"]);
    let mut waits = Vec::new();
    for batch in 1..=10 {
        for _ in 0..100 {
            let request = client
                .get(app.url(&format!("/api/v1/jobs/{id}?wait=30s")))
                .bearer_auth(&app.key);
            waits.push(tokio::spawn(async move {
                request.send().await.map(|r| r.status())
            }));
        }
        eventually("the batch is in", Duration::from_secs(30), || async {
            (waiting.get() >= batch * 100).then_some(())
        })
        .await;
    }
    assert_eq!(waiting.get(), 1000);
    let arrived = queries() - before;
    println!("1,000 waits arrived with {arrived} queries (first reads shared)");
    let mut last = queries();
    let mut stable_since = Instant::now();
    eventually("the first reads are done", Duration::from_secs(30), || {
        let now = queries();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        let stable = stable_since.elapsed() >= Duration::from_millis(500);
        async move { stable.then_some(()) }
    })
    .await;
    let waiting_from = queries();
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during = queries() - waiting_from;
    assert_eq!(
        during, 0,
        "{during} queries in 3 s while 1,000 clients waited"
    );

    // A change wakes them all, and they share one read of the job.
    let response = app
        .post_json(&format!("/api/v1/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let cancelled = queries();
    for wait in waits {
        let status = wait.await.expect("task").expect("answer");
        assert_eq!(status, 200);
    }
    let woken = queries() - cancelled;
    println!("1,000 woken waits answered with {woken} queries");
    assert!(woken <= 2, "{woken} queries to answer 1,000 woken clients");
    app.stop().await;
}
