//! `auto` learning per domain which proxy tier gets through, inside a network namespace of
//! its own with stand-in public hosts: a site that answers only the "residential" proxy's
//! address, another that answers everyone, and the way back down once the first stops
//! blocking.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Html;
use serde_json::{Value, json};

use crate::common::{Backend, Options, TestApp};
use crate::upstream_fixtures::{Proxy, run};

/// A site on an address of its own that, while it blocks, answers 403 to every request not
/// arriving from `welcome` (the "residential" proxy's source), as sites that refuse data
/// centres do; it records the address of each request.
pub struct Gated {
    addr: SocketAddr,
    blocking: Arc<std::sync::atomic::AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Gated {
    pub async fn start(on: Ipv4Addr, welcome: String) -> Gated {
        use std::sync::atomic::{AtomicBool, Ordering};
        let blocking = Arc::new(AtomicBool::new(true));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (gate, record) = (blocking.clone(), seen.clone());
        let app = Router::new().fallback(move |ConnectInfo(peer): ConnectInfo<SocketAddr>| {
            let (gate, record, welcome) = (gate.clone(), record.clone(), welcome.clone());
            async move {
                let ip = peer.ip().to_string();
                record.lock().expect("lock").push(ip.clone());
                if gate.load(Ordering::SeqCst) && ip != welcome {
                    let page = "<html><title>Access denied</title><p>Not from a data centre.</p>";
                    return (axum::http::StatusCode::FORBIDDEN, Html(page.to_owned()));
                }
                let page = format!("<html><title>Welcome</title><p id=\"ip\">{ip}</p></html>");
                (axum::http::StatusCode::OK, Html(page))
            }
        });
        let listener = tokio::net::TcpListener::bind((on, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        Gated {
            addr,
            blocking,
            seen,
        }
    }

    pub fn url(&self, n: usize) -> String {
        format!("http://{}/page/{n}", self.addr)
    }

    fn stop_blocking(&self) {
        self.blocking
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn sources(&self) -> Vec<String> {
        let mut seen = self.seen.lock().expect("lock").clone();
        seen.sort();
        seen.dedup();
        seen
    }
}

/// One `auto` job to `url`: its decision (on its result or its error) and its state.
async fn auto_job(app: &TestApp, url: &str) -> (Value, Value) {
    let job = run(
        app,
        json!({"url": url, "strategy": "auto", "max_attempts": 1, "timeout_ms": 10000}),
    )
    .await;
    let decision = match &job["result"]["strategy_decision"] {
        Value::Null => job["error"]["strategy_decision"].clone(),
        found => found.clone(),
    };
    (job, decision)
}

/// Each step tried, as `rung` or `rung via tier`, with its verdict.
fn tried(decision: &Value) -> Vec<String> {
    let steps = decision["tried"].as_array().cloned().unwrap_or_default();
    steps
        .iter()
        .map(|step| match step["proxy_tier"].as_str() {
            Some(tier) => format!("{} via {tier}: {}", step["strategy"], step["verdict"]),
            None => format!("{}: {}", step["strategy"], step["verdict"]),
        })
        .map(|text| text.replace('"', ""))
        .collect()
}

/// The stand-in public addresses of the ladder's network: two sites, and where each proxy's
/// outgoing connections leave from (a data centre's address, a home's).
const GATED_SITE: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 20);
const OPEN_SITE: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 21);
const DATACENTER_EXIT: Ipv4Addr = Ipv4Addr::new(34, 117, 59, 81);
const RESIDENTIAL_EXIT: Ipv4Addr = Ipv4Addr::new(81, 2, 69, 142);

/// `auto` climbs past the direct rungs into the proxy tiers, cheapest first, and learns per
/// domain: a site that answers only the residential proxy's address is soon started on the
/// residential tier, a site beside it in the same run stays direct, and once the first stops
/// blocking, probes bring its jobs back down to a direct connection. In a network of its own
/// with stand-in public hosts, under the default target policy (private targets refused).
#[test]
fn auto_learns_per_domain_which_proxy_tier_gets_through_and_probes_back_down() {
    crate::netns::run_inside(
        "proxy_ladder::ladder_inside",
        &[GATED_SITE, OPEN_SITE, DATACENTER_EXIT, RESIDENTIAL_EXIT],
    );
}

/// The ladder's run, started by the test above inside its namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs inside the network namespace that auto_learns_per_domain_which_proxy_tier_gets_through_and_probes_back_down makes"]
async fn ladder_inside() {
    crate::netns::assert_inside();
    let datacenter = Proxy::microsocks(&DATACENTER_EXIT.to_string());
    let residential = Proxy::tinyproxy(&RESIDENTIAL_EXIT.to_string(), 0);
    let welcome = RESIDENTIAL_EXIT.to_string();
    let gated = Gated::start(GATED_SITE, welcome).await;
    let open = Gated::start(OPEN_SITE, OPEN_SITE.to_string()).await;
    open.stop_blocking();
    let pools = json!([
        {"name": "dc", "tier": "datacenter", "proxies": [datacenter.url("socks5")]},
        {"name": "res", "tier": "residential", "proxies": [residential.url("http")]},
    ]);
    let app = TestApp::spawn_with(Options {
        backend: Backend::Sqlite,
        allow_private: false,
        proxy_pools: pools.to_string(),
        ..Options::default()
    })
    .await;
    let domain = |site: &Gated| format!("/api/v1/domains/{}", site.addr.ip());

    let (job, decision) = auto_job(&app, &gated.url(0)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        tried(&decision),
        [
            "http: blocked",
            "http via datacenter: blocked",
            "http via residential: success"
        ],
        "a site never seen is climbed, tier by tier: {job}"
    );
    assert!(
        job["result"]["spent"]["requests"]["residential"].as_u64() >= Some(1),
        "{job}"
    );

    let mut starts = Vec::new();
    for n in 1..=12 {
        let (job, decision) = auto_job(&app, &gated.url(n)).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        starts.push(
            decision["chosen_proxy_tier"]
                .as_str()
                .unwrap_or("direct")
                .to_owned(),
        );
        let (beside, beside_decision) = auto_job(&app, &open.url(n)).await;
        assert_eq!(beside["state"], "succeeded", "{beside}");
        assert_eq!(
            tried(&beside_decision)[0],
            "http: success",
            "the other domain stays direct: {beside}"
        );
    }
    assert!(
        starts[4..].iter().all(|tier| tier == "residential"),
        "the gated domain is started on the residential tier once learned: {starts:?}"
    );
    let exits = [DATACENTER_EXIT.to_string(), RESIDENTIAL_EXIT.to_string()];
    assert!(
        open.sources().iter().all(|source| !exits.contains(source)),
        "only direct requests reach the open site: {:?}",
        open.sources()
    );
    let detail: Value = app.get(&domain(&gated)).await.json().await.expect("json");
    let learned = &detail["strategies"]["http via residential"]["successes"];
    assert!(learned.as_f64() > Some(2.0), "{detail}");
    assert!(
        detail["strategies"]["http"]["blocks"].as_f64() > Some(0.0),
        "{detail}"
    );
    // What the domain cost, summed: every job's attempt, most requests through the residential
    // tier, a few direct and through the data centre while it climbed; the open site only direct.
    let spent = &detail["spent"];
    assert_eq!(spent["attempts"], 13, "{detail}");
    assert!(
        spent["requests"]["residential"].as_u64() >= Some(13),
        "{detail}"
    );
    assert!(
        spent["requests"]["datacenter"].as_u64() >= Some(1),
        "{detail}"
    );
    assert!(spent["requests"]["direct"].as_u64() >= Some(1), "{detail}");
    let beside: Value = app.get(&domain(&open)).await.json().await.expect("json");
    assert_eq!(
        beside["spent"]["requests"],
        json!({"direct": 12}),
        "{beside}"
    );

    // A policy that forbids the residential tier leaves the climb nowhere to go; one that
    // pins it starts every rung there.
    let policy = app.url(&format!("{}/policy", domain(&gated)));
    let put = async |body: Value| {
        let response = app
            .client
            .put(&policy)
            .json(&body)
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), 200, "{body}");
    };
    put(json!({"forbid_proxy_tiers": ["residential"]})).await;
    let (job, decision) = auto_job(&app, &gated.url(50)).await;
    assert_eq!(job["error"]["kind"], "blocked", "{job}");
    assert!(
        tried(&decision).iter().all(|t| !t.contains("residential")),
        "{decision}"
    );
    put(json!({"proxy_tier": "residential"})).await;
    let (job, decision) = auto_job(&app, &gated.url(51)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        tried(&decision),
        ["http via residential: success"],
        "{decision}"
    );
    let bad = app
        .client
        .put(&policy)
        .json(&json!({"proxy_tier": "Residential!"}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "proxy_tier", "{problem}");
    let cleared = app.client.delete(&policy).send().await.expect("delete");
    assert!(cleared.status().is_success());

    // The site stops blocking: probes of the cheaper steps find out, and jobs come back down.
    gated.stop_blocking();
    let mut recent = Vec::new();
    for n in 100..160 {
        let (job, decision) = auto_job(&app, &gated.url(n)).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        recent.push(tried(&decision)[0].clone());
        if recent.len() >= 3
            && recent[recent.len() - 3..]
                .iter()
                .all(|t| t == "http: success")
        {
            break;
        }
    }
    assert!(
        recent.ends_with(&[
            "http: success".to_owned(),
            "http: success".to_owned(),
            "http: success".to_owned()
        ]),
        "a domain that stopped blocking is probed back down to direct: {recent:?}"
    );
    let probed: Value = app.get(&domain(&gated)).await.json().await.expect("json");
    let decisions = probed["recent_decisions"].to_string();
    assert!(decisions.contains("\"probe\""), "{probed}");
}
