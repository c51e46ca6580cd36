//! Reaching the backends at start-up: PostgreSQL and Redis (waiting up to STARTUP_TIMEOUT
//! for them), or the embedded mode's SQLite file in a data directory this process locks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::StartError;
use crate::config::Settings;
use crate::memory::pace::{LocalPacer, Pacer, RedisPacer};
use crate::queue::{JobQueue, LocalQueue, LocalSignals, QueueError, RedisQueue, Signals};
use crate::quota::{Ledger, LocalLedger, RedisLedger};
use crate::store::{JobStore, PgPools, PgStore, SqliteStore, StoreError};

/// How long acquiring a database connection may wait before the caller gets "unavailable".
const DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two start-up connection attempts.
const STARTUP_RETRY: Duration = Duration::from_secs(2);

/// The store, queue and signals one process runs on.
#[derive(Clone)]
pub struct Backends {
    /// The job store.
    pub store: Arc<dyn JobStore>,
    /// The dispatch queue.
    pub queue: Arc<dyn JobQueue>,
    /// Worker reports and cancel notices.
    pub signals: Arc<dyn Signals>,
    /// Pacing per domain, shared by every worker.
    pub pacer: Arc<dyn Pacer>,
    /// The books of tenants' quotas, shared by every API process.
    pub ledger: Arc<dyn Ledger>,
}

impl Backends {
    /// PostgreSQL and Redis, for `serve`, `worker` and `all`.
    pub fn production(store: Arc<PgStore>, queue: &RedisQueue) -> Backends {
        Backends {
            store,
            signals: Arc::new(queue.signals()),
            pacer: Arc::new(RedisPacer::beside(queue)),
            ledger: Arc::new(RedisLedger::beside(queue)),
            queue: Arc::new(queue.clone()),
        }
    }

    /// A SQLite store with the in-process queue and signals, for `dev`.
    pub fn embedded(store: Arc<SqliteStore>) -> Backends {
        Backends {
            store,
            queue: Arc::new(LocalQueue::new()),
            signals: Arc::new(LocalSignals::new()),
            pacer: Arc::new(LocalPacer::new()),
            ledger: Arc::new(LocalLedger::new()),
        }
    }
}

/// Retries `attempt` while its error is transient, until `timeout`; logs each wait.
pub(super) async fn wait_for<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match attempt().await {
            Err(e) if transient(&e) && tokio::time::Instant::now() < deadline => {
                warn!(error = %e, "waiting for {what} (up to STARTUP_TIMEOUT)");
                tokio::time::sleep(STARTUP_RETRY).await;
            }
            other => return other,
        }
    }
}

/// Connects to PostgreSQL, waiting up to STARTUP_TIMEOUT for it to answer.
///
/// With `prepare`, creates the database if missing and applies the migrations; otherwise
/// waits until another process (`migrate` or `serve`) has applied them.
pub async fn open_store(settings: &Settings, prepare: bool) -> Result<Arc<PgStore>, StartError> {
    let url = settings.require_database_url()?;
    let store = wait_for(
        "PostgreSQL",
        settings.startup_timeout,
        StoreError::is_transient,
        || async {
            if prepare && PgStore::create_database_if_missing(url).await? {
                info!("created the database DATABASE_URL names");
            }
            let pools = PgPools {
                leader_statement_timeout: settings.leader_lease / 2,
                ..PgPools::new(settings.database_max_connections, DB_ACQUIRE_TIMEOUT)
            };
            let store = PgStore::connect(url, pools).await?;
            if prepare {
                store.migrate().await?;
                info!("migrations applied");
            } else if !store.is_migrated().await? {
                return Err(StoreError::NotMigrated);
            }
            if !store.autovacuum_on().await? {
                warn!(
                    "PostgreSQL runs with autovacuum off: retention deletes expired jobs, but \
                     nothing makes their space reusable and the tables grow; turn it on \
                     (ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf())"
                );
            }
            Ok(store)
        },
    )
    .await?;
    Ok(Arc::new(store))
}

/// Connects to Redis, waiting up to STARTUP_TIMEOUT for it to answer.
pub async fn open_queue(settings: &Settings) -> Result<RedisQueue, StartError> {
    let url = settings.require_redis_url()?;
    let queue = wait_for(
        "Redis",
        settings.startup_timeout,
        |e: &QueueError| matches!(e, QueueError::Unavailable(_)),
        || RedisQueue::connect(url, &settings.queue_prefix),
    )
    .await?;
    Ok(queue)
}

/// Holds the embedded mode's data directory for this process; released when dropped.
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Locks `DATA_DIR` so that only one process uses the embedded database at a time.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, StartError> {
    let fail = |reason: String| StartError::DataDir {
        path: data_dir.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| fail(e.to_string()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("control-plane.lock"))
        .map_err(|e| fail(e.to_string()))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => {
            fail("another control-plane dev process is using it".to_owned())
        }
        std::fs::TryLockError::Error(e) => fail(e.to_string()),
    })?;
    Ok(DataDirLock { _file: file })
}

/// Opens the embedded store in `DATA_DIR` and recovers what a previous process left: since
/// this process holds the directory, every running job is orphaned and the in-process queue
/// starts empty.
pub async fn open_embedded(settings: &Settings) -> Result<Arc<SqliteStore>, StartError> {
    let data_dir_error = |e: StoreError| StartError::DataDir {
        path: settings.data_dir.clone(),
        reason: e.to_string(),
    };
    let store = SqliteStore::open(&settings.data_dir)
        .await
        .map_err(data_dir_error)?;
    let (requeued, unrung) = store
        .recover_after_restart()
        .await
        .map_err(data_dir_error)?;
    if requeued > 0 {
        warn!(
            jobs = requeued,
            "returned jobs left running by a previous process"
        );
    }
    info!(jobs = unrung, "queued jobs to dispatch");
    Ok(Arc::new(store))
}
