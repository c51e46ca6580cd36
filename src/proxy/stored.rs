//! Pools made through the API, as the database keeps them: name, tier, rotation and cap in
//! the clear, the proxies (urls with their credentials) sealed under `SECRETS_KEY`, and a
//! revision that changes with every write, so each process reloads only what changed.

use async_trait::async_trait;

use super::spec::{PoolDraft, ProxyEntry, Rotation};
use crate::persist::StoreError;
use crate::secrets::{Keyring, SealError};

/// A pool as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPool {
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: String,
    /// How it spreads attempts.
    pub rotation: Rotation,
    /// The most attempts one proxy carries at once.
    pub max_per_proxy: u32,
    /// Its proxies, sealed (see [`crate::secrets`]).
    pub sealed: String,
    /// Changes with every write of the pool (not when it is only sealed again).
    pub revision: String,
}

impl std::fmt::Debug for StoredPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPool")
            .field("name", &self.name)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// Where pools made through the API are kept (the job store's database).
#[async_trait]
pub trait PoolIndex: Send + Sync {
    /// Each stored pool's name and revision.
    async fn pool_revisions(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// The stored pools named.
    async fn stored_pools(&self, names: &[String]) -> Result<Vec<StoredPool>, StoreError>;
    /// Stores a pool, replacing one of the same name.
    async fn put_pool(&self, pool: &StoredPool) -> Result<(), StoreError>;
    /// Removes a pool; `false` when there was none of that name.
    async fn delete_pool(&self, name: &str) -> Result<bool, StoreError>;
    /// Replaces a pool's sealed proxies with the same proxies sealed under another key, if
    /// they are still `was` (a write in between wins); `true` when replaced.
    async fn reseal_pool(&self, name: &str, was: &str, sealed: &str) -> Result<bool, StoreError>;
}

/// What a pool's sealed value is bound to: its row.
fn context(name: &str) -> String {
    format!("proxy_pool/{name}")
}

/// Seals a pool for storing, with a new revision.
pub fn seal(draft: &PoolDraft, keys: &Keyring) -> Result<StoredPool, SealError> {
    let plain = serde_json::to_vec(&draft.proxies).map_err(|_| SealError::Broken)?;
    Ok(StoredPool {
        name: draft.name.clone(),
        tier: draft.tier.clone(),
        rotation: draft.rotation,
        max_per_proxy: draft.max_per_proxy,
        sealed: keys.seal(&context(&draft.name), &plain)?,
        revision: uuid::Uuid::now_v7().simple().to_string(),
    })
}

/// A stored pool opened: what an operator wrote, and whether it was sealed under an old key.
pub struct Unsealed {
    /// The pool.
    pub draft: PoolDraft,
    /// Sealed under one of `SECRETS_OLD_KEYS`: to be sealed again under `SECRETS_KEY`.
    pub stale: bool,
}

/// Opens a stored pool.
pub fn open(stored: &StoredPool, keys: &Keyring) -> Result<Unsealed, SealError> {
    let opened = keys.open(&context(&stored.name), &stored.sealed)?;
    let proxies: Vec<ProxyEntry> =
        serde_json::from_slice(&opened.plain).map_err(|_| SealError::Broken)?;
    Ok(Unsealed {
        draft: PoolDraft {
            name: stored.name.clone(),
            tier: stored.tier.clone(),
            rotation: stored.rotation,
            max_per_proxy: stored.max_per_proxy,
            proxies,
        },
        stale: opened.stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretKey;

    #[test]
    fn a_stored_pool_keeps_no_credential_in_the_clear_and_opens_as_written() {
        let keys = Keyring::new(Some(&SecretKey::generate()), &[]);
        let draft = PoolDraft {
            name: "res".to_owned(),
            tier: "residential".to_owned(),
            rotation: Rotation::LeastRecentlyUsed,
            max_per_proxy: 3,
            proxies: vec![ProxyEntry::unnamed(
                "res",
                0,
                "http://alice:hunter2@10.0.0.2:8888".to_owned(),
            )],
        };
        let stored = seal(&draft, &keys).expect("sealed");
        assert!(!format!("{stored:?} {}", stored.sealed).contains("hunter2"));
        assert!(!stored.sealed.contains("alice"));
        let opened = open(&stored, &keys).expect("opens");
        assert_eq!(opened.draft, draft);
        assert!(!opened.stale);
        let moved = StoredPool {
            name: "dc".to_owned(),
            ..stored
        };
        assert!(open(&moved, &keys).is_err(), "bound to its row");
    }
}
