//! `POST /api/v1/jobs/batch`: all or none, every bad job named by its index, one
//! idempotency key for the batch.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, TestApp, eventually, on_both_backends};

fn noop(i: usize) -> Value {
    json!({"url": format!("https://example.com/{i}"), "job_type": "noop", "priority": i % 5 + 1})
}

async fn a_batch_is_stored_in_order_and_every_job_runs(backend: Backend) {
    let app = TestApp::on(backend).await;
    let jobs: Vec<Value> = (0..40).map(noop).collect();
    let response = app
        .post_json("/api/v1/jobs/batch", &json!({ "jobs": jobs }))
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    let made = body["jobs"].as_array().expect("jobs");
    assert_eq!(made.len(), 40);
    for (i, job) in made.iter().enumerate() {
        assert_eq!(
            job["url"],
            format!("https://example.com/{i}"),
            "in the order given"
        );
        assert_eq!(job["state"], "queued");
    }
    eventually("all 40 to succeed", Duration::from_secs(30), || async {
        let n = app
            .db
            .scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
            .await;
        (n == 40).then_some(())
    })
    .await;
    app.stop().await;
}

async fn one_bad_job_refuses_the_batch_naming_its_index(backend: Backend) {
    let app = TestApp::on(backend).await;
    let jobs = json!([noop(0), {"url": "ftp://example.com/"}, noop(2),
                      {"url": "https://example.com/", "priority": 0}]);
    let response = app
        .post_json("/api/v1/jobs/batch", &json!({ "jobs": jobs }))
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.expect("json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["jobs[1].url", "jobs[3].priority"]);
    for body in [
        json!({"jobs": []}),
        json!({"jobs": vec![noop(0); 1001]}),
        json!({"job": []}),
    ] {
        let response = app.post_json("/api/v1/jobs/batch", &body).await;
        assert_eq!(response.status(), 422, "{body:.80}");
    }
    assert_eq!(app.job_rows().await, 0, "nothing stored");
    app.stop().await;
}

async fn a_repeated_batch_key_answers_the_same_jobs(backend: Backend) {
    let app = TestApp::on(backend).await;
    let batch = json!({"jobs": (0..5).map(noop).collect::<Vec<_>>()});
    let send = |body: Value| {
        app.client
            .post(app.url("/api/v1/jobs/batch"))
            .header("idempotency-key", "nightly-2026-11-28")
            .json(&body)
            .send()
    };
    let first = send(batch.clone()).await.expect("request");
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let again = send(batch.clone()).await.expect("request");
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    let ids = |body: &Value| -> Vec<String> {
        body["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|job| job["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), ids(&again));
    let other = send(json!({"jobs": [noop(9)]})).await.expect("request");
    assert_eq!(other.status(), 422, "the key with another batch");
    // The key of a batch does not answer a single submission either.
    let single = app
        .client
        .post(app.url("/api/v1/jobs"))
        .header("idempotency-key", "nightly-2026-11-28")
        .json(&noop(0))
        .send()
        .await
        .expect("request");
    assert_eq!(single.status(), 422);
    assert_eq!(app.job_rows().await, 5);
    app.stop().await;
}

on_both_backends!(
    a_batch_is_stored_in_order_and_every_job_runs,
    one_bad_job_refuses_the_batch_naming_its_index,
    a_repeated_batch_key_answers_the_same_jobs,
);

/// A batch whose write cannot finish before its request's deadline (the table is locked by
/// another transaction for longer): the answer is an error and nothing is stored, or 201
/// and everything is — never an error over a commit that went on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_its_deadline_is_stored_whole_or_not_at_all_as_answered() {
    use crate::common::AssertDb;
    use sqlx::Connection;

    let app = TestApp::spawn_with(crate::common::Options {
        workers: 0,
        ..crate::common::Options::default()
    })
    .await;
    let AssertDb::Postgres(pool) = &app.db else {
        panic!("PostgreSQL");
    };
    let mut blocker = pool.acquire().await.expect("a connection");
    let mut lock = blocker.begin().await.expect("begin");
    sqlx::query("LOCK TABLE jobs IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let jobs: Vec<Value> = (0..500).map(noop).collect();
    let body = json!({ "jobs": jobs });
    let post = app.post_json("/api/v1/jobs/batch", &body);
    // The lock is held a second past the request's deadline, then released.
    let hold = control_plane::api::deadline::REQUEST_DEADLINE + Duration::from_secs(1);
    let (answer, ()) = tokio::join!(post, async {
        tokio::time::sleep(hold).await;
        lock.rollback().await.expect("release the lock");
    });
    let status = answer.status();
    let problem: Value = answer.json().await.unwrap_or_default();
    // Whatever the write was doing when the lock went, it is over by now or never will be.
    eventually("the write to end", Duration::from_secs(30), || async {
        let busy = app
            .db
            .scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                 AND pid <> pg_backend_pid() AND state <> 'idle'
                 AND query LIKE '%INSERT INTO jobs%'",
            )
            .await;
        (busy == 0).then_some(())
    })
    .await;
    let stored = app.db.scalar("SELECT count(*) FROM jobs").await;
    crate::faults::report(&format!(
        "a batch of 500 behind a lock held past its deadline: answered {status} ({}), {stored} jobs stored",
        problem["detail"]
    ));
    match status.as_u16() {
        201 => assert_eq!(stored, 500, "answered 201: everything stored"),
        _ => {
            assert_eq!(status, 503, "{problem}");
            assert_eq!(stored, 0, "answered {status}: nothing stored ({problem})");
        }
    }
    app.stop().await;
}
