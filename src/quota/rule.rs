//! The quota rule, as a pure function of one tenant's book: what `dev` runs in process and
//! what `admit.lua`, `settle.lua` and `rebase.lua` run on Redis for every API process at once
//! (one conformance test holds both to it).
//!
//! The queued cap is checked against an estimate that never falls below the truth:
//!
//! - `base`: the tenant's queued jobs as counted in the database (at most a second ago);
//! - `since`: jobs whose submission committed after that count began (reported by the writer
//!   after its commit);
//! - `flying`: jobs admitted whose writer has not reported yet (each admission expires after
//!   its ttl, long after any write of it can commit).
//!
//! An admission moves from `flying` to `since` in one step, so no job is ever in neither. A
//! recount takes a snapshot of `since` before it counts and, once counted, sets `base` and
//! takes the snapshot off `since`: a job committed between the snapshot and the count is
//! counted twice until the next recount (an overestimate, never an under one). Jobs leaving
//! the queue only lower the truth, and the next recount sees it. One caller at a time holds
//! the right to recount (a lease of [`COUNTING_LEASE_MS`]); the book's generation, raised at
//! each recount and new when the book is new, turns away a recount that was overtaken.
//!
//! The rate is a token bucket of a second's worth, in thousandths of a token: a submission
//! is admitted while a whole token is left and takes one per job, so a batch larger than the
//! bucket leaves the tenant in debt until it is paid for.

use std::collections::HashMap;

use uuid::Uuid;

use super::Quota;

/// How long one caller may hold the right to recount a tenant before another may.
pub const COUNTING_LEASE_MS: i64 = 5_000;

/// What the writer of an admission reported, or that it never will.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its jobs were committed: they are queued now.
    Committed,
    /// Nothing was stored (refused, failed, a replayed idempotency key).
    Dropped,
}

/// Where a recount starts from: the book's generation and `since` before the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The book's generation (a recount of another generation is void).
    pub generation: i64,
    /// `since` when the snapshot was taken.
    pub since: i64,
}

/// What an admission came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The jobs may be written; the writer reports how it went.
    Admitted,
    /// The tenant's queued jobs would pass its cap.
    OverQueued,
    /// The tenant submits faster than its rate; a token is back after `wait_ms`.
    OverRate {
        /// Milliseconds until the next token.
        wait_ms: i64,
    },
    /// Nothing is counted yet: a count must be installed first (by the caller, when
    /// `recount` says so, else by whoever holds the right to).
    Uncounted,
}

/// An admission's answer: the verdict, and whether this caller is to recount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The verdict.
    pub verdict: Verdict,
    /// When set, this caller holds the right to recount, from this snapshot.
    pub recount: Option<Snapshot>,
}

/// One admission asked for.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    /// The admission's id (its writer reports under it).
    pub admission: Uuid,
    /// Jobs it would add.
    pub jobs: u64,
    /// The tenant's quota now.
    pub quota: Quota,
    /// How long it counts as in flight without a report (milliseconds).
    pub ttl_ms: i64,
    /// How old a count may be before a caller is asked to recount (milliseconds).
    pub recount_ms: i64,
}

/// One tenant's book.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Book {
    /// The last count of queued jobs; `None` before the first.
    pub base: Option<i64>,
    /// Jobs committed since the last count began.
    pub since: i64,
    /// Jobs admitted and not reported yet.
    pub flying: i64,
    /// Raised at every recount; a new book starts from its creation time.
    pub generation: i64,
    /// When the last count was installed (ms).
    pub counted_at: i64,
    /// Until when a caller holds the right to recount (ms).
    pub counting_until: i64,
    /// Tokens left, in thousandths; `None` for a full bucket.
    pub tokens_milli: Option<i64>,
    /// When the bucket was last filled (ms).
    pub filled_at: i64,
    /// Admissions in flight: id → (jobs, expiry in ms).
    pub flight: HashMap<Uuid, (u64, i64)>,
}

impl Book {
    /// A new book at `now`.
    pub fn new(now: i64) -> Book {
        Book {
            generation: now,
            ..Book::default()
        }
    }

    /// Decides `ask` at `now`.
    pub fn admit(&mut self, now: i64, ask: &Ask) -> Answer {
        self.expire(now);
        let recount = self.recount_right(now, ask.recount_ms);
        let answer = |verdict| Answer { verdict, recount };
        let Some(base) = self.base else {
            return answer(Verdict::Uncounted);
        };
        let jobs = i64::try_from(ask.jobs).unwrap_or(i64::MAX);
        let max_queued = i64::try_from(ask.quota.max_queued).unwrap_or(i64::MAX);
        if base
            .saturating_add(self.since)
            .saturating_add(self.flying)
            .saturating_add(jobs)
            > max_queued
        {
            return answer(Verdict::OverQueued);
        }
        let rate = i64::from(ask.quota.submit_rate);
        let full = rate.max(1) * 1000;
        let elapsed = (now - self.filled_at).max(0);
        let tokens = match self.tokens_milli {
            None => full,
            Some(left) => left.saturating_add(elapsed.saturating_mul(rate)).min(full),
        };
        self.filled_at = now;
        self.tokens_milli = Some(tokens);
        if rate == 0 || tokens < 1000 {
            let wait_ms = if rate == 0 {
                1000
            } else {
                (1000 - tokens + rate - 1) / rate
            };
            return answer(Verdict::OverRate { wait_ms });
        }
        self.tokens_milli = Some(tokens - jobs.saturating_mul(1000));
        self.flying += jobs;
        self.flight
            .insert(ask.admission, (ask.jobs, now + ask.ttl_ms));
        answer(Verdict::Admitted)
    }

    /// Records how an admission's write went.
    pub fn settle(&mut self, admission: Uuid, jobs: u64, outcome: Outcome) {
        let jobs = i64::try_from(jobs).unwrap_or(i64::MAX);
        if self.flight.remove(&admission).is_some() {
            self.flying -= jobs;
        }
        // Counted even when the admission had expired or the book was lost: a job counted
        // twice until the next recount is safe, one not counted is not.
        if outcome == Outcome::Committed {
            self.since += jobs;
        }
    }

    /// Installs a count taken after `snapshot`; `false` when another recount overtook it.
    pub fn rebase(&mut self, now: i64, snapshot: Snapshot, queued: u64) -> bool {
        if self.generation != snapshot.generation {
            return false;
        }
        self.base = Some(i64::try_from(queued).unwrap_or(i64::MAX));
        self.since -= snapshot.since;
        self.generation += 1;
        self.counted_at = now;
        self.counting_until = 0;
        true
    }

    /// Forgets admissions past their expiry: their writer died without reporting.
    fn expire(&mut self, now: i64) {
        let mut gone = 0;
        self.flight.retain(|_, (jobs, expiry)| {
            let keep = *expiry > now;
            if !keep {
                gone += i64::try_from(*jobs).unwrap_or(i64::MAX);
            }
            keep
        });
        self.flying -= gone;
    }

    /// Grants the right to recount when the count is missing or old and nobody holds it.
    fn recount_right(&mut self, now: i64, recount_ms: i64) -> Option<Snapshot> {
        let stale = self.base.is_none() || now - self.counted_at >= recount_ms;
        if !stale || self.counting_until > now {
            return None;
        }
        self.counting_until = now + COUNTING_LEASE_MS;
        Some(Snapshot {
            generation: self.generation,
            since: self.since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(jobs: u64, max_queued: u64, submit_rate: u32) -> Ask {
        Ask {
            admission: Uuid::new_v4(),
            jobs,
            quota: Quota {
                max_queued,
                submit_rate,
            },
            ttl_ms: 60_000,
            recount_ms: 1_000,
        }
    }

    fn counted(queued: u64) -> Book {
        let mut book = Book::new(0);
        let first = book.admit(0, &ask(1, 100, 100));
        let snapshot = first.recount.expect("the first caller counts");
        assert!(book.rebase(0, snapshot, queued));
        book
    }

    #[test]
    fn nothing_is_admitted_before_a_count_and_one_caller_counts() {
        let mut book = Book::new(0);
        let first = book.admit(0, &ask(1, 10, 10));
        assert_eq!(first.verdict, Verdict::Uncounted);
        assert!(first.recount.is_some());
        let second = book.admit(1, &ask(1, 10, 10));
        assert_eq!(second.verdict, Verdict::Uncounted);
        assert_eq!(second.recount, None, "the first holds the right");
        let after_lease = book.admit(COUNTING_LEASE_MS + 1, &ask(1, 10, 10));
        assert!(after_lease.recount.is_some(), "a lapsed right passes on");
    }

    #[test]
    fn admissions_in_flight_count_against_the_cap_until_reported() {
        let mut book = counted(8);
        let a = ask(2, 10, 100);
        assert_eq!(book.admit(1, &a).verdict, Verdict::Admitted);
        assert_eq!(book.admit(1, &ask(1, 10, 100)).verdict, Verdict::OverQueued);
        book.settle(a.admission, 2, Outcome::Dropped);
        assert_eq!(book.admit(1, &ask(1, 10, 100)).verdict, Verdict::Admitted);
    }

    #[test]
    fn a_committed_admission_counts_until_a_recount_that_began_after_it() {
        let mut book = counted(0);
        let a = ask(5, 5, 100);
        assert_eq!(book.admit(1, &a).verdict, Verdict::Admitted);
        book.settle(a.admission, 5, Outcome::Committed);
        assert_eq!((book.since, book.flying), (5, 0));
        assert_eq!(book.admit(2, &ask(1, 5, 100)).verdict, Verdict::OverQueued);
        // A recount whose snapshot came after the report: the count includes the jobs.
        let snapshot = book
            .admit(1_001, &ask(1, 5, 100))
            .recount
            .expect("stale count");
        assert!(book.rebase(1_002, snapshot, 5));
        assert_eq!((book.base, book.since), (Some(5), 0));
        // Two of them ran: the next recount lets two more in.
        let snapshot = book
            .admit(2_002, &ask(1, 5, 100))
            .recount
            .expect("stale count");
        assert!(book.rebase(2_003, snapshot, 3));
        assert_eq!(
            book.admit(2_004, &ask(2, 5, 100)).verdict,
            Verdict::Admitted
        );
    }

    #[test]
    fn a_report_after_the_snapshot_is_counted_twice_never_zero_times() {
        let mut book = counted(0);
        let a = ask(3, 10, 100);
        assert_eq!(book.admit(1, &a).verdict, Verdict::Admitted);
        let snapshot = book.admit(1_001, &ask(0, 10, 100)).recount.expect("stale");
        // Committed and reported while the count ran; the count saw it too.
        book.settle(a.admission, 3, Outcome::Committed);
        assert!(book.rebase(1_002, snapshot, 3));
        assert_eq!(book.base.unwrap_or(0) + book.since + book.flying, 6);
    }

    #[test]
    fn an_overtaken_recount_changes_nothing() {
        let mut book = counted(0);
        let first = book.admit(1_001, &ask(0, 10, 100)).recount.expect("stale");
        let second = book
            .admit(1_001 + COUNTING_LEASE_MS, &ask(0, 10, 100))
            .recount
            .expect("the first's right lapsed");
        assert!(book.rebase(7_000, second, 4));
        assert!(!book.rebase(7_001, first, 0), "overtaken");
        assert_eq!(book.base, Some(4));
    }

    #[test]
    fn an_admission_whose_writer_vanished_expires() {
        let mut book = counted(0);
        let mut a = ask(10, 10, 100);
        a.ttl_ms = 500;
        assert_eq!(book.admit(1, &a).verdict, Verdict::Admitted);
        assert_eq!(book.admit(2, &ask(1, 10, 100)).verdict, Verdict::OverQueued);
        assert_eq!(book.admit(600, &ask(1, 10, 100)).verdict, Verdict::Admitted);
        assert_eq!(book.flying, 1);
    }

    #[test]
    fn the_rate_allows_a_second_of_burst_and_a_batch_goes_into_debt() {
        let mut book = counted(0);
        for _ in 0..5 {
            assert_eq!(book.admit(1, &ask(1, 1_000, 5)).verdict, Verdict::Admitted);
        }
        assert_eq!(
            book.admit(1, &ask(1, 1_000, 5)).verdict,
            Verdict::OverRate { wait_ms: 200 }
        );
        assert_eq!(
            book.admit(201, &ask(1, 1_000, 5)).verdict,
            Verdict::Admitted
        );
        let mut debt = counted(0);
        assert_eq!(
            debt.admit(1, &ask(300, 1_000, 100)).verdict,
            Verdict::Admitted
        );
        assert!(matches!(
            debt.admit(1_001, &ask(1, 1_000, 100)).verdict,
            Verdict::OverRate { .. }
        ));
        assert_eq!(
            debt.admit(3_001, &ask(1, 1_000, 100)).verdict,
            Verdict::Admitted
        );
        let mut suspended = counted(0);
        assert!(matches!(
            suspended.admit(1, &ask(1, 1_000, 0)).verdict,
            Verdict::OverRate { .. }
        ));
    }
}
