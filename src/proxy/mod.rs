//! Upstream proxy pools: named pools of HTTP and SOCKS5 proxies, each of a tier ordered by
//! cost, from which an attempt takes one proxy (by the pool's rotation, under its per-proxy
//! cap, never a benched one) and relays every request through it. A job names a pool or a
//! tier with its `proxy` option, or `none`.
//!
//! Health is kept by each process for the proxies it uses.

mod lease;
mod pool;
pub mod spec;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::egress::Route;
use crate::job::{ErrorKind, JobError};

pub use lease::Lease;
pub use pool::Pool;
pub use spec::{PoolSpec, Rotation, TenantProxy, parse_pools};
pub use view::{PoolView, ProxyView};

/// What a job's `proxy` option says to go without a proxy.
pub const NONE: &str = crate::job::step::NO_PROXY;

/// Every pool of this process, cheapest tier first, and the tenants' defaults.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    pools: Arc<Vec<Arc<Pool>>>,
    /// The pool or tier (or `none`) each tenant's jobs use when they name none.
    defaults: Arc<BTreeMap<String, String>>,
}

impl Pools {
    /// The pools configured, ordered by `tiers` (cheapest first; tiers not named there come
    /// after, in the order they first appear).
    pub fn new(specs: Vec<PoolSpec>, tiers: &[String]) -> Pools {
        let rank = |tier: &str| tiers.iter().position(|t| t == tier).unwrap_or(tiers.len());
        let mut pools: Vec<Arc<Pool>> = specs.into_iter().map(|s| Arc::new(Pool::new(s))).collect();
        pools.sort_by_key(|pool| rank(pool.tier()));
        Pools {
            pools: Arc::new(pools),
            defaults: Arc::default(),
        }
    }

    /// These pools with each tenant's default (`TENANT_PROXIES`); an error names a default
    /// that names no pool or tier.
    pub fn with_defaults(self, defaults: &[TenantProxy]) -> Result<Pools, String> {
        let mut kept = BTreeMap::new();
        for default in defaults {
            if !self.knows(&default.choice) {
                return Err(format!(
                    "TENANT_PROXIES: {}={}: no pool or tier of PROXY_POOLS is named {:?}",
                    default.tenant, default.choice, default.choice
                ));
            }
            kept.insert(default.tenant.clone(), default.choice.clone());
        }
        Ok(Pools {
            defaults: Arc::new(kept),
            ..self
        })
    }

    /// The pool or tier a tenant's jobs use when they name none.
    pub fn default_for(&self, tenant: &str) -> Option<&str> {
        self.defaults.get(tenant).map(String::as_str)
    }

    /// Whether any pool is configured.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// The pool a job's `proxy` names: a pool by its name, else the first pool of the tier.
    pub fn named(&self, name: &str) -> Option<&Arc<Pool>> {
        let by_name = self.pools.iter().find(|pool| pool.name() == name);
        by_name.or_else(|| self.first_of_tier(name))
    }

    /// The cheapest-ranked pool of `tier` (the first configured).
    fn first_of_tier(&self, tier: &str) -> Option<&Arc<Pool>> {
        self.pools.iter().find(|pool| pool.tier() == tier)
    }

    /// Every tier, cheapest first: the rungs `auto` may climb into after the direct ones.
    pub fn tiers(&self) -> Vec<String> {
        let mut tiers: Vec<String> = Vec::new();
        for pool in self.pools.iter() {
            if !tiers.iter().any(|t| t == pool.tier()) {
                tiers.push(pool.tier().to_owned());
            }
        }
        tiers
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
        via(self.first_of_tier(tier), deadline, missing).await
    }

    /// Whether a job may name `choice` (`none`, a pool or a tier).
    pub fn knows(&self, choice: &str) -> bool {
        choice == NONE || self.named(choice).is_some()
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
        let missing = || format!("proxy: no pool or tier named {choice:?} on this worker");
        via(self.named(choice), deadline, missing).await
    }

    /// What the API shows of every pool.
    pub fn views(&self) -> Vec<PoolView> {
        self.pools.iter().map(|pool| PoolView::of(pool)).collect()
    }
}

/// The route through a proxy of `pool`, or an error saying it is `missing` on this worker.
async fn via(
    pool: Option<&Arc<Pool>>,
    deadline: tokio::time::Instant,
    missing: impl FnOnce() -> String,
) -> Result<Route, JobError> {
    let pool = pool.ok_or_else(|| JobError::new(ErrorKind::InvalidPayload, missing()))?;
    Ok(Route::Via(Arc::new(take(pool, deadline).await?)))
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
