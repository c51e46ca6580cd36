//! A frozen leader: the scheduler's leadership is a lease, so a leader stopped with SIGSTOP
//! (or a paused VM, or a host cut off without its connections being reset) is replaced
//! within seconds, and when it thaws it steps down without acting on its stale term.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{Process, fetch_json, submit, wait_healthy};
use crate::common::{AssertDb, TestDatabase, TestPrefix, eventually, redis_url};
use crate::faults::{env, pg};

/// JOB_LEASE in this test (the fault tests' value).
const JOB_LEASE: Duration = Duration::from_secs(3);

/// The holder and term of the scheduler's leadership.
async fn leader(db: &AssertDb) -> Option<(String, i64)> {
    let AssertDb::Postgres(pool) = db else {
        return None;
    };
    sqlx::query_as("SELECT holder, term FROM leaders WHERE name = 'scheduler'")
        .fetch_optional(pool)
        .await
        .ok()
        .flatten()
}

/// A job's events as (kind, worker, detail), oldest first.
async fn events(client: &reqwest::Client, base: &str, id: &str) -> Vec<(String, Value, Value)> {
    let events = fetch_json(client, &format!("{base}/api/v1/jobs/{id}/events"))
        .await
        .expect("events");
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["worker_id"].clone(),
                e["detail"].clone(),
            )
        })
        .collect()
}

fn at(event: &Value) -> chrono::DateTime<chrono::Utc> {
    event
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("not a time: {event}"))
}

/// When the job's `kind` event happened, waiting for it.
async fn happened(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    kind: &str,
    nth: usize,
) -> chrono::DateTime<chrono::Utc> {
    eventually(
        &format!("event {kind} #{nth} of {id}"),
        Duration::from_secs(60),
        || async {
            let events = fetch_json(client, &format!("{base}/api/v1/jobs/{id}/events")).await?;
            let found = events["events"]
                .as_array()?
                .iter()
                .filter(|e| e["kind"] == kind)
                .nth(nth)?
                .clone();
            Some(at(&found["at"]))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_is_replaced_within_two_leases_and_does_not_act_when_it_thaws() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let mut env = env(&db, &redis_url(), &prefix);
    env.push(("LEADER_LEASE", "2s".to_owned()));
    env.push(("SCHEDULER_INTERVAL", "200ms".to_owned()));
    let client = reqwest::Client::new();
    let serve = Process::spawn("serve", &env);
    wait_healthy(&serve, &client).await;
    let assert_db = pg(&db).await;
    let base = serve.base.clone();

    // The first worker leads, and runs a long job.
    let old = Process::spawn("worker", &env);
    let marker = format!("-{}-", old.pid());
    let (old_holder, old_term) = eventually(
        "the first worker to lead",
        Duration::from_secs(30),
        || async {
            leader(&assert_db)
                .await
                .filter(|(holder, _)| holder.contains(&marker))
        },
    )
    .await;
    let long =
        json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 20_000}});
    let held = submit(&client, &base, &long).await;
    happened(&client, &base, &held, "started", 0).await;

    // A second worker joins; then the leader freezes, its job and its leadership with it.
    let new = Process::spawn("worker", &env);
    eventually(
        "the second worker to report",
        Duration::from_secs(30),
        || async {
            let stats = fetch_json(&client, &format!("{base}/api/v1/queue/stats")).await?;
            (stats["browser"]["workers"] == 2).then_some(())
        },
    )
    .await;
    old.signal("STOP");
    let frozen_at = chrono::Utc::now();
    let delayed = submit(
        &client,
        &base,
        &json!({"url": "https://example.com/", "job_type": "noop", "delay_ms": 1000}),
    )
    .await;
    let due = frozen_at + chrono::Duration::seconds(1);

    // Both are handled by the other worker within two leases.
    let two_leases = chrono::Duration::from_std(2 * JOB_LEASE).expect("duration");
    let restarted = happened(&client, &base, &held, "started", 1).await;
    assert!(
        restarted - frozen_at < two_leases,
        "the frozen leader's job restarted {} after the freeze",
        restarted - frozen_at
    );
    let started = happened(&client, &base, &delayed, "started", 0).await;
    assert!(
        started - due < two_leases,
        "the delayed job started {} after it was due",
        started - due
    );
    let (new_holder, new_term) = leader(&assert_db).await.expect("a leader");
    assert!(
        new_holder.contains(&format!("-{}-", new.pid())),
        "{new_holder}"
    );
    assert!(new_term > old_term);

    // The old leader thaws: it finds its lease gone and steps down before acting.
    old.signal("CONT");
    eventually(
        "the old leader to step down",
        Duration::from_secs(30),
        || async { old.log().contains("stepping down").then_some(()) },
    )
    .await;
    eventually(
        "the old worker to drop its stale attempt",
        Duration::from_secs(30),
        || async {
            let log = old.log();
            (log.contains("lease lost") || log.contains("outcome dropped")).then_some(())
        },
    )
    .await;
    for id in [&held, &delayed] {
        let job = crate::cli::finished(&client, &base, id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "succeeded", "{job}");
    }
    // What the old leader could have done twice, the events show done once, by the new term.
    let held_events = events(&client, &base, &held).await;
    let kinds: Vec<&str> = held_events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "started",
            "lease_expired",
            "dispatched",
            "started",
            "succeeded"
        ],
        "{held_events:?}"
    );
    assert_eq!(
        held_events[2].2["term"], new_term,
        "reaped once, by the new leader"
    );
    assert_eq!(held_events[1].1, json!(old_holder));
    assert_eq!(held_events[4].1, json!(new_holder));
    let delayed_events = events(&client, &base, &delayed).await;
    let kinds: Vec<&str> = delayed_events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["created", "dispatched", "started", "succeeded"],
        "{delayed_events:?}"
    );
    assert_eq!(
        delayed_events[1].2["term"], new_term,
        "rung once, by the new leader"
    );
    assert_eq!(
        leader(&assert_db).await.map(|(holder, _)| holder),
        Some(new_holder),
        "the thawed process did not take the leadership back"
    );
    let succeeded = assert_db
        .scalar("SELECT count(*) FROM job_events WHERE kind = 'succeeded'")
        .await;
    assert_eq!(succeeded, 2, "each job succeeded exactly once");
}
