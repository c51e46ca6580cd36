//! Recording outcomes together: the outcomes a worker's slots finish while earlier ones are
//! being written share one commit (see [`super::group`]), then their deliveries are
//! acknowledged. Each slot is answered only after its outcome is committed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::warn;
use uuid::Uuid;

use super::Settled;
use super::group::{Group, Linger, Weighed};
use crate::job::Settlement;
use crate::kinds::RunningJob;
use crate::queue::{Delivery, JobQueue, Signals};
use crate::store::{JobStore, StoreError};

/// The most outcomes committed together.
const MAX_BATCH: usize = 64;
/// Commits under way at once.
const IN_FLIGHT: usize = 2;
/// While the database is busy, a group waits this long at most for more outcomes (the slots
/// are free already: only the job's record waits).
const LINGER: Linger = Linger {
    busy_after: Duration::from_millis(1),
    enough: 16,
    at_most: Duration::from_millis(50),
};

/// One outcome waiting to be recorded.
struct Outcome {
    delivery: Delivery,
    job: RunningJob,
    settlement: Settlement,
    answer: oneshot::Sender<Result<Settled, StoreError>>,
}

impl Weighed for Outcome {}

/// Where outcomes go, and who hears of them.
struct Parts {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn JobQueue>,
    signals: Arc<dyn Signals>,
}

/// Hands outcomes to the task that records them together.
#[derive(Clone)]
pub(super) struct Settler {
    group: Group<Outcome>,
}

impl Settler {
    /// Starts the task that records outcomes in `store`, acknowledges their deliveries on
    /// `queue` and announces them on `signals`.
    pub(super) fn start(
        store: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        signals: Arc<dyn Signals>,
    ) -> Settler {
        let parts = Arc::new(Parts {
            store,
            queue,
            signals,
        });
        let group = Group::start(MAX_BATCH, IN_FLIGHT, Some(LINGER), move |batch| {
            let parts = parts.clone();
            async move { record(&parts, batch).await }
        });
        Settler { group }
    }

    /// Records `settlement` for `job` with whatever else is settling, then acknowledges
    /// `delivery`; an outcome that could not be recorded leaves the delivery pending.
    pub(super) async fn settle(
        &self,
        delivery: &Delivery,
        job: &RunningJob,
        settlement: &Settlement,
    ) -> Result<Settled, StoreError> {
        self.group
            .ask(|answer| Outcome {
                delivery: delivery.clone(),
                job: job.clone(),
                settlement: settlement.clone(),
                answer,
            })
            .await
    }
}

/// Commits a batch of outcomes, acknowledges their deliveries, then answers each.
async fn record(parts: &Parts, batch: Vec<Outcome>) {
    let pairs: Vec<(&RunningJob, &Settlement)> =
        batch.iter().map(|o| (&o.job, &o.settlement)).collect();
    let written: Vec<Result<bool, StoreError>> = match parts.store.settle_many(&pairs).await {
        Ok(held) => held.into_iter().map(Ok).collect(),
        Err(e) if batch.len() > 1 && !e.is_outage() => {
            // One outcome the database refuses must not fail the others: record each alone.
            warn!(outcomes = batch.len(), error = %e, "a grouped settlement failed; recording one by one");
            let mut each = Vec::with_capacity(pairs.len());
            for (job, settlement) in &pairs {
                each.push(parts.store.settle(job, settlement).await);
            }
            each
        }
        Err(e) => vec![Err(e); batch.len()],
    };
    drop(pairs);
    let recorded: Vec<Uuid> = batch
        .iter()
        .zip(&written)
        .filter(|(_, w)| matches!(w, Ok(true)))
        .map(|(o, _)| o.job.id)
        .collect();
    if !recorded.is_empty() {
        parts.signals.announce_changes(&recorded);
    }
    let acks = batch
        .iter()
        .zip(&written)
        .filter(|(_, w)| w.is_ok())
        .map(|(o, _)| acknowledge(parts.queue.as_ref(), &o.delivery));
    futures::future::join_all(acks).await;
    for (outcome, result) in batch.into_iter().zip(written) {
        let answer = result.map(|held| {
            if held {
                Settled::Recorded
            } else {
                Settled::NotHeld
            }
        });
        // The slot may have stopped waiting; the outcome stands.
        let _ = outcome.answer.send(answer);
    }
}

/// Acknowledges a delivery whose outcome was dealt with.
pub(super) async fn acknowledge(queue: &dyn JobQueue, delivery: &Delivery) {
    if let Err(e) = queue.ack(delivery).await {
        warn!(job_id = %delivery.doorbell.job_id, error = %e, "could not acknowledge a doorbell");
    }
}
