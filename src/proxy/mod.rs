//! Upstream proxy pools: named pools of HTTP and SOCKS5 proxies, each of a tier ordered by
//! cost, from which an attempt takes one proxy (by the pool's rotation, under its per-proxy
//! cap, never a benched one) and relays every request through it. A job names a pool or a
//! tier with its `proxy` option, or `none`.
//!
//! Pools come from the settings (`PROXY_POOLS`) or from admins through the API, kept sealed
//! in the database; a process reloads those that changed when it uses its pools and its view
//! is older than [`REFRESH_EVERY`] (and at once when a job names a pool it does not know
//! yet), so an idle process asks nothing. Health is kept by each process for the proxies
//! it uses.

mod admin;
mod lease;
mod live;
mod pool;
pub mod spec;
mod stored;
mod view;

use std::sync::Arc;

use crate::engine::egress::Route;
use crate::job::{ErrorKind, JobError};
use crate::secrets::Keyring;

pub use admin::AdminError;
pub use lease::Lease;
pub use live::REFRESH_EVERY;
pub use pool::{Pool, Source};
pub use spec::{PoolDraft, PoolSpec, ProxyEntry, Rotation, TenantProxy, parse_pools};
pub use stored::{PoolIndex, StoredPool};
pub use view::{PoolView, ProxyView, UnreadablePool};

/// What a job's `proxy` option says to go without a proxy.
pub const NONE: &str = crate::job::step::NO_PROXY;

/// What a process's pools are made of.
#[derive(Default)]
pub struct Setup {
    /// The pools of `PROXY_POOLS`.
    pub pools: Vec<PoolSpec>,
    /// `PROXY_TIERS`: tiers from cheapest to dearest.
    pub tiers: Vec<String>,
    /// `TENANT_PROXIES`.
    pub defaults: Vec<TenantProxy>,
    /// Where pools made through the API are kept, and the keys that seal them.
    pub stored: Option<(Arc<dyn PoolIndex>, Arc<Keyring>)>,
}

/// Every pool of this process, cheapest tier first, and the tenants' defaults. Clones share
/// one live set.
#[derive(Clone, Default)]
pub struct Pools {
    shared: Arc<live::Shared>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools")
            .field("pools", &self.live().pools.len())
            .finish_non_exhaustive()
    }
}

impl Pools {
    /// The pools of `setup`: those of the settings and, with a store, those stored (loaded
    /// now, and again as they are used: see [`Pools::fresh`]). An error names a tenant's
    /// default that names no pool or tier.
    pub async fn open(setup: Setup) -> Result<Pools, String> {
        let pools = Pools {
            shared: Arc::new(live::Shared::new(setup)),
        };
        if pools.shared.has_store()
            && let Err(e) = pools.shared.refresh().await
        {
            tracing::warn!(error = %e, "cannot load the proxy pools made through the API yet");
        }
        for (tenant, choice) in &pools.shared.defaults {
            if choice != NONE && pools.named(choice).is_none() {
                return Err(format!(
                    "TENANT_PROXIES: {tenant}={choice}: no pool or tier of PROXY_POOLS (or made \
                     through the API) is named {choice:?}"
                ));
            }
        }
        Ok(pools)
    }

    /// Brings the pools made through the API up to date if this process's view of them is
    /// older than [`REFRESH_EVERY`]: what a job about to route and an API read call first.
    pub async fn fresh(&self) {
        self.shared.fresh().await;
    }

    fn live(&self) -> Arc<live::Live> {
        self.shared.live()
    }

    /// The pool or tier a tenant's jobs use when they name none.
    pub fn default_for(&self, tenant: &str) -> Option<&str> {
        self.shared.defaults.get(tenant).map(String::as_str)
    }

    /// Whether any pool is known.
    pub fn is_empty(&self) -> bool {
        self.live().pools.is_empty()
    }

    /// The pool a job's `proxy` names: a pool by its name, else the first pool of the tier.
    pub fn named(&self, name: &str) -> Option<Arc<Pool>> {
        self.live().named(name)
    }

    /// Every tier, cheapest first: the rungs `auto` may climb into after the direct ones.
    pub fn tiers(&self) -> Vec<String> {
        self.live().tiers()
    }

    /// The route of a step of `auto`'s ladder through `tier` (the first pool of that tier),
    /// or direct for none.
    pub async fn route_tier(
        &self,
        tier: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<Route, JobError> {
        let Some(tier) = tier.filter(|t| *t != NONE) else {
            return Ok(Route::Direct);
        };
        let missing =
            || format!("no proxy pool of tier {tier:?} on this worker (a domain policy names it)");
        via(self.live().first_of_tier(tier), deadline, missing).await
    }

    /// The pool a job's `proxy` names (a pool or a tier): a name this process does not know
    /// sends it to the store first, so a pool made a moment ago through another process is
    /// found.
    async fn find(&self, choice: &str) -> Option<Arc<Pool>> {
        self.fresh().await;
        if let Some(pool) = self.named(choice) {
            return Some(pool);
        }
        self.shared.catch_up().await;
        self.named(choice)
    }

    /// Whether a job may name `choice` (`none`, a pool or a tier).
    pub async fn knows(&self, choice: &str) -> bool {
        choice == NONE || self.find(choice).await.is_some()
    }

    /// The route of an attempt whose `proxy` option is `choice`: direct for none, else a
    /// proxy of the pool it names, waiting until `deadline` for one to be free.
    pub async fn route(
        &self,
        choice: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<Route, JobError> {
        let Some(choice) = choice.filter(|c| *c != NONE) else {
            return Ok(Route::Direct);
        };
        let missing = || {
            format!(
                "proxy: no pool or tier is named {choice:?} (deleted since the job was submitted?)"
            )
        };
        via(self.find(choice).await, deadline, missing).await
    }

    /// What the API shows of every pool.
    pub fn views(&self) -> Vec<PoolView> {
        let live = self.live();
        live.pools.iter().map(|pool| live.view(pool)).collect()
    }

    /// The pools made through the API that this process cannot open, and why.
    pub fn unreadable(&self) -> Vec<UnreadablePool> {
        self.live().unreadable.values().cloned().collect()
    }
}

/// The route through a proxy of `pool`, or an error saying it is `missing` on this worker.
async fn via(
    pool: Option<Arc<Pool>>,
    deadline: tokio::time::Instant,
    missing: impl FnOnce() -> String,
) -> Result<Route, JobError> {
    let pool = pool.ok_or_else(|| JobError::new(ErrorKind::InvalidPayload, missing()))?;
    Ok(Route::Via(Arc::new(take(&pool, deadline).await?)))
}

/// Takes a proxy of `pool`, waiting for one to free up or come back until `deadline`.
async fn take(pool: &Arc<Pool>, deadline: tokio::time::Instant) -> Result<Lease, JobError> {
    loop {
        let freed = pool.freed.notified();
        if let Some(at) = pool.take(None) {
            return Ok(Lease::new(pool.clone(), at));
        }
        // Woken when a proxy is given back, or when the first bench ends.
        let wake = pool
            .next_return()
            .map(tokio::time::Instant::from_std)
            .filter(|at| *at > tokio::time::Instant::now())
            .unwrap_or(deadline)
            .min(deadline);
        tokio::select! {
            () = freed => {}
            () = tokio::time::sleep_until(wake) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(JobError::new(
                ErrorKind::Navigation,
                format!(
                    "no proxy of pool {} was free or healthy before the attempt's timeout",
                    pool.name()
                ),
            )
            .retryable(true));
        }
    }
}
