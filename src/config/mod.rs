//! Settings from flags and environment variables, validated once at start.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::artifact::{ArtifactLocation, S3Access};
use crate::auth::{AuthMode, Role};
use crate::job::host_map::HostMap;
use crate::retention::{PurgeShare, RetainFor, Retention};

mod parse;

pub use parse::{Secret, parse_duration, parse_host_map};
use parse::{
    parse_endpoint, parse_key_name, parse_leader_lease, parse_lease, parse_prefix,
    parse_result_cap, parse_role, parse_share, parse_tenant, require,
};

/// A control plane for browser-automation jobs.
///
/// Every option can also be set with the environment variable shown beside it.
#[derive(Debug, Parser)]
#[command(name = "control-plane", version, arg_required_else_help = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Settings shared by every command.
    #[command(flatten)]
    pub settings: Settings,
}

/// The process roles.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the embedded migrations to DATABASE_URL, then exit.
    Migrate,
    /// Run the HTTP API (applies migrations first unless --no-migrate).
    Serve(ServeArgs),
    /// Run a worker: executes jobs, rings due jobs and reaps expired leases.
    Worker,
    /// Run the API and a worker in one process.
    All(ServeArgs),
    /// Run everything in one process on SQLite with an in-process queue: no PostgreSQL, no Redis.
    Dev,
    /// Health check for containers: exits 0 when the API on BIND's port answers /health, or
    /// when this machine's worker reported within 30 s.
    Probe,
    /// Create, list or revoke API keys (in DATABASE_URL, else in DATA_DIR's SQLite database).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Client: submit a job to a running server (CONTROL_PLANE_URL); with --wait, exit 0 if
    /// it succeeded and 1 if not.
    Submit(crate::client::SubmitArgs),
    /// Client: list, show, cancel or retry jobs, or follow their events, on a running server.
    #[command(subcommand)]
    Jobs(crate::client::JobsCommand),
    /// Client: download a job's artifacts from a running server.
    #[command(subcommand)]
    Artifacts(crate::client::ArtifactsCommand),
}

impl Command {
    /// Whether this is a client command (it talks to a running server's API).
    pub fn is_client(&self) -> bool {
        matches!(
            self,
            Command::Submit(_) | Command::Jobs(_) | Command::Artifacts(_)
        )
    }
}

/// What `keys` does.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (only its hash is kept).
    Create {
        /// The tenant whose jobs the key reaches.
        #[arg(long, value_parser = parse_tenant)]
        tenant: String,
        /// What the key may do: read, submit (read + submit, cancel, retry) or admin (every tenant).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A label for people, such as "ci" or "scraper-prod".
        #[arg(long, default_value = "", value_parser = parse_key_name)]
        name: String,
    },
    /// List keys: id, tenant, role, name, when created and revoked (never their secrets).
    List,
    /// Revoke a key by its id (the 12 characters after `cp_`); refused within a second.
    Revoke {
        /// The key's id.
        id: String,
    },
}

/// Options of the commands that serve the API.
#[derive(Debug, Clone, Copy, Args)]
pub struct ServeArgs {
    /// Do not apply migrations at start.
    #[arg(long, env = "NO_MIGRATE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub no_migrate: bool,
    /// The same as --no-migrate, under the name existing deployments use.
    #[arg(long, env = "SKIP_INIT_MODELS", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub skip_init_models: bool,
}

impl ServeArgs {
    /// Whether to apply migrations at start.
    pub fn migrate(self) -> bool {
        !(self.no_migrate || self.skip_init_models)
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Whether workers use a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrowserUse {
    /// Use Chromium when one is found (CHROME_PATH or PATH).
    Auto,
    /// Never start a browser: `navigate_extract` runs over http, other browser jobs fail.
    Off,
}

/// Settings shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// PostgreSQL connection URL (required by migrate, serve, worker and all).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis connection URL (required by serve, worker and all).
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Address the API listens on [default: 0.0.0.0:8080; 127.0.0.1:8080 for dev].
    #[arg(long, env = "BIND", global = true)]
    pub bind: Option<SocketAddr>,

    /// Directory of the embedded mode's SQLite database (dev only).
    #[arg(long, env = "DATA_DIR", global = true, default_value = "./data")]
    pub data_dir: PathBuf,

    /// Jobs a worker runs at once [default: number of cores].
    #[arg(long, env = "WORKER_CONCURRENCY", global = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_concurrency: Option<u16>,

    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        global = true,
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,

    /// Log filter, in tracing's EnvFilter syntax (e.g. "info,control_plane=debug").
    #[arg(
        long = "log-filter",
        env = "RUST_LOG",
        global = true,
        default_value = "info"
    )]
    pub log_filter: String,

    /// Prefix of every Redis key (the queue's streams are {PREFIX}:q:1 … {PREFIX}:q:5).
    #[arg(long, env = "QUEUE_PREFIX", global = true, default_value = "cp", value_parser = parse_prefix)]
    pub queue_prefix: String,

    /// Allow jobs to target loopback, private, link-local and other non-public addresses.
    #[arg(
        long,
        env = "ALLOW_PRIVATE_TARGETS",
        global = true,
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new(),
        default_value = "false",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub allow_private_targets: bool,

    /// Fixed addresses for host names, like curl's --resolve: `name=ip,*.suffix=ip` (at most
    /// 256 rules). Jobs to those names connect there, still under the target policy.
    #[arg(long, env = "RESOLVE", global = true, default_value = "", value_parser = parse_host_map)]
    pub resolve: HostMap,

    /// How long in-flight jobs and requests may finish after SIGINT or SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE", global = true, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How long start-up waits for PostgreSQL and Redis to answer (and, without migrating, for the schema).
    #[arg(long, env = "STARTUP_TIMEOUT", global = true, default_value = "60s", value_parser = parse_duration)]
    pub startup_timeout: Duration,

    /// Most PostgreSQL connections each process opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", global = true, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,

    /// First retry's backoff ceiling; it doubles with each attempt (full jitter).
    #[arg(long, env = "RETRY_BACKOFF_BASE", global = true, default_value = "1s", value_parser = parse_duration)]
    pub retry_backoff_base: Duration,

    /// Largest retry backoff ceiling.
    #[arg(long, env = "RETRY_BACKOFF_CAP", global = true, default_value = "5m", value_parser = parse_duration)]
    pub retry_backoff_cap: Duration,

    /// How often the scheduler rings due jobs (retries, returned jobs).
    #[arg(long, env = "SCHEDULER_INTERVAL", global = true, default_value = "500ms", value_parser = parse_duration)]
    pub scheduler_interval: Duration,

    /// How long a running job's lease lasts; its worker renews it every third of it, and a
    /// job whose lease expires (its worker is gone) goes back to the queue.
    #[arg(long, env = "JOB_LEASE", global = true, default_value = "30s", value_parser = parse_lease)]
    pub job_lease: Duration,

    /// A queued job whose doorbell is still unfinished after this long (its consumer died,
    /// or the queue dropped it) is rung again.
    #[arg(long, env = "REDELIVER_AFTER", global = true, default_value = "60s", value_parser = parse_duration)]
    pub redeliver_after: Duration,

    /// How long the scheduler's leadership lasts without renewal; another process takes over
    /// within about this long after the leader stops (killed, frozen, cut off).
    #[arg(long, env = "LEADER_LEASE", global = true, default_value = "5s", value_parser = parse_leader_lease)]
    pub leader_lease: Duration,

    /// Whether workers use a browser: auto (Chromium when found) or off.
    #[arg(
        long,
        env = "BROWSER",
        global = true,
        value_enum,
        default_value = "auto"
    )]
    pub browser: BrowserUse,

    /// Chrome or Chromium executable [default: chromium, chromium-browser, google-chrome on PATH].
    #[arg(long, env = "CHROME_PATH", global = true)]
    pub chrome_path: Option<PathBuf>,

    /// Chromium processes per worker.
    #[arg(long, env = "BROWSER_POOL_SIZE", global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub browser_pool_size: u16,

    /// Jobs one Chromium process runs at once (each in its own browser context).
    #[arg(long, env = "BROWSER_MAX_CONTEXTS", global = true, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub browser_max_contexts: u16,

    /// Jobs after which a Chromium process is replaced by a fresh one.
    #[arg(long, env = "BROWSER_RECYCLE_PAGES", global = true, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub browser_recycle_pages: u64,

    /// The locale of the `stealth` persona when a job names none (BCP 47, e.g. en-GB).
    #[arg(long, env = "STEALTH_LOCALE", global = true, default_value = crate::engine::browser::DEFAULT_LOCALE, value_parser = crate::kinds::page::parse_locale)]
    pub stealth_locale: String,

    /// The time zone of the `stealth` persona when a job names none (IANA, e.g. Europe/London)
    /// [default: the one that fits the locale].
    #[arg(long, env = "STEALTH_TIMEZONE", global = true, value_parser = crate::kinds::page::parse_timezone)]
    pub stealth_timezone: Option<String>,

    /// The largest job result kept, in bytes of JSON; a bigger one fails the job (`too_large`).
    #[arg(long, env = "RESULT_MAX_BYTES", global = true, default_value_t = crate::attempt::DEFAULT_RESULT_MAX_BYTES, value_parser = parse_result_cap)]
    pub result_max_bytes: usize,

    /// Jobs a tenant may have queued at once, unless an admin set its own quota (0 suspends).
    #[arg(long, env = "QUOTA_MAX_QUEUED", global = true, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(0..=crate::quota::MAX_QUEUED_CAP))]
    pub quota_max_queued: u64,

    /// Submissions per second a tenant may make, across every API process, unless an admin
    /// set its own quota (0 suspends).
    #[arg(long, env = "QUOTA_SUBMIT_RATE", global = true, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::quota::MAX_SUBMIT_RATE)))]
    pub quota_submit_rate: u32,

    /// Requests one key may have waiting on jobs (`?wait=`) or streaming their events at once,
    /// per API process; more are answered 429.
    #[arg(long, env = "WAIT_MAX_PER_KEY", global = true, default_value_t = crate::api::holds::DEFAULT_PER_KEY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub wait_max_per_key: usize,

    /// Requests one tenant may have waiting on jobs or streaming their events at once, per
    /// API process; more are answered 429.
    #[arg(long, env = "WAIT_MAX_PER_TENANT", global = true, default_value_t = crate::api::holds::DEFAULT_PER_TENANT, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub wait_max_per_tenant: usize,

    /// Whether `/api` asks for keys: keys or off [default: keys; off for dev bound to loopback].
    #[arg(long, env = "AUTH", global = true, value_enum)]
    pub auth: Option<AuthMode>,

    /// More ports no job may reach on this machine, comma-separated (e.g. the API port of a
    /// `serve` process beside this worker, a local database's). The API, `/metrics`, the
    /// browsers' DevTools endpoints and the egress proxies are always guarded.
    #[arg(long, env = "GUARDED_PORTS", global = true, value_delimiter = ',')]
    pub guarded_ports: Vec<u16>,

    /// Host names the API answers to, comma-separated; `*` for any, `*.example.com` for
    /// subdomains [default: on a loopback BIND, its address and localhost; else any].
    #[arg(long, env = "ALLOWED_HOSTS", global = true, value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Address of a listener serving only `/metrics` without keys, for a Prometheus scraper
    /// (a worker has no API to serve it on) [default: none; the API serves `/metrics` to
    /// admin keys].
    #[arg(long, env = "METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,

    /// Upstream proxy pools, as JSON: `[{"name", "tier", "rotation", "max_per_proxy",
    /// "proxies": ["http://user:pass@host:port", "socks5://…", {"name"?, "url"}]}]`. Jobs name
    /// a pool or a tier with their `proxy` option. Never shown (it holds credentials).
    #[arg(
        long,
        env = "PROXY_POOLS",
        global = true,
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub proxy_pools: crate::proxy::spec::PoolsSetting,

    /// Proxy tiers from cheapest to dearest, comma-separated [default: the order in which
    /// PROXY_POOLS first names them].
    #[arg(long, env = "PROXY_TIERS", global = true, value_delimiter = ',')]
    pub proxy_tiers: Vec<String>,

    /// Each tenant's default proxy, comma-separated `tenant=pool` (or a tier, or `none`):
    /// what its jobs use when they name none (written into the job at submission) [default:
    /// none; jobs go direct, and `auto` climbs into the tiers].
    #[arg(long, env = "TENANT_PROXIES", global = true, value_delimiter = ',')]
    pub tenant_proxies: Vec<crate::proxy::TenantProxy>,

    /// The key secrets are sealed with at rest (the credentials of proxy pools made through
    /// the API): the base64 of 32 random bytes (`openssl rand -base64 32`). Without it, pools
    /// cannot be made through the API [default: `dev` makes one in DATA_DIR/secrets.key].
    #[arg(long, env = "SECRETS_KEY", global = true, hide_env_values = true)]
    pub secrets_key: Option<Secret>,

    /// Keys that sealed secrets before SECRETS_KEY, comma-separated: what they sealed still
    /// opens, and is sealed again under SECRETS_KEY when a process loads it.
    #[arg(
        long,
        env = "SECRETS_OLD_KEYS",
        global = true,
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub secrets_old_keys: Vec<Secret>,

    /// The key webhook deliveries are signed with, `whsec_<base64 of 24 to 64 bytes>` (the
    /// Standard Webhooks form). Without it (or empty), jobs with a `callback` are refused.
    #[arg(
        long,
        env = "WEBHOOK_SECRET",
        global = true,
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub webhook_secret: crate::webhook::SecretSetting,

    /// The wait before a failed webhook delivery is tried again; it doubles with each
    /// attempt up to an hour, and deliveries stop a day after the job finished.
    #[arg(long, env = "WEBHOOK_RETRY_BASE", global = true, default_value = "5s", value_parser = parse_duration)]
    pub webhook_retry_base: Duration,

    /// Directory of artifacts (screenshots, PDFs, snapshots) [default: DATA_DIR/artifacts].
    #[arg(long, env = "ARTIFACT_DIR", global = true)]
    pub artifact_dir: Option<PathBuf>,

    /// Where artifacts go: a directory (one host), or `s3://bucket/prefix` in an
    /// S3-compatible store reached through the AWS_* settings (several hosts); set, it takes
    /// the place of ARTIFACT_DIR (which an image may set for its own directory) [default:
    /// ARTIFACT_DIR].
    #[arg(long, env = "ARTIFACT_STORE", global = true)]
    pub artifact_store: Option<ArtifactLocation>,

    /// The S3-compatible store's URL (`http://garage:3900`) [default: AWS S3].
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true, value_parser = parse_endpoint)]
    pub aws_endpoint_url: Option<String>,

    /// The bucket's region [default: us-east-1].
    #[arg(long, env = "AWS_REGION", global = true)]
    pub aws_region: Option<String>,

    /// The store's access key id [default: the instance's or task's role].
    #[arg(long, env = "AWS_ACCESS_KEY_ID", global = true, hide_env_values = true)]
    pub aws_access_key_id: Option<String>,

    /// The store's secret access key.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        global = true,
        hide_env_values = true
    )]
    pub aws_secret_access_key: Option<Secret>,

    /// A session token, for temporary credentials.
    #[arg(long, env = "AWS_SESSION_TOKEN", global = true, hide_env_values = true)]
    pub aws_session_token: Option<Secret>,

    /// How long succeeded jobs are kept after they finished (with their events, artifacts
    /// and idempotency record), or `forever`; a tenant may have its own.
    #[arg(long, env = "RETAIN_SUCCEEDED", global = true, default_value = "7d")]
    pub retain_succeeded: RetainFor,

    /// How long failed jobs are kept after they finished, or `forever`.
    #[arg(long, env = "RETAIN_FAILED", global = true, default_value = "30d")]
    pub retain_failed: RetainFor,

    /// How long cancelled jobs are kept after they finished, or `forever`.
    #[arg(long, env = "RETAIN_CANCELLED", global = true, default_value = "30d")]
    pub retain_cancelled: RetainFor,

    /// Jobs the scheduler's leader deletes per statement (each its own short transaction).
    #[arg(long, env = "RETENTION_BATCH", global = true, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub retention_batch: u32,

    /// How long the leader waits between two looks for expired jobs; each look deletes
    /// until none is left.
    #[arg(long, env = "RETENTION_INTERVAL", global = true, default_value = "10s", value_parser = parse_duration)]
    pub retention_interval: Duration,

    /// The share of time (percent, 1–100) the purge may spend deleting while expired jobs
    /// are left: after each batch it rests so that deleting fills no more than this. Raise it
    /// when `control_plane_purged_rows_total` falls behind the jobs you create.
    #[arg(long, env = "RETENTION_SHARE", global = true, default_value = "10", value_parser = parse_share)]
    pub retention_share: PurgeShare,
}

/// A missing setting, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{name} is not set: {hint}")]
pub struct MissingSetting {
    /// The environment variable.
    pub name: &'static str,
    /// What it should hold.
    pub hint: &'static str,
}

impl Settings {
    /// The PostgreSQL URL, or a clear error naming DATABASE_URL.
    pub fn require_database_url(&self) -> Result<&str, MissingSetting> {
        require(
            self.database_url.as_deref(),
            "DATABASE_URL",
            "set it (or --database-url) to a PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/control_plane, \
             or run `control-plane dev` for one process on SQLite without PostgreSQL or Redis",
        )
    }

    /// The Redis URL, or a clear error naming REDIS_URL.
    pub fn require_redis_url(&self) -> Result<&str, MissingSetting> {
        require(
            self.redis_url.as_deref(),
            "REDIS_URL",
            "set it (or --redis-url) to a Redis URL such as redis://127.0.0.1:6379, \
             or run `control-plane dev` for one process on SQLite without PostgreSQL or Redis",
        )
    }

    /// The API's address: BIND, else all interfaces on 8080 (loopback only for `dev`).
    pub fn bind_for(&self, command: &Command) -> SocketAddr {
        self.bind.unwrap_or_else(|| match command {
            Command::Dev => SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            _ => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080)),
        })
    }

    /// Whether the API asks for keys: AUTH when set; else keys, except for `dev` bound to a
    /// loopback address (only this machine reaches it).
    pub fn auth_for(&self, command: &Command, bind: SocketAddr) -> AuthMode {
        self.auth.unwrap_or(match command {
            Command::Dev if bind.ip().is_loopback() => AuthMode::Off,
            _ => AuthMode::Keys,
        })
    }

    /// Where artifacts are kept: ARTIFACT_STORE, else ARTIFACT_DIR, else DATA_DIR/artifacts.
    pub fn artifact_location(&self) -> ArtifactLocation {
        self.artifact_store.clone().unwrap_or_else(|| {
            ArtifactLocation::Dir(
                self.artifact_dir
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("artifacts")),
            )
        })
    }

    /// How an S3-compatible artifact store is reached.
    pub fn s3_access(&self) -> S3Access {
        S3Access {
            endpoint: self.aws_endpoint_url.clone(),
            region: self.aws_region.clone(),
            access_key_id: self.aws_access_key_id.clone(),
            secret_access_key: self.aws_secret_access_key.as_ref().map(|s| s.0.clone()),
            session_token: self.aws_session_token.as_ref().map(|s| s.0.clone()),
        }
    }

    /// How long finished jobs are kept, unless their tenant has its own ages.
    pub fn retention(&self) -> Retention {
        Retention {
            succeeded: self.retain_succeeded,
            failed: self.retain_failed,
            cancelled: self.retain_cancelled,
        }
    }

    /// Jobs a worker runs at once.
    pub fn concurrency(&self) -> usize {
        self.worker_concurrency
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
    }
}

#[cfg(test)]
mod tests;
