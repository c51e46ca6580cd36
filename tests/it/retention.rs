//! Retention: expired jobs of every terminal state go with their events, artifacts (rows and
//! objects) and idempotency records; queued and running jobs of the same age stay; a leader
//! that lost its term deletes nothing; tenants' own ages apply. `DELETE /api/v1/jobs/{id}`
//! erases one finished job now and refuses an unfinished one.

use std::time::Duration;

use control_plane::auth::{Role, Scope};
use control_plane::job::{Hold, JobState};
use control_plane::retention::{Expiry, Tenants};
use control_plane::store::Term;
use serde_json::{Value, json};

use crate::common::{
    Backend, Options, TestApp, client_with_key, create_key, eventually, on_both_backends,
};
use crate::s3_server::S3Server;

const BUCKET: &str = "cp-retention";

async fn submit_as(app: &TestApp, client: &reqwest::Client, body: Value) -> String {
    let answer = client
        .post(app.url("/api/v1/jobs"))
        .json(&body)
        .send()
        .await
        .expect("submit");
    assert_eq!(answer.status(), 201, "{body}");
    let job: Value = answer.json().await.expect("json");
    job["id"].as_str().expect("id").to_owned()
}

async fn finished(app: &TestApp, id: &str, state: &str) {
    let job = app.wait_terminal(id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], state, "{job}");
}

/// A job of the app's tenant that wrote `name` while it ran (an artifact is kept only by the
/// attempt holding its job), then was cancelled.
async fn with_artifact(app: &TestApp, name: &str) -> String {
    let id = submit_as(
        app,
        &app.client,
        json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 60_000}}),
    )
    .await;
    app.wait_for(&id, Duration::from_secs(30), |job| {
        job["state"] == "running"
    })
    .await;
    let job = app
        .store
        .get(Scope::All, id.parse().expect("uuid"))
        .await
        .expect("read")
        .expect("the job");
    let hold = Hold {
        attempt: job.attempt,
        worker: job.worker_id.expect("a running job's worker"),
    };
    app.app()
        .artifacts()
        .put(
            job.id,
            &hold,
            name,
            "text/plain",
            b"kept until expiry".to_vec(),
        )
        .await
        .expect("an artifact");
    let answer = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{id}/cancel")))
        .send()
        .await
        .expect("cancel");
    assert_eq!(answer.status(), 200);
    finished(app, &id, "cancelled").await;
    id
}

async fn exists(app: &TestApp, id: &str) -> bool {
    app.get(&format!("/api/v1/jobs/{id}")).await.status() == 200
}

fn purged(app: &TestApp, table: &str) -> u64 {
    app.metrics()
        .families()
        .purged_rows
        .with_label_values(&[table])
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_jobs_go_with_everything_of_theirs_under_the_leaders_term_only() {
    let s3 = S3Server::start(BUCKET).await;
    let app = TestApp::spawn_with(Options {
        scheduler: false,
        artifacts: Some((S3Server::location(BUCKET, ""), s3.access())),
        ..Options::default()
    })
    .await;
    // The scheduler is off so that the test leads (jobs due now are rung when submitted).
    let default = app.client.clone();
    let keeper = client_with_key(&create_key(app.store.as_ref(), "keeper", Role::Submit).await);
    let brief = client_with_key(&create_key(app.store.as_ref(), "brief", Role::Submit).await);
    let fresh = client_with_key(&create_key(app.store.as_ref(), "fresh", Role::Submit).await);
    for (tenant, body) in [
        ("keeper", json!({"succeeded": "forever"})),
        ("brief", json!({"succeeded": "1h"})),
    ] {
        let answer = app
            .client
            .put(app.url(&format!("/api/v1/tenants/{tenant}/retention")))
            .json(&body)
            .send()
            .await
            .expect("put");
        assert_eq!(answer.status(), 200, "{tenant}");
    }

    let noop = json!({"url": "https://example.com/", "job_type": "noop"});
    let keyed = default
        .post(app.url("/api/v1/jobs"))
        .header("Idempotency-Key", "retention-test-1")
        .json(&noop)
        .send()
        .await
        .expect("submit");
    let succeeded: Value = keyed.json().await.expect("json");
    let succeeded = succeeded["id"].as_str().expect("id").to_owned();
    let failed = submit_as(
        &app,
        &default,
        json!({"url": "http://127.0.0.1:1/", "strategy": "http", "max_attempts": 1}),
    )
    .await;
    let later = json!({"url": "https://example.com/", "job_type": "noop", "delay_ms": 3_600_000});
    let cancelled = submit_as(&app, &default, later.clone()).await;
    let queued = submit_as(&app, &default, later).await;
    let running = submit_as(
        &app,
        &default,
        json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 60_000}}),
    )
    .await;
    let kept_forever = submit_as(&app, &keeper, noop.clone()).await;
    let brief_job = submit_as(&app, &brief, noop.clone()).await;
    let fresh_job = submit_as(&app, &fresh, noop.clone()).await;
    for id in [&succeeded, &kept_forever, &brief_job, &fresh_job] {
        finished(&app, id, "succeeded").await;
    }
    finished(&app, &failed, "failed").await;
    let answer = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{cancelled}/cancel")))
        .send()
        .await
        .expect("cancel");
    assert_eq!(answer.status(), 200);
    app.wait_for(&running, Duration::from_secs(30), |job| {
        job["state"] == "running"
    })
    .await;
    let noted = with_artifact(&app, "note.txt").await;
    let object = s3.object_file(BUCKET, &format!("{noted}/1/note.txt"));
    assert!(object.exists());

    // Forty days old: every job of `default` and `keeper`; two hours: `brief` and `fresh`.
    app.db
        .change(
            "UPDATE jobs SET created_at = created_at - interval '40 days',
                    finished_at = finished_at - interval '40 days'
             WHERE tenant_id IN ('default', 'keeper')",
        )
        .await;
    app.db
        .change(
            "UPDATE jobs SET finished_at = finished_at - interval '2 hours'
             WHERE tenant_id IN ('brief', 'fresh')",
        )
        .await;
    let before = app.job_rows().await;
    assert_eq!(before, 9);

    let term = app
        .store
        .lead("the-test", Duration::from_secs(30), None)
        .await
        .expect("lead")
        .expect("nobody else leads");
    let stale = Term(term.0 - 1);
    let all = Expiry {
        state: JobState::Succeeded,
        age: Duration::from_secs(60),
        tenants: Tenants::AllBut(Vec::new()),
    };
    let lost = app
        .store
        .purge_expired(stale, &all, 100, Duration::from_secs(5))
        .await
        .expect("purge");
    assert_eq!(lost.jobs, 0, "a lost term deletes nothing");
    assert_eq!(app.job_rows().await, before);

    let erased = app.app().purger().purge(term).await.expect("purge");
    assert_eq!(erased.jobs, 5, "{erased:?}");
    for gone in [&succeeded, &failed, &cancelled, &noted, &brief_job] {
        assert!(!exists(&app, gone).await, "{gone} is gone");
    }
    for kept in [&queued, &running, &kept_forever, &fresh_job] {
        assert!(exists(&app, kept).await, "{kept} stays");
    }
    let leftovers = app
        .db
        .row(
            "SELECT (SELECT count(*) FROM job_events WHERE job_id NOT IN (SELECT id FROM jobs)),
                    (SELECT count(*) FROM job_artifacts),
                    (SELECT count(*) FROM artifact_purges),
                    (SELECT count(*) FROM idempotency_keys)",
        )
        .await;
    assert_eq!(
        leftovers,
        [0, 0, 0, 0],
        "events, artifacts, queued objects, keys"
    );
    assert!(!object.exists(), "the object is gone from the bucket");
    assert_eq!(purged(&app, "jobs"), 5);
    assert!(purged(&app, "job_events") >= 5 * 2);
    assert_eq!(purged(&app, "job_artifacts"), 1);
    assert_eq!(purged(&app, "idempotency_keys"), 1);
    assert_eq!(
        app.metrics().families().purged_bytes.get(),
        "kept until expiry".len() as u64
    );
    let _ = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{running}/cancel")))
        .send()
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_purges_on_its_own_and_the_api_shows_each_tenants_ages() {
    let app = TestApp::spawn_with(Options {
        retention_interval: Duration::from_millis(200),
        ..Options::default()
    })
    .await;
    let id = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    finished(&app, &id, "succeeded").await;
    app.db
        .change("UPDATE jobs SET finished_at = finished_at - interval '8 days'")
        .await;
    eventually("the leader to purge", Duration::from_secs(20), || async {
        (!exists(&app, &id).await).then_some(())
    })
    .await;

    let answer: Value = app
        .get("/api/v1/tenants/acme/retention")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["succeeded"]["source"], "default");
    assert_eq!(answer["succeeded"]["seconds"], 7 * 86_400);
    let bad = app
        .client
        .put(app.url("/api/v1/tenants/acme/retention"))
        .json(&json!({"succeeded": "5s", "forgotten": "1d"}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");
    let problem: Value = bad.json().await.expect("json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"succeeded") && fields.contains(&"forgotten"),
        "{problem}"
    );
    let set: Value = app
        .client
        .put(app.url("/api/v1/tenants/acme/retention"))
        .json(&json!({"failed": "forever", "cancelled": 5_400}))
        .send()
        .await
        .expect("put")
        .json()
        .await
        .expect("json");
    assert_eq!(set["failed"]["keep"], "forever");
    assert_eq!(set["failed"]["source"], "tenant");
    assert_eq!(set["succeeded"]["source"], "default");
    assert_eq!(
        set["cancelled"]["keep"], "90m",
        "seconds read back in the text form"
    );
    assert_eq!(set["cancelled"]["seconds"], 5_400);
    let cleared = app
        .client
        .delete(app.url("/api/v1/tenants/acme/retention"))
        .send()
        .await
        .expect("delete");
    assert_eq!(cleared.status(), 204);
    app.stop().await;
}

on_both_backends!(one_finished_job_is_erased_on_request_and_an_unfinished_one_is_refused);

async fn one_finished_job_is_erased_on_request_and_an_unfinished_one_is_refused(backend: Backend) {
    let app = TestApp::on(backend).await;
    let done = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    finished(&app, &done, "succeeded").await;
    let late = Hold {
        attempt: 1,
        worker: "a-worker-long-gone".to_owned(),
    };
    let refused = app
        .app()
        .artifacts()
        .put(
            done.parse().expect("uuid"),
            &late,
            "late.txt",
            "text/plain",
            b"late".to_vec(),
        )
        .await;
    assert!(refused.is_err(), "a finished job takes no artifact");
    let done = with_artifact(&app, "a.txt").await;
    let queued = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "delay_ms": 3_600_000}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let other =
        client_with_key(&create_key(app.store.as_ref(), "someone-else", Role::Submit).await);

    let refused = other
        .delete(app.url(&format!("/api/v1/jobs/{done}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(
        refused.status(),
        404,
        "another tenant's job is not revealed"
    );
    let refused = app
        .client
        .delete(app.url(&format!("/api/v1/jobs/{queued}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cancel it first")),
        "{problem}"
    );
    assert!(exists(&app, &queued).await);
    let bad = app
        .client
        .delete(app.url("/api/v1/jobs/not-a-uuid"))
        .send()
        .await
        .expect("delete");
    assert_eq!(bad.status(), 400);

    let erased = app
        .client
        .delete(app.url(&format!("/api/v1/jobs/{done}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(erased.status(), 204);
    assert!(!exists(&app, &done).await);
    let artifact = app
        .get(&format!("/api/v1/jobs/{done}/artifacts/a.txt"))
        .await;
    assert_eq!(artifact.status(), 404);
    let left = app
        .db
        .row(
            "SELECT (SELECT count(*) FROM job_events WHERE job_id NOT IN (SELECT id FROM jobs)),
                    (SELECT count(*) FROM job_artifacts),
                    (SELECT count(*) FROM artifact_purges)",
        )
        .await;
    assert_eq!(left, [0, 0, 0]);
    assert_eq!(
        app.metrics().families().purged_bytes.get(),
        "kept until expiry".len() as u64
    );
    let again = app
        .client
        .delete(app.url(&format!("/api/v1/jobs/{done}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(again.status(), 404);
    app.stop().await;
}
