//! The real binary: start-up errors in one line, and graceful shutdown on SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::common::{TestDatabase, TestPrefix, eventually, redis_url};

const BIN: &str = env!("CARGO_BIN_EXE_control-plane");

/// The binary with a clean environment: only what the test sets.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

/// What `control-plane dev` writes to stderr when `env` stops its start (on a data directory
/// of its own, browsers off); fails when it exits 0.
pub fn refused_dev(env: &[(&str, &str)]) -> String {
    let dir = crate::common::TestDataDir::new();
    let mut dev = command(&["dev"]);
    dev.env("DATA_DIR", &dir.0)
        .env("BIND", "127.0.0.1:0")
        .env("BROWSER", "off")
        .envs(env.iter().copied());
    let refused = dev.output().expect("the binary runs");
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success(), "{said}");
    said
}

#[test]
fn a_malformed_setting_stops_start_up_with_one_line_naming_it() {
    for (name, value) in [
        ("SHUTDOWN_GRACE", "soon"),
        ("BIND", "nowhere"),
        ("WORKER_CONCURRENCY", "0"),
        ("LOG_FORMAT", "xml"),
        ("ALLOW_PRIVATE_TARGETS", "maybe"),
    ] {
        let output = command(&["serve"])
            .env(name, value)
            .output()
            .expect("run binary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{name}: one line, got {stderr:?}"
        );
        assert!(stderr.contains(name), "{name} is named: {stderr:?}");
    }
}

#[test]
fn a_missing_setting_stops_start_up_with_one_line_naming_it() {
    let output = command(&["worker"])
        .env("REDIS_URL", redis_url())
        .output()
        .expect("run binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr:?}");
    assert!(
        stderr.contains("control-plane dev"),
        "points to dev: {stderr:?}"
    );

    let output = command(&["serve"])
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )
        .output()
        .expect("run binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("REDIS_URL is not set"), "{stderr:?}");

    let output = command(&["--help"]).output().expect("run binary");
    let help = String::from_utf8_lossy(&output.stdout);
    for setting in [
        "DATABASE_URL",
        "REDIS_URL",
        "BIND",
        "WORKER_CONCURRENCY",
        "LOG_FORMAT",
        "RUST_LOG",
        "QUEUE_PREFIX",
        "ALLOW_PRIVATE_TARGETS",
        "SHUTDOWN_GRACE",
    ] {
        assert!(help.contains(setting), "--help lists {setting}");
    }
}

/// A running `control-plane` process with its own port and log file.
pub struct Process {
    child: Child,
    /// The API's base URL.
    pub base: String,
    log: PathBuf,
}

impl Process {
    /// Starts `control-plane <role>` with `env` (and nothing else from the environment).
    pub fn spawn(role: &str, env: &[(&str, String)]) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let log = std::env::temp_dir().join(format!("cp-{}.log", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = command(&[role]);
        command
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("LOG_FORMAT", "json")
            // Keys are the default; these tests are about processes, not keys (auth.rs is).
            .env("AUTH", "off")
            .env("QUOTA_SUBMIT_RATE", "1000000")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::from(file.try_clone().expect("log file")))
            .stderr(Stdio::from(file));
        Process {
            child: command.spawn().expect("start binary"),
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// `control-plane all` on its own database and key prefix.
    fn start(db: &TestDatabase, prefix: &TestPrefix, grace: &str) -> Process {
        Process::spawn(
            "all",
            &[
                ("DATABASE_URL", db.url.clone()),
                ("REDIS_URL", redis_url()),
                ("QUEUE_PREFIX", prefix.0.clone()),
                ("SHUTDOWN_GRACE", grace.to_owned()),
                ("WORKER_CONCURRENCY", "2".to_owned()),
            ],
        )
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal (`STOP`, `CONT`, `TERM`, …).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "process did not exit; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn submit_sleeper(client: &reqwest::Client, base: &str, sleep_ms: u64) -> String {
    let body = json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": sleep_ms}});
    submit(client, base, &body).await
}

/// Submits a job to the API at `base`, asserting 201; returns its id.
pub async fn submit(client: &reqwest::Client, base: &str, body: &Value) -> String {
    let response = client
        .post(format!("{base}/api/v1/jobs"))
        .json(body)
        .send()
        .await
        .expect("submit");
    assert_eq!(response.status(), 201);
    let job: Value = response.json().await.expect("job");
    job["id"].as_str().expect("id").to_owned()
}

/// GETs `url` and reads its JSON body; `None` when either fails.
pub async fn fetch_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

/// Waits until the job `id` is finished with the API's own `?wait=` (answered when the job
/// finishes, at most a minute later), as a client would; a request the API does not answer
/// (it is starting, or was cut) is asked again. Fails after `deadline`.
pub async fn finished(client: &reqwest::Client, base: &str, id: &str, deadline: Duration) -> Value {
    let until = Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let wait_ms = left.as_millis().clamp(1, 60_000);
        let url = format!("{base}/api/v1/jobs/{id}?wait={wait_ms}ms");
        let job = fetch_json(client, &url).await;
        let state = job.as_ref().and_then(|job| job["state"].as_str());
        if let (Some(job), Some("succeeded" | "failed" | "cancelled")) = (&job, state) {
            return job.clone();
        }
        assert!(
            Instant::now() < until,
            "job {id} did not finish in {deadline:?}: {job:?}"
        );
        if job.is_none() {
            // Not answered: a short pause before asking a process that may be starting.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn wait_running(client: &reqwest::Client, base: &str, id: &str) {
    eventually("the job to run", Duration::from_secs(30), || async {
        let job = fetch_json(client, &format!("{base}/api/v1/jobs/{id}")).await?;
        (job["state"] == "running").then_some(())
    })
    .await;
}

/// How long a process may take to answer `/ready` after its start: it migrates a fresh
/// database first, and the suite's fault tests load both cores meanwhile (30 s was once
/// not enough beside the chaos test).
const START_DEADLINE: Duration = Duration::from_secs(90);

/// Waits until the process answers `/ready` with 200; fails with the process's log.
pub async fn wait_healthy(process: &Process, client: &reqwest::Client) {
    let until = Instant::now() + START_DEADLINE;
    loop {
        let ready = client.get(format!("{}/ready", process.base)).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(
            Instant::now() < until,
            "{} did not answer /ready within {START_DEADLINE:?}; its log:\n{}",
            process.base,
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn job_state(db: &TestDatabase, id: &str) -> (String, Vec<String>) {
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let id: uuid::Uuid = id.parse().expect("uuid");
    let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .expect("job");
    let events: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM job_events WHERE job_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut conn)
            .await
            .expect("events");
    (state, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_jobs_finish_and_exits_zero() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let mut process = Process::start(&db, &prefix, "30s");
    let client = reqwest::Client::new();
    wait_healthy(&process, &client).await;

    let id = submit_sleeper(&client, &process.base, 1_500).await;
    wait_running(&client, &process.base, &id).await;
    process.terminate();
    let status = process.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "exit 0; log:\n{}", process.log());

    let (state, events) = job_state(&db, &id).await;
    assert_eq!(state, "succeeded", "log:\n{}", process.log());
    assert_eq!(events, ["created", "started", "succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_still_running_after_the_grace_period_go_back_to_the_queue() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let mut process = Process::start(&db, &prefix, "300ms");
    let client = reqwest::Client::new();
    wait_healthy(&process, &client).await;

    let id = submit_sleeper(&client, &process.base, 30_000).await;
    wait_running(&client, &process.base, &id).await;
    let stopping = Instant::now();
    process.terminate();
    let status = process.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "exit 0; log:\n{}", process.log());
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "did not wait for the 30 s job"
    );

    let (state, events) = job_state(&db, &id).await;
    assert_eq!(state, "queued", "log:\n{}", process.log());
    assert_eq!(events, ["created", "started", "released"]);
}
