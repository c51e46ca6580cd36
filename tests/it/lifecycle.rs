//! A job's life: submitted, claimed, executed, retried, settled, cancelled, listed.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, Options, TestApp, eventually, on_both_backends};
use crate::site::Site;

const DEADLINE: Duration = Duration::from_secs(30);

async fn the_documented_body_goes_from_queued_to_succeeded(backend: Backend) {
    let site = Site::start().await;
    let app = TestApp::on(backend).await;
    let body = json!({
        "domain": "127.0.0.1",
        "url": site.url("/"),
        "job_type": "navigate_extract",
        "strategy": "vanilla",
        "priority": 2,
        "payload": {}
    });
    let created = app.submit(&body).await;
    assert_eq!(created["state"], "queued");
    assert_eq!(created["attempt"], 0);
    assert_eq!(created["priority"], 2);
    assert_eq!(created["domain"], "127.0.0.1");
    let id = created["id"].as_str().expect("id");

    let job = app.wait_terminal(id, DEADLINE).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["attempt"], 1);
    let result = &job["result"];
    assert_eq!(result["status_code"], 200);
    // The http strategy sees the served title, not the one a script would set.
    assert_eq!(result["title"], "Fixture Shop");
    assert_eq!(result["executed_with"], "http");
    assert!(
        result["fallback_reason"]
            .as_str()
            .is_some_and(|r| r.contains("http"))
    );
    assert!(job["finished_at"].is_string() && job["started_at"].is_string());
    assert_eq!(
        app.event_kinds(id).await,
        ["created", "started", "succeeded"]
    );
}

async fn navigate_extract_reads_metadata_links_text_and_selectors(backend: Backend) {
    let site = Site::start().await;
    let app = TestApp::on(backend).await;
    let created = app
        .submit(&json!({
            "url": site.url("/"),
            "strategy": "http",
            "payload": {"selectors": {
                "heading": "h1",
                "price": ".price",
                "currency": {"selector": ".price", "attr": "data-currency"},
                "products": {"selector": "a.product", "attr": "href", "all": true},
                "names": {"selector": "a.product", "all": true},
                "absent": ".no-such-thing"
            }}
        }))
        .await;
    let job = app
        .wait_terminal(created["id"].as_str().expect("id"), DEADLINE)
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let result = &job["result"];
    assert_eq!(result["executed_with"], "http");
    assert!(result.get("fallback_reason").is_none());
    assert_eq!(result["title"], "Fixture Shop");
    assert_eq!(result["description"], "A shop that exists only in tests.");
    assert_eq!(result["canonical"], site.url("/home"));
    assert_eq!(
        result["links"],
        json!([
            site.url("/products/1"),
            site.url("/products/2"),
            "https://elsewhere.example/3"
        ])
    );
    let text = result["text"].as_str().expect("text");
    assert!(
        text.starts_with("Welcome to the Fixture Shop 19.99"),
        "{text}"
    );
    assert!(
        !text.contains("document.title"),
        "script source is not visible text: {text}"
    );
    let data = &result["data"];
    assert_eq!(data["heading"], "Welcome to the Fixture Shop");
    assert_eq!(data["price"], "19.99");
    assert_eq!(data["currency"], "EUR");
    assert_eq!(
        data["products"],
        json!([
            "/products/1",
            "/products/2#reviews",
            "https://elsewhere.example/3"
        ])
    );
    assert_eq!(
        data["names"],
        json!(["First product", "Second product", "Third product"])
    );
    assert_eq!(data["absent"], Value::Null);
}

async fn a_503_twice_then_200_succeeds_on_the_third_attempt(backend: Backend) {
    let site = Site::start().await;
    let app = TestApp::on(backend).await;
    let created = app
        .submit(&json!({"url": site.url("/flaky/retry-me"), "strategy": "http", "max_attempts": 3}))
        .await;
    let id = created["id"].as_str().expect("id");
    let job = app.wait_terminal(id, DEADLINE).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["attempt"], 3);
    assert_eq!(job["result"]["title"], "Recovered after 2");
    assert_eq!(job["error"], Value::Null);
    assert_eq!(site.hits("retry-me"), 3);
    assert_eq!(
        app.event_kinds(id).await,
        [
            "created",
            "started",
            "retrying",
            "dispatched",
            "started",
            "retrying",
            "dispatched",
            "started",
            "succeeded"
        ]
    );
}

async fn retries_stop_when_attempts_run_out(backend: Backend) {
    let site = Site::start().await;
    let app = TestApp::on(backend).await;
    let created = app
        .submit(&json!({"url": site.url("/flaky/always?fail=100"), "strategy": "http", "max_attempts": 2}))
        .await;
    let job = app
        .wait_terminal(created["id"].as_str().expect("id"), DEADLINE)
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempt"], 2);
    assert_eq!(job["error"]["kind"], "http_status");
    assert_eq!(job["error"]["status_code"], 503);
    assert_eq!(job["error"]["retryable"], true);
    assert_eq!(site.hits("always"), 2);
}

async fn a_404_fails_at_once_with_http_status(backend: Backend) {
    let site = Site::start().await;
    let app = TestApp::on(backend).await;
    let created = app
        .submit(&json!({"url": site.url("/status/404"), "strategy": "http"}))
        .await;
    let id = created["id"].as_str().expect("id");
    let job = app.wait_terminal(id, DEADLINE).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempt"], 1);
    assert_eq!(job["error"]["kind"], "http_status");
    assert_eq!(job["error"]["status_code"], 404);
    assert_eq!(job["error"]["retryable"], false);
    assert_eq!(app.event_kinds(id).await, ["created", "started", "failed"]);
}

async fn navigation_failures_and_timeouts_are_typed(backend: Backend) {
    let site = Site::start().await;
    let app = TestApp::on(backend).await;
    // Nothing listens on port 1: a connection failure, retryable, so it uses both attempts.
    let refused = app
        .submit(&json!({"url": "http://127.0.0.1:1/", "strategy": "http", "max_attempts": 2}))
        .await;
    let slow = app
        .submit(&json!({"url": site.url("/slow?ms=5000"), "strategy": "http", "timeout_ms": 1000, "max_attempts": 1}))
        .await;
    let chain = app
        .submit(&json!({"url": site.url("/redirect/3"), "strategy": "http"}))
        .await;
    let endless = app
        .submit(&json!({"url": site.url("/redirect/11"), "strategy": "http"}))
        .await;

    let job = app
        .wait_terminal(refused["id"].as_str().expect("id"), DEADLINE)
        .await;
    assert_eq!(
        (job["state"].as_str(), job["attempt"].as_u64()),
        (Some("failed"), Some(2)),
        "{job}"
    );
    assert_eq!(job["error"]["kind"], "navigation");

    let job = app
        .wait_terminal(slow["id"].as_str().expect("id"), DEADLINE)
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["kind"], "timeout");

    let job = app
        .wait_terminal(chain["id"].as_str().expect("id"), DEADLINE)
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["final_url"], site.url("/redirect/0"));
    assert_eq!(job["result"]["title"], "Landed");

    let job = app
        .wait_terminal(endless["id"].as_str().expect("id"), DEADLINE)
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempt"], 1, "a redirect loop is not retried");
    assert_eq!(job["error"]["kind"], "navigation");
    assert!(
        job["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("redirect")),
        "{job}"
    );
}

async fn cancel_stops_queued_and_running_jobs_and_refuses_finished_ones(backend: Backend) {
    let app = TestApp::spawn_with(Options {
        backend,
        workers: 0,
        ..Options::default()
    })
    .await;
    let queued = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop"}))
        .await;
    let queued_id = queued["id"].as_str().expect("id");
    let response = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{queued_id}/cancel")))
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.expect("json");
    assert_eq!(cancelled["state"], "cancelled");

    let again = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{queued_id}/cancel")))
        .send()
        .await
        .expect("cancel again");
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.headers()["content-type"].to_str().ok(),
        Some("application/problem+json")
    );

    let missing = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{}/cancel", uuid::Uuid::now_v7())))
        .send()
        .await
        .expect("cancel unknown");
    assert_eq!(missing.status(), 404);

    // A running job: cancelled at once; the worker's late outcome is fenced off.
    let mut app = app;
    app.start_worker(1);
    let running = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 1500}}))
        .await;
    let running_id = running["id"].as_str().expect("id");
    app.wait_for(running_id, DEADLINE, |job| job["state"] == "running")
        .await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{running_id}/cancel")))
        .send()
        .await
        .expect("cancel running");
    assert_eq!(response.status(), 200);

    // A job queued behind it runs, proving the worker finished the cancelled one.
    let after = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop"}))
        .await;
    let after = app
        .wait_terminal(after["id"].as_str().expect("id"), DEADLINE)
        .await;
    assert_eq!(after["state"], "succeeded");
    let job = app.job(running_id).await;
    assert_eq!(job["state"], "cancelled");
    assert_eq!(job["result"], Value::Null);
    assert_eq!(
        app.event_kinds(running_id).await,
        ["created", "started", "cancelled"]
    );

    // A succeeded job cannot be cancelled.
    let done = app
        .client
        .post(app.url(&format!(
            "/api/v1/jobs/{}/cancel",
            after["id"].as_str().expect("id")
        )))
        .send()
        .await
        .expect("cancel finished");
    assert_eq!(done.status(), 409);
}

async fn pagination_returns_every_job_exactly_once_newest_first(backend: Backend) {
    let app = TestApp::spawn_with(Options {
        backend,
        workers: 0,
        ..Options::default()
    })
    .await;
    let mut created = Vec::new();
    for i in 0..23 {
        let job_type = if i % 3 == 0 {
            "navigate_extract"
        } else {
            "noop"
        };
        let url = if i % 2 == 0 {
            "https://a.example/"
        } else {
            "https://b.example/"
        };
        let job = app.submit(&json!({"url": url, "job_type": job_type})).await;
        created.push(job["id"].as_str().expect("id").to_owned());
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/jobs?limit=5&cursor={c}"),
            None => "/api/v1/jobs?limit=5".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.expect("page");
        pages += 1;
        for job in page["jobs"].as_array().expect("jobs") {
            seen.push(job["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a job was repeated");
    created.reverse();
    assert_eq!(seen, created, "every job once, newest first");
    assert_eq!(pages, 5);

    let noops: Value = app
        .get("/api/v1/jobs?job_type=noop&limit=500")
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(noops["jobs"].as_array().map(Vec::len), Some(15));
    let a: Value = app
        .get("/api/v1/jobs?domain=A.example&state=queued")
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(a["jobs"].as_array().map(Vec::len), Some(12));
    assert!(
        a["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .all(|j| j["domain"] == "a.example")
    );
    let none: Value = app
        .get("/api/v1/jobs?state=succeeded")
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(none["jobs"], json!([]));
    assert_eq!(none["next_cursor"], Value::Null);

    let stats: Value = app
        .get("/api/v1/queue/stats")
        .await
        .json()
        .await
        .expect("stats");
    assert_eq!(stats["jobs"]["queued"], 23);
    assert_eq!(stats["jobs"]["succeeded"], 0);
    let levels = stats["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 5);
    assert_eq!(levels[2]["priority"], 3);
    assert_eq!(
        levels[2]["length"], 23,
        "every job rang on the default level: {stats}"
    );
    assert_eq!(levels[2]["pending"], 0);
    assert!(
        stats["oldest_due_age_ms"]
            .as_i64()
            .is_some_and(|age| age >= 0)
    );

    // Once a worker drains the backlog, the streams are empty again (entries are deleted on ack).
    let mut app = app;
    app.start_worker(2);
    eventually("the backlog to drain", DEADLINE, || async {
        let stats: Value = app.get("/api/v1/queue/stats").await.json().await.ok()?;
        let done = stats["jobs"]["queued"] == 0
            && stats["jobs"]["running"] == 0
            && stats["levels"][2]["length"] == 0;
        done.then_some(())
    })
    .await;
}

on_both_backends!(
    the_documented_body_goes_from_queued_to_succeeded,
    navigate_extract_reads_metadata_links_text_and_selectors,
    a_503_twice_then_200_succeeds_on_the_third_attempt,
    retries_stop_when_attempts_run_out,
    a_404_fails_at_once_with_http_status,
    navigation_failures_and_timeouts_are_typed,
    cancel_stops_queued_and_running_jobs_and_refuses_finished_ones,
    pagination_returns_every_job_exactly_once_newest_first,
);
