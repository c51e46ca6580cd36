//! Pacing per domain across every worker: the Redis and in-process pacers hold to one rule;
//! three worker processes keep a rate-limited site within its cap and rate and back off
//! together when it throttles; a killed worker's slot frees within the lease; and a paced
//! domain's backlog waits in the queue, not in worker slots.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::cli::{Process, submit, wait_healthy};
use crate::common::{
    Backend, Options, TestApp, TestDatabase, TestPrefix, eventually, on_both_backends, redis_url,
};
use crate::web::{RESOLVE, SiteLimit, Web, busiest};
use control_plane::memory::pace::RedisPacer;
use control_plane::memory::{Admission, Limits, LocalPacer, Pacer, Seed, Throttle};
use control_plane::queue::RedisQueue;

fn limits(cap: u32, rate: f64, burst: u32) -> Limits {
    Limits {
        cap,
        rate_milli: (rate * 1000.0) as i64,
        burst,
        min_delay_ms: 0,
        hold_ms: 100,
        seed: Seed::default(),
    }
}

const LEASE: Duration = Duration::from_secs(60);

/// The rule every pacer holds to.
async fn conformance(pacer: &dyn Pacer) {
    let domain = format!("d{}.test", Uuid::new_v4().simple());
    let capped = limits(2, 0.0, 1);
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(
        pacer
            .admit(&domain, a, LEASE, &capped)
            .await
            .expect("admit"),
        Admission::Admitted
    );
    assert_eq!(
        pacer
            .admit(&domain, b, LEASE, &capped)
            .await
            .expect("admit"),
        Admission::Admitted
    );
    let third = pacer
        .admit(&domain, c, LEASE, &capped)
        .await
        .expect("admit");
    assert!(
        matches!(third, Admission::Deferred { reason: "cap", .. }),
        "{third:?}"
    );
    assert_eq!(
        pacer
            .admit(&domain, a, LEASE, &capped)
            .await
            .expect("admit"),
        Admission::Holding,
        "a job that holds a slot keeps it, and is told so"
    );
    pacer.release(&domain, a).await.expect("release");
    assert_eq!(
        pacer
            .admit(&domain, c, LEASE, &capped)
            .await
            .expect("admit"),
        Admission::Admitted
    );
    assert_eq!(pacer.view(&domain).await.expect("view").in_flight, 2);

    let short = limits(1, 0.0, 1);
    let expiring = format!("e{domain}");
    let held = Uuid::new_v4();
    pacer
        .admit(&expiring, held, Duration::from_millis(200), &short)
        .await
        .expect("admit");
    eventually(
        "an unrenewed slot to lapse",
        Duration::from_secs(5),
        || async {
            let next = pacer
                .admit(&expiring, Uuid::new_v4(), LEASE, &short)
                .await
                .ok()?;
            (next == Admission::Admitted).then_some(())
        },
    )
    .await;

    let rated = format!("r{domain}");
    let paced = limits(100, 2.0, 0);
    assert_eq!(
        pacer
            .admit(&rated, Uuid::new_v4(), LEASE, &paced)
            .await
            .expect("admit"),
        Admission::Admitted
    );
    let waiting: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut waits = Vec::new();
    for job in &waiting {
        match pacer
            .admit(&rated, *job, LEASE, &paced)
            .await
            .expect("admit")
        {
            Admission::Deferred {
                wait_ms,
                reason: "rate",
            } => waits.push(wait_ms),
            other => panic!("2/s without burst: {other:?}"),
        }
    }
    assert!(
        waits.windows(2).all(|w| w[1] - w[0] >= 450),
        "starts booked 500 ms apart: {waits:?}"
    );
    let stranger = pacer
        .admit(&rated, Uuid::new_v4(), LEASE, &paced)
        .await
        .expect("admit");
    assert!(
        matches!(stranger, Admission::Deferred { reason: "rate", .. }),
        "no start left before the booked ones: {stranger:?}"
    );
    let booked = waiting[0];
    eventually(
        "a booked start to be admitted when due",
        Duration::from_secs(3),
        || async {
            let back = pacer.admit(&rated, booked, LEASE, &paced).await.ok()?;
            (back == Admission::Admitted).then_some(())
        },
    )
    .await;

    let throttled = format!("t{domain}");
    let view = pacer
        .throttled(
            &throttled,
            &Throttle {
                retry_after_ms: Some(2_000),
            },
            &limits(4, 8.0, 1),
        )
        .await
        .expect("throttle");
    assert_eq!(view.learned_rate, Some(4.0), "the rate halves");
    let held_back = pacer
        .admit(&throttled, Uuid::new_v4(), LEASE, &limits(4, 8.0, 1))
        .await
        .expect("admit");
    assert!(
        matches!(held_back, Admission::Deferred { reason: "backoff", wait_ms } if wait_ms > 1_000),
        "{held_back:?}"
    );

    let seeded = format!("s{domain}");
    let mut remembered = limits(4, 0.0, 1);
    remembered.seed = Seed {
        learned_milli: 500,
        backoff_until_ms: chrono::Utc::now().timestamp_millis() + 60_000,
    };
    let fresh = pacer
        .admit(&seeded, Uuid::new_v4(), LEASE, &remembered)
        .await
        .expect("admit");
    assert!(
        matches!(
            fresh,
            Admission::Deferred {
                reason: "backoff",
                ..
            }
        ),
        "a lost pace is re-seeded from the database: {fresh:?}"
    );
}

#[tokio::test]
async fn the_redis_pacer_holds_to_the_rule() {
    let prefix = TestPrefix::new();
    let queue = RedisQueue::connect(&redis_url(), &prefix.0)
        .await
        .expect("redis");
    conformance(&RedisPacer::beside(&queue)).await;
}

#[tokio::test]
async fn the_local_pacer_holds_to_the_rule() {
    conformance(&LocalPacer::new()).await;
}

/// `serve` on its own database and prefix, with the fixture web's names.
fn serve(db: &TestDatabase, prefix: &TestPrefix) -> Process {
    Process::spawn("serve", &process_env(db, prefix))
}

fn process_env(db: &TestDatabase, prefix: &TestPrefix) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ("RESOLVE", RESOLVE.to_owned()),
        ("SCHEDULER_INTERVAL", "100ms".to_owned()),
        ("RETRY_BACKOFF_BASE", "200ms".to_owned()),
        ("BROWSER", "off".to_owned()),
    ]
}

fn worker(db: &TestDatabase, prefix: &TestPrefix, extra: &[(&'static str, &str)]) -> Process {
    let mut env = process_env(db, prefix);
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Process::spawn("worker", &env)
}

async fn set_policy(client: &reqwest::Client, base: &str, domain: &str, policy: Value) {
    let response = client
        .put(format!("{base}/api/v1/domains/{domain}/policy"))
        .json(&policy)
        .send()
        .await
        .expect("put policy");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn count(db: &TestDatabase, sql: &'static str) -> i64 {
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_keep_a_site_within_its_cap_and_rate() {
    let web = Web::start().await;
    web.limit(
        "limited.test",
        // The policy's pace is 5/s with a burst of 1, so at most 6 start in any second;
        // the site allows one more, because a start that waits for a core (three workers,
        // serve and the rest of the suite on two) arrives late and lands beside the next.
        SiteLimit {
            concurrent: 2,
            per_second: 7,
            throttle_first: true,
        },
    );
    let (db, prefix) = (TestDatabase::create().await, TestPrefix::new());
    let api = serve(&db, &prefix);
    let client = reqwest::Client::new();
    wait_healthy(&api, &client).await;
    set_policy(
        &client,
        &api.base,
        "limited.test",
        json!({"cap": 2, "rate": 5}),
    )
    .await;
    let workers: Vec<Process> = (0..3)
        .map(|_| worker(&db, &prefix, &[("WORKER_CONCURRENCY", "8")]))
        .collect();
    for n in 0..200 {
        let body = json!({"url": web.url("limited.test", &format!("/slow/{n}")), "strategy": "http", "max_attempts": 5});
        submit(&client, &api.base, &body).await;
    }
    eventually(
        "200 paced jobs to finish",
        Duration::from_secs(240),
        || async {
            let done = count(&db, "SELECT count(*) FROM jobs WHERE state = 'succeeded'").await;
            (done == 200).then_some(())
        },
    )
    .await;

    let arrivals = web.arrivals("limited.test");
    let throttles: Vec<_> = arrivals.iter().filter(|a| a.status == 429).collect();
    println!(
        "limited.test: {} requests, at most {} at once, at most {} in any 950 ms ({} in 750 ms), {} answered 429",
        arrivals.len(),
        web.max_in_flight("limited.test"),
        busiest(&arrivals, Duration::from_millis(950)),
        busiest(&arrivals, Duration::from_millis(750)),
        throttles.len()
    );
    assert!(
        web.max_in_flight("limited.test") <= 2,
        "the cap holds across processes"
    );
    // Admission and arrival are apart by however long a start waits for a core: under the
    // whole suite once 7 arrived within 950 ms though no 6 were admitted within a second.
    // Windows of 750 ms leave a quarter second of such delay (rate 5/s plus the burst of 1
    // is at most 6 in a second); an unpaced site would see about 30 in one (50 ms pages,
    // two at once).
    assert!(
        busiest(&arrivals, Duration::from_millis(750)) <= 6,
        "the rate holds across processes"
    );
    assert_eq!(
        throttles.len(),
        1,
        "only the planted 429: none after the first backoff"
    );
    let first = throttles[0].at;
    let during_backoff = arrivals
        .iter()
        .filter(|a| a.at > first && a.at.duration_since(first) < Duration::from_millis(900))
        .count();
    assert!(
        during_backoff <= 2,
        "every worker backed off: {during_backoff} requests started during it (at most those already admitted)"
    );
    let learned = count(
        &db,
        "SELECT learned_milli FROM domain_policies WHERE domain = 'limited.test'",
    )
    .await;
    assert_eq!(
        learned, 2_500,
        "the learned rate halved and was kept in the database"
    );
    let attempts = count(&db, "SELECT max(attempt)::bigint FROM jobs").await;
    assert!(
        attempts <= 2,
        "deferral spends no attempt (only the throttled job retried)"
    );
    drop(workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_slot_frees_within_the_lease() {
    let web = Web::start().await;
    let (db, prefix) = (TestDatabase::create().await, TestPrefix::new());
    let api = serve(&db, &prefix);
    let client = reqwest::Client::new();
    wait_healthy(&api, &client).await;
    set_policy(&client, &api.base, "hang.test", json!({"cap": 1})).await;
    let lease = Duration::from_secs(3);
    let mut doomed = worker(&db, &prefix, &[("JOB_LEASE", "3s")]);
    let hanging = json!({"url": web.url("hang.test", "/hang"), "strategy": "http", "max_attempts": 1, "timeout_ms": 60000});
    submit(&client, &api.base, &hanging).await;
    eventually(
        "the hanging request to reach the site",
        Duration::from_secs(30),
        || async { (web.in_flight("hang.test") == 1).then_some(()) },
    )
    .await;
    doomed.kill_9();
    let killed = Instant::now();
    let queue = RedisQueue::connect(&redis_url(), &prefix.0)
        .await
        .expect("redis");
    let held = RedisPacer::beside(&queue)
        .view("hang.test")
        .await
        .expect("view");
    assert_eq!(held.in_flight, 1, "the dead worker's slot is still held");
    // The slot's lease was last renewed at most a lease before the kill.
    let pacer = RedisPacer::beside(&queue);
    eventually(
        "the dead worker's slot to lapse",
        lease + Duration::from_secs(1),
        || async {
            let view = pacer.view("hang.test").await.ok()?;
            (view.in_flight == 0).then_some(())
        },
    )
    .await;
    println!(
        "the slot lapsed {} ms after the kill (lease {} ms)",
        killed.elapsed().as_millis(),
        lease.as_millis()
    );

    let _survivor = worker(&db, &prefix, &[("JOB_LEASE", "3s")]);
    let next = json!({"url": web.url("hang.test", "/next"), "strategy": "http", "max_attempts": 1});
    let id = submit(&client, &api.base, &next).await;
    eventually(
        "the next job to get the slot",
        lease + Duration::from_secs(5),
        || async {
            let job: Value = client
                .get(format!("{}/api/v1/jobs/{id}", api.base))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (job["state"] == "succeeded").then_some(())
        },
    )
    .await;
    println!(
        "the next job to hang.test ran {} ms after the kill",
        killed.elapsed().as_millis()
    );
    assert!(web.in_flight("hang.test") <= 1, "the cap held meanwhile");
}

async fn a_paced_domains_backlog_does_not_hold_worker_slots(backend: Backend) {
    let web = Web::start().await;
    let app = TestApp::spawn_with(Options {
        backend,
        concurrency: 2,
        resolve: RESOLVE.to_owned(),
        ..Options::default()
    })
    .await;
    let put = app
        .client
        .put(app.url("/api/v1/domains/slowpoke.test/policy"))
        .json(&json!({"cap": 1, "rate": 0.2}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    for n in 0..10 {
        app.submit(&json!({"url": web.url("slowpoke.test", &format!("/{n}")), "strategy": "http"}))
            .await;
    }
    let mut others = Vec::new();
    for n in 0..10 {
        let job = app
            .submit(&json!({"url": web.url(&format!("site{n}.test"), "/"), "strategy": "http"}))
            .await;
        others.push(job["id"].as_str().expect("id").to_owned());
    }
    for id in &others {
        let job = app.wait_terminal(id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "succeeded", "{job}");
    }
    let served = web.arrivals("slowpoke.test").len();
    assert!(
        served <= 3,
        "the ten other sites finished while the paced one had served {served}"
    );
    let waiting = app
        .db
        .integers("SELECT CAST(attempt AS BIGINT) FROM jobs WHERE state = 'queued'")
        .await;
    assert!(!waiting.is_empty(), "the paced backlog waits in the queue");
    assert!(
        waiting.iter().all(|a| *a == 0),
        "deferral spends no attempt: {waiting:?}"
    );
    let deferred = app
        .db
        .scalar("SELECT count(*) FROM job_events WHERE kind = 'deferred'")
        .await;
    assert!(deferred > 0, "the backlog was deferred, not run");
    app.stop().await;
}

on_both_backends!(a_paced_domains_backlog_does_not_hold_worker_slots,);
