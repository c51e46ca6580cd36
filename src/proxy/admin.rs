//! What an admin does to the pools through the API: store one (sealed), remove one. Each
//! change is seen by this process at once and by every other within
//! [`super::REFRESH_EVERY`] of its next use of the pools.

use super::spec::{MAX_POOLS, PoolDraft};
use super::stored;
use super::{PoolView, Pools};
use crate::persist::StoreError;
use crate::secrets::SealError;

/// Why a change to the pools was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The pool does not check (the API reports its fields before it gets here).
    #[error("{0}")]
    Invalid(String),
    /// The pool is one of `PROXY_POOLS`.
    #[error("pool {0:?} is set by PROXY_POOLS: change it there (and restart)")]
    SetBySettings(String),
    /// No `SECRETS_KEY`: credentials cannot be stored.
    #[error(
        "SECRETS_KEY is not set on this process: proxy pools made through the API are stored \
         sealed under it (openssl rand -base64 32)"
    )]
    NoKey,
    /// As many pools as allowed exist.
    #[error("at most {MAX_POOLS} proxy pools, PROXY_POOLS' included")]
    TooMany,
    /// A tenant's default names it (or its tier, and it is the tier's last pool).
    #[error("TENANT_PROXIES sends the jobs of tenant {tenant} to {choice:?}: change that first")]
    NamedByDefault {
        /// The tenant.
        tenant: String,
        /// What its default names.
        choice: String,
    },
    /// No pool of that name was made through the API.
    #[error("no proxy pool named {0:?} was made through the API")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Pools {
    /// Stores `draft` (a new pool, or a new version of one made through the API); `true`
    /// when it is new. Answers the pool as this process now uses it.
    pub async fn put(&self, draft: PoolDraft) -> Result<(PoolView, bool), AdminError> {
        draft.spec().map_err(AdminError::Invalid)?;
        self.settings_pool(&draft.name)?;
        let Some((index, keys)) = &self.shared.store else {
            return Err(AdminError::NoKey);
        };
        let stored = stored::seal(&draft, keys).map_err(|e| match e {
            SealError::NoKey => AdminError::NoKey,
            other => AdminError::Invalid(other.to_string()),
        })?;
        let revisions = index.pool_revisions().await?;
        let created = !revisions.iter().any(|(name, _)| *name == draft.name);
        if created && revisions.len() + self.shared.configured.len() >= MAX_POOLS {
            return Err(AdminError::TooMany);
        }
        index.put_pool(&stored).await?;
        self.shared.refresh().await?;
        let view = self.view(&draft.name).ok_or_else(|| {
            AdminError::Invalid(format!(
                "pool {:?} was stored but does not open",
                draft.name
            ))
        })?;
        Ok((view, created))
    }

    /// Removes a pool made through the API. Jobs naming it fail with a clear error once
    /// every process has seen it go; attempts under way finish on the proxy they hold.
    pub async fn remove(&self, name: &str) -> Result<(), AdminError> {
        self.settings_pool(name)?;
        let Some((index, _)) = &self.shared.store else {
            return Err(AdminError::NotFound(name.to_owned()));
        };
        let live = self.live();
        if let Some(pool) = live.pools.iter().find(|pool| pool.name() == name) {
            let others_of_tier = (live.pools.iter())
                .filter(|other| other.tier() == pool.tier() && other.name() != name)
                .count();
            for (tenant, choice) in &self.shared.defaults {
                if *choice == name || (*choice == pool.tier() && others_of_tier == 0) {
                    return Err(AdminError::NamedByDefault {
                        tenant: tenant.clone(),
                        choice: choice.clone(),
                    });
                }
            }
        }
        if !index.delete_pool(name).await? {
            return Err(AdminError::NotFound(name.to_owned()));
        }
        self.shared.refresh().await?;
        Ok(())
    }

    /// One pool as shown, by its name (not a tier).
    pub fn view(&self, name: &str) -> Option<PoolView> {
        let live = self.live();
        let pool = live.pools.iter().find(|pool| pool.name() == name)?;
        Some(live.view(pool))
    }

    fn settings_pool(&self, name: &str) -> Result<(), AdminError> {
        if self
            .shared
            .configured
            .iter()
            .any(|pool| pool.name() == name)
        {
            return Err(AdminError::SetBySettings(name.to_owned()));
        }
        Ok(())
    }
}
