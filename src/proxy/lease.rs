//! An attempt's hold on one proxy of a pool: the relay its egress asks. It keeps the same
//! proxy for every request of the attempt, and moves to another only when that one fails.

use std::sync::{Arc, Mutex};

use super::pool::Pool;
use crate::engine::egress::{Relay, Upstream};

/// One attempt's proxy; given back to the pool when dropped.
#[derive(Debug)]
pub struct Lease {
    pool: Arc<Pool>,
    held: Mutex<Option<usize>>,
}

impl Lease {
    pub(super) fn new(pool: Arc<Pool>, at: usize) -> Lease {
        Lease {
            pool,
            held: Mutex::new(Some(at)),
        }
    }

    fn held(&self) -> Option<usize> {
        self.held.lock().ok().and_then(|held| *held)
    }

    /// Which proxy `upstream` is (by name: a pool's names are unique).
    fn index_of(&self, upstream: &Upstream) -> Option<usize> {
        self.pool
            .spec
            .proxies
            .iter()
            .position(|p| p.name == upstream.name)
    }
}

impl Relay for Lease {
    fn tier(&self) -> &str {
        self.pool.tier()
    }

    fn current(&self) -> Option<Upstream> {
        let mut held = self.held.lock().ok()?;
        if held.is_none() {
            *held = self.pool.take(None);
        }
        held.and_then(|at| self.pool.upstream(at).cloned())
    }

    fn failed(&self, upstream: &Upstream, why: &str) {
        let Some(at) = self.index_of(upstream) else {
            return;
        };
        self.pool.failed(at, why);
        if let Ok(mut held) = self.held.lock()
            && *held == Some(at)
        {
            self.pool.give_back(at);
            // Another proxy, not the one that just failed.
            *held = self.pool.take(Some(at));
        }
    }

    fn worked(&self, upstream: &Upstream) {
        if let Some(at) = self.index_of(upstream) {
            self.pool.worked(at);
        }
    }

    fn judged(&self, host: &str, blocked: bool) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        let Some(at) = *held else {
            return;
        };
        if self.pool.judged(at, host, blocked) {
            // Burned: the rest of the attempt goes through another proxy.
            self.pool.give_back(at);
            *held = self.pool.take(Some(at));
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(at) = self.held() {
            self.pool.give_back(at);
        }
    }
}
