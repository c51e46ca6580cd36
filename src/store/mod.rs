//! The job store: the one place a job's truth lives, behind the [`JobStore`] trait. One
//! implementation ([`SqlStore`]) runs on a [`driver::Driver`] for PostgreSQL or SQLite; the
//! stores apply transitions the job domain decides, each with its timeline event.

pub mod driver;
mod job;
mod nodelay;
pub mod postgres;
mod row;
pub mod sql;
pub mod sql_store;
pub mod sqlite;
pub mod sqlx_driver;
mod types;

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::artifact::ArtifactIndex;
use crate::auth::{KeyIndex, Scope};
use crate::job::{Doorbell, JobEvent, Replay, Settlement};
use crate::kinds::RunningJob;
use crate::memory::MemoryIndex;
use crate::proxy::PoolIndex;
use crate::quota::QuotaIndex;
use crate::retention::RetentionIndex;
use crate::spec::JobSpec;

pub use crate::persist::{StoreError, Term};
pub use job::{Callback, Job};
pub use postgres::{PgPools, PgStore};
pub use sql_store::SqlStore;
pub use sqlite::SqliteStore;
pub use types::{
    CancelOutcome, Created, IDEMPOTENCY_TTL, IdempotencyKey, JobStats, ListQuery, LostPage, NewJob,
    QueuePosition, ReplayOutcome, Unring,
};

/// Storage of jobs and their timelines. Every change is a guarded transition decided by the
/// job domain; a change whose guard no longer holds changes nothing and says so.
#[async_trait]
pub trait JobStore:
    ArtifactIndex
    + KeyIndex
    + MemoryIndex
    + PoolIndex
    + crate::profile::ProfileIndex
    + QuotaIndex
    + RetentionIndex
    + Send
    + Sync
    + 'static
{
    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Its database connections now, and the statements run so far.
    fn database_use(&self) -> driver::DatabaseUse;

    /// Records a new queued job and its `created` event. With an idempotency key, the first
    /// request with the key creates the job; later ones (within 24 h) get it back, or a
    /// mismatch when their request differs. A job due now is marked `ringing`: the caller
    /// rings its doorbell next and confirms it. With `within`, each statement of the write
    /// ends within it, or the write fails and nothing is stored (see [`Driver::begin_within`]).
    ///
    /// [`Driver::begin_within`]: driver::Driver::begin_within
    async fn create(
        &self,
        tenant: &str,
        spec: &JobSpec,
        key: Option<&IdempotencyKey>,
        within: Option<Duration>,
    ) -> Result<Created, StoreError>;

    /// Records new queued jobs, of one tenant or several, and their `created` events: all in
    /// one commit, or none. Jobs due now are marked `ringing`, as by [`JobStore::create`].
    async fn create_many(
        &self,
        jobs: &[NewJob<'_>],
        within: Option<Duration>,
    ) -> Result<Vec<Job>, StoreError>;

    /// Records a batch of one tenant's jobs under an idempotency key: the first request with
    /// the key creates them all (in one commit); later ones within 24 hours get the same jobs
    /// back, in the same order, or a mismatch when their request differs.
    async fn create_batch_once(
        &self,
        tenant: &str,
        specs: &[JobSpec],
        key: &IdempotencyKey,
        within: Option<Duration>,
    ) -> Result<Created<Vec<Job>>, StoreError>;

    /// Reads one job in scope.
    async fn get(&self, scope: Scope<'_>, id: Uuid) -> Result<Option<Job>, StoreError>;

    /// Lists the jobs in scope, newest first.
    async fn list(&self, scope: Scope<'_>, query: &ListQuery) -> Result<Vec<Job>, StoreError>;

    /// A job's timeline, oldest first.
    async fn events(&self, id: Uuid) -> Result<Vec<JobEvent>, StoreError>;

    /// Cancels a queued or running job.
    async fn cancel(&self, scope: Scope<'_>, id: Uuid) -> Result<CancelOutcome, StoreError>;

    /// Puts a failed or cancelled job back in the queue with a fresh budget, marked
    /// `ringing` (the caller rings it next). Its history stays.
    async fn replay(
        &self,
        scope: Scope<'_>,
        id: Uuid,
        change: &Replay,
    ) -> Result<ReplayOutcome, StoreError>;

    /// Claims a due queued job for `worker` with a lease of `lease`; `None` when it is not
    /// claimable (not queued, not yet due, or gone).
    async fn claim(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<RunningJob>, StoreError>;

    /// Claims, in one round trip, those of `ids` that are due and queued, for `worker` with
    /// a lease of `lease`; the others (not queued, not yet due, gone, or repeated) are left
    /// out of the answer.
    async fn claim_many(
        &self,
        ids: &[Uuid],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<RunningJob>, StoreError>;

    /// Extends a running attempt's lease; `false` when the worker no longer holds it.
    async fn renew(&self, job: &RunningJob, lease: Duration) -> Result<bool, StoreError>;

    /// Records an attempt's outcome; `false` (nothing written) when the worker no longer
    /// holds the job.
    async fn settle(&self, job: &RunningJob, settlement: &Settlement) -> Result<bool, StoreError>;

    /// Records several attempts' outcomes in one commit, all or none, answering in order as
    /// [`JobStore::settle`] answers each.
    async fn settle_many(
        &self,
        outcomes: &[(&RunningJob, &Settlement)],
    ) -> Result<Vec<bool>, StoreError>;

    /// Puts a running attempt back in the queue untouched (the worker is shutting down).
    async fn release(&self, job: &RunningJob) -> Result<bool, StoreError>;

    /// Counts jobs by state and finds the oldest due queued job.
    async fn stats(&self) -> Result<JobStats, StoreError>;

    /// Marks queued jobs as needing a doorbell (their ring failed, was handed back, or its
    /// delivery went stale). With a term (the reconciler's), only while that term leads.
    async fn mark_needed(&self, ids: &[Uuid], term: Option<Term>) -> Result<(), StoreError>;

    /// Confirms that the doorbells of these `ringing` jobs are in the queue (those still
    /// queued: the doorbell of a job no longer queued means nothing).
    async fn confirm_rung(&self, ids: &[Uuid]) -> Result<u64, StoreError>;

    /// Takes up to `limit` due jobs that need a doorbell and marks them `ringing`, each with
    /// a `dispatched` event, while `term` leads.
    async fn take_due(&self, term: Term, limit: u32) -> Result<Vec<Doorbell>, StoreError>;

    /// Returns running jobs whose lease expired to the queue (or fails them when their
    /// attempts are used up), while `term` leads. Returns their ids.
    async fn reap_expired(&self, term: Term, limit: u32) -> Result<Vec<Uuid>, StoreError>;

    /// Marks up to `limit` queued jobs whose doorbell was lost as needing one again, while
    /// `term` leads; returns how many.
    async fn unring(&self, term: Term, which: &Unring, limit: u32) -> Result<u64, StoreError>;

    /// Reads the page of up to `limit` due queued jobs from `from` in queue order (a level,
    /// then due time and id), for the leader re-dispatching a queue that lost its
    /// doorbells: those rung before `lost_before`, and where the next page starts. A
    /// backlog of any size is gone through a bounded statement at a time.
    async fn lost_page(
        &self,
        lost_before: chrono::DateTime<chrono::Utc>,
        from: QueuePosition,
        limit: u32,
    ) -> Result<LostPage, StoreError>;

    /// Marks jobs whose doorbell was just rung again after the loss as rung, each with a
    /// `dispatched` event naming the term, while `term` leads (those claimed, or rung since,
    /// meanwhile are left alone); returns how many.
    async fn rung_again(
        &self,
        term: Term,
        ids: &[Uuid],
        lost_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError>;

    /// Takes the scheduler's leadership for `lease` (or renews `held`); the term it holds,
    /// or `None` when another process leads (or `held` was lost).
    async fn lead(
        &self,
        holder: &str,
        lease: Duration,
        held: Option<Term>,
    ) -> Result<Option<Term>, StoreError>;

    /// Claims up to `limit` due webhook deliveries for `hold`; returns their jobs, each at
    /// the delivery attempt it now holds (`hook_attempt`).
    async fn take_hooks(&self, limit: u32, hold: Duration) -> Result<Vec<Job>, StoreError>;

    /// Records delivery attempt `attempt` of `job` with its timeline event: the next attempt
    /// is due at `next`, or none is. `false` (nothing written) when the claim lapsed.
    async fn settle_hook(
        &self,
        job: Uuid,
        attempt: u32,
        next: Option<chrono::DateTime<chrono::Utc>>,
        event: &crate::job::transition::EventRecord,
    ) -> Result<bool, StoreError>;

    /// Gives the leadership up, so another process takes it at once.
    async fn resign(&self, holder: &str, term: Term) -> Result<(), StoreError>;
}

// The artifact index is implemented by the store: its failures reach the artifact store's
// callers in the index's own words.
impl From<StoreError> for crate::artifact::IndexError {
    fn from(error: StoreError) -> crate::artifact::IndexError {
        crate::artifact::IndexError {
            unavailable: error.is_outage(),
            message: error.to_string(),
        }
    }
}
