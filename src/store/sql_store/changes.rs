//! Applying the state machine's decisions: claims and a worker's writes under its hold, and
//! the API's cancel and replay, decided on the job as read and applied only if it is still
//! as read (optimistic: no row is locked while deciding).

use std::time::Duration;

use uuid::Uuid;

use super::SqlStore;
use super::render::{Target, update};
use super::render_each::update_each;
use crate::auth::Scope;
use crate::job::{JobState, Replay, Snapshot, Transition, lifecycle};
use crate::kinds::RunningJob;
use crate::store::driver::{Cells, Column, Driver};
use crate::store::{CancelOutcome, Job, ReplayOutcome, StoreError};

/// How often a cancel or replay decides again when the job keeps changing under it.
const RACES: usize = 8;

/// What deciding on a job came to.
enum Decided {
    /// The change applied; the job as it is now.
    Changed(Box<Job>),
    /// The decision refused the change; the job's state.
    Refused(JobState),
    /// No such job.
    NotFound,
}

impl<D: Driver> SqlStore<D> {
    /// Claims a due queued job for `worker`.
    pub(super) async fn claim_job(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<RunningJob>, StoreError> {
        let claim = lifecycle::claim(worker, lease);
        let change = update(self.driver.dialect(), Target::Id(id), &claim, None);
        let mut writer = self.driver.writer().await?;
        let applied = writer.apply(change, claim.event.as_ref(), true).await?;
        match applied.into_rows().pop() {
            Some(row) => Ok(Some(Job::try_from(row)?.claimed(worker))),
            None => Ok(None),
        }
    }

    /// Claims those of `ids` that are due and queued for `worker`, in one statement.
    pub(super) async fn claim_jobs(
        &self,
        ids: &[Uuid],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<RunningJob>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let claim = lifecycle::claim(worker, lease);
        let change = update(self.driver.dialect(), Target::Ids(ids), &claim, None);
        let mut writer = self.driver.writer().await?;
        let applied = writer.apply(change, claim.event.as_ref(), true).await?;
        applied
            .into_rows()
            .into_iter()
            .map(|row| Ok(Job::try_from(row)?.claimed(worker)))
            .collect()
    }

    /// Applies a transition of the attempt `job` holds; `false` when it no longer holds it.
    pub(super) async fn held(&self, job: &RunningJob, t: &Transition) -> Result<bool, StoreError> {
        let change = update(self.driver.dialect(), Target::Id(job.id), t, None);
        let mut writer = self.driver.writer().await?;
        let applied = writer.apply(change, t.event.as_ref(), false).await?;
        Ok(applied.count() == 1)
    }

    /// Applies transitions of attempts this worker holds in one transaction (one commit,
    /// however many jobs): whether each still held its job.
    pub(super) async fn held_many(
        &self,
        changes: &[(&RunningJob, Transition)],
    ) -> Result<Vec<bool>, StoreError> {
        let rows: Vec<(Uuid, &Transition)> = changes.iter().map(|(job, t)| (job.id, t)).collect();
        if changes.len() > 1
            && let Some(each) = update_each(self.driver.dialect(), &rows)
        {
            // One statement for all of them: atomic by itself.
            let changed = self
                .driver
                .writer()
                .await?
                .rows(each, &[Column::Uuid])
                .await?;
            let changed: std::collections::HashSet<Uuid> = changed
                .into_iter()
                .map(|row| Cells::of(row).uuid())
                .collect::<Result<_, _>>()?;
            return Ok(changes
                .iter()
                .map(|(job, _)| changed.contains(&job.id))
                .collect());
        }
        let mut tx = self.driver.begin().await?;
        let mut held = Vec::with_capacity(changes.len());
        for (job, t) in changes {
            let change = update(self.driver.dialect(), Target::Id(job.id), t, None);
            held.push(tx.apply(change, t.event.as_ref(), false).await?.count() == 1);
        }
        tx.commit().await?;
        Ok(held)
    }

    /// Cancels a queued or running job in scope.
    pub(super) async fn cancel_job(
        &self,
        scope: Scope<'_>,
        id: Uuid,
    ) -> Result<CancelOutcome, StoreError> {
        Ok(match self.decide(scope, id, Snapshot::cancel).await? {
            Decided::Changed(job) => CancelOutcome::Cancelled(job),
            Decided::Refused(state) => CancelOutcome::AlreadyFinished(state),
            Decided::NotFound => CancelOutcome::NotFound,
        })
    }

    /// Replays a failed or cancelled job in scope.
    pub(super) async fn replay_job(
        &self,
        scope: Scope<'_>,
        id: Uuid,
        change: &Replay,
    ) -> Result<ReplayOutcome, StoreError> {
        Ok(
            match self.decide(scope, id, |seen| seen.replay(change)).await? {
                Decided::Changed(job) => ReplayOutcome::Queued(job),
                Decided::Refused(state) => ReplayOutcome::NotReplayable(state),
                Decided::NotFound => ReplayOutcome::NotFound,
            },
        )
    }

    /// Reads the job, lets `decide` choose the transition, and applies it if the job is
    /// still as read; when it moved meanwhile, reads and decides again.
    async fn decide(
        &self,
        scope: Scope<'_>,
        id: Uuid,
        decide: impl Fn(&Snapshot) -> Result<Transition, JobState>,
    ) -> Result<Decided, StoreError> {
        for _ in 0..RACES {
            let Some(job) = self.job(scope, id).await? else {
                return Ok(Decided::NotFound);
            };
            let mut transition = match decide(&job.snapshot()) {
                Ok(transition) => transition,
                Err(state) => return Ok(Decided::Refused(state)),
            };
            if let Scope::Tenant(tenant) = scope {
                transition.guard.tenant = Some(tenant.to_owned());
            }
            let change = update(self.driver.dialect(), Target::Id(id), &transition, None);
            let mut writer = self.driver.writer().await?;
            let applied = writer
                .apply(change, transition.event.as_ref(), true)
                .await?;
            if let Some(row) = applied.into_rows().pop() {
                return Ok(Decided::Changed(Box::new(Job::try_from(row)?)));
            }
        }
        Err(StoreError::Database(
            format!("job {id} kept changing while deciding; try again").into(),
        ))
    }
}
