//! Group commit without lingering: work handed in while earlier batches are being written
//! waits and is then written together, up to a batch, with a few batches in flight. A lone
//! item is written at once; under load batches grow by themselves. Used for submissions
//! (one multi-row insert) and for outcomes (one commit for many settlements).
//!
//! The writing runs in tasks of its own, not in the callers: a caller that stops waiting
//! cannot stop a write half-way (a committed job is still rung, a recorded outcome still
//! acknowledged).
//!
//! A group may also linger ([`Linger`]): when its last write was slow and work arrives fast
//! enough that more is due within the wait (the database is busy, and this process is under
//! load), a batch waits for more work until it is large enough or a bound has passed. A
//! process that gets only a share of the load (one of several workers) then writes batches
//! about as large as a lone process would, so the database's statements and commits per job
//! grow less with the number of processes; when the database answers quickly, nothing
//! waits.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::store::StoreError;

/// How many jobs an item carries (a claim may carry several): a lingering batch is large
/// enough by its jobs, not its items.
pub(super) trait Weighed {
    /// The jobs this item carries.
    fn jobs(&self) -> usize {
        1
    }
}

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

impl<T: Weighed + Send + 'static> Group<T> {
    /// Starts the task that gathers items and runs `write` on batches of up to `max_batch`,
    /// at most `in_flight` at once, lingering as `linger` says; it ends when every sender is
    /// gone.
    pub(super) fn start<W, F>(
        max_batch: usize,
        in_flight: usize,
        linger: Option<Linger>,
        write: W,
    ) -> Group<T>
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (sender, receiver) = mpsc::unbounded_channel();
        let batches = Batches {
            max_batch,
            in_flight,
            linger,
        };
        tokio::spawn(gather(receiver, batches, write));
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

/// How long a batch may wait for more work while the database is busy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Linger {
    /// A write that took longer than this means the database is busy.
    pub busy_after: Duration,
    /// A batch carrying this many jobs is written without waiting.
    pub enough: usize,
    /// The longest a batch waits.
    pub at_most: Duration,
}

/// How a group forms its batches.
#[derive(Debug, Clone, Copy)]
struct Batches {
    max_batch: usize,
    in_flight: usize,
    linger: Option<Linger>,
}

/// Takes every item waiting, up to a batch (lingering for more while the database is busy),
/// and writes it while fewer than `in_flight` batches are being written.
async fn gather<T, W, F>(mut receiver: mpsc::UnboundedReceiver<T>, batches: Batches, write: W)
where
    T: Weighed + Send + 'static,
    W: Fn(Vec<T>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let writers = Arc::new(Semaphore::new(batches.in_flight));
    // How long the last write took, in microseconds, and how fast work arrives (jobs per
    // second, smoothed over batches).
    let last_write = Arc::new(AtomicU64::new(0));
    let (mut rate, mut last_batch_at) = (0.0_f64, Instant::now());
    while let Some(first) = receiver.recv().await {
        let Ok(permit) = writers.clone().acquire_owned().await else {
            return;
        };
        // Whatever arrived while waiting for a writer joins this batch.
        let mut batch = vec![first];
        take_waiting(&mut receiver, &mut batch, batches.max_batch);
        if let Some(linger) = batches.linger {
            // Busy: the last write was slow and more work is due within the wait; a lone
            // item on a quiet system is written at once.
            let last = Duration::from_micros(last_write.load(Ordering::Relaxed));
            if last > linger.busy_after && rate * linger.at_most.as_secs_f64() >= 2.0 {
                let until = Instant::now() + linger.at_most;
                while jobs(&batch) < linger.enough && batch.len() < batches.max_batch {
                    match tokio::time::timeout_at(until, receiver.recv()).await {
                        Ok(Some(next)) => {
                            batch.push(next);
                            take_waiting(&mut receiver, &mut batch, batches.max_batch);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        let now = Instant::now();
        let since = now.duration_since(last_batch_at).as_secs_f64().max(1e-4);
        rate = 0.8 * rate + 0.2 * (jobs(&batch) as f64 / since);
        last_batch_at = now;
        let written = write(batch);
        let last_write = last_write.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            written.await;
            let took = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
            last_write.store(took, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// The jobs the items of `batch` carry.
fn jobs<T: Weighed>(batch: &[T]) -> usize {
    batch.iter().map(Weighed::jobs).sum()
}

/// Moves the items already waiting into `batch`, up to `max_batch`.
fn take_waiting<T>(
    receiver: &mut mpsc::UnboundedReceiver<T>,
    batch: &mut Vec<T>,
    max_batch: usize,
) {
    while batch.len() < max_batch {
        match receiver.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
}
