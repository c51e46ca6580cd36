//! A chaos run: clients submit with idempotency keys through two API processes to three
//! workers, over a backlog of 10,000 jobs submitted while the queue was away (on a table
//! whose statistics were taken when queued jobs were rare, as after a busy hour with
//! autovacuum behind), while faults are mixed at random — a worker or an API process killed with
//! SIGKILL, a worker stopped (SIGSTOP) beyond its lease, Redis flushed or restarted, the
//! database cut off. Afterwards every answered job is stored exactly once, none is left
//! open, none succeeded twice, every timeline starts with its creation, and there was no
//! stretch of more than 30 s in which due jobs waited and none started.
//!
//! `CHAOS_SECONDS` sets how long faults go on (default 120), `CHAOS_SEED` replays a run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::RwLock;

use crate::cli::{Process, command, wait_healthy};
use crate::common::{OwnRedis, TcpProxy, TestDatabase, TestPrefix, database_server};
use crate::faults::{env, report};

/// Submitting clients.
const CLIENTS: usize = 8;
/// Jobs queued before the run, without a doorbell.
const BACKLOG: i64 = 10_000;
/// The longest stretch allowed in which due jobs waited and none started.
const MAX_STALL: Duration = Duration::from_secs(30);

/// The faults a run mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fault {
    KillWorker,
    KillApi,
    StopWorker,
    FlushRedis,
    RestartRedis,
    CutDatabase,
}

const FAULTS: [Fault; 6] = [
    Fault::KillWorker,
    Fault::KillApi,
    Fault::StopWorker,
    Fault::FlushRedis,
    Fault::RestartRedis,
    Fault::CutDatabase,
];

/// The processes under test and what they run on.
struct Stack {
    env: Vec<(&'static str, String)>,
    apis: Vec<Process>,
    workers: Vec<Process>,
    bases: Arc<RwLock<Vec<String>>>,
}

impl Stack {
    async fn publish_bases(&self) {
        *self.bases.write().await = self.apis.iter().map(|p| p.base.clone()).collect();
    }
}

/// What the clients saw: each idempotency key and the job it was answered with.
#[derive(Default)]
struct Answers {
    jobs: HashMap<String, String>,
    attempts: u64,
    retried: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_mixed_faults_lose_nothing_and_run_nothing_twice() {
    let seconds: u64 = std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    let mut rng = StdRng::seed_from_u64(seed);

    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let mut redis = OwnRedis::start().await;
    let upstream = database_server(&db.url);
    let proxy = TcpProxy::start(&upstream).await;
    let through_proxy = db.url.replacen(&upstream, &proxy.addr.to_string(), 1);
    let mut env = env(&db, &redis.url, &prefix);
    for (name, value) in env.iter_mut() {
        if *name == "DATABASE_URL" {
            *value = through_proxy.clone();
        }
    }
    let migrated = command(&["migrate"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("migrate");
    assert!(migrated.status.success(), "{migrated:?}");
    let pool = PgPool::connect(&db.url).await.expect("assertion pool");
    preload(&pool).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut stack = Stack {
        apis: (0..2).map(|_| Process::spawn("serve", &env)).collect(),
        workers: (0..3).map(|_| Process::spawn("worker", &env)).collect(),
        env,
        bases: Arc::default(),
    };
    for api in &stack.apis {
        wait_healthy(api, &client).await;
    }
    stack.publish_bases().await;

    let answers = Arc::new(Mutex::new(Answers::default()));
    let submitting = tokio_util::sync::CancellationToken::new();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(submit_until(
                n,
                client.clone(),
                stack.bases.clone(),
                answers.clone(),
                submitting.clone(),
            ))
        })
        .collect();
    let stalls = watch_stalls(db.url.clone());

    let started = Instant::now();
    let mut injected: HashMap<Fault, u32> = HashMap::new();
    // Every kind of fault once, in a random order, then at random.
    let mut plan = FAULTS.to_vec();
    plan.shuffle(&mut rng);
    let mut plan = plan.into_iter();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(3_000..8_000))).await;
        let fault = plan
            .next()
            .unwrap_or_else(|| FAULTS[rng.random_range(0..FAULTS.len())]);
        inject(fault, &mut stack, &mut redis, &proxy, &client, &mut rng).await;
        *injected.entry(fault).or_default() += 1;
        progress(&format!(
            "{:>5.1} s: {fault:?}",
            started.elapsed().as_secs_f64()
        ));
    }
    progress("faults over; waiting for the clients' last answers");
    submitting.cancel();
    for client in clients {
        client.await.expect("a client");
    }

    progress("every key answered; waiting for every job to finish");
    let drain = Instant::now();
    let settled = loop {
        let open: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT state, doorbell, count(*) FROM jobs WHERE state IN ('queued', 'running')
             GROUP BY state, doorbell",
        )
        .fetch_all(&pool)
        .await
        .expect("open jobs");
        if open.is_empty() {
            break started.elapsed();
        }
        assert!(
            drain.elapsed() < Duration::from_secs(180),
            "jobs still open three minutes after the faults (seed {seed}): {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (longest_stall, largest_backlog) = stalls
        .lock()
        .map(|s| (s.longest, s.largest_backlog))
        .unwrap_or_default();

    let answers = std::mem::take(&mut *answers.lock().expect("answers"));
    let tally = tally(&pool).await;
    let answered_ids: std::collections::HashSet<&String> = answers.jobs.values().collect();
    report(&format!(
        "chaos (seed {seed}): {seconds} s of faults {injected:?}; {} submissions answered ({} requests, {} retried), largest backlog {} queued, {} jobs stored: {} succeeded, {} failed, {} cancelled; settled {:.1} s after the start; longest stretch with due jobs and no start {:.1} s",
        answers.jobs.len(),
        answers.attempts,
        answers.retried,
        largest_backlog,
        tally.jobs,
        tally.succeeded,
        tally.failed,
        tally.cancelled,
        settled.as_secs_f64(),
        longest_stall.as_secs_f64(),
    ));
    assert_eq!(
        answered_ids.len(),
        answers.jobs.len(),
        "two keys answered with one job"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE id::text = ANY($1)")
        .bind(
            answered_ids
                .iter()
                .map(|id| id.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_one(&pool)
        .await
        .expect("stored");
    assert_eq!(
        stored as usize,
        answers.jobs.len(),
        "every answered job is stored"
    );
    assert_eq!(
        tally.jobs - BACKLOG,
        tally.keys,
        "every stored job came from one key (or the backlog), and each key made one job"
    );
    assert_eq!(tally.open, 0);
    assert_eq!(tally.succeeded_twice, 0, "no job succeeded twice");
    assert_eq!(
        tally.without_creation, 0,
        "every timeline starts with its creation"
    );
    assert_eq!(
        tally.jobs,
        tally.succeeded + tally.failed + tally.cancelled,
        "every job finished"
    );
    assert!(
        longest_stall <= MAX_STALL,
        "due jobs waited {longest_stall:?} with none started"
    );
    for fault in FAULTS {
        assert!(
            injected.contains_key(&fault),
            "{fault:?} was never injected"
        );
    }
}

/// Statistics from a table of finished jobs with nothing queued, never analyzed since; then
/// a backlog of jobs submitted while the queue was away (each with its creation event),
/// waiting for the scheduler to ring them.
async fn preload(pool: &PgPool) {
    for statement in [
        "INSERT INTO jobs (id, domain, url, job_type, strategy, priority, max_attempts,
                           timeout_ms, state, attempt, doorbell, rung_at, finished_at)
         SELECT gen_random_uuid(), 'done.example', 'https://done.example/', 'noop', 'http',
                3, 3, 30000, 'succeeded', 1, 'rung', now(), now()
         FROM generate_series(1, 5000)",
        "ANALYZE jobs",
        "ALTER TABLE jobs SET (autovacuum_enabled = false)",
        "DELETE FROM jobs",
    ] {
        sqlx::query(statement).execute(pool).await.expect(statement);
    }
    sqlx::query(
        "WITH made AS (
           INSERT INTO jobs (id, domain, url, job_type, strategy, priority, max_attempts,
                             timeout_ms, state, doorbell)
           SELECT gen_random_uuid(), 'early' || n || '.example', 'https://early' || n || '.example/',
                  'noop', 'http', 1 + n % 5, 10, 30000, 'queued', 'needed'
           FROM generate_series(1, $1) AS n RETURNING id)
         INSERT INTO job_events (job_id, kind, attempt, detail)
         SELECT id, 'created', 0, '{}' FROM made",
    )
    .bind(BACKLOG)
    .execute(pool)
    .await
    .expect("the backlog");
}

/// Injects one fault, and undoes it (restart, resume, restore) where the fault is not
/// permanent by nature.
async fn inject(
    fault: Fault,
    stack: &mut Stack,
    redis: &mut OwnRedis,
    proxy: &TcpProxy,
    client: &reqwest::Client,
    rng: &mut StdRng,
) {
    match fault {
        Fault::KillWorker => {
            let victim = rng.random_range(0..stack.workers.len());
            stack.workers[victim].kill_9();
            stack.workers[victim] = Process::spawn("worker", &stack.env);
        }
        Fault::KillApi => {
            let victim = rng.random_range(0..stack.apis.len());
            stack.apis[victim].kill_9();
            stack.apis[victim] = Process::spawn("serve", &stack.env);
            stack.publish_bases().await;
            wait_alive(&stack.apis[victim], client).await;
        }
        Fault::StopWorker => {
            // Beyond its lease (JOB_LEASE 3 s): its jobs are taken back and run elsewhere,
            // and whatever it does when it thaws is refused.
            let victim = &stack.workers[rng.random_range(0..stack.workers.len())];
            victim.signal("STOP");
            tokio::time::sleep(Duration::from_secs(6)).await;
            victim.signal("CONT");
        }
        Fault::FlushRedis => redis.flush().await,
        Fault::RestartRedis => redis.restart().await,
        Fault::CutDatabase => {
            proxy.cut();
            tokio::time::sleep(Duration::from_millis(rng.random_range(3_000..10_000))).await;
            proxy.restore();
        }
    }
}

/// Prints what the run is doing when `CHAOS_PROGRESS` is set.
fn progress(line: &str) {
    if std::env::var_os("CHAOS_PROGRESS").is_some() {
        eprintln!("chaos: {line}");
    }
}

/// Waits until a restarted API process answers `/health` (its database may be cut).
async fn wait_alive(process: &Process, client: &reqwest::Client) {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        if let Ok(r) = client.get(format!("{}/health", process.base)).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "a restarted API process never answered; log:\n{}",
        process.log()
    );
}

/// One client: submits job after job, each under a key of its own, and retries a key (on
/// either API process) until it is answered, as a careful client does.
async fn submit_until(
    n: usize,
    client: reqwest::Client,
    bases: Arc<RwLock<Vec<String>>>,
    answers: Arc<Mutex<Answers>>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut job = 0u64;
    while !stop.is_cancelled() {
        job += 1;
        let key = format!("chaos-{n}-{job}");
        let body = json!({
            "url": format!("https://site{n}x{job}.example/"),
            "job_type": "noop",
            "max_attempts": 10,
            "payload": {"sleep_ms": (job % 5) * 10},
        });
        let mut tries = 0u64;
        loop {
            tries += 1;
            let base = {
                let bases = bases.read().await;
                bases[(n + tries as usize) % bases.len()].clone()
            };
            let answered = client
                .post(format!("{base}/api/v1/jobs"))
                .header("idempotency-key", &key)
                .json(&body)
                .send()
                .await;
            let id = match answered {
                Ok(r) if r.status() == 201 || r.status() == 200 => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|job| job["id"].as_str().map(str::to_owned)),
                // Faults answer 503 (and an API going away, no answer at all); a refusal of
                // the request itself is the test's mistake, not a fault.
                Ok(r) if r.status().is_client_error() && r.status() != 429 => {
                    let status = r.status();
                    panic!(
                        "{key} refused with {status}: {}",
                        r.text().await.unwrap_or_default()
                    );
                }
                _ => None,
            };
            let answered = {
                let mut seen = answers.lock().expect("answers");
                seen.attempts += 1;
                match id {
                    Some(id) => {
                        if let Some(earlier) = seen.jobs.insert(key.clone(), id.clone()) {
                            assert_eq!(earlier, id, "one key, one job");
                        }
                        true
                    }
                    None => {
                        seen.retried += 1;
                        false
                    }
                }
            };
            if answered {
                break;
            }
            // Keep trying this key after the faults stop: it is answered by the end.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The longest stretch so far in which due jobs waited and none started, and the most jobs
/// seen due at once.
#[derive(Default)]
struct Stalls {
    longest: Duration,
    largest_backlog: i64,
}

/// Samples the database (directly, not through the cut) twice a second: how many jobs are
/// due, and the latest start; keeps the longest stretch of due jobs without a new start.
fn watch_stalls(url: String) -> Arc<Mutex<Stalls>> {
    let stalls = Arc::new(Mutex::new(Stalls::default()));
    let seen = stalls.clone();
    tokio::spawn(async move {
        let Ok(pool) = PgPool::connect(&url).await else {
            return;
        };
        let mut last_progress = Instant::now();
        let mut last_start: Option<chrono::DateTime<chrono::Utc>> = None;
        loop {
            let sample: Option<(i64, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
                "SELECT (SELECT count(*) FROM jobs WHERE state = 'queued' AND run_at <= now()),
                        (SELECT max(at) FROM job_events WHERE kind = 'started')",
            )
            .fetch_one(&pool)
            .await
            .ok();
            if let Some((due, latest)) = sample {
                if due == 0 || latest > last_start {
                    last_progress = Instant::now();
                    last_start = latest.max(last_start);
                }
                if let Ok(mut stalls) = seen.lock() {
                    stalls.longest = stalls.longest.max(last_progress.elapsed());
                    stalls.largest_backlog = stalls.largest_backlog.max(due);
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    stalls
}

/// What the store holds at the end.
struct Tally {
    jobs: i64,
    keys: i64,
    open: i64,
    succeeded: i64,
    failed: i64,
    cancelled: i64,
    succeeded_twice: i64,
    without_creation: i64,
}

async fn tally(pool: &PgPool) -> Tally {
    let row: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM jobs),
           (SELECT count(DISTINCT job_id) FROM idempotency_keys),
           (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')),
           (SELECT count(*) FROM jobs WHERE state = 'succeeded'),
           (SELECT count(*) FROM jobs WHERE state = 'failed'),
           (SELECT count(*) FROM jobs WHERE state = 'cancelled'),
           (SELECT count(*) FROM (SELECT job_id FROM job_events WHERE kind = 'succeeded'
                                  GROUP BY job_id HAVING count(*) > 1) AS twice),
           (SELECT count(*) FROM jobs j WHERE (SELECT kind FROM job_events e WHERE e.job_id = j.id
                                               ORDER BY e.id LIMIT 1) IS DISTINCT FROM 'created')",
    )
    .fetch_one(pool)
    .await
    .expect("tally");
    Tally {
        jobs: row.0,
        keys: row.1,
        open: row.2,
        succeeded: row.3,
        failed: row.4,
        cancelled: row.5,
        succeeded_twice: row.6,
        without_creation: row.7,
    }
}
