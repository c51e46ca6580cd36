//! Signals between processes that are not doorbells: workers' status reports, notices that a
//! job was cancelled (so the worker running it stops at once), and notices that a job changed
//! (so waiting requests and event streams wake without polling the database).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::QueueError;
use super::changes::Change;

/// Worker reports and cancel notices, shared by every API and worker process.
#[async_trait]
pub trait Signals: Send + Sync + 'static {
    /// Publishes a worker's status report (its browser pool), kept for `ttl`.
    async fn report(&self, worker: &str, report: &Value, ttl: Duration) -> Result<(), QueueError>;

    /// The reports of workers alive now.
    async fn reports(&self) -> Result<Vec<Value>, QueueError>;

    /// Tells every worker that `job` was cancelled, so the one running it stops.
    async fn announce_cancel(&self, job: Uuid) -> Result<(), QueueError>;

    /// Cancellations announced from now on, from any process.
    fn cancel_notices(&self) -> tokio::sync::broadcast::Receiver<Uuid>;

    /// Tells every process that these jobs' timelines grew. Never waits: notices are sent in
    /// the background, batched; one that cannot be sent becomes [`Change::Unknown`].
    fn announce_changes(&self, jobs: &[Uuid]);

    /// Changes announced from now on, from any process. A receiver that lags behind should
    /// treat it as [`Change::Unknown`].
    fn change_notices(&self) -> tokio::sync::broadcast::Receiver<Change>;
}
