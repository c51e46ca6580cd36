//! Per-tenant quotas: set by an admin, answered with 429 and `Retry-After`, storing nothing.

use control_plane::auth::Role;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, client_with_key, create_key, on_both_backends};

on_both_backends!(quotas_refuse_with_429_and_store_nothing);

fn scheduled() -> Value {
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    json!({"url": "https://example.com/", "job_type": "noop", "run_at": tomorrow.to_rfc3339()})
}

async fn quotas_refuse_with_429_and_store_nothing(backend: Backend) {
    let app = TestApp::on(backend).await;
    let acme = client_with_key(&create_key(app.store.as_ref(), "acme", Role::Submit).await);
    let quota = app.url("/api/v1/tenants/acme/quota");
    let jobs = app.url("/api/v1/jobs");

    // Only an admin sees and sets quotas.
    let refused = acme.get(&quota).send().await.expect("get");
    assert_eq!(refused.status(), 403);
    let defaults: Value = app
        .client
        .get(&quota)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(defaults["source"], "default", "{defaults}");
    let bad = app
        .client
        .put(&quota)
        .json(&json!({"max_queued": -1}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), 422);

    // At most two queued jobs.
    let set = app
        .client
        .put(&quota)
        .json(&json!({"max_queued": 2, "submit_rate": 1000}))
        .send()
        .await
        .expect("put");
    assert_eq!(set.status(), 200);
    for _ in 0..2 {
        let response = acme
            .post(&jobs)
            .json(&scheduled())
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 201);
    }
    let over = acme
        .post(&jobs)
        .json(&scheduled())
        .send()
        .await
        .expect("post");
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
    assert_eq!(over.headers()["content-type"], "application/problem+json");
    let problem: Value = over.json().await.expect("problem");
    assert_eq!(problem["type"], "/problems/quota-exceeded", "{problem}");
    assert_eq!(
        app.db.scalar("SELECT count(*) FROM jobs").await,
        2,
        "nothing more stored"
    );

    // One submission per second: a burst gets 429s with Retry-After for the rest.
    let set = app
        .client
        .put(&quota)
        .json(&json!({"max_queued": 1000, "submit_rate": 1}))
        .send()
        .await
        .expect("put");
    assert_eq!(set.status(), 200);
    let mut accepted = 0;
    let mut limited = 0;
    for _ in 0..5 {
        let response = acme
            .post(&jobs)
            .json(&scheduled())
            .send()
            .await
            .expect("post");
        match response.status().as_u16() {
            201 => accepted += 1,
            429 => {
                assert_eq!(response.headers()["retry-after"], "1");
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited >= 1, "a burst of 5 at 1/s is limited");
    assert_eq!(
        app.db.scalar("SELECT count(*) FROM jobs").await,
        2 + accepted
    );

    // Zero suspends; deleting the tenant's quota brings the defaults back.
    app.client
        .put(&quota)
        .json(&json!({"max_queued": 0, "submit_rate": 10}))
        .send()
        .await
        .expect("put");
    let suspended = acme
        .post(&jobs)
        .json(&scheduled())
        .send()
        .await
        .expect("post");
    assert_eq!(suspended.status(), 429);
    let deleted = app.client.delete(&quota).send().await.expect("delete");
    assert_eq!(deleted.status(), 204);
    let back = acme
        .post(&jobs)
        .json(&scheduled())
        .send()
        .await
        .expect("post");
    assert_eq!(back.status(), 201);
}
