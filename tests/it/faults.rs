//! Faults production brings, simulated without touching the machine's shared servers: killed
//! workers, a flushed or restarted Redis (a `redis-server` of the test's own), a database cut
//! off (a TCP proxy the test controls), and a soak of all of them at once.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use sqlx::PgPool;

use crate::cli::{Process, fetch_json, wait_healthy};
use crate::common::{
    AssertDb, Backend, Options, OwnRedis, TestApp, TestDatabase, TestPrefix, eventually,
};

/// Writes a result line past the test harness's output capture, so that `cargo test` (and
/// CI) shows what each fault run measured.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "fault report: {line}");
}

/// Submits `count` noop jobs through the API, 16 at a time; returns how many were accepted.
/// Each job names a site of its own, so pacing (a cap per domain) does not hold any back.
async fn submit_many(client: &reqwest::Client, base: &str, count: usize, sleep_ms: u64) -> usize {
    futures::stream::iter(0..count)
        .map(|n| {
            let body = json!({"url": format!("https://site{n}.example/"), "job_type": "noop",
                              "max_attempts": 10, "payload": {"sleep_ms": sleep_ms}});
            let request = client.post(format!("{base}/api/v1/jobs")).json(&body);
            async move {
                match request.send().await {
                    Ok(response) => response.status() == 201,
                    Err(_) => false,
                }
            }
        })
        .buffer_unordered(16)
        .filter(|created| futures::future::ready(*created))
        .count()
        .await
}

/// What the store says at the end of a fault run.
#[derive(Debug, PartialEq, Eq)]
struct Tally {
    created: i64,
    succeeded: i64,
    failed: i64,
    cancelled: i64,
    unfinished: i64,
    succeeded_events: i64,
    doubly_succeeded: i64,
}

/// Every count of a tally in one statement, so they describe one moment.
const TALLY: &str = "SELECT
    (SELECT count(*) FROM jobs),
    (SELECT count(*) FROM jobs WHERE state = 'succeeded'),
    (SELECT count(*) FROM jobs WHERE state = 'failed'),
    (SELECT count(*) FROM jobs WHERE state = 'cancelled'),
    (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')),
    (SELECT count(*) FROM job_events WHERE kind = 'succeeded'),
    (SELECT count(*) FROM (SELECT job_id FROM job_events WHERE kind = 'succeeded'
         GROUP BY job_id HAVING count(*) > 1) AS twice)";

async fn tally(db: &AssertDb) -> Tally {
    let n = db.row(TALLY).await;
    Tally {
        created: n[0],
        succeeded: n[1],
        failed: n[2],
        cancelled: n[3],
        unfinished: n[4],
        succeeded_events: n[5],
        doubly_succeeded: n[6],
    }
}

/// Waits until every job is terminal, then checks that nothing was lost or applied twice.
async fn settled(db: &AssertDb, expected: i64, deadline: Duration) -> Tally {
    let until = Instant::now() + deadline;
    loop {
        let now = tally(db).await;
        if now.created == expected && now.unfinished == 0 {
            assert_eq!(
                now.created,
                now.succeeded + now.failed + now.cancelled,
                "{now:?}"
            );
            assert_eq!(now.succeeded_events, now.succeeded, "{now:?}");
            assert_eq!(now.doubly_succeeded, 0, "{now:?}");
            return now;
        }
        assert!(Instant::now() < until, "jobs did not settle: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn succeeded_at_least(db: &AssertDb, n: i64) {
    eventually("jobs to succeed", Duration::from_secs(120), || async {
        (db.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
            .await
            >= n)
            .then_some(())
    })
    .await;
}

async fn run_through_redis_loss(restart: bool) {
    let mut redis = OwnRedis::start().await;
    let app = TestApp::spawn_with(Options {
        backend: Backend::Postgres,
        workers: 2,
        concurrency: 4,
        redis_url: Some(redis.url.clone()),
        redeliver_after: Duration::from_secs(5),
        ..Options::default()
    })
    .await;
    let submitter = tokio::spawn({
        let (client, base) = (app.client.clone(), app.base.clone());
        async move { submit_many(&client, &base, 5000, 0).await }
    });
    succeeded_at_least(&app.db, 1000).await;
    if restart {
        redis.restart().await;
    } else {
        redis.flush().await;
    }
    let accepted = submitter.await.expect("submitter");
    assert_eq!(accepted, 5000, "every submission is accepted, Redis or not");
    let end = settled(&app.db, 5000, Duration::from_secs(240)).await;
    assert_eq!(end.succeeded, 5000, "{end:?}");
    report(&format!(
        "Redis {} during 5,000 jobs: {end:?}",
        if restart { "restarted" } else { "flushed" }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_during_a_5000_job_run_loses_nothing() {
    run_through_redis_loss(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_during_a_5000_job_run_loses_nothing() {
    run_through_redis_loss(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_cut_answers_503_then_everything_resumes() {
    let app = TestApp::spawn_with(Options {
        workers: 2,
        concurrency: 2,
        lease: Duration::from_secs(3),
        database_proxy: true,
        ..Options::default()
    })
    .await;
    let accepted = submit_many(&app.client, &app.base, 300, 50).await;
    assert_eq!(accepted, 300);
    succeeded_at_least(&app.db, 30).await;
    let proxy = app.proxy.as_ref().expect("proxy");
    proxy.cut();
    let started = Instant::now();
    let response = app
        .post_json(
            "/api/v1/jobs",
            &json!({"url": "https://example.com/", "job_type": "noop"}),
        )
        .await;
    let answered_in = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(
        answered_in < Duration::from_secs(16),
        "answered after {answered_in:?}"
    );
    assert_eq!(app.get("/ready").await.status(), 503);
    // The outage lasts ten seconds.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
    proxy.restore();
    let end = settled(&app.db, 300, Duration::from_secs(120)).await;
    assert_eq!(end.succeeded, 300, "{end:?}");
    eventually(
        "the API to answer again",
        Duration::from_secs(30),
        || async { (app.get("/ready").await.status() == 200).then_some(()) },
    )
    .await;
    report(&format!("database cut for 10 s during 300 jobs: {end:?}"));
}

/// Environment of a binary in a fault test: its own database and Redis, short leases, no
/// browser.
pub fn env(db: &TestDatabase, redis: &str, prefix: &TestPrefix) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis.to_owned()),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("JOB_LEASE", "3s".to_owned()),
        ("REDELIVER_AFTER", "5s".to_owned()),
        ("WORKER_CONCURRENCY", "4".to_owned()),
        ("RETRY_BACKOFF_BASE", "100ms".to_owned()),
        ("SHUTDOWN_GRACE", "5s".to_owned()),
        ("PATH", "/nonexistent".to_owned()),
        // Jobs are noop: no target is ever fetched.
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
    ]
}

pub async fn pg(db: &TestDatabase) -> AssertDb {
    AssertDb::Postgres(PgPool::connect(&db.url).await.expect("assertion pool"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_worker_completes_on_another_exactly_once() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let redis = crate::common::redis_url();
    let env = env(&db, &redis, &prefix);
    let client = reqwest::Client::new();
    let serve = Process::spawn("serve", &env);
    wait_healthy(&serve, &client).await;
    let mut doomed = Process::spawn("worker", &env);
    let body =
        json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 5000}});
    let id = crate::cli::submit(&client, &serve.base, &body).await;
    eventually("the job to run", Duration::from_secs(30), || async {
        let job = fetch_json(&client, &format!("{}/api/v1/jobs/{id}", serve.base)).await?;
        (job["state"] == "running").then_some(())
    })
    .await;
    let _other = Process::spawn("worker", &env);
    doomed.kill_9();
    let killed_at = chrono::Utc::now();
    let job = eventually(
        "the job to finish elsewhere",
        Duration::from_secs(60),
        || async {
            let job = fetch_json(&client, &format!("{}/api/v1/jobs/{id}", serve.base)).await?;
            (job["state"] == "succeeded").then_some(job)
        },
    )
    .await;
    assert_eq!(job["attempt"], 2, "{job}");
    let events = fetch_json(&client, &format!("{}/api/v1/jobs/{id}/events", serve.base))
        .await
        .expect("events");
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
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
    // The killed worker also held the scheduler's lock: the other worker took it over and
    // reaped the job within 10 s of the lease's end.
    let reaped = events["events"][2]["at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .expect("lease_expired time");
    let after_lease = reaped.with_timezone(&chrono::Utc) - killed_at - chrono::Duration::seconds(3);
    assert!(
        after_lease < chrono::Duration::seconds(10),
        "takeover took {after_lease} after the lease ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_10000_jobs_three_workers_killed_and_restarted_redis_flushed_twice() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let redis = OwnRedis::start().await;
    let env = env(&db, &redis.url, &prefix);
    let client = reqwest::Client::new();
    let serve = Process::spawn("serve", &env);
    wait_healthy(&serve, &client).await;
    let mut workers: Vec<Process> = (0..3).map(|_| Process::spawn("worker", &env)).collect();
    let assert_db = pg(&db).await;
    let total: usize = std::env::var("SOAK_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let submitter = tokio::spawn({
        let (client, base) = (client.clone(), serve.base.clone());
        async move { submit_many(&client, &base, total, 20).await }
    });
    let started = Instant::now();
    let (mut kills, mut flushes, mut round) = (0, 0, 0usize);
    loop {
        let now = tally(&assert_db).await;
        if submitter.is_finished() && now.created == total as i64 && now.unfinished == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the soak did not settle: {now:?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        round += 1;
        if std::env::var_os("SOAK_PROGRESS").is_some() {
            println!("soak {:>5.1} s: {now:?}", started.elapsed().as_secs_f64());
        }
        if now.unfinished > 0 {
            let victim = round % workers.len();
            workers[victim].kill_9();
            workers[victim] = Process::spawn("worker", &env);
            kills += 1;
        }
        if flushes < 2 && now.succeeded >= (flushes + 1) * total as i64 / 3 {
            redis.flush().await;
            flushes += 1;
        }
    }
    let accepted = submitter.await.expect("submitter");
    assert_eq!(accepted, total, "every submission is accepted");
    assert_eq!(flushes, 2, "Redis was flushed twice");
    let end = settled(&assert_db, total as i64, Duration::from_secs(60)).await;
    report(&format!(
        "soak: {total} jobs, 3 worker processes, {kills} killed with SIGKILL and restarted, Redis flushed {flushes} times, {:.1} s: created {} = succeeded {} + failed {} + cancelled {}; running or queued {}; succeeded events {} (jobs with more than one: {})",
        started.elapsed().as_secs_f64(),
        end.created,
        end.succeeded,
        end.failed,
        end.cancelled,
        end.unfinished,
        end.succeeded_events,
        end.doubly_succeeded,
    ));
    assert!(kills >= 3, "at least one kill per worker");
}
