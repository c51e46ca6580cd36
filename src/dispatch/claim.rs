//! Claiming together: the doorbells a worker process takes while earlier claims are being
//! written are claimed in one statement (see [`super::group`]); while the database is busy
//! a claim waits a few milliseconds for others to join. Each take is answered with its own
//! jobs, in the order of its deliveries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::group::{Group, Linger, Weighed};
use crate::kinds::RunningJob;
use crate::queue::Delivery;
use crate::store::{JobStore, StoreError};

/// The most jobs claimed in one statement.
const MAX_BATCH: usize = 256;
/// Claim statements under way at once.
const IN_FLIGHT: usize = 2;
/// While the database is busy, a claim of fewer than `enough` jobs waits this long at most
/// for others to join (it is on the path of a job's start, so less than an outcome waits). A
/// take of many doorbells (a process with many free slots and a queue behind them) is
/// claimed at once: waiting for more would only hold its slots idle.
const LINGER: Linger = Linger {
    busy_after: Duration::from_millis(1),
    enough: 8,
    at_most: Duration::from_millis(10),
};

/// One take's claim.
struct Claim {
    ids: Vec<Uuid>,
    worker: String,
    lease: Duration,
    answer: oneshot::Sender<Result<HashMap<Uuid, RunningJob>, StoreError>>,
}

impl Weighed for Claim {
    fn jobs(&self) -> usize {
        self.ids.len()
    }
}

/// Hands claims to the task that writes them together.
#[derive(Clone)]
pub(super) struct Claimer {
    group: Group<Claim>,
}

impl Claimer {
    /// Starts the task that claims in `store`.
    pub(super) fn start(store: Arc<dyn JobStore>) -> Claimer {
        let group = Group::start(MAX_BATCH, IN_FLIGHT, Some(LINGER), move |batch| {
            let store = store.clone();
            async move { write(store.as_ref(), batch).await }
        });
        Claimer { group }
    }

    /// Claims the jobs behind `deliveries` for `worker`, with whatever else is being
    /// claimed: the jobs claimed, by id.
    pub(super) async fn claim(
        &self,
        deliveries: &[Delivery],
        worker: &str,
        lease: Duration,
    ) -> Result<HashMap<Uuid, RunningJob>, StoreError> {
        self.group
            .ask(|answer| Claim {
                ids: deliveries.iter().map(|d| d.doorbell.job_id).collect(),
                worker: worker.to_owned(),
                lease,
                answer,
            })
            .await
    }
}

/// Claims a batch, one statement per worker (a process may run several), and answers each
/// take with its own jobs.
async fn write(store: &dyn JobStore, batch: Vec<Claim>) {
    let mut by_worker: Vec<(String, Duration, Vec<Claim>)> = Vec::new();
    for claim in batch {
        match by_worker
            .iter_mut()
            .find(|(worker, lease, _)| *worker == claim.worker && *lease == claim.lease)
        {
            Some((_, _, claims)) => claims.push(claim),
            None => by_worker.push((claim.worker.clone(), claim.lease, vec![claim])),
        }
    }
    for (worker, lease, claims) in by_worker {
        let ids: Vec<Uuid> = claims.iter().flat_map(|c| c.ids.iter().copied()).collect();
        match store.claim_many(&ids, &worker, lease).await {
            Ok(claimed) => {
                let mut claimed: HashMap<Uuid, RunningJob> =
                    claimed.into_iter().map(|job| (job.id, job)).collect();
                for claim in claims {
                    let own = claim
                        .ids
                        .iter()
                        .filter_map(|id| claimed.remove_entry(id))
                        .collect();
                    let _ = claim.answer.send(Ok(own));
                }
            }
            Err(e) => {
                for claim in claims {
                    let _ = claim.answer.send(Err(e.clone()));
                }
            }
        }
    }
}
