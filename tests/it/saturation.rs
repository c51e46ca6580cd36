//! Under saturation every doorbell is served at once: no job waits for the reconciler, even
//! when clients hang up on their requests half-way (as a load generator does when it stops).

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::common::{Backend, Options, TestApp, eventually, on_both_backends};

/// Jobs submitted, and clients submitting them at once.
const JOBS: usize = 5_000;
const CLIENTS: usize = 32;
/// Besides them, one request in this many is abandoned by its client after a few
/// milliseconds: its job may or may not be created, and if it is, it must run.
const ABANDONED_EVERY: usize = 11;

async fn five_thousand_jobs_from_32_clients_all_succeed_without_the_reconciler(backend: Backend) {
    // Ten minutes: a doorbell lost on the way would hold its job far past the deadline below.
    let app = TestApp::spawn_with(Options {
        backend,
        workers: 2,
        concurrency: 32,
        redeliver_after: Duration::from_secs(600),
        ..Options::default()
    })
    .await;
    // The queue is under test, not the domain's pace: let the domain take them all at once.
    let policy = app
        .client
        .put(app.url("/api/v1/domains/example.com/policy"))
        .json(&json!({"cap": 1000}))
        .send()
        .await
        .expect("set the policy");
    assert_eq!(policy.status(), 200);
    let url = app.url("/api/v1/jobs");
    let answered = futures::stream::iter(0..JOBS + JOBS / (ABANDONED_EVERY - 1))
        .map(|i| {
            let body = json!({"url": "https://example.com/", "job_type": "noop",
                              "priority": i % 5 + 1});
            let mut request = app.client.post(&url).json(&body);
            let abandoned = i % ABANDONED_EVERY == ABANDONED_EVERY - 1;
            if abandoned {
                request = request.timeout(Duration::from_millis(1 + (i * 37 % 250) as u64));
            }
            async move {
                let status = request.send().await.map(|r| r.status().as_u16());
                (abandoned, status)
            }
        })
        .buffer_unordered(CLIENTS)
        .fold(Vec::new(), |mut all, answer| async move {
            all.push(answer);
            all
        })
        .await;
    let refused: Vec<_> = answered
        .iter()
        .filter(|(abandoned, status)| !abandoned && !matches!(status, Ok(201)))
        .collect();
    assert!(refused.is_empty(), "submissions failed: {refused:?}");
    let kept = answered
        .iter()
        .filter(|(_, status)| matches!(status, Ok(201)))
        .count() as i64;
    assert!(kept >= JOBS as i64, "{kept} of {JOBS} jobs answered");

    let (created, succeeded) = eventually(
        "every job created to succeed, well before REDELIVER_AFTER",
        Duration::from_secs(120),
        || async {
            let counts = app
                .db
                .row(
                    "SELECT (SELECT count(*) FROM jobs),
                            (SELECT count(*) FROM jobs WHERE state = 'succeeded')",
                )
                .await;
            (counts[0] == counts[1] && counts[0] >= kept).then_some((counts[0], counts[1]))
        },
    )
    .await;
    println!(
        "{kept} answered 201, {created} created (abandoned ones included), {succeeded} succeeded"
    );
    let rescued = app
        .db
        .scalar("SELECT count(*) FROM job_events WHERE kind = 'dispatched'")
        .await;
    assert_eq!(
        rescued, 0,
        "no job is rung again by the scheduler in a normal run"
    );
    app.stop().await;
}

on_both_backends!(five_thousand_jobs_from_32_clients_all_succeed_without_the_reconciler);
