//! The queue as a user sees it: `serve` and `worker` processes on PostgreSQL and Redis, driven
//! over HTTP, beside the limits of the parts measured in the same run (the machines are shared
//! and noisy; ratios travel, seconds don't).
//!
//! Run: `cargo bench --bench e2e` (PostgreSQL, Redis and `pgbench`; Node.js and npm for the
//! BullMQ peer, skipped without them). `scripts/bench` runs this and the browser benchmark.
//! `BENCH_SECONDS` (default 10) sets each load's length; `BENCH_ONLY` picks loads by name
//! (`submit`, `batch`, `e2e`, `steady`, `scale`, `batch16k`, `purge`, `bullmq`,
//! comma-separated; all by default).
//!
//! - baseline: a durable job's life done directly on PostgreSQL by `pgbench`: three
//!   single-row commits (insert, claim, finish) per job, at 8 and at 32 clients.
//! - submit alone: 32 connections posting `noop` jobs to `POST /api/v1/jobs` as fast as they
//!   are answered, no worker running: requests/s and latency.
//! - end to end: the same load with one worker process (32 slots) running them; the rate is
//!   jobs / (last finished − first created), and every start delay (`started_at −
//!   created_at`) is read back, with the jobs rung again by the scheduler (none expected).
//! - steady: 1,000 requests/s at a constant rate while the worker runs; latency from each
//!   request's intended start (so a stall counts against every request it delays).
//! - batch: `POST /api/v1/jobs/batch` of 1,000 jobs, 4 at a time, on a stack of its own:
//!   jobs created per second,
//!   beside its own limit: pgbench having PostgreSQL make 1,000 job rows and their events
//!   per statement (`generate_series`) in the same migrated schema, 4 clients.
//! - scale: the end-to-end load with 1, 2 and 4 worker processes sharing 32 slots: jobs/s,
//!   and per job PostgreSQL's commits (`pg_stat_database`) and CPU (every `postgres`
//!   process, from `/proc`), and the CPU of `serve` and the workers.
//! - batch16k: batches of 1,000 jobs whose payloads are 16 KiB each (incompressible), one at
//!   a time, beside PostgreSQL making the same rows and events in one statement (1 client).
//! - purge: retention deleting 100,000 expired jobs (and their 300,000 events) while the
//!   steady load runs: jobs and rows purged per second, POST p99 with the purge beside the
//!   same load without it on the same stack, and the tables' sizes afterwards.
//! - churn (only with `BENCH_ONLY=churn`): jobs kept one minute, made at 200 requests/s for
//!   `CHURN_MINUTES`; the jobs kept and the tables' sizes each minute level off.
//! - peer: BullMQ (`benches/bullmq`, installed from npm at bench time) on the same Redis, 32
//!   producers and a worker of concurrency 32, nothing durable.

#[allow(dead_code, unused_macros, unused_imports)]
#[path = "../tests/it/common.rs"]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_control-plane");

fn seconds() -> u64 {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// Latencies in milliseconds, sorted, and how many requests failed.
#[derive(Default)]
struct Latencies {
    ms: Vec<f64>,
    failed: usize,
}

impl Latencies {
    fn percentile(&self, p: f64) -> f64 {
        percentile(&self.ms, p)
    }

    fn summary(&self) -> String {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, {} failed",
            self.percentile(0.5),
            self.percentile(0.99),
            self.percentile(0.999),
            self.failed
        )
    }

    /// Adds `other`'s samples (kept sorted).
    fn merge(&mut self, other: Latencies) {
        self.ms.extend(other.ms);
        self.ms.sort_by(f64::total_cmp);
        self.failed += other.failed;
    }
}

/// A database and Redis prefix of their own, with `serve` (and worker processes) on them.
struct Stack {
    db: common::TestDatabase,
    _prefix: common::TestPrefix,
    pool: PgPool,
    base: String,
    key: String,
    serve: Child,
    workers: Vec<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn process(stack_env: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (name, value) in stack_env {
        command.env(name, value);
    }
    command
        .env("AUTH", "keys")
        .env("QUOTA_SUBMIT_RATE", "1000000")
        .env("QUOTA_MAX_QUEUED", "100000000")
        .env("ALLOW_PRIVATE_TARGETS", "true")
        .env("BROWSER", "off")
        .env("RUST_LOG", "warn");
    command
}

impl Stack {
    /// `serve` and `workers` worker processes of `slots` slots each.
    async fn start(workers: usize, slots: usize) -> Stack {
        Stack::start_with(workers, slots, &[]).await
    }

    /// The same, with `settings` added to every process's environment.
    async fn start_with(workers: usize, slots: usize, settings: &[(&'static str, &str)]) -> Stack {
        let db = common::TestDatabase::create().await;
        let prefix = common::TestPrefix::new();
        let port = free_port();
        let mut env = vec![
            ("DATABASE_URL", db.url.clone()),
            ("REDIS_URL", common::redis_url()),
            ("QUEUE_PREFIX", prefix.0.clone()),
        ];
        env.extend(
            settings
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned())),
        );
        let migrated = process(&env, &["migrate"]).status().expect("migrate");
        assert!(migrated.success(), "migrate failed");
        let out = process(
            &env,
            &["keys", "create", "--tenant", "bench", "--role", "admin"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .expect("create a key");
        let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let serve = process(&env, &["serve", "--no-migrate"])
            .env("BIND", format!("127.0.0.1:{port}"))
            .spawn()
            .expect("serve");
        let workers = (0..workers)
            .map(|_| {
                process(&env, &["worker"])
                    .env("WORKER_CONCURRENCY", slots.to_string())
                    .env("BIND", format!("127.0.0.1:{}", free_port()))
                    .spawn()
                    .expect("worker")
            })
            .collect();
        let pool = PgPool::connect(&db.url).await.expect("pool");
        let stack = Stack {
            db,
            _prefix: prefix,
            pool,
            base: format!("http://127.0.0.1:{port}"),
            key,
            serve,
            workers,
        };
        stack.wait_ready().await;
        stack
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Ok(r) = client.get(format!("{}/health", self.base)).send().await
                && r.status() == 200
            {
                // One domain for every job: its pace must not be what is measured.
                let set = self
                    .client()
                    .put(format!("{}/api/v1/domains/example.com/policy", self.base))
                    .json(&json!({"cap": 1000}))
                    .send()
                    .await
                    .expect("policy");
                assert_eq!(set.status(), 200, "set the domain's policy");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not become healthy");
    }

    fn client(&self) -> reqwest::Client {
        common::client_with_key(&self.key)
    }

    /// Waits until every job is finished.
    async fn drained(&self) {
        let until = Instant::now() + Duration::from_secs(600);
        loop {
            let left: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')",
            )
            .fetch_one(&self.pool)
            .await
            .expect("count");
            if left == 0 {
                return;
            }
            assert!(Instant::now() < until, "{left} jobs never finished");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.serve).chain(self.workers.iter_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn noop_body() -> Value {
    json!({"url": "https://example.com/", "job_type": "noop"})
}

/// A `noop` job's request body, written once: the load generator shares the machine's two
/// cores with what it measures, so it does as little per request as it can (as `wrk` does).
fn noop_request(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    static BODY: std::sync::LazyLock<bytes::Bytes> =
        std::sync::LazyLock::new(|| bytes::Bytes::from(noop_body().to_string()));
    client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(BODY.clone())
}

/// `connections` clients posting one job after another for `length`: requests/s, latencies.
async fn closed_loop(stack: &Stack, connections: usize, length: Duration) -> (f64, Latencies) {
    let url = format!("{}/api/v1/jobs", stack.base);
    let all = Arc::new(Mutex::new(Latencies::default()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, all) = (stack.client(), url.clone(), all.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Latencies::default();
            while started.elapsed() < length {
                let asked = Instant::now();
                match noop_request(&client, &url).send().await {
                    Ok(r) if r.status() == 201 => {
                        mine.ms.push(asked.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => mine.failed += 1,
                }
            }
            let mut all = all.lock().await;
            all.ms.extend(mine.ms);
            all.failed += mine.failed;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = std::mem::take(&mut *all.lock().await);
    all.ms.sort_by(f64::total_cmp);
    (all.ms.len() as f64 / elapsed, all)
}

/// `rate` requests a second for `length`, each timed from when it was due to start.
async fn open_loop(stack: &Stack, rate: u32, length: Duration) -> Latencies {
    let total = (length.as_secs_f64() * f64::from(rate)) as u32;
    open_loop_while(stack, rate, |n| n < total).await
}

/// Requests at `rate` per second, the `n`th sent while `more(n)`.
async fn open_loop_while(stack: &Stack, rate: u32, more: impl Fn(u32) -> bool) -> Latencies {
    let url = format!("{}/api/v1/jobs", stack.base);
    let client = stack.client();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in (0..).take_while(|n| more(*n)) {
        let due = started + interval * n;
        tokio::time::sleep_until(due.into()).await;
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let answered = noop_request(&client, &url).send().await;
            let ok = matches!(answered, Ok(ref r) if r.status() == 201);
            (ok, due.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        match task.await {
            Ok((true, ms)) => all.ms.push(ms),
            _ => all.failed += 1,
        }
    }
    all.ms.sort_by(f64::total_cmp);
    all
}

/// Jobs/s, start delays (ms, sorted) and jobs rung again by the scheduler, read back.
async fn end_to_end(pool: &PgPool) -> (f64, Vec<f64>, i64) {
    let (rate,): (f64,) = sqlx::query_as(
        "SELECT count(*) / greatest(extract(epoch FROM max(finished_at) - min(created_at)), 0.001)::float8
         FROM jobs",
    )
    .fetch_one(pool)
    .await
    .expect("rate");
    let mut delays: Vec<f64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM started_at - created_at) * 1000)::float8 FROM jobs",
    )
    .fetch_all(pool)
    .await
    .expect("delays");
    delays.sort_by(f64::total_cmp);
    let rescued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_events WHERE kind = 'dispatched'")
            .fetch_one(pool)
            .await
            .expect("rescued");
    if rescued > 0 {
        let timelines: Vec<String> = sqlx::query_scalar(
            "SELECT string_agg(kind || '@' || to_char(at, 'HH24:MI:SS.MS') || coalesce(' ' || detail::text, ''), ', ' ORDER BY id)
             FROM job_events WHERE job_id IN (SELECT job_id FROM job_events WHERE kind = 'dispatched' LIMIT 3)
             GROUP BY job_id",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        println!("          rung again: {timelines:#?}");
    }
    (rate, delays, rescued)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    sorted
        .get(((last as f64) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Start delays (sorted, ms) and the jobs rung again, as printed.
fn starts(delays: &[f64], rescued: i64) -> String {
    format!(
        "p50 {:.0} ms, p99.9 {:.0} ms, max {:.0} ms; rung again by the scheduler: {rescued}",
        percentile(delays, 0.5),
        percentile(delays, 0.999),
        delays.last().copied().unwrap_or(f64::NAN),
    )
}

/// `pgbench`'s job life (insert, claim, finish: three commits) at `clients`: jobs/s.
fn pgbench(url: &str, clients: u32, length: Duration) -> f64 {
    pgbench_script(
        url,
        "INSERT INTO bench_jobs (state) VALUES ('queued') RETURNING id \\gset\n\
         UPDATE bench_jobs SET state = 'running', attempt = attempt + 1 WHERE id = :id AND state = 'queued';\n\
         UPDATE bench_jobs SET state = 'succeeded' WHERE id = :id AND state = 'running';\n",
        clients,
        length,
    )
}

/// The batch route's limit on this machine: `size` job rows and their `created` events made
/// by PostgreSQL itself in one statement (`generate_series`: no client, no parsing of rows),
/// straight into a migrated control-plane database (every index and the event table), at 4
/// clients like the batches: jobs/s. Nothing that stores these rows can go faster here.
fn pgbench_batch_insert(url: &str, size: usize, length: Duration) -> f64 {
    let script = format!(
        "WITH j AS (INSERT INTO jobs (id, tenant_id, domain, url, job_type, strategy, priority, \
         max_attempts, timeout_ms, doorbell, rung_at) \
         SELECT lpad(to_hex(nextval('bench_ids')), 32, '0')::uuid, 'raw', 'example.com', \
         'https://example.com/', 'noop', 'http', 3, 3, 30000, 'ringing', now() \
         FROM generate_series(1, {size}) RETURNING id) \
         INSERT INTO job_events (job_id, kind, attempt, detail) SELECT id, 'created', 0, '{{}}' FROM j;\n"
    );
    pgbench_script(url, &script, 4, length) * size as f64
}

/// Runs `script` under `pgbench` at `clients`: its transactions per second.
fn pgbench_script(url: &str, script: &str, clients: u32, length: Duration) -> f64 {
    let file = std::env::temp_dir().join(format!("cp-bench-{}.sql", std::process::id()));
    std::fs::write(&file, script).expect("script");
    let out = Command::new("pgbench")
        .args(["-n", "-j", "2", "-c", &clients.to_string()])
        .args(["-T", &length.as_secs().to_string(), "-f"])
        .arg(&file)
        .arg(url)
        .output()
        .expect("pgbench (Debian: postgresql-client)");
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "pgbench printed no tps: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Batches of `size` jobs, 4 in flight, for `length`: jobs created per second and batches
/// failed. Each answer is read whole, as a client would.
async fn batches(stack: &Stack, size: usize, length: Duration) -> (f64, usize) {
    let url = format!("{}/api/v1/jobs/batch", stack.base);
    // Written once, as a load generator sends the same bytes again.
    let body = serde_json::to_vec(&json!({"jobs": vec![noop_body(); size]})).expect("body");
    let client = stack.client();
    let started = Instant::now();
    let mut lanes = Vec::new();
    for _ in 0..4 {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        lanes.push(tokio::spawn(async move {
            let (mut created, mut failed) = (0, 0);
            while started.elapsed() < length {
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let read = match answer {
                    Ok(r) if r.status() == 201 => r.bytes().await.is_ok(),
                    _ => false,
                };
                if read {
                    created += size;
                } else {
                    failed += 1;
                }
            }
            (created, failed)
        }));
    }
    let (mut created, mut failed) = (0, 0);
    for lane in lanes {
        let (c, f) = lane.await.expect("a batch lane");
        created += c;
        failed += f;
    }
    (created as f64 / started.elapsed().as_secs_f64(), failed)
}

/// BullMQ end to end on the same Redis: jobs/s, or why it was skipped.
fn bullmq(seconds: u64) -> Result<f64, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bullmq");
    let npm = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("npm: {e}"))?;
    if !npm.success() {
        return Err("npm ci failed".into());
    }
    let out = Command::new("node")
        .arg("bench.mjs")
        .current_dir(&dir)
        .env("REDIS_URL", common::redis_url())
        .env("BENCH_SECONDS", seconds.to_string())
        .output()
        .map_err(|e| format!("node: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("jobs_per_second ")?.trim().parse().ok())
        .ok_or_else(|| format!("bench.mjs printed no rate: {text}"))
}

/// Whether `load` is to run: every load unless `BENCH_ONLY` names some (`steady,e2e`).
fn wants(load: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|l| l.trim() == load))
}

/// Whether `BENCH_ONLY` names `load` (loads that never run by default).
fn only(load: &str) -> bool {
    std::env::var("BENCH_ONLY").is_ok_and(|only| only.split(',').any(|l| l.trim() == load))
}

/// pgbench's job life at 8 and 32 clients, in a scratch database.
async fn job_life(length: Duration) -> (f64, f64) {
    let scratch = common::TestDatabase::create().await;
    let pool = PgPool::connect(&scratch.url).await.expect("scratch");
    sqlx::query("CREATE TABLE bench_jobs (id bigserial PRIMARY KEY, state text NOT NULL, attempt int NOT NULL DEFAULT 0)")
        .execute(&pool)
        .await
        .expect("scratch table");
    let raw8 = pgbench(&scratch.url, 8, length);
    let raw32 = pgbench(&scratch.url, 32, length);
    println!(
        "baseline  pgbench job life (3 commits)   8 clients {raw8:>7.0} jobs/s   32 clients {raw32:>7.0} jobs/s"
    );
    (raw8, raw32)
}

/// `POST /api/v1/jobs` alone.
async fn submissions(length: Duration, raw32: f64) {
    let alone = Stack::start(0, 0).await;
    let (rps, latency) = closed_loop(&alone, 32, length).await;
    println!(
        "submit    POST alone, 32 connections      {rps:>7.0} req/s ({:.2}x the 32-client job life); {}",
        rps / raw32,
        latency.summary()
    );
}

/// Batches on a stack of their own, beside raw inserts into its schema.
async fn batch_load(length: Duration, raw32: f64) {
    let stack = Stack::start(0, 0).await;
    let (created, failed) = batches(&stack, 1_000, length).await;
    sqlx::query("CREATE SEQUENCE bench_ids")
        .execute(&stack.pool)
        .await
        .expect("a sequence for raw ids");
    let raw_batch = pgbench_batch_insert(&stack.db.url, 1_000, length);
    println!(
        "batch     POST /jobs/batch × 1,000, 4 at once {created:>7.0} jobs/s created ({:.1}x the 32-client job life, {:.2}x PostgreSQL alone); {failed} failed",
        created / raw32,
        created / raw_batch
    );
    println!(
        "baseline  PostgreSQL alone making 1,000 jobs + events per statement, 4 clients, same schema {raw_batch:>7.0} jobs/s"
    );
}

/// 32 connections submitting while one worker runs the jobs.
async fn end_to_end_load(length: Duration, (raw8, raw32): (f64, f64)) {
    let full = Stack::start(1, 32).await;
    let (rps, latency) = closed_loop(&full, 32, length).await;
    full.drained().await;
    let (rate, delays, rescued) = end_to_end(&full.pool).await;
    println!(
        "e2e       32 connections, 1 worker × 32  {rate:>7.0} jobs/s = {:.2}x the 32-client job life ({:.2}x 8-client); POST {rps:.0} req/s, {}",
        rate / raw32,
        rate / raw8,
        latency.summary()
    );
    println!(
        "          start delay (queue wait included) {}",
        starts(&delays, rescued)
    );
}

/// CPU seconds (user and system, with those of reaped children) of the process `pid`.
fn cpu_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command's closing parenthesis, from the state (field 3) on:
    // utime, stime, cutime, cstime are fields 14 to 17.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    *TICKS
}

/// CPU seconds of every PostgreSQL server process on the machine (exited backends are in
/// the postmaster's reaped-children times).
fn postgres_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .map(cpu_of)
        .sum()
}

/// What a stack has used so far: its database's commits, and CPU seconds.
#[derive(Debug, Clone, Copy)]
struct Usage {
    commits: f64,
    postgres: f64,
    serve: f64,
    workers: f64,
}

impl Stack {
    async fn usage(&self) -> Usage {
        let commits: i64 = sqlx::query_scalar(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&self.pool)
        .await
        .expect("commits");
        Usage {
            commits: commits as f64,
            postgres: postgres_cpu(),
            serve: cpu_of(self.serve.id()),
            workers: self.workers.iter().map(|w| cpu_of(w.id())).sum(),
        }
    }
}

/// 1, 2 and 4 worker processes at the same 32 slots in all, each under the e2e load:
/// jobs/s, and per job PostgreSQL's commits and CPU, and the processes' own CPU.
async fn scale_load(length: Duration, raw32: f64) {
    for workers in [1, 2, 4] {
        let stack = Stack::start(workers, 32 / workers).await;
        let statements = std::env::var_os("BENCH_STATEMENTS").is_some();
        if statements {
            for sql in [
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                "SELECT pg_stat_statements_reset()::text",
            ] {
                sqlx::query(sql)
                    .execute(&stack.pool)
                    .await
                    .expect("pg_stat_statements (shared_preload_libraries)");
            }
        }
        let before = stack.usage().await;
        let (_, latency) = closed_loop(&stack, 32, length).await;
        stack.drained().await;
        // PostgreSQL publishes a backend's counters within a second of its last commit.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let after = stack.usage().await;
        let (rate, _, rescued) = end_to_end(&stack.pool).await;
        let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&stack.pool)
            .await
            .expect("jobs");
        let per_job = |a: f64, b: f64| (a - b) / jobs.max(1) as f64;
        println!(
            "scale     {workers} worker(s) × {:>2} slots  {rate:>7.0} jobs/s ({:.2}x the 32-client job life); per job: PostgreSQL {:.3} commits, {:.0} µs CPU; serve {:.0} µs, workers {:.0} µs; POST p99 {:.1} ms; rung again {rescued}",
            32 / workers,
            rate / raw32,
            per_job(after.commits, before.commits),
            per_job(after.postgres, before.postgres) * 1e6,
            per_job(after.serve, before.serve) * 1e6,
            per_job(after.workers, before.workers) * 1e6,
            latency.percentile(0.99),
        );
        if statements {
            print_statements(&stack.pool, jobs).await;
        }
    }
}

/// The statements of the stack's database by calls per job, and their time
/// (`BENCH_STATEMENTS`, on a server that preloads pg_stat_statements).
async fn print_statements(pool: &PgPool, jobs: i64) {
    let rows: Vec<(i64, f64, String)> = sqlx::query_as(
        "SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY total_exec_time DESC LIMIT 14",
    )
    .fetch_all(pool)
    .await
    .expect("pg_stat_statements");
    for (calls, ms, query) in rows {
        println!(
            "          {:>6.3} calls/job {:>7.1} µs/job  {query}",
            calls as f64 / jobs.max(1) as f64,
            ms * 1000.0 / jobs.max(1) as f64
        );
    }
}

/// A 16 KiB payload that does not compress (hex of random bytes), as a string expression.
fn payload_16k() -> Value {
    use rand::Rng;
    let mut rng = rand::rng();
    let hex: String = (0..8_192)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect();
    json!({"evaluate": format!("'{hex}'")})
}

/// Batches of 1,000 jobs with 16 KiB payloads, beside PostgreSQL making the same rows.
async fn batch_16k_load(length: Duration) {
    let stack = Stack::start(0, 0).await;
    let url = format!("{}/api/v1/jobs/batch", stack.base);
    let jobs: Vec<Value> = (0..1_000)
        .map(|_| json!({"url": "https://example.com/", "job_type": "navigate_extract", "strategy": "vanilla", "payload": payload_16k()}))
        .collect();
    let body = bytes::Bytes::from(serde_json::to_vec(&json!({ "jobs": jobs })).expect("body"));
    let client = stack.client();
    let started = Instant::now();
    let (mut created, mut failed, mut took) = (0usize, 0usize, Vec::new());
    while started.elapsed() < length {
        let asked = Instant::now();
        let answer = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let stored = match answer {
            Ok(r) if r.status() == 201 => r.bytes().await.is_ok(),
            _ => false,
        };
        if stored {
            created += 1_000;
            took.push(asked.elapsed().as_secs_f64() * 1000.0);
        } else {
            failed += 1;
        }
    }
    let rate = created as f64 / started.elapsed().as_secs_f64();
    took.sort_by(f64::total_cmp);
    sqlx::query("CREATE SEQUENCE bench_ids")
        .execute(&stack.pool)
        .await
        .expect("a sequence for raw ids");
    // The same rows made by PostgreSQL itself: a 16 KiB payload of random hex as a literal
    // (as incompressible as the requests'), 1,000 rows and their events per statement.
    let literal = payload_16k().to_string().replace('\'', "''");
    let script = format!(
        "WITH j AS (INSERT INTO jobs (id, tenant_id, domain, url, job_type, strategy, \
         priority, payload, max_attempts, timeout_ms, doorbell, rung_at) \
         SELECT lpad(to_hex(nextval('bench_ids')), 32, '0')::uuid, 'raw', 'example.com', \
         'https://example.com/', 'navigate_extract', 'vanilla', 3, '{literal}'::jsonb, \
         3, 30000, 'ringing', now() FROM generate_series(1, 1000) RETURNING id) \
         INSERT INTO job_events (job_id, kind, attempt, detail) SELECT id, 'created', 0, '{{}}' FROM j;\n"
    );
    let raw = pgbench_script(&stack.db.url, &script, 1, length) * 1_000.0;
    println!(
        "batch16k  POST /jobs/batch × 1,000 jobs of 16 KiB, one at a time {rate:>7.0} jobs/s ({:.2}x PostgreSQL alone), one batch p50 {:.0} ms, max {:.0} ms; {failed} failed",
        rate / raw,
        percentile(&took, 0.5),
        took.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "baseline  PostgreSQL alone making the same 1,000 rows + events per statement, 1 client {raw:>7.0} jobs/s"
    );
    // One job at a time: a 16 KiB payload beside a small one, one request after another.
    let url = format!("{}/api/v1/jobs", stack.base);
    let latency = |job: Value| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body = bytes::Bytes::from(serde_json::to_vec(&job).expect("body"));
            let mut took = Vec::new();
            for _ in 0..200 {
                let asked = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                if matches!(answer, Ok(ref r) if r.status() == 201) {
                    took.push(asked.elapsed().as_secs_f64() * 1000.0);
                }
            }
            took.sort_by(f64::total_cmp);
            took
        }
    };
    let small = latency(json!({"url": "https://example.com/", "job_type": "navigate_extract", "strategy": "vanilla", "payload": {"evaluate": "1"}})).await;
    let large = latency(json!({"url": "https://example.com/", "job_type": "navigate_extract", "strategy": "vanilla", "payload": payload_16k()})).await;
    println!(
        "single16k one job of 16 KiB, one request at a time: p50 {:.1} ms, p99 {:.1} ms; beside one of a few bytes: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&large, 0.5),
        percentile(&large, 0.99),
        percentile(&small, 0.5),
        percentile(&small, 0.99),
    );
}

/// 1,000 requests/s at a constant rate while one worker runs the jobs.
async fn steady_load(length: Duration) {
    let steady = Stack::start(1, 32).await;
    let latency = open_loop(&steady, 1_000, length).await;
    steady.drained().await;
    let (_, delays, rescued) = end_to_end(&steady.pool).await;
    println!(
        "steady    1,000 req/s constant, worker on  POST {}",
        latency.summary()
    );
    println!("          start delay {}", starts(&delays, rescued));
}

/// Expired jobs the purge load deletes.
const EXPIRED: i64 = 100_000;

/// Makes `count` jobs of tenant `bench` that succeeded eight days ago, each with its three
/// events, in two statements.
async fn expire(pool: &PgPool, count: i64) {
    sqlx::query(
        "INSERT INTO jobs (id, tenant_id, domain, url, job_type, strategy, priority,
                           max_attempts, timeout_ms, state, attempt, result, created_at,
                           started_at, finished_at, updated_at)
         SELECT gen_random_uuid(), 'bench', 'example.com', 'https://example.com/', 'noop',
                'http', 3, 3, 30000, 'succeeded', 1, '{}'::jsonb, now() - interval '8 days',
                now() - interval '8 days', now() - interval '8 days', now() - interval '8 days'
         FROM generate_series(1, $1)",
    )
    .bind(count)
    .execute(pool)
    .await
    .expect("expired jobs");
    sqlx::query(
        "INSERT INTO job_events (job_id, kind, attempt, at)
         SELECT j.id, k.kind, 1, j.finished_at
         FROM jobs j CROSS JOIN (VALUES ('created'), ('started'), ('succeeded')) AS k (kind)
         WHERE j.finished_at < now() - interval '7 days'",
    )
    .execute(pool)
    .await
    .expect("their events");
}

/// Whether expired jobs are left.
async fn expired_left(pool: &PgPool) -> bool {
    // Answered from the retention index's first entry: the look must not be load itself.
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM jobs
                        WHERE state = 'succeeded' AND finished_at < now() - interval '7 days')",
    )
    .fetch_one(pool)
    .await
    .expect("look")
}

/// Holds (`true`) or releases the purge of tenant `bench`'s jobs with a retention override
/// (the purge reads the ages before every batch).
async fn hold_purge(stack: &Stack, hold: bool) {
    let url = format!("{}/api/v1/tenants/bench/retention", stack.base);
    let client = stack.client();
    let answer = if hold {
        client
            .put(url)
            .json(&json!({"succeeded": "forever"}))
            .send()
    } else {
        client.delete(url).send()
    }
    .await
    .expect("retention");
    assert!(
        answer.status().is_success(),
        "retention: {}",
        answer.status()
    );
}

/// Retention deleting [`EXPIRED`] jobs while 1,000 requests/s arrive: rows purged per second,
/// and POST latency with and without the purge in the same run, over the same tables.
/// Windows of `length` alternate: the purge held back by a tenant override, then released,
/// until no expired job is left; each side's latencies are pooled. Alternating keeps what
/// changes over a long run (the tables growing, autovacuum, checkpoints) on both sides.
async fn purge_load(length: Duration) {
    let share = std::env::var("RETENTION_SHARE").unwrap_or_else(|_| "10".to_owned());
    let stack = Stack::start_with(
        1,
        32,
        &[("RETENTION_INTERVAL", "1s"), ("RETENTION_SHARE", &share)],
    )
    .await;
    hold_purge(&stack, true).await;
    expire(&stack.pool, EXPIRED).await;
    // Warm: the first seconds of a new stack are not what either side measures.
    open_loop(&stack, 1_000, Duration::from_secs(3)).await;
    stack.drained().await;
    let (mut quiet, mut busy) = (Latencies::default(), Latencies::default());
    let (mut purging, mut windows) = (Duration::ZERO, 0);
    while expired_left(&stack.pool).await {
        quiet.merge(open_loop(&stack, 1_000, length).await);
        hold_purge(&stack, false).await;
        let released = Instant::now();
        busy.merge(open_loop(&stack, 1_000, length).await);
        hold_purge(&stack, true).await;
        purging += released.elapsed();
        windows += 1;
    }
    let seconds = purging.as_secs_f64();
    println!(
        "purge     {EXPIRED} expired jobs (3 events each) gone in {windows} windows of {} s released ({seconds:.0} s) at RETENTION_SHARE={share}: at least {:.0} jobs/s, {:.0} rows/s, while 1,000 req/s arrive",
        length.as_secs(),
        EXPIRED as f64 / seconds,
        (EXPIRED * 4) as f64 / seconds
    );
    println!(
        "          POST p99 {:.1} ms with the purge vs {:.1} ms without ({:.2}x); with: {}; without: {}",
        busy.percentile(0.99),
        quiet.percentile(0.99),
        busy.percentile(0.99) / quiet.percentile(0.99),
        busy.summary(),
        quiet.summary()
    );
    stack.drained().await;
    let sizes: (i64, i64, i64) = sqlx::query_as(
        "SELECT pg_table_size('jobs'), pg_indexes_size('jobs'), pg_total_relation_size('job_events')",
    )
    .fetch_one(&stack.pool)
    .await
    .expect("sizes");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&stack.pool)
        .await
        .expect("rows");
    println!(
        "          after: {rows} jobs; jobs table {:.1} MB, its indexes {:.1} MB, job_events {:.1} MB",
        sizes.0 as f64 / 1e6,
        sizes.1 as f64 / 1e6,
        sizes.2 as f64 / 1e6
    );
}

/// Jobs kept one minute, created at a constant 200 requests/s for `CHURN_MINUTES` (10):
/// every minute, the jobs kept and the sizes of `jobs`, its indexes and `job_events`. Under
/// churn they must level off, not grow with the jobs ever made.
async fn churn_load() {
    let minutes: u32 = std::env::var("CHURN_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let stack = Stack::start_with(
        1,
        32,
        &[("RETAIN_SUCCEEDED", "1m"), ("RETENTION_INTERVAL", "5s")],
    )
    .await;
    // Retention frees space only through autovacuum; a server with it off grows whatever is
    // deleted (the services of some test machines run that way), so the run says which.
    let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
        .fetch_one(&stack.pool)
        .await
        .expect("autovacuum setting");
    println!(
        "churn     200 req/s, jobs kept 1 minute (RETENTION_SHARE 10, autovacuum {autovacuum}), sizes each minute:"
    );
    for minute in 1..=minutes {
        let window = open_loop(&stack, 200, Duration::from_secs(60)).await;
        let (rows, made, jobs, indexes, events): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM jobs), (SELECT last_value FROM job_events_id_seq),
                    pg_table_size('jobs'), pg_indexes_size('jobs'),
                    pg_total_relation_size('job_events')",
        )
        .fetch_one(&stack.pool)
        .await
        .expect("sizes");
        println!(
            "          minute {minute:>2}: {rows} jobs kept, {made} events ever; jobs table {:.1} MB, its indexes {:.1} MB, job_events {:.1} MB; POST p99 {:.1} ms",
            jobs as f64 / 1e6,
            indexes as f64 / 1e6,
            events as f64 / 1e6,
            window.percentile(0.99)
        );
    }
}

#[tokio::main]
async fn main() {
    let length = Duration::from_secs(seconds());
    println!(
        "e2e benchmark: {} s per load, 2 cores shared by everything",
        length.as_secs()
    );
    let needs_baseline = ["submit", "batch", "e2e", "scale"]
        .iter()
        .any(|load| wants(load));
    let raw = if needs_baseline {
        job_life(length).await
    } else {
        (f64::NAN, f64::NAN)
    };
    if wants("submit") {
        submissions(length, raw.1).await;
    }
    if wants("batch") {
        batch_load(length, raw.1).await;
    }
    if wants("e2e") {
        end_to_end_load(length, raw).await;
    }
    if wants("steady") {
        steady_load(length).await;
    }
    if wants("scale") {
        scale_load(length, raw.1).await;
    }
    if wants("batch16k") {
        batch_16k_load(length).await;
    }
    if wants("purge") {
        purge_load(length).await;
    }
    if only("churn") {
        churn_load().await;
    }
    if wants("bullmq") {
        match bullmq(length.as_secs()) {
            Ok(peer) => println!("peer      BullMQ end to end (Redis only)   {peer:>7.0} jobs/s"),
            Err(why) => println!("peer      BullMQ skipped: {why}"),
        }
    }
}
