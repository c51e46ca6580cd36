//! The job store, written once over a [`Driver`]: PostgreSQL and SQLite differ only in their
//! drivers. Each part of the store is its own file: reads, creation, the state machine's
//! changes, doorbells and reaping, webhook deliveries, leadership.

mod artifacts;
mod changes;
mod create;
mod doorbells;
mod hooks;
mod keys;
mod leadership;
mod memory;
mod profiles;
mod proxy_pools;
mod quotas;
mod reads;
pub mod render;
mod render_each;
mod retention;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::driver::Driver;
use super::sql::Sql;
use super::{
    CancelOutcome, Created, IdempotencyKey, Job, JobStats, JobStore, ListQuery, LostPage, NewJob,
    QueuePosition, ReplayOutcome, StoreError, Term, Unring,
};
use crate::artifact::{ArtifactIndex, ArtifactRecord, IndexError};
use crate::auth::Scope;
use crate::job::transition::{EventRecord, Transition};
use crate::job::{Doorbell, Hold, JobEvent, Replay, Settlement};
use crate::kinds::RunningJob;
use crate::spec::JobSpec;

/// A [`JobStore`] on a SQL database.
#[derive(Debug, Clone)]
pub struct SqlStore<D> {
    driver: D,
}

impl<D: Driver> SqlStore<D> {
    /// A store on `driver`.
    pub fn new(driver: D) -> SqlStore<D> {
        SqlStore { driver }
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// An empty statement in the driver's dialect.
    fn sql(&self) -> Sql {
        Sql::new(self.driver.dialect())
    }
}

#[async_trait]
impl<D: Driver> JobStore for SqlStore<D> {
    fn database_use(&self) -> crate::store::driver::DatabaseUse {
        self.driver.usage()
    }

    async fn take_hooks(&self, limit: u32, hold: Duration) -> Result<Vec<Job>, StoreError> {
        self.claim_hooks(limit, hold).await
    }

    async fn settle_hook(
        &self,
        job: Uuid,
        attempt: u32,
        next: Option<DateTime<Utc>>,
        event: &EventRecord,
    ) -> Result<bool, StoreError> {
        self.record_hook(job, attempt, next, event).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.driver.ping().await
    }

    async fn create(
        &self,
        tenant: &str,
        spec: &JobSpec,
        key: Option<&IdempotencyKey>,
        within: Option<Duration>,
    ) -> Result<Created, StoreError> {
        match key {
            None => {
                let job = NewJob { tenant, spec };
                let mut made = self.insert_many(std::slice::from_ref(&job), within).await?;
                let job = made
                    .pop()
                    .ok_or_else(|| StoreError::Database("the new job was not returned".into()))?;
                Ok(Created::New(Box::new(job)))
            }
            Some(key) => {
                let created = self
                    .insert_once(tenant, std::slice::from_ref(spec), key, within)
                    .await?;
                Ok(created.map(|mut jobs| Box::new(jobs.remove(0))))
            }
        }
    }

    async fn create_many(
        &self,
        jobs: &[NewJob<'_>],
        within: Option<Duration>,
    ) -> Result<Vec<Job>, StoreError> {
        self.insert_many(jobs, within).await
    }

    async fn create_batch_once(
        &self,
        tenant: &str,
        specs: &[JobSpec],
        key: &IdempotencyKey,
        within: Option<Duration>,
    ) -> Result<Created<Vec<Job>>, StoreError> {
        self.insert_once(tenant, specs, key, within).await
    }

    async fn get(&self, scope: Scope<'_>, id: Uuid) -> Result<Option<Job>, StoreError> {
        self.job(scope, id).await
    }

    async fn list(&self, scope: Scope<'_>, query: &ListQuery) -> Result<Vec<Job>, StoreError> {
        self.jobs(scope, query).await
    }

    async fn events(&self, id: Uuid) -> Result<Vec<JobEvent>, StoreError> {
        self.timeline(id).await
    }

    async fn cancel(&self, scope: Scope<'_>, id: Uuid) -> Result<CancelOutcome, StoreError> {
        self.cancel_job(scope, id).await
    }

    async fn replay(
        &self,
        scope: Scope<'_>,
        id: Uuid,
        change: &Replay,
    ) -> Result<ReplayOutcome, StoreError> {
        self.replay_job(scope, id, change).await
    }

    async fn claim(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<RunningJob>, StoreError> {
        self.claim_job(id, worker, lease).await
    }

    async fn claim_many(
        &self,
        ids: &[Uuid],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<RunningJob>, StoreError> {
        self.claim_jobs(ids, worker, lease).await
    }

    async fn renew(&self, job: &RunningJob, lease: Duration) -> Result<bool, StoreError> {
        self.held(job, &job.hold().renew(lease)).await
    }

    async fn settle(&self, job: &RunningJob, settlement: &Settlement) -> Result<bool, StoreError> {
        self.held(job, &job.hold().settle(settlement)).await
    }

    async fn settle_many(
        &self,
        outcomes: &[(&RunningJob, &Settlement)],
    ) -> Result<Vec<bool>, StoreError> {
        let changes: Vec<(&RunningJob, Transition)> = outcomes
            .iter()
            .map(|(job, settlement)| (*job, job.hold().settle(settlement)))
            .collect();
        self.held_many(&changes).await
    }

    async fn release(&self, job: &RunningJob) -> Result<bool, StoreError> {
        self.held(job, &job.hold().release()).await
    }

    async fn stats(&self) -> Result<JobStats, StoreError> {
        self.counts().await
    }

    async fn mark_needed(&self, ids: &[Uuid], term: Option<Term>) -> Result<(), StoreError> {
        self.needed(ids, term).await
    }

    async fn confirm_rung(&self, ids: &[Uuid]) -> Result<u64, StoreError> {
        self.rung(ids).await
    }

    async fn take_due(&self, term: Term, limit: u32) -> Result<Vec<Doorbell>, StoreError> {
        self.due(term, limit).await
    }

    async fn reap_expired(&self, term: Term, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        self.reap(Some(term), limit).await
    }

    async fn unring(&self, term: Term, which: &Unring, limit: u32) -> Result<u64, StoreError> {
        self.lost(term, which, limit).await
    }

    async fn lost_page(
        &self,
        lost_before: DateTime<Utc>,
        from: QueuePosition,
        limit: u32,
    ) -> Result<LostPage, StoreError> {
        self.page_after_loss(lost_before, from, limit).await
    }

    async fn rung_again(
        &self,
        term: Term,
        ids: &[Uuid],
        lost_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.rerung(term, ids, lost_before).await
    }

    async fn lead(
        &self,
        holder: &str,
        lease: Duration,
        held: Option<Term>,
    ) -> Result<Option<Term>, StoreError> {
        match held {
            Some(term) => self.renew_lead(holder, lease, term).await,
            None => self.take_lead(holder, lease).await,
        }
    }

    async fn resign(&self, holder: &str, term: Term) -> Result<(), StoreError> {
        self.give_up_lead(holder, term).await
    }
}

#[async_trait]
impl<D: Driver> ArtifactIndex for SqlStore<D> {
    async fn put_artifact(&self, artifact: &ArtifactRecord, hold: &Hold) -> Result<(), IndexError> {
        if self.keep_artifact(artifact, hold).await? {
            Ok(())
        } else {
            Err(IndexError {
                unavailable: false,
                message: format!(
                    "attempt {} of job {} no longer holds it; {} is not kept",
                    hold.attempt, artifact.job_id, artifact.name
                ),
            })
        }
    }

    async fn artifacts(&self, job: Uuid) -> Result<Vec<ArtifactRecord>, IndexError> {
        Ok(self.job_artifacts(job).await?)
    }
}
