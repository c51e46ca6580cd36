//! Scheduling (`run_at`, `delay_ms`), idempotent submission and replay of finished jobs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, on_both_backends};

const LONG: Duration = Duration::from_secs(30);

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

async fn a_scheduled_job_runs_when_due_and_not_before(backend: Backend) {
    let app = TestApp::on(backend).await;
    let run_at = (Utc::now() + chrono::Duration::milliseconds(1500))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let at = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "run_at": run_at}))
        .await;
    let later = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "delay_ms": 1000}))
        .await;
    for job in [&at, &later] {
        assert_eq!(job["state"], "queued");
        let id = job["id"].as_str().expect("id");
        let done = app.wait_terminal(id, LONG).await;
        assert_eq!(done["state"], "succeeded");
        let due = time(&job["run_at"]);
        let started = time(&done["started_at"]);
        assert!(started >= due, "started {started} before {due}");
        assert!(
            started - due < chrono::Duration::seconds(1),
            "started {started}, more than a second after {due}"
        );
    }
    assert_eq!(
        time(&at["run_at"]).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        run_at
    );

    for (body, field) in [
        (json!({"run_at": "tomorrow"}), "run_at"),
        (json!({"delay_ms": -1}), "delay_ms"),
        (
            json!({"run_at": "2026-01-01T00:00:00Z", "delay_ms": 5}),
            "delay_ms",
        ),
    ] {
        let mut body = body;
        body["url"] = json!("https://example.com/");
        let response = app.post_json("/api/v1/jobs", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}

async fn one_idempotency_key_creates_one_job(backend: Backend) {
    let app = TestApp::on(backend).await;
    let body = json!({"url": "https://example.com/", "job_type": "noop", "priority": 2});
    let send = |body: Value, key: &'static str| {
        let request = app
            .client
            .post(app.url("/api/v1/jobs"))
            .header("Idempotency-Key", key)
            .json(&body);
        async move { request.send().await.expect("request") }
    };
    // Concurrent first requests with one key: exactly one job.
    let answers = futures::future::join_all((0..8).map(|_| send(body.clone(), "order-42"))).await;
    let mut ids = Vec::new();
    let mut created = 0;
    for answer in answers {
        let status = answer.status().as_u16();
        let replayed = answer.headers().get("idempotent-replayed").is_some();
        let job: Value = answer.json().await.expect("job");
        match status {
            201 => {
                created += 1;
                assert!(!replayed);
            }
            200 => assert!(replayed),
            other => panic!("unexpected {other}: {job}"),
        }
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(created, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1, "one job for one key: {ids:?}");
    assert_eq!(app.job_rows().await, 1);

    // The same key with another body names the key; a fresh key makes a new job.
    let mut other = body.clone();
    other["priority"] = json!(5);
    let answer = send(other.clone(), "order-42").await;
    assert_eq!(answer.status(), 422);
    let problem: Value = answer.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(send(other, "order-43").await.status(), 201);
    // Key order in the body does not matter.
    let reordered: Value = serde_json::from_str(
        r#"{"priority": 2, "job_type": "noop", "url": "https://example.com/"}"#,
    )
    .expect("json");
    assert_eq!(send(reordered, "order-42").await.status(), 200);
    assert_eq!(app.job_rows().await, 2);
}

async fn a_failed_job_is_replayed_with_a_fresh_budget_and_its_history(backend: Backend) {
    let site = crate::site::Site::start().await;
    let app = TestApp::on(backend).await;
    let job = app
        .submit(&json!({"url": site.url("/flaky/replay?fail=10"), "strategy": "http", "max_attempts": 1}))
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    let failed = app.wait_terminal(&id, LONG).await;
    assert_eq!(failed["state"], "failed");

    let running = app
        .post_json(&format!("/api/v1/jobs/{id}/retry"), &json!({"colour": 1}))
        .await;
    assert_eq!(running.status(), 422);
    let answer = app
        .post_json(
            &format!("/api/v1/jobs/{id}/retry"),
            &json!({"priority": 1, "max_attempts": 2}),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let replayed: Value = answer.json().await.expect("job");
    assert_eq!(replayed["priority"], 1);
    assert_eq!(
        replayed["max_attempts"], 3,
        "one attempt used, two more allowed"
    );
    let done = app.wait_terminal(&id, LONG).await;
    assert_eq!(done["state"], "failed");
    assert_eq!(done["attempt"], 3);
    let kinds = app.event_kinds(&id).await;
    assert_eq!(
        kinds,
        [
            "created",
            "started",
            "failed",
            "retried",
            "started",
            "retrying",
            "dispatched",
            "started",
            "failed"
        ]
    );
    let succeeded = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop"}))
        .await;
    let sid = succeeded["id"].as_str().expect("id");
    app.wait_terminal(sid, LONG).await;
    let conflict = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{sid}/retry")))
        .send()
        .await
        .expect("request");
    assert_eq!(conflict.status(), 409, "a succeeded job is not replayed");
}

on_both_backends!(
    a_scheduled_job_runs_when_due_and_not_before,
    one_idempotency_key_creates_one_job,
    a_failed_job_is_replayed_with_a_fresh_budget_and_its_history,
);
