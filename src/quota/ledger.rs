//! Where the quota books live: on Redis for every API process at once, or in this process
//! (`dev`, and any process while Redis is unreachable). Both run the rule of [`super::rule`].

use async_trait::async_trait;
use uuid::Uuid;

use super::rule::{Answer, Ask, Outcome, Snapshot};
use crate::queue::QueueError;

/// How long an admission counts as in flight when its writer never reports (its process
/// died). Far longer than any write of it can take: a submission's write starts within the
/// request's deadline (15 s) and its statements end within the database's statement timeout.
pub const ADMISSION_TTL_MS: i64 = 60_000;
/// How old a tenant's count of queued jobs may be before one caller counts again.
pub const RECOUNT_MS: i64 = 1_000;

/// What the writer of an admission reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The tenant.
    pub tenant: String,
    /// The admission.
    pub admission: Uuid,
    /// Its jobs.
    pub jobs: u64,
    /// How the write went.
    pub outcome: Outcome,
}

/// The books of every tenant's quota.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Decides admissions that arrived together, in order, each for its tenant.
    async fn admit(&self, asks: &[(&str, &Ask)]) -> Result<Vec<Answer>, QueueError>;

    /// Records what the writers of admissions reported.
    async fn settle(&self, reports: &[Report]) -> Result<(), QueueError>;

    /// Installs a count of `tenant`'s queued jobs taken after `snapshot`; `false` when
    /// another recount overtook it.
    async fn rebase(
        &self,
        tenant: &str,
        snapshot: Snapshot,
        queued: u64,
    ) -> Result<bool, QueueError>;
}
