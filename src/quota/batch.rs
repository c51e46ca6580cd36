//! Admissions asked at once go to the shared ledger together: while one call is under way,
//! the submissions that arrive wait and are then decided in one round trip (one script run
//! for all of them, in the order they came), up to a few calls at once. A lone submission is
//! sent at once; under load each call carries what arrived meanwhile, so the ledger costs a
//! busy API one round trip per group of submissions, not per submission.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::ledger::Ledger;
use super::rule::{Answer, Ask};
use crate::queue::QueueError;

/// The most admissions decided in one call.
const MAX_BATCH: usize = 64;
/// Calls under way at once.
const IN_FLIGHT: usize = 2;

/// One admission waiting for its answer.
struct Pending {
    tenant: String,
    ask: Ask,
    answer: oneshot::Sender<Result<Answer, QueueError>>,
}

/// Hands admissions to the task that asks the ledger for them together.
#[derive(Clone)]
pub(super) struct Batcher {
    sender: mpsc::UnboundedSender<Pending>,
}

impl Batcher {
    /// Starts the task that asks `ledger`; it ends when every sender is gone.
    pub(super) fn start(ledger: Arc<dyn Ledger>) -> Batcher {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(gather(receiver, ledger));
        Batcher { sender }
    }

    /// Decides `ask` for `tenant` with whatever else is being asked.
    pub(super) async fn admit(&self, tenant: &str, ask: &Ask) -> Result<Answer, QueueError> {
        let (answer, answered) = oneshot::channel();
        let gone = || QueueError::Unavailable("the process is shutting down".into());
        self.sender
            .send(Pending {
                tenant: tenant.to_owned(),
                ask: *ask,
                answer,
            })
            .map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// Takes every admission waiting, up to a batch, and decides them in one call while fewer
/// than `IN_FLIGHT` calls are under way.
async fn gather(mut receiver: mpsc::UnboundedReceiver<Pending>, ledger: Arc<dyn Ledger>) {
    let calls = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = receiver.recv().await {
        let Ok(permit) = calls.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let ledger = ledger.clone();
        tokio::spawn(async move {
            let asks: Vec<(&str, &Ask)> =
                batch.iter().map(|p| (p.tenant.as_str(), &p.ask)).collect();
            let answers = ledger.admit(&asks).await;
            drop(asks);
            match answers {
                Ok(answers) => {
                    for (pending, answer) in batch.into_iter().zip(answers) {
                        let _ = pending.answer.send(Ok(answer));
                    }
                }
                Err(e) => {
                    for pending in batch {
                        let _ = pending.answer.send(Err(e.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}
