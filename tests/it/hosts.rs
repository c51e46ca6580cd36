//! Separate hosts, for real: `serve` and two workers each in a network namespace of its own
//! (own interfaces, own `/tmp` and `/dev/shm`: nothing on disk is shared), joined by a bridge
//! the test makes to this namespace, which stands in for the services' host: TCP forwarders
//! on the bridge lead to PostgreSQL, Redis, the S3 server and the fixture site. Screenshots
//! taken by either worker download through `serve`. Then one worker host's link goes down
//! mid-job: its jobs finish on the other within the lease, none is applied twice, and when
//! the link comes back the cut-off worker changes nothing of them — not a row, an event, an
//! artifact or an object. It needs root (namespaces, links), as `scripts/test` runs it.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{
    TcpProxy, TestDatabase, TestPrefix, chrome, database_server, eventually, redis_url,
};
use crate::s3_server::{ACCESS_KEY, S3Server, SECRET_KEY};
use crate::site::Site;

const BIN: &str = env!("CARGO_BIN_EXE_control-plane");
const BUCKET: &str = "cp-hosts";
/// The last byte of each host's address on the bridge (the services' host is 1).
const SERVE: u8 = 2;
const WORKER_A: u8 = 3;
const WORKER_B: u8 = 4;
/// Long enough for a worker to renew it while its link is up, short for the test.
const JOB_LEASE: Duration = Duration::from_secs(6);

/// Runs `ip` with `args`; panics with its error when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2) is needed; scripts/test installs it");
    assert!(
        out.status.success(),
        "ip {}: {} (this test needs root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A bridge in this namespace, 10.x.y.1/24, with one network namespace per host on it.
struct Lan {
    id: String,
    net: (u8, u8),
    hosts: Vec<u8>,
}

impl Lan {
    fn create() -> Lan {
        let uuid = uuid::Uuid::new_v4();
        let bytes = uuid.as_bytes();
        let lan = Lan {
            id: uuid.simple().to_string()[..6].to_owned(),
            net: (100 + bytes[6] % 100, bytes[7]),
            hosts: Vec::new(),
        };
        ip(&["link", "add", &lan.bridge(), "type", "bridge"]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", lan.addr(1)),
            "dev",
            &lan.bridge(),
        ]);
        ip(&["link", "set", &lan.bridge(), "up"]);
        lan
    }

    fn bridge(&self) -> String {
        format!("cpb{}", self.id)
    }

    fn addr(&self, host: u8) -> String {
        format!("10.{}.{}.{host}", self.net.0, self.net.1)
    }

    fn netns(&self, host: u8) -> String {
        format!("cp{}-{host}", self.id)
    }

    /// The host's cable, as this namespace sees it: down is a cut link.
    fn cable(&self, host: u8) -> String {
        format!("cv{}{host}", self.id)
    }

    /// A namespace for `host` with its end of a cable on the bridge and loopback up.
    fn add_host(&mut self, host: u8) {
        let (ns, cable, far) = (
            self.netns(host),
            self.cable(host),
            format!("cw{}{host}", self.id),
        );
        ip(&["netns", "add", &ns]);
        self.hosts.push(host);
        ip(&["link", "add", &cable, "type", "veth", "peer", "name", &far]);
        ip(&["link", "set", &far, "netns", &ns]);
        ip(&["link", "set", &cable, "master", &self.bridge()]);
        ip(&["link", "set", &cable, "up"]);
        ip(&["-n", &ns, "link", "set", &far, "name", "eth0"]);
        let addr = format!("{}/24", self.addr(host));
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
    }

    fn cut(&self, host: u8) {
        ip(&["link", "set", &self.cable(host), "down"]);
    }

    fn mend(&self, host: u8) {
        ip(&["link", "set", &self.cable(host), "up"]);
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.netns(*host)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .status();
    }
}

/// A control-plane process on a host of the LAN, with a `/tmp` and `/dev/shm` of its own.
struct Host {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Host {
    fn start(lan: &Lan, host: u8, role: &str, env: &[(&str, String)]) -> Host {
        let log = std::env::temp_dir().join(format!("cp-host-{}-{host}.log", lan.id));
        let file = std::fs::File::create(&log).expect("log file");
        let bind = format!("{}:8080", lan.addr(host));
        let child = Command::new("ip")
            .args(["netns", "exec", &lan.netns(host), "sh", "-c"])
            .arg(
                "mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /dev/shm \
                 && mkdir /tmp/home && exec \"$0\" \"$@\"",
            )
            .args([BIN, role])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", "/tmp/home")
            .env("BIND", &bind)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::from(file.try_clone().expect("log file")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("ip netns exec");
        Host {
            child,
            base: format!("http://{bind}"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The worker id this process logged at start.
    async fn worker_id(&self) -> String {
        eventually("the worker to start", Duration::from_secs(60), || async {
            let log = self.log();
            let line = log.lines().find(|l| l.contains("worker started"))?;
            let line: Value = serde_json::from_str(line).ok()?;
            line["worker_id"].as_str().map(str::to_owned)
        })
        .await
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a job's rows and objects hold: compared before and after the cut-off worker's link
/// comes back.
async fn footprint(pool: &PgPool, s3: &S3Server, id: &str) -> String {
    let id: uuid::Uuid = id.parse().expect("uuid");
    let job: (String, i32, Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT state, attempt, worker_id, result::text, finished_at::text FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("the job");
    let events: Vec<(i64, String, i32)> =
        sqlx::query_as("SELECT id, kind, attempt FROM job_events WHERE job_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(pool)
            .await
            .expect("its events");
    let artifacts: Vec<(String, i32, String)> = sqlx::query_as(
        "SELECT name, attempt, sha256 FROM job_artifacts WHERE job_id = $1 ORDER BY name",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("its artifacts");
    format!(
        "{job:?}\nevents {events:?}\nartifacts {artifacts:?}\nobjects {:?}",
        objects(s3, &id.to_string())
    )
}

/// The job's objects in the bucket (relative path → size).
fn objects(s3: &S3Server, id: &str) -> BTreeMap<String, u64> {
    let root = s3.object_file(BUCKET, &format!("hosts/{id}"));
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(relative) = path.strip_prefix(&root) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or_default();
                found.insert(relative.display().to_string(), size);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_separate_hosts_share_only_the_services_and_a_cut_off_one_changes_nothing() {
    let mut lan = Lan::create();
    for host in [SERVE, WORKER_A, WORKER_B] {
        lan.add_host(host);
    }
    let gateway = lan.addr(1);

    // The services' host: every server reached through a forwarder on the bridge.
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let s3 = S3Server::start(BUCKET).await;
    let site = Site::start().await;
    let on_bridge = format!("{gateway}:0");
    let db_server = database_server(&db.url);
    let redis = redis_url();
    let redis_server = redis.trim_start_matches("redis://").trim_end_matches('/');
    let site_server = site.url("").trim_start_matches("http://").to_owned();
    let s3_server = s3.endpoint.trim_start_matches("http://").to_owned();
    let links = [
        TcpProxy::start_on(&on_bridge, &db_server).await,
        TcpProxy::start_on(&on_bridge, redis_server).await,
        TcpProxy::start_on(&on_bridge, &s3_server).await,
        TcpProxy::start_on(&on_bridge, &site_server).await,
    ];
    let [to_db, to_redis, to_s3, to_site] = links.each_ref().map(|link| link.addr);

    let migrated = crate::cli::command(&["migrate"])
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("migrate");
    assert!(migrated.status.success(), "{migrated:?}");
    let env = vec![
        (
            "DATABASE_URL",
            db.url.replacen(&db_server, &to_db.to_string(), 1),
        ),
        ("REDIS_URL", format!("redis://{to_redis}")),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("ARTIFACT_STORE", format!("s3://{BUCKET}/hosts")),
        ("AWS_ENDPOINT_URL", format!("http://{to_s3}")),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AUTH", "off".to_owned()),
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ("JOB_LEASE", format!("{}s", JOB_LEASE.as_secs())),
        ("LEADER_LEASE", "3s".to_owned()),
        ("SCHEDULER_INTERVAL", "200ms".to_owned()),
        ("REDELIVER_AFTER", "5s".to_owned()),
        ("WORKER_CONCURRENCY", "2".to_owned()),
        ("BROWSER_POOL_SIZE", "1".to_owned()),
        ("CHROME_PATH", chrome().display().to_string()),
        ("QUOTA_SUBMIT_RATE", "1000000".to_owned()),
        ("DATA_DIR", "/tmp/control-plane".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let serve = Host::start(&lan, SERVE, "serve", &env);
    let worker_a = Host::start(&lan, WORKER_A, "worker", &env);
    let worker_b = Host::start(&lan, WORKER_B, "worker", &env);
    let (a, b) = (worker_a.worker_id().await, worker_b.worker_id().await);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let api = Api {
        client: client.clone(),
        base: serve.base.clone(),
    };
    eventually("serve to be ready", Duration::from_secs(60), || async {
        let answer = client
            .get(format!("{}/ready", serve.base))
            .send()
            .await
            .ok()?;
        (answer.status() == 200).then_some(())
    })
    .await;
    let policy = client
        .put(format!("{}/api/v1/domains/{gateway}/policy", serve.base))
        .json(&json!({"cap": 16}))
        .send()
        .await
        .expect("policy");
    assert_eq!(
        policy.status(),
        200,
        "one domain for every job: no pacing here"
    );
    let page = |ms: u64| format!("http://{to_site}/slow?ms={ms}");

    // Screenshots by either worker, each downloaded through serve from the bucket.
    let first: Vec<String> = api.submit_screenshots(&page(1_500), 6).await;
    let mut ran_on = HashSet::new();
    for id in &first {
        let job = api.finished(id, Duration::from_secs(120)).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        ran_on.insert(job["worker_id"].as_str().expect("worker").to_owned());
        let png = api.download(id).await;
        assert!(png.starts_with(b"\x89PNG"), "job {id}: a PNG through serve");
        let attempt = job["attempt"].as_u64().expect("attempt");
        let kept =
            std::fs::read(s3.object_file(BUCKET, &format!("hosts/{id}/{attempt}/screenshot.png")))
                .expect("the object is in the bucket");
        assert_eq!(png, kept, "job {id}: serve streams the bucket's object");
    }
    assert_eq!(
        ran_on,
        HashSet::from([a.clone(), b.clone()]),
        "both workers took screenshots"
    );

    // Four slow screenshots: two on each worker (two slots each). Then A's link goes down.
    let second = api.submit_screenshots(&page(5_000), 4).await;
    let held_by_a: Vec<String> = eventually("all four to run", Duration::from_secs(60), || async {
        let mut on_a = Vec::new();
        for id in &second {
            let job = api.job(id).await;
            if job["state"] != "running" {
                return None;
            }
            if job["worker_id"] == a.as_str() {
                on_a.push(id.clone());
            }
        }
        Some(on_a)
    })
    .await;
    assert_eq!(held_by_a.len(), 2, "worker A runs two of them");
    lan.cut(WORKER_A);
    let cut_at = Instant::now();
    for id in &second {
        let job = api.finished(id, Duration::from_secs(120)).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["worker_id"], b.as_str(), "B finished {id}: {job}");
    }
    let taken_over = cut_at.elapsed();
    let pool = PgPool::connect(&db.url).await.expect("assertion pool");
    for id in &held_by_a {
        let job = api.job(id).await;
        assert_eq!(job["attempt"], 2, "A's attempt, then B's: {job}");
        let (succeeded, started_by_b): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE kind = 'succeeded'),
                    extract(epoch FROM max(at) FILTER (WHERE kind = 'started' AND attempt = 2))::float8
             FROM job_events WHERE job_id = $1::uuid",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("events");
        assert_eq!(succeeded, 1, "{id} succeeded once");
        assert!(started_by_b.is_some(), "{id}: B started attempt 2");
    }
    eprintln!(
        "hosts: A cut off; its two jobs finished on B {:.1} s later (lease {} s, page 5 s)",
        taken_over.as_secs_f64(),
        JOB_LEASE.as_secs()
    );

    // A's link comes back: what it still holds of those jobs is refused, and it works again.
    let mut before = Vec::new();
    for id in &held_by_a {
        before.push(footprint(&pool, &s3, id).await);
    }
    lan.mend(WORKER_A);
    eventually(
        "A to give up its stale attempts",
        Duration::from_secs(120),
        || async {
            let log = worker_a.log();
            held_by_a
                .iter()
                .all(|id| {
                    log.lines().any(|line| {
                        line.contains(id.as_str())
                            && (line.contains("executor stopped")
                                || line.contains("outcome dropped")
                                || line.contains("could not record the outcome"))
                    })
                })
                .then_some(())
        },
    )
    .await;
    let third = api.submit_screenshots(&page(1_500), 6).await;
    let mut third_on = HashSet::new();
    for id in &third {
        let job = api.finished(id, Duration::from_secs(120)).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        third_on.insert(job["worker_id"].as_str().expect("worker").to_owned());
    }
    assert!(third_on.contains(&a), "A works again once its link is back");
    for (id, before) in held_by_a.iter().zip(before) {
        let after = footprint(&pool, &s3, id).await;
        assert_eq!(after, before, "the cut-off worker changed job {id}");
        let kept = objects(&s3, id);
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["2/screenshot.png"],
            "{id}: only B's screenshot is in the bucket"
        );
    }
    drop((serve, worker_a, worker_b));
}

/// `serve`'s API, reached over the bridge.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn submit_screenshots(&self, url: &str, count: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..count {
            let body = json!({"url": url, "job_type": "screenshot", "strategy": "vanilla",
                              "timeout_ms": 90_000, "max_attempts": 3});
            let answer = self
                .client
                .post(format!("{}/api/v1/jobs", self.base))
                .json(&body)
                .send()
                .await
                .expect("submit");
            assert_eq!(answer.status(), 201);
            let job: Value = answer.json().await.expect("json");
            ids.push(job["id"].as_str().expect("id").to_owned());
        }
        ids
    }

    async fn job(&self, id: &str) -> Value {
        eventually("serve to answer", Duration::from_secs(30), || async {
            let answer = self
                .client
                .get(format!("{}/api/v1/jobs/{id}", self.base))
                .send()
                .await
                .ok()?;
            answer.json().await.ok()
        })
        .await
    }

    async fn finished(&self, id: &str, deadline: Duration) -> Value {
        eventually("the job to finish", deadline, || async {
            let job = self.job(id).await;
            matches!(
                job["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
            .then_some(job)
        })
        .await
    }

    async fn download(&self, id: &str) -> Vec<u8> {
        let answer = self
            .client
            .get(format!(
                "{}/api/v1/jobs/{id}/artifacts/screenshot.png",
                self.base
            ))
            .send()
            .await
            .expect("download");
        assert_eq!(
            answer.status(),
            200,
            "job {id}: the screenshot through serve"
        );
        answer.bytes().await.expect("bytes").to_vec()
    }
}
