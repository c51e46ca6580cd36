//! The dispatch queue: doorbells that tell workers a job may be claimable, by priority.
//!
//! The queue holds no truth. Losing a doorbell delays a job until the scheduler rings again;
//! a duplicate doorbell is harmless because claiming is a guarded transition in the store.

pub mod changes;
pub mod local;
pub mod redis_signals;
pub mod redis_streams;
mod signals;

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

use crate::job::Priority;

pub use crate::job::Doorbell;
pub use changes::Change;
pub use local::{LocalQueue, LocalSignals};
pub use redis_signals::RedisSignals;
pub use redis_streams::RedisQueue;
pub use signals::Signals;

/// Whether a queue holds every doorbell it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// It does.
    Intact,
    /// It was lost and created again at this time: doorbells rung before it are gone.
    LostBefore(chrono::DateTime<chrono::Utc>),
}

/// A doorbell handed to one consumer; acknowledge it once the job's outcome is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The doorbell.
    pub doorbell: Doorbell,
    /// The queue's handle for acknowledging (a stream entry id).
    pub receipt: String,
}

/// What can go wrong talking to the queue.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The queue cannot be reached right now.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The queue answered something unexpected.
    #[error("queue protocol error: {0}")]
    Protocol(String),
}

/// The state of one priority level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelStats {
    /// The priority level.
    pub priority: Priority,
    /// Where the level lives (the stream key).
    pub key: String,
    /// Entries in the level: waiting plus delivered but not yet acknowledged.
    pub length: u64,
    /// Delivered to a consumer and not yet acknowledged.
    pub pending: u64,
    /// Entries not yet delivered to any consumer, when the queue knows.
    pub lag: Option<u64>,
    /// Consumers registered on the level.
    pub consumers: u64,
}

/// A priority queue of doorbells shared by all API and worker processes.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Checks that the queue answers.
    async fn ping(&self) -> Result<(), QueueError>;

    /// Rings doorbells, each on its priority level.
    async fn ring(&self, doorbells: &[Doorbell]) -> Result<(), QueueError>;

    /// Acknowledges a delivery: its job's outcome is recorded (or it was not claimable).
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError>;

    /// Per-level statistics, most urgent first.
    async fn stats(&self) -> Result<Vec<LevelStats>, QueueError>;

    /// Opens a consumer named `name` (unique per worker process).
    async fn consumer(&self, name: &str) -> Result<Box<dyn QueueConsumer>, QueueError>;

    /// Whether the queue still holds every doorbell it was given, or since when it does (after
    /// a flush, or a restart without persistence, it holds only those rung since it was
    /// created again).
    async fn continuity(&self) -> Result<Continuity, QueueError>;

    /// Re-creates what a flush removed and records that what it lost was re-dispatched. The
    /// caller first re-dispatches every queued job rung before the queue was created again.
    async fn repair(&self) -> Result<(), QueueError>;

    /// Stream hygiene: takes deliveries pending longer than `min_idle` (their consumer died
    /// or lost them), acknowledges and deletes them, and returns their job ids for the caller
    /// to re-ring if still queued; removes consumers idle that long with nothing pending;
    /// trims entries older than a day.
    async fn sweep(&self, min_idle: Duration) -> Result<Vec<Uuid>, QueueError>;
}

/// One worker's view of the queue: takes doorbells for it to run.
#[async_trait]
pub trait QueueConsumer: Send {
    /// Takes up to `max` deliveries, most urgent level first (weighted so that lower levels
    /// keep moving), waiting up to `wait` when every level is empty. May return fewer, or
    /// none after `wait`.
    async fn take(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;
}

/// Relative share of takes that start at each level when every level has work.
///
/// Each level is three times as likely to be served first as the next one: under a flood of
/// urgent work, level 5 still gets about one take in 121, so it slows but never starves.
pub const LEVEL_WEIGHTS: [u32; 5] = [81, 27, 9, 3, 1];

/// The order in which to look at the levels for one take: a level drawn by
/// [`LEVEL_WEIGHTS`] first, then the rest from most to least urgent.
pub fn level_order(rng: &mut impl Rng) -> [Priority; 5] {
    let total: u32 = LEVEL_WEIGHTS.iter().sum();
    let mut draw = rng.random_range(0..total);
    let mut first = Priority::HIGHEST;
    for (level, weight) in Priority::LEVELS.iter().zip(LEVEL_WEIGHTS) {
        if draw < weight {
            first = *level;
            break;
        }
        draw -= weight;
    }
    let mut order = [first; 5];
    let rest = Priority::LEVELS.iter().filter(|p| **p != first);
    for (slot, level) in order.iter_mut().skip(1).zip(rest) {
        *slot = *level;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn level_order_is_a_permutation_weighted_to_urgent_levels() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut firsts = [0u32; 5];
        for _ in 0..12_100 {
            let order = level_order(&mut rng);
            let mut sorted = order;
            sorted.sort();
            assert_eq!(sorted, Priority::LEVELS);
            firsts[order[0].index()] += 1;
        }
        assert!(firsts[0] > firsts[1] && firsts[1] > firsts[2] && firsts[2] > firsts[3]);
        assert!(
            firsts[4] > 0,
            "level 5 must sometimes come first: {firsts:?}"
        );
    }
}
