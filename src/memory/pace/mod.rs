//! Pacing per registrable domain across every worker: a concurrency cap held as slot leases,
//! a rate (GCRA with a burst), a backoff set by any worker that was throttled, and a learned
//! rate that halves on every throttle and climbs back step by step after a clean period
//! (AIMD). [`RedisPacer`] decides atomically for every worker process in one script per
//! admission; [`LocalPacer`] applies the same [`rule`] in process for `dev`.

pub mod local;
pub mod redis;
pub mod rule;

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::queue::QueueError;

pub use local::LocalPacer;
pub use redis::RedisPacer;
pub use rule::{Admission, Limits, PaceView, Seed, Throttle};

/// Admits requests to domains for every worker, or says when to come back.
#[async_trait]
pub trait Pacer: Send + Sync + 'static {
    /// Asks to start `job` at `domain` under `limits`; on admission the job holds one of the
    /// domain's slots for `lease` (renew it with the job's lease, release it on settle).
    async fn admit(
        &self,
        domain: &str,
        job: Uuid,
        lease: Duration,
        limits: &Limits,
    ) -> Result<Admission, QueueError>;

    /// Extends `job`'s slot at `domain` to `lease` from now.
    async fn renew(&self, domain: &str, job: Uuid, lease: Duration) -> Result<(), QueueError>;

    /// Gives `job`'s slot at `domain` back.
    async fn release(&self, domain: &str, job: Uuid) -> Result<(), QueueError>;

    /// Records that `domain` throttled a request: every worker backs off until `Retry-After`
    /// (or a second) and the domain's rate halves. Returns the pace state after it, for the
    /// database copy that re-seeds a lost Redis.
    async fn throttled(
        &self,
        domain: &str,
        throttle: &Throttle,
        limits: &Limits,
    ) -> Result<PaceView, QueueError>;

    /// The domain's pace now: slots held, backoff, learned rate.
    async fn view(&self, domain: &str) -> Result<PaceView, QueueError>;
}
