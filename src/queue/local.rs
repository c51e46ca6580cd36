//! In-process queue for the embedded mode, with the same priority rules as Redis Streams.
//!
//! It holds only doorbells: when the process stops they are gone, and the store rings every
//! due job again at the next start.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

use super::{Delivery, Doorbell, JobQueue, LevelStats, QueueConsumer, QueueError, level_order};
use crate::job::Priority;

#[derive(Default)]
struct State {
    /// Waiting doorbells per level, oldest first, each with its receipt number.
    levels: [VecDeque<(u64, Doorbell)>; 5],
    /// Delivered, not yet acknowledged: receipt → level.
    pending: HashMap<u64, Priority>,
    next_receipt: u64,
    consumers: HashSet<String>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    rung: Notify,
}

/// A [`JobQueue`] that lives in this process.
#[derive(Clone, Default)]
pub struct LocalQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LocalQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueue").finish_non_exhaustive()
    }
}

impl LocalQueue {
    /// An empty queue.
    pub fn new() -> LocalQueue {
        LocalQueue::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl JobQueue for LocalQueue {
    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn ring(&self, doorbells: &[Doorbell]) -> Result<(), QueueError> {
        {
            let mut state = self.state();
            for bell in doorbells {
                let receipt = state.next_receipt;
                state.next_receipt += 1;
                state.levels[bell.priority.index()].push_back((receipt, bell.clone()));
            }
        }
        self.shared.rung.notify_waiters();
        Ok(())
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        if let Ok(receipt) = delivery.receipt.parse::<u64>() {
            self.state().pending.remove(&receipt);
        }
        Ok(())
    }

    async fn stats(&self) -> Result<Vec<LevelStats>, QueueError> {
        let state = self.state();
        Ok(Priority::LEVELS
            .iter()
            .map(|level| {
                let waiting = state.levels[level.index()].len() as u64;
                let pending = state.pending.values().filter(|p| *p == level).count() as u64;
                LevelStats {
                    priority: *level,
                    key: format!("local:q:{level}"),
                    length: waiting + pending,
                    pending,
                    lag: Some(waiting),
                    consumers: state.consumers.len() as u64,
                }
            })
            .collect())
    }

    async fn consumer(&self, name: &str) -> Result<Box<dyn QueueConsumer>, QueueError> {
        self.state().consumers.insert(name.to_owned());
        Ok(Box::new(LocalConsumer {
            queue: self.clone(),
            rng: rand::SeedableRng::from_os_rng(),
        }))
    }

    async fn continuity(&self) -> Result<super::Continuity, QueueError> {
        // It lives and dies with this process, which re-dispatches everything at start.
        Ok(super::Continuity::Intact)
    }

    async fn repair(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn sweep(&self, _min_idle: Duration) -> Result<Vec<uuid::Uuid>, QueueError> {
        // Consumers are tasks of this process: none dies leaving deliveries behind.
        Ok(Vec::new())
    }
}

/// A worker's view of a [`LocalQueue`].
struct LocalConsumer {
    queue: LocalQueue,
    rng: rand::rngs::StdRng,
}

impl LocalConsumer {
    fn take_now(&mut self, max: usize) -> Vec<Delivery> {
        let mut state = self.queue.state();
        for level in level_order(&mut self.rng) {
            let waiting = &mut state.levels[level.index()];
            if waiting.is_empty() {
                continue;
            }
            let n = max.min(waiting.len());
            let taken: Vec<(u64, Doorbell)> = waiting.drain(..n).collect();
            for (receipt, _) in &taken {
                state.pending.insert(*receipt, level);
            }
            return taken
                .into_iter()
                .map(|(receipt, doorbell)| Delivery {
                    doorbell,
                    receipt: receipt.to_string(),
                })
                .collect();
        }
        Vec::new()
    }
}

#[async_trait]
impl QueueConsumer for LocalConsumer {
    async fn take(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        let shared = self.queue.shared.clone();
        loop {
            // Register for the next ring before looking, so a ring in between is not missed.
            let rung = shared.rung.notified();
            tokio::pin!(rung);
            rung.as_mut().enable();
            let taken = self.take_now(max.max(1));
            if !taken.is_empty() {
                return Ok(taken);
            }
            if tokio::time::timeout_at(deadline, rung).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
}

/// [`super::Signals`] within this process: reports in memory, cancel notices on a broadcast
/// channel.
pub struct LocalSignals {
    reports: Mutex<HashMap<String, (Instant, Value)>>,
    cancels: tokio::sync::broadcast::Sender<uuid::Uuid>,
    changes: tokio::sync::broadcast::Sender<super::Change>,
}

impl Default for LocalSignals {
    fn default() -> Self {
        LocalSignals {
            reports: Mutex::default(),
            cancels: tokio::sync::broadcast::channel(1024).0,
            changes: tokio::sync::broadcast::channel(super::changes::NOTICE_BUFFER).0,
        }
    }
}

impl LocalSignals {
    /// No reports, no notices.
    pub fn new() -> LocalSignals {
        LocalSignals::default()
    }

    fn reports(&self) -> MutexGuard<'_, HashMap<String, (Instant, Value)>> {
        self.reports
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl super::Signals for LocalSignals {
    async fn report(&self, worker: &str, report: &Value, ttl: Duration) -> Result<(), QueueError> {
        let mut reports = self.reports();
        let now = Instant::now();
        reports.retain(|_, (until, _)| *until > now);
        reports.insert(worker.to_owned(), (now + ttl, report.clone()));
        Ok(())
    }

    async fn reports(&self) -> Result<Vec<Value>, QueueError> {
        let now = Instant::now();
        Ok(LocalSignals::reports(self)
            .values()
            .filter(|(until, _)| *until > now)
            .map(|(_, report)| report.clone())
            .collect())
    }

    async fn announce_cancel(&self, job: uuid::Uuid) -> Result<(), QueueError> {
        // No receiver (no worker in this process) is fine.
        let _ = self.cancels.send(job);
        Ok(())
    }

    fn cancel_notices(&self) -> tokio::sync::broadcast::Receiver<uuid::Uuid> {
        self.cancels.subscribe()
    }

    fn announce_changes(&self, jobs: &[uuid::Uuid]) {
        for job in jobs {
            // No receiver (nobody waiting) is fine.
            let _ = self.changes.send(super::Change::Job(*job));
        }
    }

    fn change_notices(&self) -> tokio::sync::broadcast::Receiver<super::Change> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn bell(level: u8) -> Doorbell {
        Doorbell {
            job_id: Uuid::now_v7(),
            priority: Priority::new(i64::from(level)).expect("level"),
            host: Some("example.com".to_owned()),
        }
    }

    #[tokio::test]
    async fn takes_ack_and_stats() {
        let queue = LocalQueue::new();
        let mut consumer = queue.consumer("c").await.expect("consumer");
        assert!(
            consumer
                .take(1, Duration::from_millis(10))
                .await
                .expect("take")
                .is_empty()
        );
        queue
            .ring(&[bell(5), bell(1), bell(1)])
            .await
            .expect("ring");
        let stats = queue.stats().await.expect("stats");
        assert_eq!((stats[0].length, stats[4].length), (2, 1));
        let taken = consumer.take(10, Duration::ZERO).await.expect("take");
        assert!(!taken.is_empty());
        let stats = queue.stats().await.expect("stats");
        let pending: u64 = stats.iter().map(|l| l.pending).sum();
        assert_eq!(pending, taken.len() as u64);
        for delivery in &taken {
            queue.ack(delivery).await.expect("ack");
        }
        let stats = queue.stats().await.expect("stats");
        assert_eq!(stats.iter().map(|l| l.pending).sum::<u64>(), 0);
        assert_eq!(stats[0].consumers, 1);
    }

    #[tokio::test]
    async fn a_waiting_take_wakes_on_ring() {
        let queue = LocalQueue::new();
        let mut consumer = queue.consumer("c").await.expect("consumer");
        let ringer = queue.clone();
        let bell = bell(3);
        let rung = bell.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ringer.ring(&[rung]).await
        });
        let taken = consumer
            .take(1, Duration::from_secs(10))
            .await
            .expect("take");
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].doorbell, bell);
    }
}
