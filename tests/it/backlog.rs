//! A large backlog when the queue loses its doorbells: 100,000 queued jobs written straight
//! into a table whose statistics are from when it was nearly empty, then Redis flushed. The
//! leader must ring them all again in bounded statements, with no statement of any process
//! running longer than the leadership's lease, and the first of them must start at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::cli::{Process, command, wait_healthy};
use crate::common::{OwnRedis, TestDatabase, TestPrefix, eventually};
use crate::faults::{env, report};

/// Jobs in the backlog.
const BACKLOG: i64 = 100_000;
/// The leadership's lease of the processes under test (`LEADER_LEASE`).
const LEASE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_queue_over_100000_queued_jobs_is_rung_again_in_short_statements() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let redis = OwnRedis::start().await;
    let mut env = env(&db, &redis.url, &prefix);
    env.push(("LEADER_LEASE", format!("{}s", LEASE.as_secs())));
    let migrated = command(&["migrate"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("migrate");
    assert!(migrated.status.success(), "{migrated:?}");
    let pool = PgPool::connect(&db.url).await.expect("pool");
    // Statistics from when the table held a few thousand finished jobs and nothing queued,
    // and no analyze since: the planner believes a queued job is rare while a hundred
    // thousand are queued (as after a busy day with autovacuum behind).
    for statement in [
        "INSERT INTO jobs (id, domain, url, job_type, strategy, priority, max_attempts,
                           timeout_ms, state, attempt, doorbell, rung_at, finished_at)
         SELECT gen_random_uuid(), 'done.example', 'https://done.example/', 'noop', 'http',
                3, 3, 30000, 'succeeded', 1, 'rung', now(), now()
         FROM generate_series(1, 5000)",
        "ANALYZE jobs",
        "ALTER TABLE jobs SET (autovacuum_enabled = false)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    let client = reqwest::Client::new();
    let serve = Process::spawn("serve", &env);
    wait_healthy(&serve, &client).await;
    let workers: Vec<Process> = (0..2).map(|_| Process::spawn("worker", &env)).collect();
    // Each job to a site of its own, so pacing holds none back; all rung an hour ago.
    sqlx::query(
        "INSERT INTO jobs (id, domain, url, job_type, strategy, priority, max_attempts,
                           timeout_ms, state, run_at, doorbell, rung_at, created_at)
         SELECT gen_random_uuid(), 'site' || n || '.example', 'https://site' || n || '.example/',
                'noop', 'http', 3, 3, 30000, 'queued', now() - interval '1 hour', 'rung',
                now() - interval '1 hour', now() - interval '1 hour'
         FROM generate_series(1, $1) AS n",
    )
    .bind(BACKLOG)
    .execute(&pool)
    .await
    .expect("the backlog");
    let longest = watch_statements(&db.url);
    let flushed = Instant::now();
    redis.flush().await;
    let flushed_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&pool)
        .await
        .expect("now");

    let first_start = loop {
        let started: Option<i64> =
            sqlx::query_scalar("SELECT 1::bigint FROM jobs WHERE started_at IS NOT NULL LIMIT 1")
                .fetch_optional(&pool)
                .await
                .expect("a look for started jobs");
        if started.is_some() {
            break flushed.elapsed();
        }
        let logs: Vec<String> = workers.iter().map(Process::log).collect();
        assert!(
            flushed.elapsed() < Duration::from_secs(60),
            "no job of the backlog started within a minute; the workers logged:\n{}",
            logs.join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let all_rung = eventually(
        "every job to be rung again",
        Duration::from_secs(240),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE state = 'queued'
                   AND (doorbell = 'needed' OR rung_at < $1)",
            )
            .bind(flushed_at)
            .fetch_one(&pool)
            .await
            .ok()?;
            (waiting == 0).then(|| flushed.elapsed())
        },
    )
    .await;
    let longest = Duration::from_millis(longest.load(Ordering::Relaxed));
    report(&format!(
        "backlog of {BACKLOG} queued jobs, Redis flushed: first start after {:.1} s, every job rung again after {:.1} s, longest statement of any control-plane process {:.2} s (lease {} s)",
        first_start.as_secs_f64(),
        all_rung.as_secs_f64(),
        longest.as_secs_f64(),
        LEASE.as_secs()
    ));
    assert!(
        longest < LEASE,
        "a statement ran {longest:?}, longer than the lease"
    );
}

/// Samples `pg_stat_activity` every 100 ms for the statements of control-plane's processes
/// and keeps the longest running time seen (ms), until the test ends.
fn watch_statements(url: &str) -> Arc<AtomicU64> {
    let longest = Arc::new(AtomicU64::new(0));
    let (url, seen) = (url.to_owned(), longest.clone());
    tokio::spawn(async move {
        let Ok(pool) = PgPool::connect(&url).await else {
            return;
        };
        loop {
            let running: Option<f64> = sqlx::query_scalar(
                "SELECT max(extract(epoch FROM clock_timestamp() - query_start) * 1000)::float8
                 FROM pg_stat_activity
                 WHERE datname = current_database() AND state = 'active'
                   AND application_name LIKE 'control-plane%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap_or(None);
            if let Some(ms) = running {
                seen.fetch_max(ms as u64, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    longest
}
