//! Per-tenant quotas: set by an admin, answered with 429 and `Retry-After`, storing nothing.

use control_plane::auth::Role;
use control_plane::quota::{Ledger, LocalLedger, Outcome, Quota, RedisLedger, Report};
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

/// One sequence of admissions, reports and recounts, and what the rule answers to each:
/// both ledgers must answer the same.
async fn ledger_conformance(ledger: &dyn Ledger) {
    use control_plane::quota::rule::{Ask, Verdict};
    let ask = |jobs: u64, max_queued: u64, submit_rate: u32| Ask {
        admission: uuid::Uuid::now_v7(),
        jobs,
        quota: Quota {
            max_queued,
            submit_rate,
        },
        ttl_ms: 60_000,
        recount_ms: 3_600_000,
    };
    let report = |tenant: &str, ask: &Ask, outcome| Report {
        tenant: tenant.to_owned(),
        admission: ask.admission,
        jobs: ask.jobs,
        outcome,
    };
    let tenant = format!("t{}", uuid::Uuid::new_v4().simple());

    // Nothing is admitted before a count; the first caller is to count.
    let first = one(ledger, &tenant, &ask(1, 3, 1_000)).await;
    assert_eq!(first.verdict, Verdict::Uncounted);
    let snapshot = first.recount.expect("the first caller counts");
    let second = one(ledger, &tenant, &ask(1, 3, 1_000)).await;
    assert_eq!((second.verdict, second.recount), (Verdict::Uncounted, None));
    assert!(ledger.rebase(&tenant, snapshot, 1).await.expect("rebase"));
    assert!(
        !ledger.rebase(&tenant, snapshot, 0).await.expect("rebase"),
        "a recount of a past generation is void"
    );

    // One queued; two admitted in flight fill the cap of three.
    let (a, b) = (ask(1, 3, 1_000), ask(1, 3, 1_000));
    assert_eq!(one(ledger, &tenant, &a).await.verdict, Verdict::Admitted);
    assert_eq!(one(ledger, &tenant, &b).await.verdict, Verdict::Admitted);
    assert_eq!(
        one(ledger, &tenant, &ask(1, 3, 1_000)).await.verdict,
        Verdict::OverQueued
    );
    // A committed, B stored nothing: one place is free again.
    ledger
        .settle(&[
            report(&tenant, &a, Outcome::Committed),
            report(&tenant, &b, Outcome::Dropped),
        ])
        .await
        .expect("settle");
    assert_eq!(
        one(ledger, &tenant, &ask(1, 3, 1_000)).await.verdict,
        Verdict::Admitted
    );
    assert_eq!(
        one(ledger, &tenant, &ask(1, 3, 1_000)).await.verdict,
        Verdict::OverQueued
    );

    // Admissions asked together are decided in order: the second of two that would each
    // fit alone is refused.
    let (c, d) = (ask(1, 5, 1_000), ask(1, 5, 1_000));
    let together = ledger
        .admit(&[(tenant.as_str(), &c), (tenant.as_str(), &d)])
        .await
        .expect("together");
    assert_eq!(
        together.iter().map(|a| a.verdict).collect::<Vec<_>>(),
        [Verdict::Admitted, Verdict::Admitted],
        "room for two"
    );
    let (e, f) = (ask(1, 6, 1_000), ask(1, 6, 1_000));
    let together = ledger
        .admit(&[(tenant.as_str(), &e), (tenant.as_str(), &f)])
        .await
        .expect("together");
    assert_eq!(
        together.iter().map(|a| a.verdict).collect::<Vec<_>>(),
        [Verdict::Admitted, Verdict::OverQueued],
        "room for one"
    );

    // The rate: a second's worth of burst; a batch goes into debt; zero suspends.
    for (rate, jobs, then) in [(2, 1, 2), (100, 300, 1), (0, 1, 0)] {
        let tenant = format!("r{}", uuid::Uuid::new_v4().simple());
        let first = one(ledger, &tenant, &ask(jobs, 1_000, rate)).await;
        let snapshot = first.recount.expect("the first caller counts");
        assert!(ledger.rebase(&tenant, snapshot, 0).await.expect("rebase"));
        for _ in 0..then {
            assert_eq!(
                one(ledger, &tenant, &ask(jobs, 1_000, rate)).await.verdict,
                Verdict::Admitted,
                "rate {rate}"
            );
        }
        let over = one(ledger, &tenant, &ask(1, 1_000, rate)).await.verdict;
        assert!(
            matches!(over, Verdict::OverRate { wait_ms } if wait_ms > 0),
            "rate {rate}: {over:?}"
        );
    }

    // Asked together, admissions spend one bucket in order, and their reports together
    // free their places.
    let tenant = format!("g{}", uuid::Uuid::new_v4().simple());
    let first = one(ledger, &tenant, &ask(1, 2, 2)).await;
    let snapshot = first.recount.expect("the first caller counts");
    assert!(ledger.rebase(&tenant, snapshot, 0).await.expect("rebase"));
    let asks = [ask(1, 2, 2), ask(1, 2, 2), ask(1, 2, 2)];
    let together = ledger
        .admit(
            &asks
                .iter()
                .map(|a| (tenant.as_str(), a))
                .collect::<Vec<_>>(),
        )
        .await
        .expect("together");
    assert_eq!(together[0].verdict, Verdict::Admitted);
    assert_eq!(together[1].verdict, Verdict::Admitted);
    assert!(
        matches!(
            together[2].verdict,
            Verdict::OverQueued | Verdict::OverRate { .. }
        ),
        "the third of a cap and a burst of two: {:?}",
        together[2].verdict
    );
    assert_eq!(
        one(ledger, &tenant, &ask(2, 2, 1_000)).await.verdict,
        Verdict::OverQueued
    );
    ledger
        .settle(&[
            report(&tenant, &asks[0], Outcome::Dropped),
            report(&tenant, &asks[1], Outcome::Dropped),
        ])
        .await
        .expect("settle");
    // Two jobs fit the cap of two again (the bucket, spent within the millisecond, may
    // still say wait).
    let later = one(ledger, &tenant, &ask(2, 2, 1_000)).await.verdict;
    assert!(
        matches!(later, Verdict::Admitted | Verdict::OverRate { .. }),
        "both places were freed: {later:?}"
    );
}

/// Asks `ledger` for one admission.
async fn one(
    ledger: &dyn Ledger,
    tenant: &str,
    ask: &control_plane::quota::rule::Ask,
) -> control_plane::quota::rule::Answer {
    ledger
        .admit(&[(tenant, ask)])
        .await
        .expect("admit")
        .pop()
        .expect("an answer")
}

#[tokio::test]
async fn the_redis_ledger_holds_to_the_rule() {
    let prefix = crate::common::TestPrefix::new();
    let queue = control_plane::queue::RedisQueue::connect(&crate::common::redis_url(), &prefix.0)
        .await
        .expect("redis");
    ledger_conformance(&RedisLedger::beside(&queue)).await;
}

#[tokio::test]
async fn the_local_ledger_holds_to_the_rule() {
    ledger_conformance(&LocalLedger::new()).await;
}
