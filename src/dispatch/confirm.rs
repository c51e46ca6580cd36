//! Confirming rings started at submission in batches, late: a confirmation is written
//! [`CONFIRM_AFTER`] after its ring, by when a worker that keeps up has long claimed the job,
//! and a claimed job needs no confirmation (the statement finds it no longer queued and
//! writes nothing). So under load a job costs no extra row version for its doorbell; only
//! jobs still waiting in the queue are marked `rung`. A confirmation that is never written
//! (the process stopped, the store failed) leaves its job `ringing`, and the scheduler rings
//! it again after [`super::RING_GRACE`]: a duplicate doorbell at worst, which is harmless.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

use crate::store::JobStore;

/// How long after its ring a confirmation is written: well within [`super::RING_GRACE`].
const CONFIRM_AFTER: Duration = Duration::from_secs(2);
/// The most confirmations written in one statement.
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
    let mut batch = Vec::new();
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        // Every ring that comes while the first waits joins it: each waits at least
        // CONFIRM_AFTER from when it is taken here.
        let ripe = tokio::time::sleep(CONFIRM_AFTER);
        tokio::pin!(ripe);
        loop {
            tokio::select! {
                next = receiver.recv() => match next {
                    Some(id) => batch.push(id),
                    None => break,
                },
                () = &mut ripe => break,
            }
        }
        for chunk in batch.chunks(MAX_BATCH) {
            if let Err(e) = store.confirm_rung(chunk).await {
                warn!(jobs = chunk.len(), error = %e, "could not confirm rings; they will be rung again");
            }
        }
        batch.clear();
    }
}
