//! Leases, fencing and remote cancel: liveness comes from the lease a worker renews, never
//! from how long a job has run; a cancelled job's executor stops wherever it runs.

use std::time::Duration;

use serde_json::json;

use crate::common::{Backend, Options, TestApp, eventually, on_both_backends};

const LONG: Duration = Duration::from_secs(60);

fn short_leases(backend: Backend, workers: usize) -> Options {
    Options {
        backend,
        workers,
        concurrency: 1,
        lease: Duration::from_secs(3),
        ..Options::default()
    }
}

async fn a_job_longer_than_its_lease_is_never_taken_away(backend: Backend) {
    let app = TestApp::spawn_with(short_leases(backend, 2)).await;
    let job = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 8000}}))
        .await;
    let id = job["id"].as_str().expect("id");
    let done = app.wait_terminal(id, LONG).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempt"], 1, "the running job was taken away: {done}");
    let kinds = app.event_kinds(id).await;
    assert_eq!(kinds, ["created", "started", "succeeded"]);
}

async fn a_dead_workers_job_is_reclaimed_after_its_lease_and_succeeds_once(backend: Backend) {
    let mut app = TestApp::spawn_with(short_leases(backend, 0)).await;
    let doomed = app.start_mortal_worker(1);
    let job = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 2000}}))
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    app.wait_for(&id, LONG, |job| job["state"] == "running")
        .await;
    doomed.abort();
    let _ = doomed.await;
    app.start_worker(1);
    let done = app.wait_terminal(&id, LONG).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempt"], 2);
    let kinds = app.event_kinds(&id).await;
    assert_eq!(
        kinds,
        [
            "created",
            "started",
            "lease_expired",
            "dispatched",
            "started",
            "succeeded"
        ]
    );
}

async fn cancelling_a_running_job_stops_its_executor_at_once(backend: Backend) {
    let app = TestApp::spawn_with(Options {
        backend,
        concurrency: 1,
        ..Options::default()
    })
    .await;
    let long = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 60000}}))
        .await;
    let id = long["id"].as_str().expect("id").to_owned();
    app.wait_for(&id, LONG, |job| job["state"] == "running")
        .await;
    // Queue the next job first: the only slot frees as soon as the executor stops.
    let next = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop"}))
        .await;
    let next_id = next["id"].as_str().expect("id");
    let cancelled_at = chrono::Utc::now();
    let response = app
        .post_json(&format!("/api/v1/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let done = app.wait_terminal(next_id, Duration::from_secs(10)).await;
    assert_eq!(done["state"], "succeeded");
    let started =
        chrono::DateTime::parse_from_rfc3339(done["started_at"].as_str().expect("started"))
            .expect("time");
    let reached = started.with_timezone(&chrono::Utc) - cancelled_at;
    assert!(
        reached < chrono::Duration::seconds(1),
        "the cancel took {reached} to stop the executor"
    );
    let cancelled = app.job(&id).await;
    assert_eq!(cancelled["state"], "cancelled");
    let kinds = app.event_kinds(&id).await;
    assert_eq!(
        kinds,
        ["created", "started", "cancelled"],
        "nothing recorded after the cancel"
    );
}

on_both_backends!(
    a_job_longer_than_its_lease_is_never_taken_away,
    a_dead_workers_job_is_reclaimed_after_its_lease_and_succeeds_once,
    cancelling_a_running_job_stops_its_executor_at_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_browser_job_disposes_its_context() {
    let site = crate::site::Site::start().await;
    let app = TestApp::spawn_with(Options {
        browser: true,
        ..Options::default()
    })
    .await;
    let job = app
        .submit(&json!({"url": site.url("/slow?ms=30000"), "strategy": "vanilla"}))
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    app.wait_for(&id, LONG, |job| job["state"] == "running")
        .await;
    let pool = app.pool.clone().expect("pool");
    eventually("the page to open", LONG, || async {
        (pool.stats().contexts == 1).then_some(())
    })
    .await;
    let response = app
        .post_json(&format!("/api/v1/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    eventually(
        "the context to be disposed",
        Duration::from_secs(5),
        || async { (pool.stats().contexts == 0).then_some(()) },
    )
    .await;
    assert_eq!(app.job(&id).await["state"], "cancelled");
}
