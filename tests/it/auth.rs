//! Keys, roles and tenants: every `/api` route asks for a key; a tenant reaches only its own
//! jobs; a read key cannot change anything; a revoked key is refused within a second.

use std::time::Duration;

use control_plane::auth::{KeyId, Role};
use serde_json::{Value, json};

use crate::cli::{Process, command, wait_healthy};
use crate::common::{
    Backend, TestApp, TestDatabase, TestPrefix, client_with_key, create_key, eventually,
    on_both_backends, redis_url,
};

on_both_backends!(
    tenants_see_only_their_own_jobs,
    roles_limit_what_a_key_may_do,
    missing_malformed_and_wrong_keys_are_refused,
    a_revoked_key_is_refused_within_a_second,
);

const NOOP: &str = r#"{"url": "https://example.com/", "job_type": "noop"}"#;

fn noop() -> Value {
    serde_json::from_str(NOOP).expect("json")
}

/// A job that waits a day: it stays queued while the test looks at it.
fn scheduled() -> Value {
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    json!({"url": "https://example.com/", "job_type": "noop", "run_at": tomorrow.to_rfc3339()})
}

async fn status(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn tenants_see_only_their_own_jobs(backend: Backend) {
    let app = TestApp::on(backend).await;
    let alice = client_with_key(&create_key(app.store.as_ref(), "alice", Role::Submit).await);
    let bob = client_with_key(&create_key(app.store.as_ref(), "bob", Role::Submit).await);
    let (created, job) = status(
        alice
            .post(app.url("/api/v1/jobs"))
            .json(&noop())
            .send()
            .await
            .expect("submit"),
    )
    .await;
    assert_eq!(created, 201, "{job}");
    assert_eq!(job["tenant_id"], "alice");
    let id = job["id"].as_str().expect("id");

    for path in [
        format!("/api/v1/jobs/{id}"),
        format!("/api/v1/jobs/{id}/events"),
        format!("/api/v1/jobs/{id}/artifacts"),
        format!("/api/v1/jobs/{id}/artifacts/screenshot.png"),
    ] {
        let (code, problem) = status(bob.get(app.url(&path)).send().await.expect("get")).await;
        assert_eq!(code, 404, "bob GET {path}: {problem}");
        let (code, _) = status(alice.get(app.url(&path)).send().await.expect("get")).await;
        assert!(
            code == 200 || path.ends_with(".png"),
            "alice GET {path}: {code}"
        );
    }
    for action in ["cancel", "retry"] {
        let path = format!("/api/v1/jobs/{id}/{action}");
        let (code, problem) = status(bob.post(app.url(&path)).send().await.expect("post")).await;
        assert_eq!(code, 404, "bob POST {path}: {problem}");
    }
    let (_, page) = status(bob.get(app.url("/api/v1/jobs")).send().await.expect("list")).await;
    assert_eq!(page["jobs"], json!([]), "bob lists nothing of alice's");
    let (_, page) = status(
        alice
            .get(app.url("/api/v1/jobs"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(1));

    // The admin (the harness's client) sees every tenant's jobs.
    assert_eq!(app.job(id).await["tenant_id"], "alice");

    // Idempotency keys are per tenant: the same key makes one job per tenant.
    let mut ids = Vec::new();
    for client in [&alice, &bob, &alice] {
        let response = client
            .post(app.url("/api/v1/jobs"))
            .header("Idempotency-Key", "order-42")
            .json(&noop())
            .send()
            .await
            .expect("submit");
        let (_, job) = status(response).await;
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    assert_ne!(ids[0], ids[1], "bob's key is not alice's");
    assert_eq!(ids[0], ids[2], "alice's key replays alice's job");
}

async fn roles_limit_what_a_key_may_do(backend: Backend) {
    let app = TestApp::on(backend).await;
    let reader = client_with_key(&create_key(app.store.as_ref(), "default", Role::Read).await);
    let submitter = client_with_key(&create_key(app.store.as_ref(), "default", Role::Submit).await);
    let (code, problem) = status(
        reader
            .post(app.url("/api/v1/jobs"))
            .json(&noop())
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(code, 403, "{problem}");
    assert_eq!(problem["type"], "/problems/forbidden");
    assert_eq!(
        app.db.scalar("SELECT count(*) FROM jobs").await,
        0,
        "nothing stored"
    );

    let job = app.submit(&scheduled()).await;
    let id = job["id"].as_str().expect("id");
    let (code, _) = status(
        reader
            .get(app.url(&format!("/api/v1/jobs/{id}")))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(code, 200, "a read key reads");
    let (code, _) = status(
        reader
            .post(app.url(&format!("/api/v1/jobs/{id}/cancel")))
            .send()
            .await
            .expect("cancel"),
    )
    .await;
    assert_eq!(code, 403, "a read key cannot cancel");
    let (code, _) = status(
        submitter
            .get(app.url("/api/v1/queue/stats"))
            .send()
            .await
            .expect("stats"),
    )
    .await;
    assert_eq!(code, 403, "queue statistics span tenants: admin only");
    let (code, _) = status(app.get("/api/v1/queue/stats").await).await;
    assert_eq!(code, 200);
}

async fn missing_malformed_and_wrong_keys_are_refused(backend: Backend) {
    let app = TestApp::on(backend).await;
    let good = create_key(app.store.as_ref(), "default", Role::Admin).await;
    let forged = format!(
        "{}{}",
        &good[..good.len() - 1],
        if good.ends_with('0') { '1' } else { '0' }
    );
    let anonymous = reqwest::Client::new();
    let response = anonymous
        .get(app.url("/api/v1/jobs"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    for header in [
        "Bearer".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
        "Bearer cp_nothex_nothex".to_owned(),
        format!("Bearer {forged}"),
        format!("Bearer cp_000000000000_{}", "0".repeat(64)),
    ] {
        let response = anonymous
            .post(app.url("/api/v1/jobs"))
            .header("authorization", &header)
            .json(&noop())
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 401, "{header}");
    }
    assert_eq!(
        app.db.scalar("SELECT count(*) FROM jobs").await,
        0,
        "nothing stored"
    );
    // Health stays open; readiness says up or down and nothing else without a key.
    let health = anonymous
        .get(app.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let (code, ready) = status(
        anonymous
            .get(app.url("/ready"))
            .send()
            .await
            .expect("ready"),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(ready, json!({"status": "ready"}));
    let (_, detailed) = status(app.get("/ready").await).await;
    assert!(detailed["checks"]["database"].is_object(), "{detailed}");
}

async fn a_revoked_key_is_refused_within_a_second(backend: Backend) {
    let app = TestApp::on(backend).await;
    let key = create_key(app.store.as_ref(), "default", Role::Read).await;
    let client = client_with_key(&key);
    let (code, _) = status(
        client
            .get(app.url("/api/v1/jobs"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(code, 200);
    let id = KeyId::parse(&key[3..15]).expect("id");
    assert!(app.store.revoke_key(&id).await.expect("revoke"));
    eventually(
        "the revoked key to be refused",
        Duration::from_secs(1),
        || async {
            let response = client.get(app.url("/api/v1/jobs")).send().await.ok()?;
            (response.status() == 401).then_some(())
        },
    )
    .await;
    assert!(
        !app.store.revoke_key(&id).await.expect("revoke"),
        "already revoked"
    );
}

/// `control-plane keys` makes keys a real `serve` accepts, lists them without their secrets,
/// and revokes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_made_by_the_cli_open_a_real_serve() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let created = command(&[
        "keys", "create", "--tenant", "acme", "--role", "submit", "--name", "ci",
    ])
    .env("DATABASE_URL", &db.url)
    .output()
    .expect("keys create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let key = String::from_utf8(created.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert!(key.starts_with("cp_"), "{key}");
    let listed = command(&["keys", "list"])
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("keys list");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains(&key[3..15]) && listed.contains("acme") && listed.contains("submit"),
        "{listed}"
    );
    assert!(
        !listed.contains(&key[16..]),
        "the secret is never shown again"
    );

    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("AUTH", "keys".to_owned()),
    ];
    let serve = Process::spawn("serve", &env);
    let anonymous = reqwest::Client::new();
    wait_healthy(&serve, &anonymous).await;
    let jobs = format!("{}/api/v1/jobs", serve.base);
    let response = anonymous
        .post(&jobs)
        .json(&noop())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);
    let client = client_with_key(&key);
    let (code, job) = status(client.post(&jobs).json(&noop()).send().await.expect("post")).await;
    assert_eq!(code, 201, "{job}");
    assert_eq!(job["tenant_id"], "acme");

    let revoked = command(&["keys", "revoke", &key[3..15]])
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("keys revoke");
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    eventually(
        "the revoked key to be refused",
        Duration::from_secs(1),
        || async {
            let response = client.get(&jobs).send().await.ok()?;
            (response.status() == 401).then_some(())
        },
    )
    .await;
}

/// `serve` without AUTH asks for keys; AUTH=off is said out loud at every start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_asks_for_keys_unless_told_otherwise() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let mut env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("AUTH", String::new()),
    ];
    let client = reqwest::Client::new();
    {
        let mut default = command(&["serve"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        default.env("BIND", format!("127.0.0.1:{port}"));
        for (k, v) in &env[..3] {
            default.env(k, v);
        }
        let mut child = default
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve");
        let url = format!("http://127.0.0.1:{port}/api/v1/jobs");
        let code = eventually("serve to answer", Duration::from_secs(30), || async {
            Some(client.get(&url).send().await.ok()?.status().as_u16())
        })
        .await;
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(code, 401, "serve asks for keys by default");
    }
    env[3].1 = "off".to_owned();
    let open = Process::spawn("serve", &env);
    wait_healthy(&open, &client).await;
    let log = open.log();
    assert!(log.contains("AUTH=off"), "{log}");
    let response = client
        .get(format!("{}/api/v1/jobs", open.base))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
}

/// A page on another site cannot reach a local API by DNS rebinding (its `Host` is not
/// allowed) nor change jobs on an open one by a cross-site form or `fetch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_hosts_and_cross_site_changes_are_refused() {
    let app = TestApp::spawn().await;
    let job = app.submit(&scheduled()).await;
    let id = job["id"].as_str().expect("id");
    let rebound = app
        .client
        .get(app.url(&format!("/api/v1/jobs/{id}")))
        .header(
            "host",
            format!(
                "rebind.attacker.example:{}",
                app.base.rsplit(':').next().unwrap_or("80")
            ),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(rebound.status(), 400, "a foreign Host is refused");
    let cancel = app.url(&format!("/api/v1/jobs/{id}/cancel"));
    let form = app
        .client
        .post(&cancel)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1")
        .send()
        .await
        .expect("post");
    assert_eq!(form.status(), 415, "a form body is refused");
    let cross = app
        .client
        .post(&cancel)
        .header("origin", "https://attacker.example")
        .send()
        .await
        .expect("post");
    assert_eq!(cross.status(), 403, "a cross-site change is refused");
    assert_eq!(
        app.job(id).await["state"],
        "queued",
        "nothing was cancelled"
    );
    let same = app
        .client
        .post(&cancel)
        .header("origin", app.base.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(same.status(), 200, "the API's own origin may");
}
