//! Proxy pools made by an admin through the API: sealed at rest under SECRETS_KEY, used by
//! every process (a `worker` beside the `serve` that took the change learns it without a
//! restart), never shown again, and still opened after the key is rotated.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{Process, wait_healthy};
use crate::common::{
    AssertDb, Backend, Options, TestApp, TestDatabase, TestPrefix, on_both_backends, redis_url,
};
use crate::recording::Recording;
use crate::upstream_fixtures::{PASSWORD, Proxy, USER, WhoAmI, finished};
use control_plane::secrets::SecretKey;

/// What an admin does through a [`Recording`] client.
impl Recording {
    async fn put(&mut self, pool: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}/api/v1/proxies/pools/{pool}", self.base);
        self.send(self.client.put(url).json(body)).await
    }

    async fn delete(&mut self, pool: &str) -> (u16, Value) {
        let url = format!("{}/api/v1/proxies/pools/{pool}", self.base);
        self.send(self.client.delete(url)).await
    }

    /// Submits a job for `url` through `proxy` and waits for it.
    async fn job(&mut self, url: &str, proxy: &str, delay_ms: u64) -> Value {
        let body = json!({"url": url, "strategy": "http", "max_attempts": 1, "delay_ms": delay_ms,
                          "timeout_ms": 10000, "payload": {"proxy": proxy, "selectors": {"ip": "#ip"}}});
        let (status, job) = self.submit(&body).await;
        assert_eq!(status, 201, "{job}");
        let job = finished(&self.client, &self.base, job["id"].as_str().expect("id")).await;
        self.seen.push_str(&job.to_string());
        job
    }
}

/// The fields a 422 names.
fn fields(problem: &Value) -> Vec<String> {
    let errors = problem["errors"].as_array().cloned().unwrap_or_default();
    errors
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `serve` and a `worker` beside it, each its own process logging at debug level. An admin
/// makes a pool through `serve`; the worker, started before, runs jobs through it; a new
/// version of the pool (another proxy) reaches the worker within seconds; a job waiting on
/// a pool deleted meanwhile fails saying so. The database holds the credentials only sealed,
/// and no answer, page, metric or log line of either process holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_made_through_the_api_reach_every_process_sealed_and_never_shown() {
    let site = WhoAmI::start().await;
    let (first, second) = (
        Proxy::tinyproxy("127.0.0.51", 0),
        Proxy::microsocks("127.0.0.52"),
    );
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let key = SecretKey::generate();
    let configured =
        json!([{"name": "cfg", "tier": "datacenter", "proxies": ["http://127.0.0.1:9"]}]);
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ("BROWSER", "off".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
        ("SECRETS_KEY", key.to_base64()),
        ("PROXY_POOLS", configured.to_string()),
    ];
    let serve = Process::spawn("serve", &env);
    let mut admin = Recording::new(&serve.base);
    wait_healthy(&serve, &admin.client).await;
    let worker = Process::spawn("worker", &env);
    // The worker runs a direct job first: it is up, and knows no pool made through the API.
    let direct = admin.job(&site.url(), "none", 0).await;
    assert_eq!(direct["result"]["data"]["ip"], "127.0.0.1", "{direct}");

    let pool = |proxy: &str| json!({"tier": "residential", "proxies": [proxy]});
    let (status, made) = admin.put("res", &pool(&first.url("http"))).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["source"], "api", "{made}");
    assert_eq!(made["sealed_with"], key.id(), "{made}");
    assert_eq!(made["proxies"][0]["name"], "res-1", "{made}");
    assert_eq!(made["proxies"][0]["authenticated"], true, "{made}");
    let through = admin.job(&site.url(), "res", 0).await;
    assert_eq!(through["result"]["data"]["ip"], "127.0.0.51", "{through}");

    // A new version: the worker moves to the new proxy without a restart.
    let (status, replaced) = admin.put("res", &pool(&second.url("socks5"))).await;
    assert_eq!(status, 200, "{replaced}");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let job = admin.job(&site.url(), "residential", 0).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        if job["result"]["data"]["ip"] == "127.0.0.52" {
            break;
        }
        assert!(
            Instant::now() < until,
            "the worker kept the old proxy: {job}"
        );
    }

    // Refused, each field named, nothing quoted.
    let bad = json!({"tier": "Res!", "proxies": [format!("http://{USER}:{PASSWORD}@h:1/x")]});
    let (status, problem) = admin.put("res", &bad).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["tier", "proxies[0]"], "{problem}");
    let (status, problem) = admin.put("cfg", &pool(&first.url("http"))).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("PROXY_POOLS")
    );
    let (status, _) = admin.put("none", &pool(&first.url("http"))).await;
    assert_eq!(status, 400);

    // A job due later through a pool deleted before it runs fails, saying so.
    let (status, _) = admin.put("brief", &pool(&first.url("http"))).await;
    assert_eq!(status, 201);
    let waiting = {
        let body = json!({"url": site.url(), "strategy": "http", "max_attempts": 1,
                          "delay_ms": 4000, "payload": {"proxy": "brief"}});
        let (status, job) = admin.submit(&body).await;
        assert_eq!(status, 201, "{job}");
        job["id"].as_str().expect("id").to_owned()
    };
    assert_eq!(admin.delete("brief").await.0, 204);
    let orphan = finished(&admin.client, &admin.base, &waiting).await;
    assert_eq!(orphan["state"], "failed", "{orphan}");
    assert_eq!(orphan["error"]["kind"], "invalid_payload", "{orphan}");
    let said = orphan["error"]["message"].as_str().unwrap_or_default();
    assert!(said.contains("\"brief\""), "{orphan}");
    let body = json!({"url": site.url(), "payload": {"proxy": "brief"}});
    let (status, refused) = admin.submit(&body).await;
    assert_eq!(status, 422, "{refused}");

    // What the database holds: the pool's name and tier, its proxies only sealed.
    let store = AssertDb::Postgres(sqlx::PgPool::connect(&db.url).await.expect("the database"));
    let rows = store
        .strings("SELECT name || ' ' || tier || ' ' || rotation || ' ' || sealed FROM proxy_pools")
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with(&format!("res residential round_robin cp1.{}.", key.id())));
    let payloads = store.strings("SELECT payload::text FROM jobs").await;

    // Everything an admin can read, and both processes' logs.
    let (_, listed) = admin.get("/api/v1/proxies").await;
    let names: Vec<&str> = (listed["pools"].as_array().into_iter().flatten())
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["cfg", "res"], "{listed}");
    assert_eq!(admin.get("/api/v1/proxies/pools/res").await.0, 200);
    let queue = admin.page("/ui/queue").await;
    assert!(
        queue.contains("res-1") && queue.contains(">api<"),
        "{queue}"
    );
    admin.page("/metrics").await;
    assert_eq!(admin.delete("res").await.0, 204);
    assert_eq!(admin.delete("res").await.0, 404);
    assert_eq!(admin.get("/api/v1/proxies/pools/res").await.0, 404);
    let logs = format!("{}\n{}", serve.log(), worker.log());
    assert!(logs.contains("DEBUG"), "debug logs are on");
    for secret in [PASSWORD, "cHIweHktczNjcmV0"] {
        assert!(!admin.seen.contains(secret), "an answer holds a credential");
        assert!(!logs.contains(secret), "a log line holds a credential");
        assert!(
            !rows.concat().contains(secret),
            "the database holds a credential"
        );
        assert!(
            !payloads.concat().contains(secret),
            "a job holds a credential"
        );
    }
}

/// A pool sealed under one key: with a new SECRETS_KEY alone it is unusable and says which
/// key it needs; with the old key among SECRETS_OLD_KEYS it opens and is sealed again under
/// the new one, so the old key can then go. A changed pool keeps its unchanged proxies'
/// health. Without a key, no pool can be made, and the answer says why.
async fn a_rotated_key_opens_and_reseals_what_the_old_one_sealed(backend: Backend) {
    let out = "127.0.0.53";
    let site = WhoAmI::start().await;
    let proxy = Proxy::tinyproxy(out, 0);
    let (old, new) = (SecretKey::generate(), SecretKey::generate());
    let mut options = Options {
        backend,
        secrets_key: Some(old.to_base64()),
        ..Options::default()
    };
    let app = TestApp::spawn_with(options.clone()).await;
    let pool = json!({"tier": "residential", "proxies": [proxy.url("http")]});
    let made = app
        .client
        .put(format!("{}/api/v1/proxies/pools/res", app.base));
    assert_eq!(made.json(&pool).send().await.expect("put").status(), 201);
    let through = |app: &TestApp| {
        let body = json!({"url": site.url(), "strategy": "http", "max_attempts": 1,
                          "payload": {"proxy": "res", "selectors": {"ip": "#ip"}}});
        let (client, base) = (app.client.clone(), app.base.clone());
        async move {
            let job: Value = (client
                .post(format!("{base}/api/v1/jobs"))
                .json(&body)
                .send())
            .await
            .expect("submit")
            .json()
            .await
            .expect("json");
            let job = finished(&client, &base, job["id"].as_str().expect("id")).await;
            assert_eq!(job["result"]["data"]["ip"], out, "{job}");
        }
    };
    through(&app).await;
    let grown =
        json!({"tier": "residential", "proxies": [proxy.url("http"), "http://127.0.0.1:9"]});
    let grown = app
        .client
        .put(format!("{}/api/v1/proxies/pools/res", app.base))
        .json(&grown);
    let grown: Value = grown.send().await.expect("put").json().await.expect("json");
    assert_eq!(
        grown["proxies"][0]["attempts"], 1,
        "kept its health: {grown}"
    );
    assert_eq!(grown["proxies"][1]["attempts"], 0, "{grown}");

    options.secrets_key = Some(new.to_base64());
    let app = app.restart_with(options.clone()).await;
    let listed: Value = app.get("/api/v1/proxies").await.json().await.expect("json");
    assert_eq!(listed["pools"], json!([]), "{listed}");
    assert_eq!(listed["unreadable"][0]["name"], "res", "{listed}");
    let reason = listed["unreadable"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains(&old.id()),
        "names the key it needs: {listed}"
    );
    let refused = json!({"url": site.url(), "payload": {"proxy": "res"}});
    assert_eq!(app.post_json("/api/v1/jobs", &refused).await.status(), 422);

    options.secrets_old_keys = vec![old.to_base64()];
    let app = app.restart_with(options.clone()).await;
    through(&app).await;
    let listed: Value = app.get("/api/v1/proxies").await.json().await.expect("json");
    assert_eq!(listed["pools"][0]["sealed_with"], new.id(), "{listed}");
    let sealed = app.db.strings("SELECT sealed FROM proxy_pools").await;
    assert!(
        sealed[0].starts_with(&format!("cp1.{}.", new.id())),
        "{sealed:?}"
    );

    options.secrets_old_keys = Vec::new();
    let app = app.restart_with(options.clone()).await;
    through(&app).await;

    options.secrets_key = None;
    let app = app.restart_with(options).await;
    let other = json!({"tier": "datacenter", "proxies": ["http://127.0.0.1:9"]});
    let refused = app
        .client
        .put(format!("{}/api/v1/proxies/pools/dc", app.base));
    let refused = refused.json(&other).send().await.expect("put");
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.expect("problem");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("SECRETS_KEY is not set"), "{problem}");
}

on_both_backends!(a_rotated_key_opens_and_reseals_what_the_old_one_sealed);

/// A SECRETS_KEY that is not a key stops the start, naming the setting, never quoting it.
#[test]
fn a_malformed_key_stops_the_start_without_being_shown() {
    let said = crate::cli::refused_dev(&[("SECRETS_KEY", "hunter2-is-not-a-key")]);
    assert!(
        said.contains("SECRETS_KEY: expected the base64 of 32"),
        "{said}"
    );
    assert!(!said.contains("hunter2"), "{said}");
}
