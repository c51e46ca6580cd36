//! Throughput of `noop` jobs on every backend, beside the raw limit of PostgreSQL measured in
//! the same run (the machines are shared and noisy; ratios travel, seconds don't).
//!
//! Run: `cargo bench --bench throughput` (PostgreSQL and Redis as for `cargo test`).
//! `BENCH_JOBS` (default 5000) and `BENCH_WORKERS` (default 2) change the load.
//!
//! - baseline: the PostgreSQL work any durable queue must do per job, done directly: three
//!   single-row commits (insert, claim, finish) per job, at the same concurrency as the workers.
//! - each backend: `BENCH_WORKERS` workers × cores slots run while 16 concurrent clients submit
//!   the jobs through the dispatcher (stored, then rung, as the API does); the clock stops when
//!   every job has succeeded. Each job targets its own domain: every job passes its domain's
//!   pacer, and none waits for another. Creation errors (e.g. `database is locked`) are counted; a
//!   creation's latency runs until its doorbell is rung.

#[allow(dead_code, unused_macros, unused_imports)]
#[path = "../tests/it/common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use control_plane::app::Backends;
use control_plane::attempt::Attempts;
use control_plane::dispatch::Dispatcher;
use control_plane::engine::Engine;
use control_plane::job::target::TargetPolicy;
use control_plane::memory::Domains;
use control_plane::queue::RedisQueue;
use control_plane::spec::JobSpec;
use control_plane::store::{PgStore, SqliteStore};
use control_plane::worker::{Worker, WorkerConfig};
use futures::StreamExt;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Three commits per job on a scratch table, `concurrency` jobs at a time; returns jobs/s.
async fn baseline(pool: &PgPool, jobs: usize, concurrency: usize) -> f64 {
    sqlx::query(
        "CREATE TABLE bench_jobs (id bigint PRIMARY KEY, state text NOT NULL, attempt int NOT NULL DEFAULT 0)",
    )
    .execute(pool)
    .await
    .expect("scratch table");
    let started = Instant::now();
    futures::stream::iter(0..jobs as i64)
        .for_each_concurrent(concurrency, |id| async move {
            sqlx::query("INSERT INTO bench_jobs (id, state) VALUES ($1, 'queued')")
                .bind(id)
                .execute(pool)
                .await
                .expect("insert");
            sqlx::query(
                "UPDATE bench_jobs SET state = 'running', attempt = attempt + 1 WHERE id = $1 AND state = 'queued'",
            )
            .bind(id)
            .execute(pool)
            .await
            .expect("claim");
            sqlx::query(
                "UPDATE bench_jobs SET state = 'succeeded' WHERE id = $1 AND state = 'running'",
            )
            .bind(id)
            .execute(pool)
            .await
            .expect("finish");
        })
        .await;
    jobs as f64 / started.elapsed().as_secs_f64()
}

/// One backend's result.
struct Run {
    jobs_per_second: f64,
    create_errors: usize,
    /// Submission latencies (stored and rung) in milliseconds, sorted.
    create_ms: Vec<f64>,
}

impl Run {
    fn create_percentile(&self, p: f64) -> f64 {
        let last = self.create_ms.len().saturating_sub(1);
        self.create_ms
            .get(((last as f64) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// Runs `jobs` noop jobs end to end on a store and queue; see the module docs.
async fn run(backends: Backends, jobs: usize, workers: usize, concurrency: usize) -> Run {
    // Every job to its own registrable domain, so pacing (a cap of 4 per domain) admits
    // each at once and what is measured is its cost, not its limit.
    let specs: Vec<JobSpec> = (0..jobs)
        .map(|n| {
            let url = format!("https://site{n}.example/");
            JobSpec::parse(&json!({"url": url, "job_type": "noop"})).expect("spec")
        })
        .collect();
    let dispatcher = Dispatcher::new(
        backends.store.clone(),
        backends.queue.clone(),
        backends.signals.clone(),
    );
    let stop = CancellationToken::new();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let engine = Arc::new(Engine::new(TargetPolicy::new(true), None));
        let domains = Arc::new(Domains::new(backends.store.clone(), backends.pacer.clone()));
        let worker = Worker::new(
            dispatcher.clone(),
            Arc::new(Attempts::new(engine, domains)),
            backends.signals.clone(),
            WorkerConfig::new(concurrency),
        );
        handles.push(tokio::spawn(worker.run(stop.clone())));
    }
    // Submissions are admitted by the tenant's quota, as the API admits them (without
    // limits: what is measured is the queue).
    let quota = control_plane::quota::Quota {
        max_queued: control_plane::quota::MAX_QUEUED_CAP,
        submit_rate: control_plane::quota::MAX_SUBMIT_RATE,
    };
    let limiter =
        control_plane::quota::Limiter::new(quota, backends.store.clone(), backends.ledger.clone());
    let create_errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut create_ms: Vec<f64> = futures::stream::iter(0..jobs)
        .map(|n| {
            let (dispatcher, spec, errors, limiter) = (
                dispatcher.clone(),
                specs[n].clone(),
                create_errors.clone(),
                limiter.clone(),
            );
            async move {
                // A client retries a failed submission, as a real one would.
                let asked = Instant::now();
                loop {
                    let Ok(Ok(permit)) = limiter.admit("default").await else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let admitted = control_plane::dispatch::Admitted {
                        tenant: "default".to_owned(),
                        permit,
                        write_by: control_plane::dispatch::WriteBy::at(
                            (Instant::now() + Duration::from_secs(15)).into(),
                        ),
                    };
                    match dispatcher.submit(admitted, &spec, None).await {
                        Ok(_) => return asked.elapsed().as_secs_f64() * 1000.0,
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    create_ms.sort_by(f64::total_cmp);
    loop {
        let stats = backends.store.stats().await.expect("stats");
        if stats.by_state.get("succeeded").copied() == Some(jobs as i64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let jobs_per_second = jobs as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    for handle in handles {
        let _ = handle.await;
    }
    Run {
        jobs_per_second,
        create_errors: create_errors.load(Ordering::Relaxed),
        create_ms,
    }
}

#[tokio::main]
async fn main() {
    let jobs = env_usize("BENCH_JOBS", 5_000);
    let workers = env_usize("BENCH_WORKERS", 2);
    let concurrency = std::thread::available_parallelism().map_or(2, usize::from);

    let db = common::TestDatabase::create().await;
    let prefix = common::TestPrefix::new();
    let pg = Arc::new(
        PgStore::connect(
            &db.url,
            control_plane::store::PgPools::new(20, Duration::from_secs(5)),
        )
        .await
        .expect("store"),
    );
    pg.migrate().await.expect("migrate");
    let redis = RedisQueue::connect(&common::redis_url(), &prefix.0)
        .await
        .expect("queue");
    let raw = baseline(pg.pool(), jobs, workers * concurrency).await;
    let production = run(Backends::production(pg, &redis), jobs, workers, concurrency).await;

    let dir = common::TestDataDir::new();
    let sqlite = Arc::new(SqliteStore::open(&dir.0).await.expect("sqlite"));
    let embedded = run(Backends::embedded(sqlite), jobs, workers, concurrency).await;

    let dir = common::TestDataDir::new();
    let sqlite = Arc::new(
        SqliteStore::open_with_writers(&dir.0, 4)
            .await
            .expect("sqlite"),
    );
    let shared_writers = run(Backends::embedded(sqlite), jobs, workers, concurrency).await;

    println!(
        "noop jobs end to end, {jobs} jobs, {workers} workers x {concurrency} slots, 16 submitting clients"
    );
    println!("  baseline: 3 raw PostgreSQL commits per job      {raw:>7.0} jobs/s");
    for (name, run) in [
        ("PostgreSQL + Redis Streams", &production),
        ("embedded: SQLite (1 writer) + in-process", &embedded),
        ("SQLite with 4 writers + busy timeout", &shared_writers),
    ] {
        println!(
            "  {name:<46} {:>7.0} jobs/s  ({:.2} x baseline, {} create errors, create p50 {:.1} ms p99 {:.1} ms max {:.1} ms)",
            run.jobs_per_second,
            run.jobs_per_second / raw,
            run.create_errors,
            run.create_percentile(0.5),
            run.create_percentile(0.99),
            run.create_percentile(1.0),
        );
    }
}
