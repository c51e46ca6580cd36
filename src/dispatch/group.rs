//! Group commit without lingering: work handed in while earlier batches are being written
//! waits and is then written together, up to a batch, with a few batches in flight. A lone
//! item is written at once; under load batches grow by themselves. Used for submissions
//! (one multi-row insert) and for outcomes (one commit for many settlements).
//!
//! The writing runs in tasks of its own, not in the callers: a caller that stops waiting
//! cannot stop a write half-way (a committed job is still rung, a recorded outcome still
//! acknowledged).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::StoreError;

/// Hands items to the task that writes them in batches.
pub(super) struct Group<T> {
    sender: mpsc::UnboundedSender<T>,
}

impl<T> Clone for Group<T> {
    fn clone(&self) -> Self {
        Group {
            sender: self.sender.clone(),
        }
    }
}

impl<T: Send + 'static> Group<T> {
    /// Starts the task that gathers items and runs `write` on batches of up to `max_batch`,
    /// at most `in_flight` at once; it ends when every sender is gone.
    pub(super) fn start<W, F>(max_batch: usize, in_flight: usize, write: W) -> Group<T>
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(gather(receiver, max_batch, in_flight, write));
        Group { sender }
    }

    /// Hands in the item `make` builds around its answer's sender, and waits for the
    /// answer; when the task is gone (the runtime is shutting down) the store is unavailable.
    pub(super) async fn ask<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<R, StoreError>>) -> T,
    ) -> Result<R, StoreError> {
        let (answer, answered) = oneshot::channel();
        let gone = || StoreError::Unavailable("the process is shutting down".into());
        self.sender.send(make(answer)).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// Takes every item waiting, up to a batch, and writes it while fewer than `in_flight`
/// batches are being written.
async fn gather<T, W, F>(
    mut receiver: mpsc::UnboundedReceiver<T>,
    max_batch: usize,
    in_flight: usize,
    write: W,
) where
    T: Send + 'static,
    W: Fn(Vec<T>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let writers = Arc::new(Semaphore::new(in_flight));
    while let Some(first) = receiver.recv().await {
        let Ok(permit) = writers.clone().acquire_owned().await else {
            return;
        };
        // Whatever arrived while waiting for a writer joins this batch.
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let written = write(batch);
        tokio::spawn(async move {
            written.await;
            drop(permit);
        });
    }
}
