//! The live set of pools a process routes through: the settings' pools and those stored
//! through the API, swapped whole when the store says something changed. A pool that
//! changed keeps the health of its unchanged proxies; one unchanged keeps its very state.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::pool::{Pool, Source};
use super::stored::{self, PoolIndex, StoredPool};
use super::view::UnreadablePool;
use super::{PoolSpec, PoolView, Setup};
use crate::persist::StoreError;
use crate::secrets::Keyring;

/// How stale a process's view of the pools made through the API may be when it uses them:
/// older, it asks the store which changed first (an idle process asks nothing).
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// The pools as they are now.
#[derive(Default)]
pub(super) struct Live {
    /// Every pool, cheapest tier first.
    pub pools: Vec<Arc<Pool>>,
    /// The stored pools in use, by name.
    stored: BTreeMap<String, Kept>,
    /// The stored pools that cannot be used here, by name.
    pub unreadable: BTreeMap<String, UnreadablePool>,
}

/// A stored pool in use.
#[derive(Clone)]
struct Kept {
    /// The revision loaded.
    revision: String,
    /// The id of the key it is sealed under now.
    sealed_with: String,
    pool: Arc<Pool>,
}

impl Live {
    pub fn named(&self, name: &str) -> Option<Arc<Pool>> {
        let by_name = self.pools.iter().find(|pool| pool.name() == name).cloned();
        by_name.or_else(|| self.first_of_tier(name))
    }

    /// The cheapest-ranked pool of `tier` (the first configured).
    pub fn first_of_tier(&self, tier: &str) -> Option<Arc<Pool>> {
        self.pools.iter().find(|pool| pool.tier() == tier).cloned()
    }

    /// What the API shows of `pool`.
    pub fn view(&self, pool: &Pool) -> PoolView {
        PoolView {
            sealed_with: (self.stored.get(pool.name())).map(|kept| kept.sealed_with.clone()),
            ..PoolView::of(pool)
        }
    }

    pub fn tiers(&self) -> Vec<String> {
        let mut tiers: Vec<String> = Vec::new();
        for pool in &self.pools {
            if !tiers.iter().any(|t| t == pool.tier()) {
                tiers.push(pool.tier().to_owned());
            }
        }
        tiers
    }
}

/// What every clone of one process's `Pools` shares.
#[derive(Default)]
pub(super) struct Shared {
    tiers: Vec<String>,
    pub configured: Vec<Arc<Pool>>,
    pub defaults: BTreeMap<String, String>,
    pub store: Option<(Arc<dyn PoolIndex>, Arc<Keyring>)>,
    live: RwLock<Arc<Live>>,
    /// When the last read of the store began; held while it is read, so reads do not
    /// overlap and those who waited for one share it.
    loaded: tokio::sync::Mutex<Option<Instant>>,
}

impl Shared {
    pub fn new(setup: Setup) -> Shared {
        let configured: Vec<Arc<Pool>> = (setup.pools.into_iter())
            .map(|spec| Arc::new(Pool::new(spec, Source::Settings)))
            .collect();
        let shared = Shared {
            tiers: setup.tiers,
            defaults: (setup.defaults.into_iter())
                .map(|d| (d.tenant, d.choice))
                .collect(),
            store: setup.stored,
            configured,
            ..Shared::default()
        };
        let live = Live {
            pools: shared.ordered(&BTreeMap::new()),
            ..Live::default()
        };
        shared.swap(live);
        shared
    }

    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    pub fn live(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(live) => live.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, live: Live) {
        match self.live.write() {
            Ok(mut now) => *now = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
    }

    /// The settings' pools and the stored ones, cheapest tier first (`PROXY_TIERS`' order;
    /// tiers it does not name after, in the order they first appear).
    fn ordered(&self, stored: &BTreeMap<String, Kept>) -> Vec<Arc<Pool>> {
        let mut pools: Vec<Arc<Pool>> = self.configured.clone();
        pools.extend(stored.values().map(|kept| kept.pool.clone()));
        let mut seen: Vec<String> = self.tiers.clone();
        for pool in &pools {
            if !seen.iter().any(|t| t == pool.tier()) {
                seen.push(pool.tier().to_owned());
            }
        }
        let rank = |tier: &str| seen.iter().position(|t| t == tier).unwrap_or(seen.len());
        let mut ranked: Vec<(usize, Arc<Pool>)> =
            pools.into_iter().map(|p| (rank(p.tier()), p)).collect();
        ranked.sort_by_key(|(rank, _)| *rank);
        ranked.into_iter().map(|(_, pool)| pool).collect()
    }

    /// Reads the store now (after any read under way).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let mut loaded = self.loaded.lock().await;
        let began = Instant::now();
        self.load().await?;
        *loaded = Some(began);
        Ok(())
    }

    /// Reads the store if the last read began more than [`REFRESH_EVERY`] ago: what every
    /// use of the pools (a job about to route, an API read) does first, so a change reaches a
    /// process within 2 s of its next use and a process that does not use them asks nothing.
    pub async fn fresh(&self) {
        self.read_unless_within(REFRESH_EVERY).await;
    }

    /// Reads the store unless a read began since this was called: misses noticed together
    /// (a burst of jobs naming a pool just made elsewhere) share one read, and reads never
    /// overlap, so naming unknown pools costs at most one small read at a time.
    pub async fn catch_up(&self) {
        self.read_unless_within(Duration::ZERO).await;
    }

    /// Reads the store unless a read began since this was called or less than `recent` ago.
    async fn read_unless_within(&self, recent: Duration) {
        if !self.has_store() {
            return;
        }
        let noticed = Instant::now();
        let mut loaded = self.loaded.lock().await;
        let shared = |began: Instant| began >= noticed || began.elapsed() < recent;
        if loaded.is_some_and(shared) {
            return;
        }
        let began = Instant::now();
        match self.load().await {
            Ok(()) => *loaded = Some(began),
            Err(e) => warn!(error = %e, "cannot read the proxy pools made through the API"),
        }
    }

    /// Reloads the stored pools whose revision changed, and drops those deleted.
    async fn load(&self) -> Result<(), StoreError> {
        let Some((index, keys)) = &self.store else {
            return Ok(());
        };
        let revisions = index.pool_revisions().await?;
        let now = self.live();
        // An unreadable pool is read again each time: another process may have sealed it
        // again under a key this one has.
        let seen = |name: &str| now.stored.get(name).map(|kept| kept.revision.as_str());
        let changed: Vec<String> = (revisions.iter())
            .filter(|(name, rev)| seen(name) != Some(rev.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        let gone = (now.stored.keys().chain(now.unreadable.keys()))
            .any(|name| !revisions.iter().any(|(n, _)| n == name));
        if changed.is_empty() && !gone {
            return Ok(());
        }
        let fetched = index.stored_pools(&changed).await?;
        let mut stored = BTreeMap::new();
        let mut unreadable = BTreeMap::new();
        for (name, revision) in &revisions {
            if let Some(row) = fetched.iter().find(|row| row.name == *name) {
                match self.opened(row, &now, index.as_ref(), keys).await {
                    Ok(kept) => drop(stored.insert(name.clone(), kept)),
                    Err(reason) => {
                        let said = now.unreadable.get(name).map(|u| u.reason.as_str());
                        if said != Some(reason.as_str()) {
                            warn!(pool = %name, "proxy pool made through the API is not used: {reason}");
                        }
                        let view = UnreadablePool::new(row, reason);
                        unreadable.insert(name.clone(), view);
                    }
                }
            } else if let Some(kept) = now.stored.get(name).filter(|k| k.revision == *revision) {
                stored.insert(name.clone(), kept.clone());
            }
        }
        let pools = self.ordered(&stored);
        self.swap(Live {
            pools,
            stored,
            unreadable,
        });
        Ok(())
    }

    /// The pool a changed row holds: the one it replaces when nothing that matters changed,
    /// else a new one carrying over the health of its unchanged proxies; with the id of the
    /// key it is sealed under. A row sealed under an old key is sealed again under the
    /// current one.
    async fn opened(
        &self,
        row: &StoredPool,
        now: &Live,
        index: &dyn PoolIndex,
        keys: &Keyring,
    ) -> Result<Kept, String> {
        if self.configured.iter().any(|pool| pool.name() == row.name) {
            return Err("PROXY_POOLS has a pool of this name, which is used instead".to_owned());
        }
        let unsealed = stored::open(row, keys).map_err(|e| e.to_string())?;
        let spec: PoolSpec = unsealed
            .draft
            .spec()
            .map_err(|why| format!("its stored proxies do not check: {why}"))?;
        let mut sealed_with = row.sealed.split('.').nth(1).unwrap_or_default().to_owned();
        if unsealed.stale && reseal(row, &unsealed.draft, index, keys).await {
            sealed_with = keys.current_id().unwrap_or_default().to_owned();
        }
        let pool = match now.stored.get(&row.name).map(|kept| &kept.pool) {
            Some(pool) if *pool.spec() == spec => pool.clone(),
            Some(pool) => Arc::new(Pool::after(spec, pool)),
            None => Arc::new(Pool::new(spec, Source::Api)),
        };
        Ok(Kept {
            revision: row.revision.clone(),
            sealed_with,
            pool,
        })
    }
}

/// Seals a row found under an old key again under the current one (unless it was written
/// in between: then the write's own sealing stands); `true` when it did. Any process may
/// do it; the first wins.
async fn reseal(
    row: &StoredPool,
    draft: &super::PoolDraft,
    index: &dyn PoolIndex,
    keys: &Keyring,
) -> bool {
    let Ok(fresh) = stored::seal(draft, keys) else {
        return false;
    };
    match index
        .reseal_pool(&row.name, &row.sealed, &fresh.sealed)
        .await
    {
        Ok(true) => {
            info!(pool = %row.name, key = keys.current_id().unwrap_or_default(),
                  "proxy pool sealed again under the current SECRETS_KEY");
            true
        }
        Ok(false) => false,
        Err(e) => {
            warn!(pool = %row.name, error = %e, "cannot seal a proxy pool again");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::spec::parse_pools;

    fn spec(name: &str, tier: &str) -> PoolSpec {
        let text =
            format!(r#"[{{"name": "{name}", "tier": "{tier}", "proxies": ["http://h:1"]}}]"#);
        parse_pools(&text).expect("valid").remove(0)
    }

    /// Pools made through the API take their tier's place among the settings' pools: the
    /// order of PROXY_TIERS first, then tiers in the order they first appear (the settings'
    /// pools before the stored ones), so `auto` climbs them cheapest first.
    #[test]
    fn stored_pools_are_ranked_by_tier_with_the_settings_pools() {
        let shared = Shared::new(Setup {
            pools: vec![spec("res", "residential"), spec("mob", "mobile")],
            tiers: vec!["datacenter".to_owned(), "residential".to_owned()],
            ..Setup::default()
        });
        let stored: BTreeMap<String, Kept> = [
            ("dc", "datacenter"),
            ("isp", "isp"),
            ("res2", "residential"),
        ]
        .into_iter()
        .map(|(name, tier)| {
            let pool = Arc::new(Pool::new(spec(name, tier), Source::Api));
            let kept = Kept {
                revision: "r1".to_owned(),
                sealed_with: "k1".to_owned(),
                pool,
            };
            (name.to_owned(), kept)
        })
        .collect();
        let names: Vec<String> = (shared.ordered(&stored).iter())
            .map(|pool| pool.name().to_owned())
            .collect();
        assert_eq!(names, ["dc", "res", "res2", "mob", "isp"]);
        let live = Live {
            pools: shared.ordered(&stored),
            ..Live::default()
        };
        assert_eq!(live.tiers(), ["datacenter", "residential", "mobile", "isp"]);
        assert_eq!(
            live.named("residential").map(|p| p.name().to_owned()),
            Some("res".to_owned()),
            "a tier names its first pool"
        );
    }
}
