//! Where profiles are kept (the job store's database): a row per profile, a row per kept
//! version with the sealed state and what the API may show of it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::job::Hold;
use crate::persist::StoreError;

/// What may be shown of one version: never its cookies' or storage's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// The origins whose `localStorage` it keeps.
    pub origins: Vec<String>,
    /// How many cookies it keeps.
    pub cookies: u32,
    /// The size of its state, in bytes, before sealing.
    pub bytes: u64,
}

/// One kept version, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    /// Its number: 1 for a profile's first save, one more for each save or restore.
    pub version: u32,
    /// What it holds.
    #[serde(flatten)]
    pub summary: Summary,
    /// The job whose successful run saved it (none for a restore).
    pub saved_by: Option<Uuid>,
    /// The version a restore copied into it.
    pub restored_from: Option<u32>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// A profile, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    /// Its name, unique within its tenant.
    pub name: String,
    /// The version jobs load.
    pub current_version: u32,
    /// What the current version holds.
    #[serde(flatten)]
    pub summary: Summary,
    /// When its first version was saved.
    pub created_at: DateTime<Utc>,
    /// When its current version was stored.
    pub updated_at: DateTime<Utc>,
    /// When a job last loaded it.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The kept versions, newest first (in answers about one profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionView>>,
}

/// A version's sealed state as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedVersion {
    /// Its number.
    pub version: u32,
    /// The state, sealed (see [`crate::secrets`]).
    pub sealed: String,
}

impl std::fmt::Debug for SealedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedVersion")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Who stores a new version.
#[derive(Debug, Clone, Copy)]
pub enum Saver<'a> {
    /// A job's successful attempt: stored only while that attempt still holds the job.
    Job {
        /// The job.
        id: Uuid,
        /// Its attempt.
        hold: &'a Hold,
        /// The version it loaded (none: it started without one, and creates the profile).
        loaded: Option<u32>,
    },
    /// A restore of the version named, through the API.
    Restore(u32),
}

/// What storing a version came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Stored as this version.
    Stored(u32),
    /// The profile was deleted since it was loaded: nothing stored.
    Gone,
    /// The job's attempt no longer holds it (cancelled, or its lease lost): nothing stored.
    NotHeld,
}

/// The profiles of every tenant.
#[async_trait]
pub trait ProfileIndex: Send + Sync {
    /// The current version of a profile, noting that a job loads it now.
    async fn load_profile(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<SealedVersion>, StoreError>;

    /// Stores `sealed` as the profile's next version (making the profile when a job that
    /// loaded none saves), keeping the last `keep` versions.
    async fn save_profile(
        &self,
        tenant: &str,
        name: &str,
        sealed: &str,
        summary: &Summary,
        saver: Saver<'_>,
        keep: u32,
    ) -> Result<Saved, StoreError>;

    /// A tenant's profiles, by name (without their versions).
    async fn list_profiles(&self, tenant: &str) -> Result<Vec<ProfileView>, StoreError>;

    /// One profile with its kept versions.
    async fn profile(&self, tenant: &str, name: &str) -> Result<Option<ProfileView>, StoreError>;

    /// One kept version's sealed state.
    async fn profile_version(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<Option<SealedVersion>, StoreError>;

    /// Removes a profile and every version of it; `false` when there was none.
    async fn delete_profile(&self, tenant: &str, name: &str) -> Result<bool, StoreError>;

    /// The newest jobs (at most `limit`) that named the profile.
    async fn profile_jobs(
        &self,
        tenant: &str,
        name: &str,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError>;
}
