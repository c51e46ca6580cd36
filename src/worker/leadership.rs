//! Holding the scheduler's leadership from this process: bid while another leads, renew a
//! third of the way through the lease, and step down as soon as a renewal fails or this
//! process's own clock says the lease may have run out (it was frozen, or cut off from the
//! database). Every leader-only change is also fenced by the term in the database, so even a
//! leader that acts on a stale belief changes nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use crate::store::{JobStore, Term};

/// The leadership as this process holds it.
#[derive(Debug, Clone, Copy)]
struct Held {
    term: Term,
    /// Until when the lease surely runs, by this process's clock (measured from before the
    /// statement that took or renewed it).
    valid_until: Instant,
    /// When to renew it.
    renew_at: Instant,
}

/// This process's claim on the scheduler's leadership.
pub struct Leadership {
    store: Arc<dyn JobStore>,
    holder: String,
    lease: Duration,
    held: Option<Held>,
}

impl Leadership {
    /// Not leading yet; leases of `lease` are taken under the name `holder`.
    pub fn new(store: Arc<dyn JobStore>, holder: String, lease: Duration) -> Leadership {
        Leadership {
            store,
            holder,
            lease,
            held: None,
        }
    }

    /// The term to act under now, or `None` when another process leads. Renews or bids as
    /// needed; a renewal that does not answer within a third of the lease counts as failed.
    pub async fn current(&mut self) -> Option<Term> {
        let now = Instant::now();
        let Some(held) = self.held else {
            return self.bid().await;
        };
        if now < held.renew_at {
            return Some(held.term);
        }
        let renewal = self.store.lead(&self.holder, self.lease, Some(held.term));
        match tokio::time::timeout(self.lease / 3, renewal).await {
            Ok(Ok(Some(term))) => {
                self.held = Some(self.fresh(term, now));
                Some(term)
            }
            Ok(Ok(None)) => {
                warn!(
                    term = held.term.0,
                    "lost the scheduler leadership (its lease ran out); stepping down"
                );
                self.held = None;
                None
            }
            Ok(Err(_)) | Err(_) if Instant::now() < held.valid_until => {
                // Still surely ours: act, and try to renew again at the next tick.
                Some(held.term)
            }
            Ok(Err(_)) | Err(_) => {
                warn!(
                    term = held.term.0,
                    "cannot renew the scheduler leadership; stepping down"
                );
                self.held = None;
                None
            }
        }
    }

    /// Takes the leadership if nobody holds an unexpired lease.
    async fn bid(&mut self) -> Option<Term> {
        let now = Instant::now();
        let bid = self.store.lead(&self.holder, self.lease, None);
        match tokio::time::timeout(self.lease / 3, bid).await {
            Ok(Ok(Some(term))) => {
                info!(
                    term = term.0,
                    "this process now runs the scheduler, reaper and reconciler"
                );
                self.held = Some(self.fresh(term, now));
                Some(term)
            }
            _ => None,
        }
    }

    fn fresh(&self, term: Term, asked_at: Instant) -> Held {
        Held {
            term,
            valid_until: asked_at + self.lease,
            renew_at: asked_at + self.lease / 3,
        }
    }

    /// Gives the leadership up, so another process takes over at once.
    pub async fn resign(&mut self) {
        if let Some(held) = self.held.take()
            && let Err(e) = self.store.resign(&self.holder, held.term).await
        {
            warn!(error = %e, "could not give up the scheduler leadership; it expires by itself");
        }
    }
}
