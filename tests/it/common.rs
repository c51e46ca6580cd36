//! Test harness: an isolated app (own database, own Redis key prefix) on a random port.

use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use control_plane::app::{App, Backends, serve_api};
use control_plane::artifact::{ArtifactLocation, S3Access};
use control_plane::auth::{ApiKey, AuthMode, KeyIndex, KeyRecord, Role};
use control_plane::config::{BrowserUse, Cli, Settings};
use control_plane::engine::browser::{BrowserPool, find_chrome};
use control_plane::queue::{JobQueue, RedisQueue};
use control_plane::store::{JobStore, PgStore, SqliteStore};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The PostgreSQL server tests create their databases on (any database on it; trust auth).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The Redis server tests use, each under its own key prefix.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Databases made by this harness are named `cp_test_<unix seconds>_<random>`.
const DB_PREFIX: &str = "cp_test_";

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

fn database_url(name: &str) -> String {
    let admin = admin_url();
    let (server, _) = admin.rsplit_once('/').unwrap_or((admin.as_str(), ""));
    format!("{server}/{name}")
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// Its connection URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database (and drops ones left behind by crashed runs).
    pub async fn create() -> TestDatabase {
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("PostgreSQL must be running; see TEST_DATABASE_URL");
        drop_stale_databases(&mut admin).await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!(
            "{DB_PREFIX}{now}_{}",
            &Uuid::new_v4().simple().to_string()[..10]
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = database_url(&name);
        TestDatabase { name, url }
    }
}

async fn drop_stale_databases(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'cp\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for name in names {
        let created = name
            .strip_prefix(DB_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|at| now.saturating_sub(at) > 3 * 3600) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; use a small runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A Redis key prefix of its own for one test; its keys are deleted when the test ends.
pub struct TestPrefix(pub String);

impl TestPrefix {
    /// A fresh prefix.
    pub fn new() -> TestPrefix {
        TestPrefix(format!(
            "cpt-{}",
            &Uuid::new_v4().simple().to_string()[..12]
        ))
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(redis_url())
            && let Ok(mut conn) = client.get_connection()
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{{{}}}:*", self.0))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
        }
    }
}

/// A SQLite data directory of its own for one test, removed when the test ends.
pub struct TestDataDir(pub std::path::PathBuf);

impl TestDataDir {
    /// A fresh, empty directory.
    pub fn new() -> TestDataDir {
        let dir = std::env::temp_dir().join(format!("cp-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create data dir");
        TestDataDir(dir)
    }
}

impl Drop for TestDataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which store and queue a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL and Redis Streams (production).
    Postgres,
    /// SQLite and the in-process queue (embedded `dev`).
    Sqlite,
}

/// Runs each listed `async fn name(backend: Backend)` as two tests, `postgres::name` and
/// `sqlite::name`: one behaviour suite, two backends.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::Backend::Postgres).await;
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::Backend::Sqlite).await;
                }
            )+
        }
    };
}
pub(crate) use on_both_backends;

/// A pool on the app's database, for assertions in SQL both backends understand.
pub enum AssertDb {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite (read-only).
    Sqlite(SqlitePool),
}

impl AssertDb {
    /// The single integer a query returns (cast levels to BIGINT; counts already are).
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        match self {
            AssertDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            AssertDb::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The integers of the one row a query returns (one statement: one snapshot).
    pub async fn row(&self, sql: &'static str) -> Vec<i64> {
        use sqlx::Row;
        let read = match self {
            AssertDb::Postgres(pool) => sqlx::query(sql)
                .fetch_one(pool)
                .await
                .and_then(|row| (0..row.len()).map(|i| row.try_get::<i64, _>(i)).collect()),
            AssertDb::Sqlite(pool) => sqlx::query(sql)
                .fetch_one(pool)
                .await
                .and_then(|row| (0..row.len()).map(|i| row.try_get::<i64, _>(i)).collect()),
        };
        read.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs a change (PostgreSQL only: the SQLite pool is read-only); returns rows changed.
    pub async fn change(&self, sql: &'static str) -> u64 {
        match self {
            AssertDb::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .rows_affected(),
            AssertDb::Sqlite(_) => panic!("the SQLite assertion pool is read-only: {sql}"),
        }
    }

    /// The integers a one-column query returns.
    pub async fn integers(&self, sql: &'static str) -> Vec<i64> {
        match self {
            AssertDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            AssertDb::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The strings a one-column query returns.
    pub async fn strings(&self, sql: &'static str) -> Vec<String> {
        match self {
            AssertDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            AssertDb::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// The storage a test app owns, removed when the test ends (and kept across a restart).
enum Storage {
    Postgres {
        database: TestDatabase,
        prefix: TestPrefix,
    },
    Sqlite {
        dir: TestDataDir,
    },
    /// Handed to the app that replaced this one.
    Moved,
}

impl Storage {
    /// A fresh database and Redis prefix, or data directory.
    async fn create(options: &Options) -> Storage {
        match options.backend {
            Backend::Postgres => Storage::Postgres {
                database: TestDatabase::create().await,
                prefix: TestPrefix::new(),
            },
            Backend::Sqlite => Storage::Sqlite {
                dir: TestDataDir::new(),
            },
        }
    }
}

/// How to start a test app.
#[derive(Debug, Clone)]
pub struct Options {
    /// The store and queue.
    pub backend: Backend,
    /// Allow private targets (the fixture site is on 127.0.0.1).
    pub allow_private: bool,
    /// Worker instances started with the app.
    pub workers: usize,
    /// Concurrency of each worker.
    pub concurrency: usize,
    /// Retry backoff base (short in tests).
    pub retry_base: Duration,
    /// Run browser jobs in a real Chromium pool (found on PATH or CHROME_PATH).
    pub browser: bool,
    /// Contexts per browser when `browser` is set.
    pub max_contexts: usize,
    /// Jobs after which a browser is replaced.
    pub recycle_pages: u64,
    /// A running job's lease.
    pub lease: Duration,
    /// When a lost doorbell is rung again.
    pub redeliver_after: Duration,
    /// The Redis server (default: the shared one, under the test's own prefix).
    pub redis_url: Option<String>,
    /// Reach PostgreSQL through a TCP proxy the test can cut (`TestApp::proxy`).
    pub database_proxy: bool,
    /// `RESOLVE` rules: fixed addresses for the fixture web's host names.
    pub resolve: String,
    /// Run the scheduler (off: an API-only process, whose database reads are the API's).
    pub scheduler: bool,
    /// `WEBHOOK_SECRET`.
    pub webhook_secret: Option<String>,
    /// `ARTIFACT_STORE` and the AWS settings (default: a directory of the test's own).
    pub artifacts: Option<(ArtifactLocation, S3Access)>,
    /// `RETENTION_INTERVAL` (long by default: the retention tests shorten it).
    pub retention_interval: Duration,
    /// `PROXY_POOLS` (JSON; none by default).
    pub proxy_pools: String,
    /// `TENANT_PROXIES` (`tenant=pool,…`; none by default).
    pub tenant_proxies: String,
    /// `SECRETS_KEY` (a new random key by default; a restart keeps it).
    pub secrets_key: Option<String>,
    /// `SECRETS_OLD_KEYS`.
    pub secrets_old_keys: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Postgres,
            allow_private: true,
            workers: 1,
            concurrency: 2,
            retry_base: Duration::from_millis(100),
            browser: false,
            max_contexts: 2,
            recycle_pages: 200,
            lease: Duration::from_secs(30),
            redeliver_after: Duration::from_secs(10),
            redis_url: None,
            database_proxy: false,
            resolve: String::new(),
            scheduler: true,
            webhook_secret: None,
            artifacts: None,
            retention_interval: Duration::from_secs(3600),
            proxy_pools: String::new(),
            tenant_proxies: String::new(),
            secrets_key: Some(control_plane::secrets::SecretKey::generate().to_base64()),
            secrets_old_keys: Vec::new(),
        }
    }
}

impl Options {
    /// The settings of a test app: the defaults of `control-plane dev`, with the test's
    /// options and short intervals, so the harness builds its app exactly as `main` does.
    pub fn settings(&self, artifact_dir: &std::path::Path) -> Settings {
        let mut settings = Cli::try_parse_from(["control-plane", "dev"])
            .expect("the default settings parse")
            .settings;
        settings.allow_private_targets = self.allow_private;
        settings.auth = Some(AuthMode::Keys);
        // Tests submit in bursts; the quota tests set their own.
        settings.quota_submit_rate = control_plane::quota::MAX_SUBMIT_RATE;
        settings.retry_backoff_base = self.retry_base;
        settings.retry_backoff_cap = Duration::from_secs(5);
        settings.shutdown_grace = Duration::from_secs(5);
        settings.job_lease = self.lease;
        settings.redeliver_after = self.redeliver_after;
        settings.scheduler_interval = Duration::from_millis(100);
        settings.worker_concurrency = u16::try_from(self.concurrency).ok();
        settings.artifact_dir = Some(artifact_dir.to_path_buf());
        settings.browser = if self.browser {
            BrowserUse::Auto
        } else {
            BrowserUse::Off
        };
        settings.chrome_path = self.browser.then(chrome);
        settings.browser_pool_size = 1;
        settings.browser_max_contexts = u16::try_from(self.max_contexts).unwrap_or(2);
        settings.browser_recycle_pages = self.recycle_pages;
        settings.resolve = control_plane::job::host_map::HostMap::parse(&self.resolve)
            .expect("valid RESOLVE rules");
        settings.webhook_secret = control_plane::webhook::SecretSetting(
            self.webhook_secret
                .as_deref()
                .map(|secret| secret.parse().expect("a valid WEBHOOK_SECRET")),
        );
        settings.webhook_retry_base = Duration::from_millis(500);
        settings.retention_interval = self.retention_interval;
        settings.proxy_pools = self.proxy_pools.parse().expect("valid PROXY_POOLS");
        settings.secrets_key = self.secrets_key.clone().map(control_plane::config::Secret);
        settings.secrets_old_keys = (self.secrets_old_keys.iter().cloned())
            .map(control_plane::config::Secret)
            .collect();
        settings.tenant_proxies = self
            .tenant_proxies
            .split(',')
            .filter(|entry| !entry.is_empty())
            .map(|entry| entry.parse().expect("valid TENANT_PROXIES"))
            .collect();
        if let Some((location, access)) = &self.artifacts {
            settings.artifact_dir = None;
            settings.artifact_store = Some(location.clone());
            settings.aws_endpoint_url = access.endpoint.clone();
            settings.aws_region = access.region.clone();
            settings.aws_access_key_id = access.access_key_id.clone();
            settings.aws_secret_access_key = access
                .secret_access_key
                .clone()
                .map(control_plane::config::Secret);
        }
        settings
    }
}

/// Stores a new key of `tenant` with `role` and returns it as a client sends it.
pub async fn create_key(index: &dyn KeyIndex, tenant: &str, role: Role) -> String {
    let key = ApiKey::generate();
    index
        .add_key(&KeyRecord::new(&key, tenant, role, &format!("test {role}")))
        .await
        .expect("store a key");
    key.reveal()
}

/// A client that sends `key` with every request.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).expect("header");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// The Chromium the browser tests use; they fail loudly without one (`.ci/run` installs it).
pub fn chrome() -> std::path::PathBuf {
    let configured = std::env::var_os("CHROME_PATH").map(std::path::PathBuf::from);
    find_chrome(configured.as_deref())
        .ok()
        .flatten()
        .expect("browser tests need Chromium: apt-get install -y chromium, or set CHROME_PATH")
}

/// A running app: API on a random port, plus workers and a scheduler.
pub struct TestApp {
    /// The API's base URL.
    pub base: String,
    /// An HTTP client that sends the admin key.
    pub client: reqwest::Client,
    /// The admin key `client` sends (default tenant).
    pub key: String,
    /// The app's database, for assertions.
    pub db: AssertDb,
    /// The app's store.
    pub store: Arc<dyn JobStore>,
    /// The app's queue.
    pub queue: Arc<dyn JobQueue>,
    /// The browser pool shared by the app's workers, when `Options::browser` is set.
    pub pool: Option<BrowserPool>,
    /// The proxy between the app and PostgreSQL, when `Options::database_proxy` is set.
    pub proxy: Option<TcpProxy>,
    app: App,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    pub options: Options,
    storage: Storage,
    _artifact_dir: TestDataDir,
}

impl TestApp {
    /// Starts an app with default options.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    /// Starts an app on `backend` with default options otherwise.
    pub async fn on(backend: Backend) -> TestApp {
        TestApp::spawn_with(Options {
            backend,
            ..Options::default()
        })
        .await
    }

    /// Starts an app: the API, the scheduler and `options.workers` workers, built by
    /// `control_plane::app::build` as `main` builds them.
    pub async fn spawn_with(options: Options) -> TestApp {
        init_logs();
        let storage = Storage::create(&options).await;
        TestApp::spawn_on(storage, options).await
    }

    /// Stops this app as its process would stop, and starts a new one on the same database
    /// and Redis prefix (or data directory): what a restart keeps, the new app finds.
    pub async fn restart(self) -> TestApp {
        let options = self.options.clone();
        self.restart_with(options).await
    }

    /// As [`TestApp::restart`], with other settings.
    pub async fn restart_with(mut self, options: Options) -> TestApp {
        self.halt().await;
        let storage = std::mem::replace(&mut self.storage, Storage::Moved);
        drop(self);
        TestApp::spawn_on(storage, options).await
    }

    async fn spawn_on(storage: Storage, options: Options) -> TestApp {
        let (backends, db, proxy) = open(&storage, &options).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let artifact_dir = TestDataDir::new();
        let settings = options.settings(&artifact_dir.0);
        let app = control_plane::app::build(&settings, backends.clone(), options.browser)
            .await
            .expect("build the app");
        let bound = listener.local_addr().expect("addr");
        let admin = create_key(backends.store.as_ref(), "default", Role::Admin).await;
        let api = tokio::spawn({
            let (state, shutdown) = (app.api_state(bound), shutdown.clone());
            async move {
                let _ = serve_api(listener, state, shutdown, Duration::from_secs(5)).await;
            }
        });
        let mut tasks = vec![api];
        if options.workers > 0 {
            let courier = app.courier().expect("the courier");
            tasks.push(tokio::spawn(courier.run(shutdown.clone())));
        }
        if options.scheduler {
            tasks.push(tokio::spawn(
                app.scheduler("test-scheduler").run(shutdown.clone()),
            ));
        }
        let mut app = TestApp {
            base,
            client: client_with_key(&admin),
            key: admin.clone(),
            db,
            store: backends.store,
            queue: backends.queue,
            pool: app.pool(),
            proxy,
            app,
            shutdown,
            tasks,
            options: options.clone(),
            storage,
            _artifact_dir: artifact_dir,
        };
        for _ in 0..options.workers {
            app.start_worker(options.concurrency);
        }
        app
    }

    /// Starts one more worker instance (own consumer name); returns its id.
    pub fn start_worker(&mut self, concurrency: usize) -> String {
        self.start_worker_with(concurrency, self.shutdown.child_token())
    }

    /// Starts a worker that stops when `stop` is cancelled (or the app stops).
    pub fn start_worker_with(&mut self, concurrency: usize, stop: CancellationToken) -> String {
        let mut config = self.app.worker_config();
        config.concurrency = concurrency.max(1);
        config.poll_wait = Duration::from_millis(200);
        let id = config.id.clone();
        self.tasks
            .push(tokio::spawn(self.app.reports(&id, stop.clone())));
        self.tasks
            .push(tokio::spawn(self.app.worker(config).run(stop)));
        id
    }

    /// Starts a worker whose task the test may abort, as if its process died: nothing it
    /// holds is released and its leases stop being renewed.
    pub fn start_mortal_worker(&mut self, concurrency: usize) -> JoinHandle<()> {
        let stop = self.shutdown.child_token();
        self.start_worker_with(concurrency, stop);
        self.tasks.pop().expect("the worker task")
    }

    /// The app's parts.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The app's metrics.
    pub fn metrics(&self) -> &control_plane::metrics::Metrics {
        self.app.metrics()
    }

    /// The URL of an API path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// GETs a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Submits a job, asserting 201; returns the job.
    pub async fn submit(&self, body: &Value) -> Value {
        let response = self.post_json("/api/v1/jobs", body).await;
        let status = response.status();
        let job: Value = response.json().await.expect("json body");
        assert_eq!(status, 201, "submit failed: {job}");
        job
    }

    /// Reads a job.
    pub async fn job(&self, id: &str) -> Value {
        let response = self.get(&format!("/api/v1/jobs/{id}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("json body")
    }

    /// Polls a job until `done` holds, failing after `deadline` (for states short of the
    /// end, which `?wait=` does not wait for; a finished job is waited for with
    /// [`TestApp::wait_terminal`]).
    pub async fn wait_for(
        &self,
        id: &str,
        deadline: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let until = Instant::now() + deadline;
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < until,
                "job {id} did not get there in {deadline:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until a job is terminal with the API's own `?wait=` (which answers when the
    /// job finishes, at most a minute later), as a client would; fails after `deadline`.
    pub async fn wait_terminal(&self, id: &str, deadline: Duration) -> Value {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let wait_ms = left.as_millis().clamp(1, 60_000);
            let response = self
                .get(&format!("/api/v1/jobs/{id}?wait={wait_ms}ms"))
                .await;
            assert_eq!(response.status(), 200);
            let job: Value = response.json().await.expect("json body");
            let terminal = matches!(
                job["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            );
            if terminal {
                return job;
            }
            assert!(
                Instant::now() < until,
                "job {id} did not finish in {deadline:?}: {job}"
            );
        }
    }

    /// Rows in the jobs table.
    pub async fn job_rows(&self) -> i64 {
        self.db.scalar("SELECT count(*) FROM jobs").await
    }

    /// Event kinds of a job, oldest first.
    pub async fn event_kinds(&self, id: &str) -> Vec<String> {
        let response = self.get(&format!("/api/v1/jobs/{id}/events")).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json body");
        body["events"]
            .as_array()
            .expect("events array")
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl TestApp {
    /// Stops workers and closes the browser pool, as a worker does at exit.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(pool) = self.pool.take() {
            pool.shutdown().await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The store, queue and signals of a test app on its storage, with the database
/// assertions read.
async fn open(storage: &Storage, options: &Options) -> (Backends, AssertDb, Option<TcpProxy>) {
    match storage {
        Storage::Postgres { database, prefix } => {
            let mut proxy = None;
            let app_url = if options.database_proxy {
                let upstream = database_server(&database.url);
                let started = TcpProxy::start(&upstream).await;
                let url = database
                    .url
                    .replacen(&upstream, &started.addr.to_string(), 1);
                proxy = Some(started);
                url
            } else {
                database.url.clone()
            };
            let store = PgStore::connect(
                &app_url,
                control_plane::store::PgPools::new(10, Duration::from_secs(2)),
            )
            .await
            .expect("connect to the test database");
            store.migrate().await.expect("migrate the test database");
            let redis = options.redis_url.clone().unwrap_or_else(redis_url);
            let queue = RedisQueue::connect(&redis, &prefix.0)
                .await
                .expect("Redis must be running; see TEST_REDIS_URL");
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect(&database.url)
                .await
                .expect("assertion pool");
            (
                Backends::production(Arc::new(store), &queue),
                AssertDb::Postgres(pool),
                proxy,
            )
        }
        Storage::Sqlite { dir } => {
            let store = SqliteStore::open(&dir.0).await.expect("open SQLite store");
            let options = SqliteConnectOptions::new()
                .filename(store.path())
                .read_only(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(options)
                .await
                .expect("assertion pool");
            (
                Backends::embedded(Arc::new(store)),
                AssertDb::Sqlite(pool),
                None,
            )
        }
        Storage::Moved => unreachable!("a restarted app's storage belongs to its successor"),
    }
}

/// Polls `check` until it returns `Some`, failing after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `host:port` of a PostgreSQL URL.
pub fn database_server(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_owned()
}

/// A TCP proxy a test controls: `cut` drops every connection and refuses new ones until
/// `restore`, as a network partition between the app and its database would.
pub struct TcpProxy {
    /// Where the app connects.
    pub addr: std::net::SocketAddr,
    cut: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Proxies a local port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> TcpProxy {
        TcpProxy::start_on("127.0.0.1:0", upstream).await
    }

    /// Proxies `bind` (an address and port, 0 for any) to `upstream`.
    pub async fn start_on(bind: &str, upstream: &str) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let upstream = upstream.to_owned();
        let accept = tokio::spawn({
            let (cut, connections) = (cut.clone(), connections.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if cut.load(std::sync::atomic::Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    let mut all = connections.lock().unwrap_or_else(|p| p.into_inner());
                    all.retain(|t| !t.is_finished());
                    all.push(task);
                }
            }
        });
        TcpProxy {
            addr,
            cut,
            connections,
            accept,
        }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut all = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        for task in all.drain(..) {
            task.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A `redis-server` of the test's own, so it can be flushed, stopped and restarted without
/// touching the shared one.
pub struct OwnRedis {
    /// The server process.
    pub child: std::process::Child,
    /// Its URL.
    pub url: String,
    port: u16,
}

impl OwnRedis {
    /// Starts a server on a free port.
    pub async fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = OwnRedis::spawn(port);
        let redis = OwnRedis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            port,
        };
        redis.wait_up().await;
        redis
    }

    fn spawn(port: u16) -> std::process::Child {
        std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed")
    }

    async fn wait_up(&self) {
        let client = redis::Client::open(self.url.as_str()).expect("client");
        eventually("redis-server to start", Duration::from_secs(10), || async {
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .ok()
        })
        .await;
    }

    /// `FLUSHALL`: every stream, group and key is gone.
    pub async fn flush(&self) {
        let client = redis::Client::open(self.url.as_str()).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut conn)
            .await
            .expect("FLUSHALL");
    }

    /// Kills the server and starts a fresh, empty one on the same port.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = OwnRedis::spawn(self.port);
        self.wait_up().await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
