//! Confirming rings started at submission in batches: under load the API writes one
//! confirmation per batch, not one per job. A confirmation that is never written (the
//! process stopped, the store failed) leaves its job `ringing`, and the scheduler rings it
//! again after [`super::RING_GRACE`]: a duplicate doorbell at worst, which is harmless.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

use crate::store::JobStore;

/// How long the first confirmation of a batch waits for others to join it.
const LINGER: Duration = Duration::from_millis(20);
/// The most confirmations written at once.
const MAX_BATCH: usize = 1_000;

/// Sends confirmations to the batching task.
#[derive(Clone)]
pub struct Confirmer {
    sender: mpsc::UnboundedSender<Uuid>,
}

impl Confirmer {
    /// Starts the task that writes confirmations to `store`; it ends when every sender is gone.
    pub fn start(store: Arc<dyn JobStore>) -> Confirmer {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(store, receiver));
        Confirmer { sender }
    }

    /// Confirms that these jobs' doorbells are in the queue.
    pub fn confirm(&self, ids: &[Uuid]) {
        for id in ids {
            // The task is gone only when the runtime is shutting down.
            let _ = self.sender.send(*id);
        }
    }
}

async fn run(store: Arc<dyn JobStore>, mut receiver: mpsc::UnboundedReceiver<Uuid>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while batch.len() < MAX_BATCH {
            tokio::select! {
                next = receiver.recv() => match next {
                    Some(id) => batch.push(id),
                    None => break,
                },
                () = &mut linger => break,
            }
        }
        if let Err(e) = store.confirm_rung(&batch).await {
            warn!(jobs = batch.len(), error = %e, "could not confirm rings; they will be rung again");
        }
        batch.clear();
    }
}
