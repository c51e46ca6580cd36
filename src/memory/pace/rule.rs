//! The pacing rule, as a pure function of one domain's state and the clock. [`super::LocalPacer`]
//! runs it in process; `admit.lua` and `throttle.lua` are the same rule in Redis (the pacer
//! conformance tests hold both to it).

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

/// After how long without a throttle the learned rate climbs one step.
pub const CLEAN_PERIOD_MS: i64 = 5_000;
/// How much of the ceiling one step climbs.
pub const STEP_FRACTION: i64 = 10;
/// The lowest learned rate, in thousandths of a request per second (one request per 100 s).
pub const FLOOR_MILLI: i64 = 10;
/// The backoff when a throttle names no `Retry-After`.
pub const DEFAULT_BACKOFF_MS: i64 = 1_000;
/// The longest backoff a throttle may set (an hour).
pub const MAX_BACKOFF_MS: i64 = 3_600_000;
/// The expected hold of a slot when nothing is known of the domain's latency.
pub const DEFAULT_HOLD_MS: i64 = 250;
/// How early a job may come back for its reserved start and still take it (the scheduler
/// rings due jobs in rounds, so a job is rarely back at the very millisecond).
pub const RESERVATION_EARLY_MS: i64 = 50;

/// What one admission must respect (the domain's policy, with defaults applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Slots at once.
    pub cap: u32,
    /// The configured rate, in thousandths of a request per second; 0 = unlimited.
    pub rate_milli: i64,
    /// Requests above the rate that may go at once.
    pub burst: u32,
    /// The least time between two starts, in milliseconds.
    pub min_delay_ms: i64,
    /// How long a slot is usually held (the domain's typical latency).
    pub hold_ms: i64,
    /// The database's copy of the learned pace, used when the pacer has no state for the
    /// domain (a new or flushed Redis).
    pub seed: Seed,
}

/// The learned pace as the database keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seed {
    /// The learned rate, thousandths of a request per second; 0 = none.
    pub learned_milli: i64,
    /// Until when (Unix ms) every worker backs off.
    pub backoff_until_ms: i64,
}

/// A throttle report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// The `Retry-After` the site named, in milliseconds.
    pub retry_after_ms: Option<i64>,
}

/// Whether a job may start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// It may: it now holds a slot.
    Admitted,
    /// It may: it held a slot already (an attempt after its worker died, or the job running
    /// elsewhere; so whoever asked must not give that slot back unless it runs the job).
    Holding,
    /// Not now: come back after `wait_ms`. A job held back by the rate has its start
    /// reserved: the rate's emission for it is booked now, and it is admitted when it comes
    /// back (a backlog drains at the rate, not in a scramble of retries). Other refusals
    /// promise each deferred job its own time, so a backlog comes back spread out.
    Deferred {
        /// How long to wait.
        wait_ms: i64,
        /// `backoff`, `cap` or `rate`.
        reason: &'static str,
    },
}

/// One domain's pace, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PaceView {
    /// Slots held now.
    pub in_flight: u32,
    /// Until when every worker backs off (Unix ms), when in the future.
    pub backoff_until_ms: Option<i64>,
    /// The learned rate (requests per second) when a throttle lowered it.
    pub learned_rate: Option<f64>,
}

/// The rate a domain without one was running at when it throttled: what its cap allows at
/// its typical latency (at least one request per second).
fn unlimited_rate(limits: &Limits) -> i64 {
    let per_slot = 1_000_000 / limits.hold_ms.max(1);
    (per_slot * i64::from(limits.cap.max(1))).max(1_000)
}

/// One domain's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    tat: i64,
    horizon: i64,
    backoff_until: i64,
    learned: i64,
    ceiling: i64,
    clean_since: i64,
    slots: HashMap<Uuid, i64>,
    reserved: HashMap<Uuid, i64>,
}

impl State {
    /// A state seeded from the database's copy.
    pub fn seeded(seed: Seed) -> State {
        State {
            learned: seed.learned_milli,
            backoff_until: seed.backoff_until_ms,
            clean_since: seed.backoff_until_ms,
            ..State::default()
        }
    }

    /// Asks to start `job` at `now` (Unix ms), holding its slot until `now + lease_ms`.
    pub fn admit(&mut self, now: i64, job: Uuid, lease_ms: i64, limits: &Limits) -> Admission {
        self.slots.retain(|_, until| *until > now);
        if let Some(until) = self.slots.get_mut(&job) {
            *until = now + lease_ms;
            return Admission::Holding;
        }
        self.restore(now);
        let interval = self.interval(limits);
        let tolerance = i64::from(limits.burst) * interval;
        let cap = i64::from(limits.cap.max(1));
        // Bookings matter only while there is a rate to book against.
        let reservation = (interval > 0)
            .then(|| self.reserved.get(&job).copied())
            .flatten();
        let refused = if self.backoff_until > now {
            Some((self.backoff_until, "backoff"))
        } else if self.slots.len() as i64 >= cap {
            Some((now + limits.hold_ms.max(1) / cap, "cap"))
        } else if let Some(at) = reservation {
            // Booked already: due (or nearly) is admitted without booking again.
            (at > now + RESERVATION_EARLY_MS).then_some((at, "rate"))
        } else if interval > 0 && self.tat.max(now) - now > tolerance {
            let at = self.tat - tolerance;
            self.tat += interval;
            self.reserved.insert(job, at);
            return Admission::Deferred {
                wait_ms: (at - now).max(1),
                reason: "rate",
            };
        } else {
            None
        };
        if let Some((at, "rate")) = refused {
            return Admission::Deferred {
                wait_ms: (at - now).max(1),
                reason: "rate",
            };
        }
        if let Some((earliest, reason)) = refused {
            let spacing = interval.max(limits.hold_ms.max(1) / cap).max(1);
            let promise = if self.horizon > now {
                earliest.max(self.horizon + spacing)
            } else {
                earliest
            };
            self.horizon = promise;
            return Admission::Deferred {
                wait_ms: (promise - now).max(1),
                reason,
            };
        }
        self.slots.insert(job, now + lease_ms);
        if self.reserved.remove(&job).is_none() && interval > 0 {
            self.tat = self.tat.max(now) + interval;
        }
        Admission::Admitted
    }

    /// The time between two starts the limits and the learned rate allow (0: no rate).
    fn interval(&self, limits: &Limits) -> i64 {
        let rate = match (limits.rate_milli, self.learned) {
            (0, learned) => learned,
            (configured, 0) => configured,
            (configured, learned) => configured.min(learned),
        };
        let by_rate = if rate > 0 { 1_000_000 / rate } else { 0 };
        by_rate.max(limits.min_delay_ms)
    }

    /// Additive increase: one step towards the ceiling per clean period.
    fn restore(&mut self, now: i64) {
        if self.learned > 0 && now - self.clean_since >= CLEAN_PERIOD_MS {
            self.learned += (self.ceiling / STEP_FRACTION).max(FLOOR_MILLI);
            self.clean_since = now;
            if self.learned >= self.ceiling {
                self.learned = 0;
            }
        }
    }

    /// Records a throttle at `now`: back off, halve the rate (multiplicative decrease).
    pub fn throttled(&mut self, now: i64, throttle: &Throttle, limits: &Limits) {
        let wait = throttle
            .retry_after_ms
            .unwrap_or(DEFAULT_BACKOFF_MS)
            .clamp(0, MAX_BACKOFF_MS);
        self.backoff_until = self.backoff_until.max(now + wait);
        let current = if self.learned > 0 {
            self.learned
        } else if limits.rate_milli > 0 {
            limits.rate_milli
        } else {
            unlimited_rate(limits)
        };
        self.ceiling = if limits.rate_milli > 0 {
            limits.rate_milli
        } else {
            self.ceiling.max(current)
        };
        self.learned = (current / 2).max(FLOOR_MILLI);
        self.clean_since = self.backoff_until;
        // Bookings made at the old rate are void: those jobs book again when they are back.
        self.reserved.clear();
        self.tat = self.tat.max(self.backoff_until);
        self.horizon = self.horizon.max(self.backoff_until);
    }

    /// Extends `job`'s slot.
    pub fn renew(&mut self, job: Uuid, until: i64) {
        if let Some(slot) = self.slots.get_mut(&job) {
            *slot = until;
        }
    }

    /// Gives `job`'s slot back.
    pub fn release(&mut self, job: Uuid) {
        self.slots.remove(&job);
    }

    /// The state as the API shows it.
    pub fn view(&self, now: i64) -> PaceView {
        PaceView {
            in_flight: self.slots.values().filter(|until| **until > now).count() as u32,
            backoff_until_ms: (self.backoff_until > now).then_some(self.backoff_until),
            learned_rate: (self.learned > 0).then(|| self.learned as f64 / 1000.0),
        }
    }

    /// The learned pace, for the database copy.
    pub fn seed(&self) -> Seed {
        Seed {
            learned_milli: self.learned,
            backoff_until_ms: self.backoff_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cap: u32, rate: f64, burst: u32) -> Limits {
        Limits {
            cap,
            rate_milli: (rate * 1000.0) as i64,
            burst,
            min_delay_ms: 0,
            hold_ms: 100,
            seed: Seed::default(),
        }
    }

    fn job(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn the_cap_holds_and_a_released_or_expired_slot_frees() {
        let mut state = State::default();
        let l = limits(2, 0.0, 1);
        assert_eq!(state.admit(0, job(1), 1_000, &l), Admission::Admitted);
        assert_eq!(state.admit(0, job(2), 1_000, &l), Admission::Admitted);
        assert!(matches!(
            state.admit(0, job(3), 1_000, &l),
            Admission::Deferred { reason: "cap", .. }
        ));
        state.release(job(1));
        assert_eq!(state.admit(1, job(3), 1_000, &l), Admission::Admitted);
        // job 2's lease runs out at 1000: its slot is free again.
        assert_eq!(state.admit(1_000, job(4), 1_000, &l), Admission::Admitted);
    }

    #[test]
    fn the_rate_allows_the_burst_then_spaces_starts() {
        let mut state = State::default();
        let l = limits(100, 5.0, 1);
        let mut admitted = 0;
        for n in 0..10 {
            if state.admit(0, job(n), 60_000, &l) == Admission::Admitted {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 2, "one plus the burst at once");
        let Admission::Deferred { wait_ms, .. } = state.admit(0, job(99), 60_000, &l) else {
            panic!("deferred");
        };
        assert!(wait_ms >= 200, "promised after the earlier ones: {wait_ms}");
    }

    #[test]
    fn a_reserved_start_is_admitted_when_the_job_comes_back() {
        let mut state = State::default();
        let l = limits(100, 5.0, 0);
        assert_eq!(state.admit(0, job(1), 60_000, &l), Admission::Admitted);
        let waits: Vec<i64> = (2..6)
            .map(|n| match state.admit(0, job(n), 60_000, &l) {
                Admission::Deferred { wait_ms, .. } => wait_ms,
                other => panic!("over the rate: {other:?}"),
            })
            .collect();
        assert_eq!(waits, vec![200, 400, 600, 800], "booked one interval apart");
        assert!(matches!(
            state.admit(100, job(3), 60_000, &l),
            Admission::Deferred { wait_ms: 300, .. }
        ));
        assert_eq!(state.admit(390, job(3), 60_000, &l), Admission::Admitted);
        assert_eq!(state.admit(200, job(2), 60_000, &l), Admission::Admitted);
        let Admission::Deferred { wait_ms, .. } = state.admit(200, job(9), 60_000, &l) else {
            panic!("the next free start is after every booking");
        };
        assert_eq!(wait_ms, 800);
    }

    #[test]
    fn deferred_jobs_are_promised_distinct_times() {
        let mut state = State::default();
        let l = limits(1, 0.0, 0);
        assert_eq!(state.admit(0, job(0), 60_000, &l), Admission::Admitted);
        let waits: Vec<i64> = (1..5)
            .map(|n| match state.admit(0, job(n), 60_000, &l) {
                Admission::Deferred { wait_ms, .. } => wait_ms,
                other => panic!("over the cap: {other:?}"),
            })
            .collect();
        assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
    }

    #[test]
    fn a_throttle_backs_off_halves_the_rate_and_a_clean_period_restores_it() {
        let mut state = State::default();
        let l = limits(100, 4.0, 0);
        state.throttled(
            0,
            &Throttle {
                retry_after_ms: Some(2_000),
            },
            &l,
        );
        assert!(matches!(
            state.admit(1_000, job(1), 60_000, &l),
            Admission::Deferred {
                reason: "backoff",
                ..
            }
        ));
        assert_eq!(state.view(1_000).learned_rate, Some(2.0));
        assert_eq!(state.admit(2_000, job(2), 60_000, &l), Admission::Admitted);
        let mut now = 2_000;
        for _ in 0..30 {
            now += CLEAN_PERIOD_MS;
            state.admit(now, Uuid::new_v4(), 1, &l);
        }
        assert_eq!(
            state.view(now).learned_rate,
            None,
            "back to the configured rate"
        );
    }
}
