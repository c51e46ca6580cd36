//! Profiles: a login saved by one job is the next job's, on another worker process and over
//! plain http too; saves take turns on a profile's writer lease; a failed job saves
//! nothing; a version can be restored; a deleted profile is gone; and the state is sealed
//! in the database and shown nowhere.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{Process, wait_healthy};
use crate::common::{
    AssertDb, Backend, Options, TestApp, TestDataDir, TestDatabase, TestPrefix, on_both_backends,
    redis_url,
};
use crate::login_site::LoginSite;
use crate::recording::Recording;
use crate::upstream_fixtures::finished;
use control_plane::secrets::SecretKey;

const LONG: Duration = Duration::from_secs(90);

/// Jobs through a [`Recording`] client.
impl Recording {
    /// Submits a job, waits for it, and reads its events too.
    async fn run(&mut self, body: Value) -> Value {
        let (status, job) = self.submit(&body).await;
        assert_eq!(status, 201, "{job}");
        let id = job["id"].as_str().expect("id").to_owned();
        let job = finished(&self.client, &self.base, &id).await;
        self.seen.push_str(&job.to_string());
        self.get(&format!("/api/v1/jobs/{id}/events")).await;
        job
    }
}

/// Everything the files under `dir` hold (artifacts, the data directory), as text.
fn files_under(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text.push_str(&files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

/// A `navigate_extract` of the member page, with `profile` (or none).
fn member_page(site: &LoginSite, strategy: &str, profile: Option<&str>) -> Value {
    let mut payload = json!({"selectors": {"who": "#who", "pref": "#pref"}});
    if let Some(name) = profile {
        payload["profile"] = json!({"name": name});
    }
    json!({"url": site.url("/members"), "strategy": strategy, "max_attempts": 1,
           "timeout_ms": 20000, "payload": payload})
}

/// `serve` and two `worker` processes, one after the other, logging at debug level: a
/// `stealth` `script` job on the first signs in and saves the profile; a job on the second reads the
/// member page with it (cookie and `localStorage` back), over plain http too; without it the
/// login form shows. The database holds the state only sealed; no answer, event, result or
/// log line holds the session cookie or the stored value. Deleted, the profile is gone and
/// a job naming it fails saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_saved_on_one_worker_signs_in_jobs_on_another_and_is_never_shown() {
    let site = LoginSite::start().await;
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let key = SecretKey::generate();
    let data = TestDataDir::new();
    let env = vec![
        ("DATA_DIR", data.0.display().to_string()),
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
        ("SECRETS_KEY", key.to_base64()),
    ];
    let serve = Process::spawn("serve", &env);
    let mut client = Recording::new(&serve.base);
    wait_healthy(&serve, &client.client).await;
    let mut first = Process::spawn("worker", &env);
    let login = client
        .run(
            json!({"url": site.url("/login"), "job_type": "script", "strategy": "stealth",
                    "max_attempts": 1, "timeout_ms": 20000,
                    "payload": {"steps": site.login_steps(), "locale": "fr-FR",
                                "profile": {"name": "shop", "save": true}}}),
        )
        .await;
    assert_eq!(login["state"], "succeeded", "{login}");
    assert_eq!(login["result"]["data"]["who"], "Welcome back, alice");
    assert_eq!(login["result"]["data"]["pref"], "none", "a fresh browser");
    let logged = first.log();
    first.kill_9();

    let second = Process::spawn("worker", &env);
    let member = client
        .run(member_page(&site, "vanilla", Some("shop")))
        .await;
    assert_eq!(member["state"], "succeeded", "{member}");
    assert_ne!(member["worker_id"], login["worker_id"], "another worker");
    assert_eq!(member["result"]["data"]["who"], "Welcome back, alice");
    assert_eq!(
        member["result"]["data"]["pref"], "remembered",
        "localStorage came back"
    );
    let stranger = client.run(member_page(&site, "vanilla", None)).await;
    assert_eq!(stranger["result"]["data"]["who"], "Please sign in");
    let plain = client.run(member_page(&site, "http", Some("shop"))).await;
    assert_eq!(plain["result"]["executed_with"], "http", "{plain}");
    assert_eq!(plain["result"]["data"]["who"], "Welcome back, alice");
    // The stealth persona the profile keeps (a time zone among it) does not keep `auto`
    // off its cheapest rung.
    let cheapest = client.run(member_page(&site, "auto", Some("shop"))).await;
    assert_eq!(cheapest["result"]["executed_with"], "http", "{cheapest}");
    assert_eq!(cheapest["result"]["data"]["who"], "Welcome back, alice");
    let (status, refused) = client
        .submit(&json!({"url": site.url("/members"), "strategy": "http",
                        "payload": {"profile": {"name": "shop", "save": true}}}))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "payload.profile.save");

    // What may be shown: metadata.
    let (_, listed) = client.get("/api/v1/profiles").await;
    let shop = &listed["profiles"][0];
    assert_eq!(shop["name"], "shop", "{listed}");
    assert_eq!(shop["current_version"], 1);
    assert_eq!(shop["cookies"], 1);
    assert_eq!(shop["origins"], json!([site.url("")]), "{listed}");
    assert!(shop["last_used_at"].is_string(), "{listed}");
    let (_, one) = client.get("/api/v1/profiles/shop").await;
    assert_eq!(one["versions"][0]["saved_by"], login["id"], "{one}");
    let pages = format!(
        "{}{}",
        client.page("/ui/profiles").await,
        client.page("/ui/profiles/shop").await
    );
    for id in [&login["id"], &member["id"], &plain["id"], &cheapest["id"]] {
        let id = id.as_str().expect("id");
        assert!(pages.contains(id), "the profile's page lists job {id}");
    }
    let job_page = client
        .page(&format!("/ui/jobs/{}", member["id"].as_str().expect("id")))
        .await;
    assert!(
        job_page.contains("href=\"/ui/profiles/shop\""),
        "{job_page}"
    );

    // What the database holds: the state only sealed.
    let store = AssertDb::Postgres(sqlx::PgPool::connect(&db.url).await.expect("the database"));
    let sealed = store.strings("SELECT sealed FROM profile_versions").await;
    assert_eq!(sealed.len(), 1);
    assert!(sealed[0].starts_with(&format!("cp1.{}.", key.id())));
    let rows = store
        .strings("SELECT p::text FROM profile_versions p UNION ALL SELECT j::text FROM jobs j")
        .await
        .concat();
    let events = store
        .strings("SELECT e::text FROM job_events e")
        .await
        .concat();
    let files = files_under(&data.0);
    let logs = format!("{}\n{logged}\n{}", serve.log(), second.log());
    assert!(
        logs.contains("DEBUG") && logs.contains("profile saved"),
        "debug logs are on"
    );
    for secret in [&site.session, &site.stored] {
        assert!(
            !rows.contains(secret.as_str()),
            "the database holds a secret"
        );
        assert!(!events.contains(secret.as_str()), "an event holds a secret");
        assert!(
            !files.contains(secret.as_str()),
            "a stored file holds a secret"
        );
        assert!(
            !client.seen.contains(secret.as_str()),
            "an answer holds a secret"
        );
        let leaked: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(leaked.is_empty(), "a log line holds a secret: {leaked:?}");
    }

    // Deleted: gone everywhere, and a job naming it is told so.
    let url = format!("{}/api/v1/profiles/shop", client.base);
    assert_eq!(client.send(client.client.delete(&url)).await.0, 204);
    assert_eq!(client.send(client.client.delete(&url)).await.0, 404);
    assert_eq!(client.get("/api/v1/profiles/shop").await.0, 404);
    let left = store
        .scalar("SELECT (SELECT count(*) FROM profiles) + (SELECT count(*) FROM profile_versions)")
        .await;
    assert_eq!(left, 0);
    let orphan = client
        .run(member_page(&site, "vanilla", Some("shop")))
        .await;
    assert_eq!(orphan["state"], "failed", "{orphan}");
    assert_eq!(orphan["error"]["kind"], "invalid_payload", "{orphan}");
    let said = orphan["error"]["message"].as_str().unwrap_or_default();
    assert!(said.contains("no profile named \"shop\""), "{orphan}");
}

/// A `script` job that visits the trail page adding `tag`, then waits `hold_ms`.
fn trail_job(site: &LoginSite, tag: &str, hold_ms: u64, steps_after: Value) -> Value {
    let mut steps = vec![
        json!({"wait_for": hold_ms}),
        json!({"extract": {"trail": "#trail"}}),
    ];
    steps.extend(steps_after.as_array().cloned().unwrap_or_default());
    json!({"url": site.url(&format!("/trail?add={tag}")), "job_type": "script",
           "strategy": "vanilla", "max_attempts": 1, "timeout_ms": 20000,
           "payload": {"steps": steps, "profile": {"name": "trail", "save": true}}})
}

/// What the trail cookie of the profile's current version says.
async fn trail_now(app: &TestApp, site: &LoginSite) -> String {
    let body = json!({"url": site.url("/trail"), "strategy": "vanilla", "max_attempts": 1,
                      "payload": {"selectors": {"trail": "#trail"}, "profile": {"name": "trail"}}});
    let id = app.submit(&body).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let job = app.wait_terminal(&id, LONG).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    job["result"]["data"]["trail"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn profile(app: &TestApp) -> Value {
    let response = app.get("/api/v1/profiles/trail").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// Two jobs saving one profile at once take turns: the one that waited was deferred with
/// no attempt spent, and started from the other's saved state (so neither save is lost or
/// mixed). A failed saving job leaves the profile as it was; restoring a version brings its
/// state back as a new version.
async fn saves_take_turns_a_failure_saves_nothing_and_a_version_restores(backend: Backend) {
    let site = LoginSite::start().await;
    let app = TestApp::spawn_with(Options {
        backend,
        browser: true,
        concurrency: 2,
        ..Options::default()
    })
    .await;
    let a = app.submit(&trail_job(&site, "a", 1500, json!([]))).await;
    let b = app.submit(&trail_job(&site, "b", 1500, json!([]))).await;
    let mut trails = Vec::new();
    let mut deferred = 0;
    for job in [&a, &b] {
        let id = job["id"].as_str().expect("id");
        let done = app.wait_terminal(id, LONG).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_eq!(done["attempt"], 1, "a wait spends no attempt: {done}");
        trails.push(
            done["result"]["data"]["trail"]
                .as_str()
                .expect("trail")
                .to_owned(),
        );
        let events = app.get(&format!("/api/v1/jobs/{id}/events")).await;
        let events = events.text().await.expect("events");
        deferred += usize::from(events.contains("\"reason\":\"profile\""));
    }
    trails.sort_by_key(String::len);
    assert!(
        trails == [".a", ".a.b"] || trails == [".b", ".b.a"],
        "the second saver started from the first's save: {trails:?}"
    );
    assert_eq!(deferred, 1, "one job waited for the other's save");
    assert_eq!(profile(&app).await["current_version"], 2);
    assert_eq!(trail_now(&app, &site).await, trails[1]);

    let failing = app
        .submit(&trail_job(&site, "c", 0, json!([{"click": "#missing"}])))
        .await;
    let failed = app
        .wait_terminal(failing["id"].as_str().expect("id"), LONG)
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(profile(&app).await["current_version"], 2, "nothing saved");
    assert_eq!(trail_now(&app, &site).await, trails[1]);

    let restored = app
        .post_json("/api/v1/profiles/trail/restore", &json!({"version": 1}))
        .await;
    assert_eq!(restored.status(), 200);
    let restored: Value = restored.json().await.expect("json");
    assert_eq!(restored["current_version"], 3, "{restored}");
    assert_eq!(restored["versions"][0]["restored_from"], 1, "{restored}");
    assert_eq!(trail_now(&app, &site).await, trails[0]);
    let missing = app
        .post_json("/api/v1/profiles/trail/restore", &json!({"version": 9}))
        .await;
    assert_eq!(missing.status(), 404);
    let bad = app
        .post_json(
            "/api/v1/profiles/trail/restore",
            &json!({"version": 0, "x": 1}),
        )
        .await;
    assert_eq!(bad.status(), 422);
    let bad: Value = bad.json().await.expect("json");
    let fields: Vec<&str> = (bad["errors"].as_array().into_iter().flatten())
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["version", "x"], "{bad}");
}

on_both_backends!(saves_take_turns_a_failure_saves_nothing_and_a_version_restores);
