//! Retention: finished jobs are deleted once older than their state's age (the settings', or
//! their tenant's own), with their events, artifacts (rows and objects), idempotency record
//! and webhook delivery. The scheduler's leader does it in bounded batches, each fenced by
//! its term ([`Purger`]); `DELETE /api/v1/jobs/{id}` erases one finished job at once.

mod pace;
mod policy;
mod purge;

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

pub use pace::PurgeShare;
pub use policy::{MAX_RETAIN, MIN_RETAIN, RETAIN_PATTERN, RetainFor, Retention, RetentionOverride};
pub use purge::{PurgePace, Purger};

use crate::artifact::ObjectKey;
use crate::job::JobState;
use crate::persist::{StoreError, Term};

/// Which finished jobs of one state a purge deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// Their state.
    pub state: JobState,
    /// Finished longer ago than this.
    pub age: Duration,
    /// Of these tenants only.
    pub tenants: Tenants,
}

/// The tenants a purge covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenants {
    /// One tenant with its own age.
    Only(String),
    /// Every tenant but these (those with their own age for the state).
    AllBut(Vec<String>),
}

/// What an erase deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Jobs.
    pub jobs: u64,
    /// Their events.
    pub events: u64,
    /// Their artifacts' rows (the objects follow, see [`RetentionIndex::doomed_objects`]).
    pub artifacts: u64,
    /// Their idempotency records.
    pub idempotency_keys: u64,
}

impl Erased {
    /// Each table's count: the `table` labels of `control_plane_purged_rows_total`.
    pub fn by_table(&self) -> [(&'static str, u64); 4] {
        [
            ("jobs", self.jobs),
            ("job_events", self.events),
            ("job_artifacts", self.artifacts),
            ("idempotency_keys", self.idempotency_keys),
        ]
    }
}

impl std::ops::AddAssign for Erased {
    fn add_assign(&mut self, other: Erased) {
        self.jobs += other.jobs;
        self.events += other.events;
        self.artifacts += other.artifacts;
        self.idempotency_keys += other.idempotency_keys;
    }
}

/// Why one job could not be erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraseRefused {
    /// It does not exist (or is not the caller's).
    Missing,
    /// It is queued or running: cancel it first.
    Unfinished(JobState),
}

/// An artifact object whose row is gone, waiting to be deleted from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoomedObject {
    /// The object.
    pub key: ObjectKey,
    /// Its size.
    pub bytes: u64,
}

/// What retention needs from the job store.
#[async_trait]
pub trait RetentionIndex: Send + Sync + 'static {
    /// Every tenant's own ages.
    async fn retention_overrides(&self) -> Result<Vec<(String, RetentionOverride)>, StoreError>;

    /// One tenant's own ages, if it has any.
    async fn retention_of(&self, tenant: &str) -> Result<Option<RetentionOverride>, StoreError>;

    /// Sets a tenant's own ages.
    async fn set_retention(&self, tenant: &str, own: &RetentionOverride) -> Result<(), StoreError>;

    /// Drops a tenant's own ages; `false` when it had none.
    async fn clear_retention(&self, tenant: &str) -> Result<bool, StoreError>;

    /// Deletes up to `limit` jobs of `expiry`, oldest first, with everything of theirs, in
    /// one transaction fenced by `term` (a leader that lost it deletes nothing) whose
    /// statements end within `within`. Their artifacts' objects are queued for deletion in
    /// the same transaction.
    async fn purge_expired(
        &self,
        term: Term,
        expiry: &Expiry,
        limit: u32,
        within: Duration,
    ) -> Result<Erased, StoreError>;

    /// Deletes idempotency records past their 24 hours, up to `limit`, fenced by `term`.
    async fn purge_idempotency(&self, term: Term, limit: u32) -> Result<u64, StoreError>;

    /// Erases one finished job of `tenant` (any tenant's for `None`) with everything of its.
    async fn erase_job(
        &self,
        job: Uuid,
        tenant: Option<&str>,
    ) -> Result<Result<Erased, EraseRefused>, StoreError>;

    /// Artifact objects waiting to be deleted (of `job` only, when given), up to `limit`.
    async fn doomed_objects(
        &self,
        job: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DoomedObject>, StoreError>;

    /// Forgets objects that were deleted from the store.
    async fn forget_objects(&self, objects: &[DoomedObject]) -> Result<(), StoreError>;
}
