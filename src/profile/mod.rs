//! Profiles: what a returning visitor carries from one job to the next (cookies,
//! `localStorage`, the identity it showed), named per tenant. A job loads the current
//! version into its fresh browser context (or sends its cookies over http); a saving job's
//! successful attempt stores what its page left as the next version, sealed under
//! `SECRETS_KEY` and bound to the profile, while it holds the profile's writer lease (one
//! writer at a time, readers in parallel). The last [`KEPT_VERSIONS`] are kept; one can be
//! restored.

pub mod index;

use std::sync::Arc;

use uuid::Uuid;

use crate::engine::options::ProfileUse;
use crate::job::Hold;
use crate::memory::Limits;
use crate::persist::StoreError;
use crate::secrets::{Keyring, SealError};

pub use crate::engine::profile::{Carried, ProfileState, TooLarge, state};
pub use index::{ProfileIndex, ProfileView, Saved, Saver, SealedVersion, Summary, VersionView};

/// How many versions of a profile are kept (the current one and those before it).
pub const KEPT_VERSIONS: u32 = 5;

/// The name under which the pacer holds a profile's writer lease: no domain has a `:`, so
/// it never shares a domain's slots.
pub fn lease_key(tenant: &str, name: &str) -> String {
    format!("profile:{tenant}/{name}")
}

/// How long a profile's writer is expected to hold it: a waiting saver comes back after
/// about this long (a browser job's usual length).
const EXPECTED_HOLD_MS: i64 = 1_000;

/// The writer lease's limits: one holder, no rate.
pub fn writer_limits() -> Limits {
    Limits {
        cap: 1,
        rate_milli: 0,
        burst: 1,
        min_delay_ms: 0,
        hold_ms: EXPECTED_HOLD_MS,
        seed: Default::default(),
    }
}

/// What a profile's sealed state is bound to: the profile, not its version, so a restore
/// can copy a version forward.
fn context(tenant: &str, name: &str) -> String {
    format!("profile/{tenant}/{name}")
}

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No such profile (never saved, or deleted).
    #[error("no profile named {0:?} (never saved, or deleted); a job with save: true makes it")]
    NotFound(String),
    /// The profile was deleted while a job that saves it ran.
    #[error("profile {0:?} was deleted while the job ran; nothing was saved")]
    Gone(String),
    /// The saving job's attempt no longer holds the job (cancelled, or its lease lost).
    #[error("the job's attempt no longer holds it; nothing was saved")]
    NotHeld,
    /// No version of that number is kept.
    #[error("profile {0:?} keeps no version {1}")]
    NoVersion(String, u32),
    /// This process has no key to seal or open with.
    #[error("profiles need SECRETS_KEY on every process that runs or restores them")]
    NoKey,
    /// The stored state does not open.
    #[error("profile {0:?} cannot be opened: {1}")]
    Unreadable(String, String),
    /// The state is over a cap.
    #[error("the profile's state is too large: {0}")]
    TooLarge(#[from] TooLarge),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A profile as a job loaded it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The version loaded (none: a saving job starting the profile).
    pub version: Option<u32>,
    /// Its state.
    pub state: ProfileState,
}

/// The profiles of every tenant, sealed in the store.
#[derive(Clone)]
pub struct Profiles {
    index: Arc<dyn ProfileIndex>,
    keys: Arc<Keyring>,
}

impl std::fmt::Debug for Profiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiles")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Profiles {
    /// Profiles kept in `index`, sealed and opened with `keys`.
    pub fn new(index: Arc<dyn ProfileIndex>, keys: Arc<Keyring>) -> Profiles {
        Profiles { index, keys }
    }

    /// Where they are kept.
    pub fn index(&self) -> &Arc<dyn ProfileIndex> {
        &self.index
    }

    /// The profile a job names, as it starts: its current version, or an empty state for a
    /// saving job whose profile does not exist yet.
    pub async fn load(&self, tenant: &str, wanted: &ProfileUse) -> Result<Loaded, ProfileError> {
        let name = &wanted.name;
        if !self.keys.can_seal() {
            return Err(ProfileError::NoKey);
        }
        match self.index.load_profile(tenant, name).await? {
            Some(stored) => Ok(Loaded {
                version: Some(stored.version),
                state: self.open(tenant, name, &stored)?,
            }),
            None if wanted.save => Ok(Loaded::default()),
            None => Err(ProfileError::NotFound(name.clone())),
        }
    }

    /// Stores what job `id`'s attempt `hold` left as the profile's next version, if that
    /// attempt still holds the job.
    pub async fn save(
        &self,
        tenant: &str,
        name: &str,
        state: &ProfileState,
        job: (Uuid, &Hold),
        loaded: Option<u32>,
    ) -> Result<u32, ProfileError> {
        let (sealed, summary) = self.seal(tenant, name, state)?;
        let saver = Saver::Job {
            id: job.0,
            hold: job.1,
            loaded,
        };
        let saved = self
            .index
            .save_profile(tenant, name, &sealed, &summary, saver, KEPT_VERSIONS)
            .await?;
        match saved {
            Saved::Stored(version) => Ok(version),
            Saved::Gone => Err(ProfileError::Gone(name.to_owned())),
            Saved::NotHeld => Err(ProfileError::NotHeld),
        }
    }

    /// Makes a kept version current again, as a new version (sealed again under the current
    /// key on the way).
    pub async fn restore(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<u32, ProfileError> {
        if !self.keys.can_seal() {
            return Err(ProfileError::NoKey);
        }
        let stored = self
            .index
            .profile_version(tenant, name, version)
            .await?
            .ok_or_else(|| ProfileError::NoVersion(name.to_owned(), version))?;
        let state = self.open(tenant, name, &stored)?;
        let (sealed, summary) = self.seal(tenant, name, &state)?;
        let saved = self
            .index
            .save_profile(
                tenant,
                name,
                &sealed,
                &summary,
                Saver::Restore(version),
                KEPT_VERSIONS,
            )
            .await?;
        match saved {
            Saved::Stored(version) => Ok(version),
            Saved::Gone | Saved::NotHeld => Err(ProfileError::NotFound(name.to_owned())),
        }
    }

    fn seal(
        &self,
        tenant: &str,
        name: &str,
        state: &ProfileState,
    ) -> Result<(String, Summary), ProfileError> {
        let plain = state.to_bytes()?;
        let sealed = self
            .keys
            .seal(&context(tenant, name), &plain)
            .map_err(|e| match e {
                SealError::NoKey => ProfileError::NoKey,
                other => ProfileError::Unreadable(name.to_owned(), other.to_string()),
            })?;
        let summary = Summary {
            origins: state.origin_names(),
            cookies: u32::try_from(state.cookies.len()).unwrap_or(u32::MAX),
            bytes: plain.len() as u64,
        };
        Ok((sealed, summary))
    }

    fn open(
        &self,
        tenant: &str,
        name: &str,
        stored: &SealedVersion,
    ) -> Result<ProfileState, ProfileError> {
        let unreadable = |why: String| ProfileError::Unreadable(name.to_owned(), why);
        let opened = self
            .keys
            .open(&context(tenant, name), &stored.sealed)
            .map_err(|e| unreadable(e.to_string()))?;
        serde_json::from_slice(&opened.plain).map_err(|e| unreadable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretKey;

    #[test]
    fn a_state_sealed_for_one_profile_opens_for_no_other() {
        let keys = Keyring::new(Some(&SecretKey::generate()), &[]);
        let sealed = keys.seal(&context("acme", "shop"), b"{}").expect("sealed");
        assert!(keys.open(&context("acme", "shop"), &sealed).is_ok());
        assert!(keys.open(&context("acme", "other"), &sealed).is_err());
        assert!(keys.open(&context("beta", "shop"), &sealed).is_err());
    }
}
