//! What the store and the indexes it implements share: what can go wrong talking to the
//! database ([`StoreError`]), the leadership term that fences the leader's writes
//! ([`Term`]) and how a duration is stored. It sits below every index (`auth`, `quota`,
//! `memory`, `retention`) so that each can declare its index without knowing the store
//! that implements it.

mod error;

use std::time::Duration;

pub use error::{Cause, StoreError};

/// The scheduler's leadership term: it rises each time another process takes over, and
/// every leader-only change is fenced by it, so a leader that lost its lease (frozen, cut
/// off) cannot act on a stale belief.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Term(pub i64);

/// A duration in whole milliseconds, saturating.
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
