//! Limits that hold across every API process: a tenant's submission rate and its queued cap
//! under concurrent singles and batches through two `serve` processes, and open waits
//! capped per key so that one tenant cannot take the API from others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::cli::{Process, command, wait_healthy};
use crate::common::{TestDatabase, TestPrefix, eventually, redis_url};
use crate::faults::report;

/// Two `serve` processes on one database and one Redis, with `settings` on top of the
/// fault tests' environment, and a pool for assertions.
async fn two_apis(
    db: &TestDatabase,
    prefix: &TestPrefix,
    settings: &[(&'static str, &str)],
) -> (Vec<Process>, PgPool) {
    let mut env = crate::faults::env(db, &redis_url(), prefix);
    env.extend(settings.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let migrated = command(&["migrate"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("migrate");
    assert!(migrated.status.success(), "{migrated:?}");
    let apis: Vec<Process> = (0..2).map(|_| Process::spawn("serve", &env)).collect();
    let client = reqwest::Client::new();
    for api in &apis {
        wait_healthy(api, &client).await;
    }
    (apis, PgPool::connect(&db.url).await.expect("pool"))
}

/// A job that stays queued (due tomorrow; no worker runs anyway).
fn scheduled() -> Value {
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    json!({"url": "https://example.com/", "job_type": "noop", "run_at": tomorrow.to_rfc3339()})
}

async fn queued(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'queued'")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submission_rate_is_one_budget_across_api_processes() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let (apis, pool) = two_apis(&db, &prefix, &[("QUOTA_SUBMIT_RATE", "20")]).await;
    let client = reqwest::Client::new();
    let accepted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let length = Duration::from_secs(3);
    let lanes: Vec<_> = (0..16)
        .map(|lane| {
            let (client, accepted) = (client.clone(), accepted.clone());
            let base = apis[lane % apis.len()].base.clone();
            tokio::spawn(async move {
                while started.elapsed() < length {
                    let answer = client
                        .post(format!("{base}/api/v1/jobs"))
                        .json(&scheduled())
                        .send()
                        .await;
                    match answer {
                        Ok(r) if r.status() == 201 => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => assert_eq!(r.status(), 429, "over the rate: 429"),
                        Err(e) => panic!("a submission failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for lane in lanes {
        lane.await.expect("a lane");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed);
    // A second's worth of burst, then 20 a second, for the two processes together.
    let allowed = 20.0 + 20.0 * elapsed;
    report(&format!(
        "rate 20/s across two API processes: {accepted} accepted in {elapsed:.1} s (at most {allowed:.0} allowed)"
    ));
    assert!(
        (accepted as f64) <= allowed + 2.0,
        "{accepted} accepted in {elapsed:.1} s"
    );
    assert!(accepted >= 40, "the rate admits its share: {accepted}");
    assert_eq!(queued(&pool).await, accepted as i64);
}

/// `count` submissions at once, spread over `apis`, each `body`, at `path`: how many were
/// answered 201, and every other status seen.
async fn at_once(apis: &[Process], path: &str, body: Value, count: usize) -> (usize, Vec<u16>) {
    let client = reqwest::Client::new();
    let answers: Vec<u16> = futures::stream::iter(0..count)
        .map(|n| {
            let request = client
                .post(format!("{}{path}", apis[n % apis.len()].base))
                .json(&body);
            async move { request.send().await.map_or(0, |r| r.status().as_u16()) }
        })
        .buffer_unordered(count)
        .collect()
        .await;
    let created = answers.iter().filter(|s| **s == 201).count();
    let others = answers.into_iter().filter(|s| *s != 201).collect();
    (created, others)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queued_cap_holds_under_200_concurrent_singles_across_processes() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let (apis, pool) = two_apis(&db, &prefix, &[("QUOTA_MAX_QUEUED", "50")]).await;
    let (created, others) = at_once(&apis, "/api/v1/jobs", scheduled(), 200).await;
    let stored = queued(&pool).await;
    report(&format!(
        "queued cap 50 across two API processes: 200 concurrent single submissions left {stored} queued ({created} answered 201)"
    ));
    assert!(
        others.iter().all(|s| *s == 429),
        "refused with 429 only: {others:?}"
    );
    assert_eq!(stored, created as i64, "every 201 is stored");
    assert!(stored <= 50, "{stored} queued, over the cap of 50");
    assert!(stored >= 40, "the cap admits what fits: {stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queued_cap_holds_under_20_concurrent_batches_across_processes() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let (apis, pool) = two_apis(&db, &prefix, &[("QUOTA_MAX_QUEUED", "50")]).await;
    let batch = json!({"jobs": vec![scheduled(); 40]});
    let (batches, others) = at_once(&apis, "/api/v1/jobs/batch", batch, 20).await;
    let stored = queued(&pool).await;
    report(&format!(
        "queued cap 50 across two API processes: 20 concurrent batches of 40 left {stored} queued ({batches} answered 201)"
    ));
    assert!(
        others.iter().all(|s| *s == 429),
        "refused with 429 only: {others:?}"
    );
    assert_eq!(stored, 40 * batches as i64, "every 201 is stored whole");
    assert_eq!(batches, 1, "one batch of 40 fits under 50, two do not");
}

/// Raises this process's open-file limit to its ceiling (thousands of client connections).
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Makes a key with the binary (`control-plane keys create`), as an operator does.
fn key(env: &[(&'static str, String)], tenant: &str, role: &str) -> String {
    let out = command(&["keys", "create", "--tenant", tenant, "--role", role])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("keys create");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits from one key beyond its cap.
const WAITS: usize = 4_200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_waits_from_one_key_leave_health_and_other_tenants_answered() {
    raise_open_files();
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let mut env = crate::faults::env(&db, &redis_url(), &prefix);
    env.push(("AUTH", "keys".to_owned()));
    let migrated = command(&["migrate"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("migrate");
    assert!(migrated.status.success(), "{migrated:?}");
    let (writer, reader) = (key(&env, "acme", "submit"), key(&env, "acme", "read"));
    let other = key(&env, "globex", "submit");
    let serve = Process::spawn("serve", &env);
    let client = reqwest::Client::new();
    wait_healthy(&serve, &client).await;
    let job: Value = client
        .post(format!("{}/api/v1/jobs", serve.base))
        .bearer_auth(&writer)
        .json(&scheduled())
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("job");
    let wait_url = format!(
        "{}/api/v1/jobs/{}?wait=60s",
        serve.base,
        job["id"].as_str().expect("id")
    );

    let refused = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..WAITS)
        .map(|_| {
            let (client, url, reader, refused) = (
                client.clone(),
                wait_url.clone(),
                reader.clone(),
                refused.clone(),
            );
            tokio::spawn(async move {
                if let Ok(r) = client.get(&url).bearer_auth(&reader).send().await
                    && r.status() == 429
                {
                    assert!(r.headers().contains_key("retry-after"));
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let per_key = control_plane::api::holds::DEFAULT_PER_KEY;
    eventually(
        "the waits beyond the key's cap to be refused",
        Duration::from_secs(60),
        || async { (refused.load(Ordering::Relaxed) >= WAITS - per_key).then_some(()) },
    )
    .await;
    let timed = |request: reqwest::RequestBuilder| async move {
        let asked = Instant::now();
        let status = request.send().await.map_or(0, |r| r.status().as_u16());
        (status, asked.elapsed())
    };
    let (health, health_took) = timed(client.get(format!("{}/health", serve.base))).await;
    let fresh = reqwest::Client::new();
    let (others, others_took) = timed(
        fresh
            .get(format!("{}/api/v1/jobs", serve.base))
            .bearer_auth(&other),
    )
    .await;
    report(&format!(
        "{WAITS} waits from one key: {} refused with 429, {per_key} held; /health answered {health} in {} ms, another tenant's request {others} in {} ms",
        refused.load(Ordering::Relaxed),
        health_took.as_millis(),
        others_took.as_millis()
    ));
    assert_eq!(refused.load(Ordering::Relaxed), WAITS - per_key);
    assert_eq!((health, others), (200, 200));
    assert!(health_took < Duration::from_secs(1), "{health_took:?}");
    assert!(others_took < Duration::from_secs(1), "{others_took:?}");
    for wait in flood {
        wait.abort();
    }
}
