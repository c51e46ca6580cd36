//! Coalescing concurrent submissions: the jobs of every request that arrives while earlier
//! ones are being written go to the database together, one multi-row insert in one commit,
//! and to the queue in one pipeline (see [`super::group`]). Each request is still answered
//! only after its job is committed, and a client that hangs up after its job is committed
//! cannot stop that job's doorbell from being rung. A submission whose deadline passed
//! while it waited is answered without being written; the batch's statements end by the
//! earliest deadline of those written.

use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::warn;

use super::bells::News;
use super::group::{Group, Weighed};
use super::{Admitted, Bells, WriteBy};
use crate::quota::{Outcome, Permit};
use crate::spec::JobSpec;
use crate::store::{Job, JobStore, NewJob, StoreError};

/// The most jobs written in one batch.
const MAX_BATCH: usize = 500;
/// Batches written at once: enough to keep the database busy while the next one gathers,
/// few enough to leave connections for everything else.
const IN_FLIGHT: usize = 3;

/// One waiting submission.
struct Submission {
    tenant: String,
    spec: JobSpec,
    permit: Permit,
    write_by: WriteBy,
    answer: oneshot::Sender<Result<Job, StoreError>>,
}

impl Weighed for Submission {}

/// Hands submissions to the coalescing task.
#[derive(Clone)]
pub(super) struct Coalescer {
    group: Group<Submission>,
}

impl Coalescer {
    /// Starts the task that writes submissions to `store` and rings them with `bells`; it
    /// ends when every sender is gone.
    pub(super) fn start(store: Arc<dyn JobStore>, bells: Bells) -> Coalescer {
        let group = Group::start(MAX_BATCH, IN_FLIGHT, None, move |batch| {
            let (store, bells) = (store.clone(), bells.clone());
            async move { write(store.as_ref(), &bells, batch).await }
        });
        Coalescer { group }
    }

    /// Records `spec` for the admitted tenant with whatever else is being submitted, rings
    /// it when due, and answers the stored job.
    pub(super) async fn submit(
        &self,
        admitted: Admitted,
        spec: &JobSpec,
    ) -> Result<Job, StoreError> {
        self.group
            .ask(|answer| Submission {
                tenant: admitted.tenant,
                spec: spec.clone(),
                permit: admitted.permit,
                write_by: admitted.write_by,
                answer,
            })
            .await
    }
}

/// Writes a batch, answers each submission, rings its due jobs and settles its permits.
async fn write(store: &dyn JobStore, bells: &Bells, batch: Vec<Submission>) {
    let (batch, late): (Vec<Submission>, Vec<Submission>) =
        batch.into_iter().partition(|s| s.write_by.budget().is_ok());
    for submission in late {
        let _ = submission.answer.send(Err(StoreError::TimedOut(
            "the request's deadline passed before its job could be written: nothing was stored"
                .into(),
        )));
        submission.permit.settle(Outcome::Dropped).await;
    }
    let Some(write_by) = batch.iter().map(|s| s.write_by).reduce(WriteBy::min) else {
        return;
    };
    let within = write_by.budget().ok();
    let jobs: Vec<NewJob<'_>> = batch
        .iter()
        .map(|s| NewJob {
            tenant: &s.tenant,
            spec: &s.spec,
        })
        .collect();
    let written = match store.create_many(&jobs, within).await {
        Ok(made) => made.into_iter().map(Ok).collect(),
        Err(e) if batch.len() > 1 && !e.is_outage() => {
            // One job the database refuses must not fail the others: write each alone.
            warn!(jobs = batch.len(), error = %e, "a coalesced insert failed; inserting one by one");
            one_by_one(store, &jobs, write_by).await
        }
        Err(e) => vec![Err(e); batch.len()],
    };
    drop(jobs);
    // Answered once committed, rung right after: the ring is this task's to finish, not
    // the request's to wait for (a job is durable, and rung again if this process stops
    // first).
    let news = News::of(written.iter().flatten());
    let mut permits = Vec::with_capacity(batch.len());
    for (submission, result) in batch.into_iter().zip(written) {
        // A failed write may have committed: it counts until the next count.
        permits.push((submission.permit, Outcome::Committed));
        // The client may have hung up; its job stands.
        let _ = submission.answer.send(result);
    }
    bells.spread(news).await;
    Permit::settle_all(permits).await;
}

async fn one_by_one(
    store: &dyn JobStore,
    jobs: &[NewJob<'_>],
    write_by: WriteBy,
) -> Vec<Result<Job, StoreError>> {
    let mut written = Vec::with_capacity(jobs.len());
    for job in jobs {
        let one = match write_by.budget() {
            Ok(within) => {
                store
                    .create_many(std::slice::from_ref(job), Some(within))
                    .await
            }
            Err(late) => Err(late),
        };
        written.push(one.and_then(|mut made| {
            made.pop()
                .ok_or_else(|| StoreError::Database("the new job was not returned".into()))
        }));
    }
    written
}
