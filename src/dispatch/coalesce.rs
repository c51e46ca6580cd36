//! Coalescing concurrent submissions: the jobs of every request that arrives while earlier
//! ones are being written go to the database together, one multi-row insert in one commit,
//! and to the queue in one pipeline (see [`super::group`]). Each request is still answered
//! only after its job is committed, and a client that hangs up after its job is committed
//! cannot stop that job's doorbell from being rung.

use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::warn;

use super::Bells;
use super::bells::News;
use super::group::Group;
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
    answer: oneshot::Sender<Result<Job, StoreError>>,
}

/// Hands submissions to the coalescing task.
#[derive(Clone)]
pub(super) struct Coalescer {
    group: Group<Submission>,
}

impl Coalescer {
    /// Starts the task that writes submissions to `store` and rings them with `bells`; it
    /// ends when every sender is gone.
    pub(super) fn start(store: Arc<dyn JobStore>, bells: Bells) -> Coalescer {
        let group = Group::start(MAX_BATCH, IN_FLIGHT, move |batch| {
            let (store, bells) = (store.clone(), bells.clone());
            async move { write(store.as_ref(), &bells, batch).await }
        });
        Coalescer { group }
    }

    /// Records `spec` for `tenant` with whatever else is being submitted, rings it when due,
    /// and answers the stored job.
    pub(super) async fn submit(&self, tenant: &str, spec: &JobSpec) -> Result<Job, StoreError> {
        self.group
            .ask(|answer| Submission {
                tenant: tenant.to_owned(),
                spec: spec.clone(),
                answer,
            })
            .await
    }
}

/// Writes a batch, rings its due jobs, then answers each submission.
async fn write(store: &dyn JobStore, bells: &Bells, batch: Vec<Submission>) {
    let jobs: Vec<NewJob<'_>> = batch
        .iter()
        .map(|s| NewJob {
            tenant: &s.tenant,
            spec: &s.spec,
        })
        .collect();
    let written = match store.create_many(&jobs).await {
        Ok(made) => made.into_iter().map(Ok).collect(),
        Err(e) if batch.len() > 1 && !matches!(e, StoreError::Unavailable(_)) => {
            // One job the database refuses must not fail the others: write each alone.
            warn!(jobs = batch.len(), error = %e, "a coalesced insert failed; inserting one by one");
            one_by_one(store, &jobs).await
        }
        Err(e) => vec![Err(e); batch.len()],
    };
    drop(jobs);
    // Answered once committed, rung right after: the ring is this task's to finish, not
    // the request's to wait for (a job is durable, and rung again if this process stops
    // first).
    let news = News::of(written.iter().flatten());
    for (submission, result) in batch.into_iter().zip(written) {
        // The client may have hung up; its job stands.
        let _ = submission.answer.send(result);
    }
    bells.spread(news).await;
}

async fn one_by_one(store: &dyn JobStore, jobs: &[NewJob<'_>]) -> Vec<Result<Job, StoreError>> {
    let mut written = Vec::with_capacity(jobs.len());
    for job in jobs {
        let one = store.create_many(std::slice::from_ref(job)).await;
        written.push(one.and_then(|mut made| {
            made.pop()
                .ok_or_else(|| StoreError::Database("the new job was not returned".into()))
        }));
    }
    written
}
