//! The job state machine: which transitions each state allows and what they write. Stores
//! apply what is decided here; they decide nothing themselves.
//!
//! ```text
//!  create ─▶ queued ──claim──▶ running ──settle──▶ succeeded | failed
//!              ▲                  │  settle (retry) · release · reap (attempts left)
//!              ├──────────────────┘
//!              │ replay                     cancel: queued | running ─▶ cancelled
//!            failed | cancelled
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::event_detail::{
    CancelledDetail, CreatedDetail, DeferredDetail, EventDetail, FailedDetail, LeaseExpiredDetail,
    ReleasedDetail, RetriedDetail, RetryingDetail,
};
use super::transition::{AttemptChange, EventRecord, Guard, TimeChange, Transition, ValueChange};
use super::{JobError, JobState, Priority, Replay, RingState, Strategy};

/// The columns of a job that decisions depend on, as read just before deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Its state.
    pub state: JobState,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The worker that holds (or last held) it.
    pub worker: Option<String>,
    /// Its strategy.
    pub strategy: Strategy,
    /// Its priority.
    pub priority: Priority,
}

impl Snapshot {
    /// A guard that holds only while the row is still exactly as seen (optimistic locking:
    /// if anything moved meanwhile, the store changes nothing and the caller decides again).
    fn unchanged(&self) -> Guard {
        Guard {
            state: Some(self.state),
            attempt: Some(self.attempt),
            ..Guard::default()
        }
    }
}

/// The attempt a worker holds: with the attempt number, the fencing token of every write the
/// worker makes about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The attempt (1-based).
    pub attempt: u32,
    /// The worker.
    pub worker: String,
}

/// How a worker settles the attempt it ran.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// The attempt succeeded with this result.
    Succeeded(Value),
    /// The attempt failed and the job goes back to the queue until `run_at`.
    Retry {
        /// Why the attempt failed.
        error: JobError,
        /// When the next attempt is due.
        run_at: DateTime<Utc>,
    },
    /// The attempt failed and the job is finished.
    Failed(JobError),
    /// The attempt did not start: pacing holds the job's domain back until `until`. The job
    /// goes back to the queue with its attempt unspent.
    Deferred {
        /// When admission is expected to be possible.
        until: DateTime<Utc>,
        /// `backoff`, `cap` or `rate`.
        reason: &'static str,
    },
}

/// A queued, due job becomes running under `worker`, holding a lease of `lease`.
pub fn claim(worker: &str, lease: Duration) -> Transition {
    Transition {
        guard: Guard {
            state: Some(JobState::Queued),
            due: true,
            ..Guard::default()
        },
        state: Some(JobState::Running),
        attempt: AttemptChange::Next,
        worker: Some(worker.to_owned()),
        lease_until: TimeChange::After(lease),
        started_at: TimeChange::Now,
        event: Some(EventRecord::of(EventDetail::Started)),
        ..Transition::default()
    }
}

/// A new job's timeline starts with this event.
pub fn created(priority: Priority, run_at: Option<DateTime<Utc>>) -> EventRecord {
    EventRecord::of(EventDetail::Created(CreatedDetail { priority, run_at }))
}

impl Hold {
    /// Only while this worker still holds this attempt.
    fn guard(&self) -> Guard {
        Guard {
            state: Some(JobState::Running),
            attempt: Some(self.attempt),
            worker: Some(self.worker.clone()),
            ..Guard::default()
        }
    }

    /// Extends the lease to now + `lease`.
    pub fn renew(&self, lease: Duration) -> Transition {
        Transition {
            guard: self.guard(),
            lease_until: TimeChange::After(lease),
            ..Transition::default()
        }
    }

    /// Records the attempt's outcome.
    pub fn settle(&self, settlement: &Settlement) -> Transition {
        let done = Transition {
            guard: self.guard(),
            lease_until: TimeChange::Clear,
            ..Transition::default()
        };
        match settlement {
            Settlement::Succeeded(result) => Transition {
                state: Some(JobState::Succeeded),
                result: ValueChange::Set(result.clone()),
                error: ValueChange::Clear,
                finished_at: TimeChange::Now,
                event: Some(EventRecord::of(EventDetail::Succeeded)),
                ..done
            },
            Settlement::Retry { error, run_at } => Transition {
                state: Some(JobState::Queued),
                result: ValueChange::Clear,
                error: ValueChange::Set(error.clone()),
                run_at: TimeChange::At(*run_at),
                ring: Some(RingState::Needed),
                event: Some(EventRecord::of(EventDetail::Retrying(RetryingDetail {
                    error: error.clone(),
                    run_at: *run_at,
                }))),
                ..done
            },
            Settlement::Deferred { until, reason } => Transition {
                state: Some(JobState::Queued),
                attempt: AttemptChange::Back,
                run_at: TimeChange::At(*until),
                ring: Some(RingState::Needed),
                event: Some(EventRecord::of(EventDetail::Deferred(DeferredDetail {
                    until: *until,
                    reason,
                }))),
                ..done
            },
            Settlement::Failed(error) => Transition {
                state: Some(JobState::Failed),
                result: ValueChange::Clear,
                error: ValueChange::Set(error.clone()),
                finished_at: TimeChange::Now,
                event: Some(EventRecord::of(EventDetail::Failed(FailedDetail {
                    error: error.clone(),
                }))),
                ..done
            },
        }
    }

    /// Puts the attempt back in the queue untouched (the worker is shutting down).
    pub fn release(&self) -> Transition {
        Transition {
            guard: self.guard(),
            state: Some(JobState::Queued),
            run_at: TimeChange::Now,
            lease_until: TimeChange::Clear,
            ring: Some(RingState::Needed),
            event: Some(EventRecord::of(EventDetail::Released(ReleasedDetail {
                reason: "worker shutting down",
            }))),
            ..Transition::default()
        }
    }
}

impl Snapshot {
    /// Cancels a queued or running job; a finished one refuses with its state.
    pub fn cancel(&self) -> Result<Transition, JobState> {
        if self.state.is_terminal() {
            return Err(self.state);
        }
        Ok(Transition {
            guard: self.unchanged(),
            state: Some(JobState::Cancelled),
            lease_until: TimeChange::Clear,
            finished_at: TimeChange::Now,
            event: Some(EventRecord::of(EventDetail::Cancelled(CancelledDetail {
                from: self.state,
            }))),
            ..Transition::default()
        })
    }

    /// Replays a failed or cancelled job with a fresh budget: queued now, its doorbell about
    /// to be rung by the caller. Other states refuse with their state.
    pub fn replay(&self, change: &Replay) -> Result<Transition, JobState> {
        if !matches!(self.state, JobState::Failed | JobState::Cancelled) {
            return Err(self.state);
        }
        let max_attempts = self.attempt.saturating_add(change.budget);
        let strategy = change.strategy.unwrap_or(self.strategy);
        let priority = change.priority.unwrap_or(self.priority);
        Ok(Transition {
            guard: self.unchanged(),
            state: Some(JobState::Queued),
            run_at: TimeChange::Now,
            lease_until: TimeChange::Clear,
            finished_at: TimeChange::Clear,
            ring: Some(RingState::Ringing),
            result: ValueChange::Clear,
            error: ValueChange::Clear,
            max_attempts: Some(max_attempts),
            strategy: Some(strategy),
            priority: Some(priority),
            event: Some(EventRecord::of(EventDetail::Retried(RetriedDetail {
                from: self.state,
                strategy,
                priority,
                max_attempts,
            }))),
            ..Transition::default()
        })
    }

    /// Takes back a running job whose lease ran out (its worker stopped or was cut off): to
    /// the queue while attempts are left (the lost attempt counts), else failed. `term`, the
    /// scheduler's leadership term, is recorded on the event.
    pub fn reap(&self, term: Option<i64>) -> Transition {
        let exhausted = self.attempt >= self.max_attempts;
        let next = if exhausted {
            JobState::Failed
        } else {
            JobState::Queued
        };
        Transition {
            guard: Guard {
                lease_expired: true,
                ..self.unchanged()
            },
            state: Some(next),
            run_at: TimeChange::Now,
            lease_until: TimeChange::Clear,
            finished_at: if exhausted {
                TimeChange::Now
            } else {
                TimeChange::Keep
            },
            ring: Some(RingState::Needed),
            error: ValueChange::Set(JobError::lease_expired()),
            event: Some(EventRecord::of(EventDetail::LeaseExpired(
                LeaseExpiredDetail { state: next, term },
            ))),
            ..Transition::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen(state: JobState, attempt: u32, max_attempts: u32) -> Snapshot {
        Snapshot {
            state,
            attempt,
            max_attempts,
            worker: Some("w".into()),
            strategy: Strategy::Auto,
            priority: Priority::default(),
        }
    }

    #[test]
    fn only_unfinished_jobs_cancel() {
        for state in [JobState::Queued, JobState::Running] {
            let cancel = seen(state, 1, 3).cancel().expect("cancellable");
            assert_eq!(cancel.state, Some(JobState::Cancelled));
            assert_eq!(cancel.guard.state, Some(state));
        }
        for state in [JobState::Succeeded, JobState::Failed, JobState::Cancelled] {
            assert_eq!(seen(state, 1, 3).cancel(), Err(state));
        }
    }

    #[test]
    fn only_failed_or_cancelled_jobs_replay_with_a_fresh_budget() {
        let change = Replay {
            budget: 2,
            strategy: Some(Strategy::Stealth),
            priority: None,
        };
        let replay = seen(JobState::Failed, 3, 3)
            .replay(&change)
            .expect("replay");
        assert_eq!(replay.max_attempts, Some(5));
        assert_eq!(replay.strategy, Some(Strategy::Stealth));
        assert_eq!(replay.ring, Some(RingState::Ringing));
        for state in [JobState::Queued, JobState::Running, JobState::Succeeded] {
            assert_eq!(seen(state, 1, 3).replay(&change), Err(state));
        }
    }

    #[test]
    fn a_reaped_job_fails_only_when_out_of_attempts() {
        assert_eq!(
            seen(JobState::Running, 2, 3).reap(Some(1)).state,
            Some(JobState::Queued)
        );
        let last = seen(JobState::Running, 3, 3).reap(None);
        assert_eq!(last.state, Some(JobState::Failed));
        assert_eq!(last.finished_at, TimeChange::Now);
        assert!(last.guard.lease_expired);
    }

    #[test]
    fn a_worker_writes_only_under_its_hold() {
        let hold = Hold {
            attempt: 2,
            worker: "w1".into(),
        };
        let settle = hold.settle(&Settlement::Succeeded(json!({})));
        assert_eq!(settle.guard.attempt, Some(2));
        assert_eq!(settle.guard.worker.as_deref(), Some("w1"));
        assert_eq!(settle.guard.state, Some(JobState::Running));
        let retry = hold.settle(&Settlement::Retry {
            error: JobError::new(super::super::ErrorKind::Timeout, "slow"),
            run_at: Utc::now(),
        });
        assert_eq!(retry.ring, Some(RingState::Needed));
        assert_eq!(retry.finished_at, TimeChange::Keep);
        let deferred = hold.settle(&Settlement::Deferred {
            until: Utc::now(),
            reason: "cap",
        });
        assert_eq!(deferred.attempt, AttemptChange::Back);
        assert_eq!(deferred.state, Some(JobState::Queued));
        assert_eq!(deferred.ring, Some(RingState::Needed));
    }
}
