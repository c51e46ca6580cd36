//! Upstream proxies from the settings (`PROXY_POOLS`): jobs leave through the pool they name
//! on every engine, a tenant's default, rotation and benching, and no credential anywhere.
//! The proxies and the site that tells which way a job came are in `upstream_fixtures`;
//! `auto` climbing into the tiers is in `proxy_ladder`, pools made through the API in
//! `proxy_pools`.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::common::{Options, TestApp};
use crate::proxy_ladder::Gated;
use crate::upstream_fixtures::{LONG, PASSWORD, Proxy, USER, WhoAmI, finished, run, whoami};

/// Every place a credential could leak to: the job with its result or error, its events,
/// the pools' own route, and the metrics.
async fn assert_no_credentials(app: &TestApp, jobs: &[Value]) {
    let mut seen = String::new();
    for job in jobs {
        let id = job["id"].as_str().expect("id");
        seen.push_str(&app.job(id).await.to_string());
        let events = app.get(&format!("/api/v1/jobs/{id}/events")).await;
        seen.push_str(&events.text().await.expect("events"));
        let page = app.get(&format!("/ui/jobs/{id}")).await;
        assert_eq!(page.status(), 200);
        seen.push_str(&page.text().await.expect("the job's page"));
    }
    let queue = app.get("/ui/queue").await;
    assert_eq!(queue.status(), 200);
    let queue = queue.text().await.expect("the queue's page");
    assert!(
        queue.contains("residential"),
        "the dashboard shows the pools"
    );
    seen.push_str(&queue);
    let pools = app.get("/api/v1/proxies").await;
    assert_eq!(pools.status(), 200);
    let pools = pools.text().await.expect("pools");
    assert!(pools.contains("\"authenticated\":true"), "{pools}");
    seen.push_str(&pools);
    seen.push_str(&app.get("/metrics").await.text().await.expect("metrics"));
    seen.push_str(
        &app.get("/api/v1/openapi.json")
            .await
            .text()
            .await
            .expect("contract"),
    );
    for secret in [PASSWORD, "cHIweHktczNjcmV0"] {
        assert!(!seen.contains(secret), "a credential leaked: {secret}");
    }
}

/// Jobs naming a pool or a tier leave through one of its proxies, on the http engine and in
/// both browsers; jobs naming none (or `none`) go direct; a pool name nobody configured is
/// refused at submission; credentials show nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_leave_through_the_pool_they_name_on_every_engine() {
    let site = WhoAmI::start().await;
    let http = Proxy::tinyproxy("127.0.0.2", 0);
    let socks = Proxy::microsocks("127.0.0.3");
    let wrong = Proxy::tinyproxy("127.0.0.4", 0);
    let wrong_url = format!("http://{USER}:not-the-{PASSWORD}@127.0.0.1:{}", wrong.port);
    let pools = json!([
        {"name": "res", "tier": "residential", "proxies": [http.url("http")]},
        {"name": "dc", "tier": "datacenter", "proxies": [socks.url("socks5")]},
        {"name": "refused", "tier": "mobile", "proxies": [wrong_url]},
    ]);
    let app = TestApp::spawn_with(Options {
        browser: true,
        proxy_pools: pools.to_string(),
        ..Options::default()
    })
    .await;
    let mut jobs = Vec::new();
    for (strategy, proxy, from) in [
        ("http", Some("res"), "127.0.0.2"),
        ("http", Some("datacenter"), "127.0.0.3"),
        ("http", None, "127.0.0.1"),
        ("vanilla", Some("dc"), "127.0.0.3"),
        ("vanilla", Some("residential"), "127.0.0.2"),
        ("stealth", Some("res"), "127.0.0.2"),
        ("stealth", Some("none"), "127.0.0.1"),
    ] {
        let job = whoami(&app, &site, strategy, proxy).await;
        assert_eq!(
            job["result"]["data"]["ip"], from,
            "{strategy} via {proxy:?}: {job}"
        );
        let route = match proxy {
            Some("res" | "residential") => "residential",
            Some("dc" | "datacenter") => "datacenter",
            _ => "direct",
        };
        let spent = &job["result"]["spent"]["requests"];
        assert!(spent[route].as_u64().is_some_and(|n| n >= 1), "{job}");
        jobs.push(job);
    }
    // A proxy that refuses our credentials fails the job plainly, without a password in it.
    let refused = run(
        &app,
        json!({"url": site.url(), "strategy": "http", "max_attempts": 1,
               "timeout_ms": 5000, "payload": {"proxy": "refused"}}),
    )
    .await;
    assert_eq!(refused["state"], "failed", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("refused the credentials"), "{refused}");
    jobs.push(refused);
    assert_no_credentials(&app, &jobs).await;
    let unknown = app
        .post_json(
            "/api/v1/jobs",
            &json!({"url": site.url(), "payload": {"proxy": "nowhere"}}),
        )
        .await;
    assert_eq!(unknown.status(), 422);
    let problem: Value = unknown.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "payload.proxy", "{problem}");
}

/// A tenant with a default proxy has its jobs that name none go through it (written into
/// the job, so it shows), while a job naming `none` still goes direct; a default that names
/// no pool stops the process at start, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_default_proxy_carries_the_jobs_that_name_none() {
    let site = WhoAmI::start().await;
    let proxy = Proxy::tinyproxy("127.0.0.10", 0);
    let pools = json!([{"name": "res", "tier": "residential", "proxies": [proxy.url("http")]}]);
    let app = TestApp::spawn_with(Options {
        proxy_pools: pools.to_string(),
        tenant_proxies: "default=residential".to_owned(),
        ..Options::default()
    })
    .await;
    let defaulted = whoami(&app, &site, "http", None).await;
    assert_eq!(
        defaulted["result"]["data"]["ip"], "127.0.0.10",
        "{defaulted}"
    );
    assert_eq!(defaulted["payload"]["proxy"], "residential", "{defaulted}");
    let direct = whoami(&app, &site, "http", Some("none")).await;
    assert_eq!(direct["result"]["data"]["ip"], "127.0.0.1", "{direct}");
    let batch = json!({"jobs": [{"url": site.url(), "strategy": "http", "max_attempts": 1}]});
    let created: Value = app
        .post_json("/api/v1/jobs/batch", &batch)
        .await
        .json()
        .await
        .expect("json");
    let id = created["jobs"][0]["id"].as_str().expect("id");
    let batched = app.wait_terminal(id, LONG).await;
    assert_eq!(batched["result"]["text"], "127.0.0.10", "{batched}");

    let pools = pools.to_string();
    let said = crate::cli::refused_dev(&[
        ("PROXY_POOLS", pools.as_str()),
        ("TENANT_PROXIES", "acme=nowhere"),
    ]);
    assert!(said.contains("TENANT_PROXIES: acme=nowhere"), "{said}");
    assert!(!said.contains(PASSWORD), "{said}");
}

/// 300 jobs through a pool of three proxies: each carries its share (±20 %); one killed is
/// benched and no job fails because of it; restarted, it carries jobs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_spreads_its_jobs_and_benches_a_dead_proxy_until_it_returns() {
    let site = WhoAmI::start().await;
    let outs = ["127.0.0.5", "127.0.0.6", "127.0.0.7"];
    let mut proxies: Vec<Proxy> = outs.iter().map(|out| Proxy::tinyproxy(out, 0)).collect();
    let pools = json!([{"name": "rot", "tier": "datacenter", "max_per_proxy": 4,
                        "proxies": proxies.iter().map(|p| p.url("http")).collect::<Vec<_>>()}]);
    let app = TestApp::spawn_with(Options {
        concurrency: 4,
        proxy_pools: pools.to_string(),
        ..Options::default()
    })
    .await;
    // Three attempts each: a request cut as its proxy dies is the job's to try again (on
    // another proxy), not a failure.
    let batch = |n: usize| {
        let jobs: Vec<Value> = (0..n)
            .map(|_| {
                json!({"url": site.url(), "strategy": "http", "max_attempts": 3,
                            "payload": {"proxy": "rot"}})
            })
            .collect();
        json!({ "jobs": jobs })
    };
    let submit = async |n: usize| -> Vec<String> {
        let response = app.post_json("/api/v1/jobs/batch", &batch(n)).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        (body["jobs"].as_array().expect("jobs").iter())
            .map(|job| job["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let succeed = async |ids: &[String]| {
        for id in ids {
            let job = app.wait_terminal(id, LONG).await;
            assert_eq!(job["state"], "succeeded", "{job}");
        }
    };
    let all_succeed = async |n: usize| succeed(&submit(n).await).await;

    all_succeed(300).await;
    for out in outs {
        let share = site.count(out);
        assert!(
            (80..=120).contains(&share),
            "{out} carried {share} of 300 (a third, ±20 %): {:?}",
            counts(&site, &outs)
        );
    }

    // The third proxy dies while 150 jobs run; the other two carry the rest and no job
    // fails.
    let port = proxies[2].port;
    let running = submit(150).await;
    succeed(&running[..30]).await;
    proxies.pop();
    let before = site.count(outs[2]);
    succeed(&running[30..]).await;
    assert_eq!(site.count(outs[2]), before, "a dead proxy carried jobs");
    let view: Value = app.get("/api/v1/proxies").await.json().await.expect("json");
    let dead = &view["pools"][0]["proxies"][2];
    assert!(dead["failures"].as_u64().is_some_and(|n| n >= 1), "{view}");

    // Back on its port, it is tried when its bench ends and carries jobs again.
    proxies.push(Proxy::tinyproxy(outs[2], port));
    let deadline = std::time::Instant::now() + LONG;
    while site.count(outs[2]) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted proxy never returned: {:?}",
            counts(&site, &outs)
        );
        all_succeed(10).await;
    }
    let view: Value = app.get("/api/v1/proxies").await.json().await.expect("json");
    assert_eq!(view["pools"][0]["proxies"][2]["state"], "ok", "{view}");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let failures = metrics
        .lines()
        .find(|line| {
            line.starts_with("control_plane_proxy_failures_total")
                && line.contains("proxy=\"rot-3\"")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(failures.is_some_and(|n| n >= 1), "{metrics}");
}

/// A proxy whose address is burned — blocked at site after site while its pool-mate gets
/// through — is benched once three sites in a row blocked it, saying why; its mate is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_blocked_at_every_site_is_benched() {
    let burned = Proxy::tinyproxy("127.0.0.35", 0);
    let good = Proxy::tinyproxy("127.0.0.36", 0);
    let mut sites = Vec::new();
    for on in [41, 42, 43] {
        sites.push(Gated::start(Ipv4Addr::new(127, 0, 0, on), "127.0.0.36".to_owned()).await);
    }
    let pools = json!([{"name": "pair", "tier": "datacenter",
                        "proxies": [burned.url("http"), good.url("http")]}]);
    let app = TestApp::spawn_with(Options {
        proxy_pools: pools.to_string(),
        ..Options::default()
    })
    .await;
    // Round robin: the burned proxy takes every other job, at each site in turn.
    let mut blocked = 0;
    for n in 0..6 {
        let job = run(
            &app,
            json!({"url": sites[n % 3].url(n), "strategy": "http", "max_attempts": 1,
                   "payload": {"proxy": "pair"}}),
        )
        .await;
        if job["state"] == "failed" {
            assert_eq!(job["error"]["kind"], "blocked", "{job}");
            let spent = &job["error"]["spent"]["requests"]["datacenter"];
            assert!(
                spent.as_u64() >= Some(1),
                "a failure states what it spent: {job}"
            );
            blocked += 1;
        }
    }
    assert_eq!(blocked, 3, "the burned proxy carried every other job");
    let view: Value = app.get("/api/v1/proxies").await.json().await.expect("json");
    let proxies = &view["pools"][0]["proxies"];
    assert!(proxies[0]["failures"].as_u64() >= Some(1), "{view}");
    let why = proxies[0]["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("blocked at 3 sites in a row"), "{view}");
    assert_eq!(proxies[1]["failures"], 0, "{view}");
}

fn counts(site: &WhoAmI, outs: &[&str]) -> Vec<usize> {
    outs.iter().map(|out| site.count(out)).collect()
}

/// A `dev` process logging at debug level, with proxy pools in its settings, runs jobs
/// through a good proxy and one that refuses its credentials: no line of its log, and no
/// answer of its API or its `--help`, holds the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_appear_in_no_log_line_even_at_debug() {
    use crate::cli::{Process, wait_healthy};
    let site = WhoAmI::start().await;
    let good = Proxy::tinyproxy("127.0.0.8", 0);
    let wrong = Proxy::microsocks("127.0.0.9");
    let wrong_url = format!("socks5://{USER}:{PASSWORD}-not@127.0.0.1:{}", wrong.port);
    let pools = json!([
        {"name": "good", "tier": "residential", "proxies": [good.url("http")]},
        {"name": "wrong", "tier": "datacenter", "proxies": [wrong_url]},
    ]);
    let dir = crate::common::TestDataDir::new();
    let env = vec![
        ("DATA_DIR", dir.0.display().to_string()),
        ("BROWSER", "off".to_owned()),
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
        ("PROXY_POOLS", pools.to_string()),
    ];
    let dev = Process::spawn("dev", &env);
    let client = reqwest::Client::new();
    wait_healthy(&dev, &client).await;
    let mut answers = String::new();
    for proxy in ["good", "wrong", "good"] {
        let body = json!({"url": site.url(), "strategy": "http", "max_attempts": 1,
                          "timeout_ms": 5000, "payload": {"proxy": proxy}});
        let submitted = client
            .post(format!("{}/api/v1/jobs", dev.base))
            .json(&body)
            .send()
            .await
            .expect("submit");
        assert_eq!(submitted.status(), 201);
        let job: Value = submitted.json().await.expect("json");
        let id = job["id"].as_str().expect("id").to_owned();
        let job = finished(&client, &dev.base, &id).await;
        answers.push_str(&job.to_string());
        let expected = if proxy == "good" {
            "succeeded"
        } else {
            "failed"
        };
        assert_eq!(job["state"], expected, "{job}");
    }
    let pools = client
        .get(format!("{}/api/v1/proxies", dev.base))
        .send()
        .await
        .expect("pools");
    answers.push_str(&pools.text().await.expect("pools"));
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_control-plane"))
        .arg("--help")
        .env(
            "PROXY_POOLS",
            r#"[{"name": "x", "tier": "t", "proxies": ["http://u:hunter2@h:1"]}]"#,
        )
        .output()
        .expect("--help");
    answers.push_str(&String::from_utf8_lossy(&help.stdout));
    assert!(!answers.contains("hunter2"), "--help shows PROXY_POOLS");
    let log = dev.log();
    assert!(
        log.contains("DEBUG") || log.contains("\"level\":\"DEBUG\""),
        "debug logs are on"
    );
    assert!(
        log.contains("refused the credentials"),
        "the refusal is logged"
    );
    for secret in [PASSWORD, "cHIweHktczNjcmV0"] {
        assert!(!log.contains(secret), "the log holds a credential");
        assert!(
            !answers.contains(secret),
            "an answer holds a credential: {answers}"
        );
    }
}
