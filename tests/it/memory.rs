//! The domain memory end to end: `auto` converges on the cheapest strategy that works at
//! each fixture host, keeps what it learned across a restart, rediscovers a host that stops
//! blocking, and shows it all at `/api/v1/domains`.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::common::{Backend, Options, TestApp, client_with_key, create_key, on_both_backends};
use crate::web::{RESOLVE, Web};
use control_plane::auth::Role;

const JOB_DEADLINE: Duration = Duration::from_secs(90);

fn options(backend: Backend) -> Options {
    Options {
        backend,
        browser: true,
        concurrency: 4,
        max_contexts: 2,
        resolve: RESOLVE.to_owned(),
        ..Options::default()
    }
}

/// Runs one `auto` job to `url` (no retries: a block that survives every rung fails it).
async fn auto_job(app: &TestApp, url: &str) -> Value {
    let job = app
        .submit(&json!({
            "url": url, "job_type": "navigate_extract", "strategy": "auto",
            "max_attempts": 1, "timeout_ms": 20000,
        }))
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    app.wait_terminal(&id, JOB_DEADLINE).await
}

/// The strategy a finished job ran with (`failed` when no rung got through).
fn ran_with(job: &Value) -> String {
    job["result"]["executed_with"]
        .as_str()
        .unwrap_or("failed")
        .to_owned()
}

/// The job's `strategy_decision`, on its result or its error.
fn decision(job: &Value) -> &Value {
    let on_result = &job["result"]["strategy_decision"];
    if on_result.is_null() {
        &job["error"]["strategy_decision"]
    } else {
        on_result
    }
}

/// Runs `count` auto jobs to `host` one after another.
async fn sequence(app: &TestApp, web: &Web, host: &str, count: usize) -> Vec<Value> {
    let mut jobs = Vec::new();
    for n in 0..count {
        jobs.push(auto_job(app, &web.url(host, &format!("/page/{n}"))).await);
    }
    jobs
}

/// The first job (0-based) from which every later one but at most one is `expected`.
fn converged_after(ran: &[String], expected: &str) -> usize {
    (0..ran.len())
        .find(|&from| ran[from..].iter().filter(|r| *r != expected).count() <= 1)
        .unwrap_or(ran.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_finds_the_cheapest_strategy_that_works_at_each_host() {
    let web = Web::start().await;
    let app = TestApp::spawn_with(options(Backend::Postgres)).await;
    let cheapest = [
        ("plain.test", "http"),
        ("spa.test", "vanilla"),
        ("nobots.test", "vanilla"),
        ("headless.test", "stealth"),
        ("limited.test", "http"),
    ];
    let runs = cheapest
        .iter()
        .map(|(host, _)| sequence(&app, &web, host, 20));
    let flip = async {
        let before = sequence(&app, &web, "flip.test", 20).await;
        web.flip_blocks_http(false);
        let after = sequence(&app, &web, "flip.test", 20).await;
        (before, after)
    };
    let challenge = sequence(&app, &web, "challenge.test", 4);
    let (runs, (flip_before, flip_after), challenge) =
        tokio::join!(join_all(runs), flip, challenge);

    for ((host, expected), jobs) in cheapest.iter().zip(&runs) {
        let ran: Vec<String> = jobs.iter().map(ran_with).collect();
        let started: Vec<String> = jobs
            .iter()
            .map(|job| decision(job)["chosen"].as_str().unwrap_or("?").to_owned())
            .collect();
        let right = ran[10..].iter().filter(|r| *r == expected).count();
        println!(
            "{host}: every job from job {} ran {expected}; every job from job {} started on it; started {started:?}",
            converged_after(&ran, expected) + 1,
            converged_after(&started, expected) + 1,
        );
        assert!(
            right >= 9,
            "{host}: {right} of the last 10 ran {expected}: {ran:?}"
        );
        let last = decision(&jobs[19]);
        assert_eq!(
            last["chosen"], *expected,
            "{host}: a known host starts where it gets through: {last}"
        );
    }

    let before: Vec<String> = flip_before.iter().map(ran_with).collect();
    let after: Vec<String> = flip_after.iter().map(ran_with).collect();
    assert!(
        before[10..].iter().all(|r| r == "vanilla"),
        "blocking http: {before:?}"
    );
    let back = after
        .iter()
        .position(|r| r == "http")
        .unwrap_or(after.len());
    println!(
        "flip.test: back on http {} jobs after it stopped blocking; ran {after:?}",
        back + 1
    );
    assert!(
        after[18..].iter().all(|r| r == "http"),
        "rediscovered within 20 jobs: {after:?}"
    );

    for job in &challenge {
        assert_eq!(job["state"], "failed", "{job}");
        assert_eq!(job["error"]["kind"], "blocked", "{job}");
        let tried: Vec<&str> = decision(job)["tried"]
            .as_array()
            .expect("tried")
            .iter()
            .filter_map(|t| t["verdict"].as_str())
            .collect();
        assert!(tried.iter().all(|v| *v == "blocked"), "{job}");
    }
    let first = decision(&challenge[0]);
    assert_eq!(
        first["tried"].as_array().map(Vec::len),
        Some(3),
        "a block climbs every rung within one attempt: {first}"
    );
    assert_eq!(challenge[0]["attempt"], 1, "climbing spends no attempt");
    app.stop().await;
}

async fn what_auto_learned_survives_a_restart(backend: Backend) {
    let web = Web::start().await;
    let app = TestApp::spawn_with(options(backend)).await;
    let learned = sequence(&app, &web, "headless.test", 6).await;
    assert_eq!(ran_with(&learned[5]), "stealth", "{}", learned[5]);
    let app = app.restart().await;
    let first = auto_job(&app, &web.url("headless.test", "/after-restart")).await;
    let decided = decision(&first);
    assert_eq!(decided["chosen"], "stealth", "{first}");
    assert_eq!(decided["tried"][0]["strategy"], "stealth", "{first}");
    assert_eq!(ran_with(&first), "stealth");
    app.stop().await;
}

async fn the_domains_api_shows_and_overrides_what_was_learned(backend: Backend) {
    let web = Web::start().await;
    let app = TestApp::spawn_with(Options {
        browser: false,
        ..options(backend)
    })
    .await;
    for n in 0..3 {
        let job = auto_job(&app, &web.url("www.plain.test", &format!("/{n}"))).await;
        assert_eq!(ran_with(&job), "http", "{job}");
    }
    let list: Value = app.get("/api/v1/domains").await.json().await.expect("json");
    let plain = list["domains"]
        .as_array()
        .expect("domains")
        .iter()
        .find(|d| d["domain"] == "plain.test")
        .expect("plain.test listed");
    assert_eq!(plain["observations"], 3, "{list}");

    let detail: Value = app
        .get("/api/v1/domains/plain.test")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        detail["strategies"]["http"]["successes"].as_f64() > Some(2.0),
        "{detail}"
    );
    assert_eq!(detail["hosts"][0]["host"], "www.plain.test", "{detail}");
    assert_eq!(detail["pace"]["cap"], 4, "default cap: {detail}");
    assert_eq!(
        detail["recent_decisions"].as_array().map(Vec::len),
        Some(3),
        "{detail}"
    );

    let host = app
        .client
        .put(app.url("/api/v1/domains/www.plain.test/policy"))
        .json(&json!({}))
        .send()
        .await
        .expect("put");
    assert_eq!(host.status(), 400, "a host is not a domain");
    let problem: Value = host.json().await.expect("json");
    assert!(
        problem.to_string().contains("plain.test"),
        "names the domain to use: {problem}"
    );

    let bad = app
        .client
        .put(app.url("/api/v1/domains/plain.test/policy"))
        .json(&json!({"pin": "auto", "cap": 0, "rate": "fast", "extra": 1}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.expect("json");
    for field in ["pin", "cap", "rate", "extra"] {
        assert!(
            problem.to_string().contains(&format!("\"{field}\"")),
            "{field}: {problem}"
        );
    }

    let put = app
        .client
        .put(app.url("/api/v1/domains/plain.test/policy"))
        .json(&json!({"pin": "vanilla", "forbid_stealth": true, "cap": 2, "rate": 5, "burst": 0}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    let detail: Value = app
        .get("/api/v1/domains/plain.test")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["policy"]["pin"], "vanilla", "{detail}");
    assert_eq!(detail["pace"]["cap"], 2, "{detail}");
    assert_eq!(detail["pace"]["rate"], 5.0, "{detail}");

    let reader = create_key(app.store.as_ref(), "default", Role::Submit).await;
    let tenant = client_with_key(&reader);
    let refused = tenant
        .get(app.url("/api/v1/domains"))
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status(), 403, "domains span tenants: admin only");

    let delete = app
        .client
        .delete(app.url("/api/v1/domains/plain.test/policy"))
        .send()
        .await
        .expect("delete");
    assert_eq!(delete.status(), 204);
    let again = app
        .client
        .delete(app.url("/api/v1/domains/plain.test/policy"))
        .send()
        .await
        .expect("delete");
    assert_eq!(again.status(), 404);
    let unknown = app.get("/api/v1/domains/nowhere.test").await;
    assert_eq!(unknown.status(), 404);
    app.stop().await;
}

on_both_backends!(
    what_auto_learned_survives_a_restart,
    the_domains_api_shows_and_overrides_what_was_learned,
);
