//! One pool's live state: which proxy each attempt takes (by rotation, under the per-proxy
//! cap, never a benched one), and each proxy's health. A proxy that fails is benched, its
//! bench doubling with each failure in a row (1 s up to a minute); when the bench ends it
//! is tried again, and one connection it carries ends its run of failures.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::spec::{PoolSpec, Rotation};
use crate::engine::egress::Upstream;

/// The first bench of a failing proxy.
pub const FIRST_BENCH: Duration = Duration::from_secs(1);
/// The longest bench.
pub const LONGEST_BENCH: Duration = Duration::from_secs(60);
/// Distinct sites that, blocking a proxy in a row (no page got through it between), bench
/// it: its address is likely burned. One site alone never does: that site may block the whole
/// tier, which the ladder learns instead.
pub const BLOCKED_SITES_TO_BENCH: usize = 3;

/// One proxy's health and use.
#[derive(Debug, Clone, Default)]
pub(super) struct Health {
    /// Attempts it carries now.
    pub in_flight: u32,
    /// Failures in a row.
    pub failures: u32,
    /// Until when it is not used.
    pub benched_until: Option<Instant>,
    /// Attempts it was given, ever.
    pub attempts: u64,
    /// Connections it carried, ever.
    pub connections: u64,
    /// Failures, ever.
    pub failed: u64,
    /// When an attempt last took it.
    pub last_used: Option<Instant>,
    /// Why it last failed (never a credential: the egress's words).
    pub last_error: Option<String>,
    /// The sites that blocked it since a page last got through it (distinct, in order).
    pub blocked_at: Vec<String>,
}

impl Health {
    fn benched(&self, now: Instant) -> bool {
        self.benched_until.is_some_and(|until| until > now)
    }
}

/// Where a pool was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `PROXY_POOLS`: changed only by a restart with other settings.
    Settings,
    /// Through the API: kept (sealed) in the database, changed by an admin.
    Api,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Settings => "settings",
            Source::Api => "api",
        })
    }
}

/// A pool and the health of its proxies.
#[derive(Debug)]
pub struct Pool {
    pub(super) spec: PoolSpec,
    pub(super) source: Source,
    pub(super) health: Mutex<Vec<Health>>,
    next: Mutex<usize>,
    /// Rung when a proxy frees up or comes back.
    pub(super) freed: Notify,
}

impl Pool {
    /// A pool with every proxy healthy and idle.
    pub fn new(spec: PoolSpec, source: Source) -> Pool {
        let health = vec![Health::default(); spec.proxies.len()];
        Pool {
            spec,
            source,
            health: Mutex::new(health),
            next: Mutex::new(0),
            freed: Notify::new(),
        }
    }

    /// The pool `spec` replacing `previous` (an admin changed it): each proxy still there,
    /// unchanged, keeps its health and use (its bench too); the attempts `previous` carries
    /// give their proxies back to it.
    pub fn after(spec: PoolSpec, previous: &Pool) -> Pool {
        let pool = Pool::new(spec, previous.source);
        let (Ok(before), Ok(mut after)) = (previous.health.lock(), pool.health.lock()) else {
            return pool;
        };
        for (proxy, health) in pool.spec.proxies.iter().zip(after.iter_mut()) {
            let kept = previous.spec.proxies.iter().position(|p| p == proxy);
            if let Some(h) = kept.and_then(|at| before.get(at)) {
                *health = Health {
                    in_flight: 0,
                    ..h.clone()
                };
            }
        }
        drop((before, after));
        pool
    }

    /// What it was made from.
    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The pool's tier.
    pub fn tier(&self) -> &str {
        &self.spec.tier
    }

    /// Takes a proxy for an attempt now: the rotation's choice among those neither benched
    /// nor at the cap. `None` when none is free.
    pub(super) fn take(&self, avoid: Option<usize>) -> Option<usize> {
        let now = Instant::now();
        let mut health = self.health.lock().ok()?;
        let n = health.len();
        let cap = self.spec.max_per_proxy;
        let free =
            |at: usize, h: &Health| h.in_flight < cap && !h.benched(now) && Some(at) != avoid;
        let chosen = match self.spec.rotation {
            Rotation::RoundRobin => {
                let mut next = self.next.lock().ok()?;
                let found = (0..n)
                    .map(|step| (*next + step) % n)
                    .find(|at| free(*at, &health[*at]));
                if let Some(at) = found {
                    *next = (at + 1) % n;
                }
                found
            }
            Rotation::LeastRecentlyUsed => (0..n)
                .filter(|at| free(*at, &health[*at]))
                .min_by_key(|at| health[*at].last_used),
        }?;
        let h = &mut health[chosen];
        h.in_flight += 1;
        h.attempts += 1;
        h.last_used = Some(now);
        Some(chosen)
    }

    /// Gives a proxy back.
    pub(super) fn give_back(&self, at: usize) {
        if let Ok(mut health) = self.health.lock()
            && let Some(h) = health.get_mut(at)
        {
            h.in_flight = h.in_flight.saturating_sub(1);
        }
        self.freed.notify_waiters();
    }

    /// The proxy at `at`.
    pub(super) fn upstream(&self, at: usize) -> Option<&Upstream> {
        self.spec.proxies.get(at)
    }

    /// Benches the proxy at `at` after a failure.
    pub(super) fn failed(&self, at: usize, why: &str) {
        if let Ok(mut health) = self.health.lock()
            && let Some(h) = health.get_mut(at)
        {
            h.failures = h.failures.saturating_add(1);
            h.failed += 1;
            let doublings = h.failures.saturating_sub(1).min(6);
            let bench = (FIRST_BENCH * 2u32.pow(doublings)).min(LONGEST_BENCH);
            h.benched_until = Some(Instant::now() + bench);
            h.last_error = Some(why.to_owned());
            tracing::warn!(
                pool = %self.spec.name,
                proxy = %self.spec.proxies[at].name,
                bench_ms = bench.as_millis() as u64,
                "proxy benched: {why}"
            );
        }
    }

    /// Clears the proxy's run of failures after it carried a connection.
    pub(super) fn worked(&self, at: usize) {
        if let Ok(mut health) = self.health.lock()
            && let Some(h) = health.get_mut(at)
        {
            h.connections += 1;
            if h.failures > 0 {
                tracing::info!(pool = %self.spec.name, proxy = %self.spec.proxies[at].name, "proxy works again");
            }
            h.failures = 0;
            h.benched_until = None;
        }
    }

    /// Notes what a site made of a page fetched through the proxy at `at`; `true` when that
    /// benched it (the sites that blocked it in a row reached [`BLOCKED_SITES_TO_BENCH`]).
    pub(super) fn judged(&self, at: usize, host: &str, blocked: bool) -> bool {
        let burned = {
            let Ok(mut health) = self.health.lock() else {
                return false;
            };
            let Some(h) = health.get_mut(at) else {
                return false;
            };
            if !blocked {
                h.blocked_at.clear();
                return false;
            }
            if !h.blocked_at.iter().any(|seen| seen == host) {
                h.blocked_at.push(host.to_owned());
            }
            let burned = h.blocked_at.len() >= BLOCKED_SITES_TO_BENCH;
            if burned {
                h.blocked_at.clear();
            }
            burned
        };
        if burned {
            let why = format!("blocked at {BLOCKED_SITES_TO_BENCH} sites in a row");
            self.failed(at, &why);
        }
        burned
    }

    /// When the next bench ends (to wait for when every proxy is benched).
    pub(super) fn next_return(&self) -> Option<Instant> {
        let health = self.health.lock().ok()?;
        health.iter().filter_map(|h| h.benched_until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::spec::parse_pools;

    fn pool(rotation: &str, cap: u32) -> Pool {
        let text = format!(
            r#"[{{"name": "p", "tier": "t", "rotation": "{rotation}", "max_per_proxy": {cap},
                "proxies": ["http://a:1", "http://b:1", "http://c:1"]}}]"#
        );
        Pool::new(
            parse_pools(&text).expect("valid").remove(0),
            Source::Settings,
        )
    }

    #[test]
    fn round_robin_skips_benched_and_full_proxies() {
        let pool = pool("round_robin", 1);
        assert_eq!(pool.take(None), Some(0));
        pool.give_back(0);
        assert_eq!(pool.take(None), Some(1));
        pool.failed(2, "down");
        // 1 is full (cap 1), 2 benched: 0 is next.
        assert_eq!(pool.take(None), Some(0));
        assert_eq!(pool.take(None), None, "all full or benched");
        pool.worked(2);
        assert_eq!(pool.take(None), Some(2), "back once it worked");
    }

    #[test]
    fn least_recently_used_takes_the_oldest_and_benches_double() {
        let pool = pool("least_recently_used", 8);
        let order: Vec<_> = (0..3).filter_map(|_| pool.take(None)).collect();
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(pool.take(None), Some(0));
        pool.failed(1, "down");
        pool.failed(1, "down");
        let until = pool.health.lock().expect("lock")[1]
            .benched_until
            .expect("benched");
        assert!(
            until > Instant::now() + FIRST_BENCH,
            "the second failure benches longer"
        );
        assert_eq!(pool.take(Some(2)), Some(0), "avoided 2, benched 1");
    }

    #[test]
    fn a_proxy_blocked_at_three_sites_in_a_row_is_benched() {
        let pool = pool("round_robin", 8);
        for _ in 0..5 {
            assert!(!pool.judged(0, "one.example", true), "one site alone never");
        }
        assert!(!pool.judged(0, "two.example", true));
        assert!(
            !pool.judged(0, "three.example", false),
            "a page got through"
        );
        assert!(!pool.judged(0, "three.example", true));
        assert!(!pool.judged(0, "four.example", true));
        assert!(pool.judged(0, "five.example", true), "three sites in a row");
        let health = pool.health.lock().expect("lock");
        assert!(health[0].benched(Instant::now()));
        let why = health[0].last_error.as_deref().unwrap_or_default();
        assert!(why.contains("blocked at 3 sites"), "{why}");
    }
}
