//! Dispatch throughput of `noop` jobs, as a ratio against the raw limit of PostgreSQL
//! measured in the same run (the machines are shared and noisy; ratios travel, seconds don't).
//!
//! Run: `cargo bench --bench throughput` (PostgreSQL and Redis as for `cargo test`).
//! `BENCH_JOBS` (default 5000) and `BENCH_WORKERS` (default 2) change the load.
//!
//! - baseline: the PostgreSQL work any durable queue must do per job, done directly: three
//!   single-row commits (insert, claim, finish) per job, at the same concurrency as the workers.
//! - control-plane: jobs created through the store and rung into Redis, then drained by
//!   `BENCH_WORKERS` workers × cores slots through the real worker loop.

#[allow(dead_code)]
#[path = "../tests/it/common.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::engine::Engine;
use control_plane::job::JobSpec;
use control_plane::job::target::TargetPolicy;
use control_plane::queue::{Doorbell, JobQueue, RedisQueue};
use control_plane::store::{JobStore, PgStore};
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
            sqlx::query("UPDATE bench_jobs SET state = 'running', attempt = attempt + 1 WHERE id = $1 AND state = 'queued'")
                .bind(id)
                .execute(pool)
                .await
                .expect("claim");
            sqlx::query("UPDATE bench_jobs SET state = 'succeeded' WHERE id = $1 AND state = 'running'")
                .bind(id)
                .execute(pool)
                .await
                .expect("finish");
        })
        .await;
    jobs as f64 / started.elapsed().as_secs_f64()
}

/// Creates `jobs` noop jobs and drains them with `workers` workers; returns (submit/s, drain/s).
async fn control_plane(
    store: Arc<PgStore>,
    queue: Arc<RedisQueue>,
    jobs: usize,
    workers: usize,
    concurrency: usize,
) -> (f64, f64) {
    let spec =
        JobSpec::parse(&json!({"url": "https://example.com/", "job_type": "noop"})).expect("spec");
    let started = Instant::now();
    futures::stream::iter(0..jobs)
        .for_each_concurrent(16, |_| {
            let (store, queue, spec) = (store.clone(), queue.clone(), spec.clone());
            async move {
                let job = store.create("default", &spec).await.expect("create");
                queue
                    .ring(&[Doorbell {
                        job_id: job.id,
                        priority: job.priority,
                    }])
                    .await
                    .expect("ring");
            }
        })
        .await;
    let submit = jobs as f64 / started.elapsed().as_secs_f64();

    let stop = CancellationToken::new();
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let engine = Arc::new(Engine::new(TargetPolicy::new(true)).expect("engine"));
        let worker = Worker::new(
            store.clone(),
            queue.clone(),
            engine,
            WorkerConfig::new(concurrency),
        );
        handles.push(tokio::spawn(worker.run(stop.clone())));
    }
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
            .fetch_one(store.pool())
            .await
            .expect("count");
        if done as usize == jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain = jobs as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    for handle in handles {
        let _ = handle.await;
    }
    (submit, drain)
}

#[tokio::main]
async fn main() {
    let jobs = env_usize("BENCH_JOBS", 5_000);
    let workers = env_usize("BENCH_WORKERS", 2);
    let concurrency = std::thread::available_parallelism().map_or(2, usize::from);

    let db = common::TestDatabase::create().await;
    let prefix = common::TestPrefix::new();
    let store = Arc::new(
        PgStore::connect(&db.url, 20, Duration::from_secs(5))
            .await
            .expect("store"),
    );
    store.migrate().await.expect("migrate");
    let queue = Arc::new(
        RedisQueue::connect(&common::redis_url(), &prefix.0)
            .await
            .expect("queue"),
    );

    let raw = baseline(store.pool(), jobs, workers * concurrency).await;
    let (submit, drain) = control_plane(store.clone(), queue, jobs, workers, concurrency).await;

    println!("noop dispatch, {jobs} jobs, {workers} workers x {concurrency} slots");
    println!("  baseline (3 raw PostgreSQL commits per job): {raw:>8.0} jobs/s");
    println!("  control-plane create + ring:                 {submit:>8.0} jobs/s");
    println!("  control-plane drain (claim, run, settle, ack): {drain:>6.0} jobs/s");
    println!("  ratio drain / baseline: {:.2}", drain / raw);
}
