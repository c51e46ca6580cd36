//! Who is calling: API keys ([`key`]), the tenants and roles they carry ([`role`]), how a
//! presented key is checked ([`verify`]) and where keys are kept ([`KeyIndex`]).

pub mod key;
pub mod role;
pub mod verify;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::persist::StoreError;

pub use key::{ApiKey, KeyId};
pub use role::{Action, Caller, Role, Scope};
pub use verify::{AuthError, AuthMode, Authenticator};

/// A key as stored: never its secret, only the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The public part of the key (`cp_<id>_…`).
    pub id: KeyId,
    /// The tenant whose jobs the key reaches.
    pub tenant: String,
    /// What the key may do.
    pub role: Role,
    /// A label for people (`ci`, `scraper-prod`), not secret.
    pub name: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked key is refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl KeyRecord {
    /// The record to store for a newly made `key`.
    pub fn new(key: &ApiKey, tenant: &str, role: Role, name: &str) -> KeyRecord {
        KeyRecord {
            id: key.id().clone(),
            tenant: tenant.to_owned(),
            role,
            name: name.to_owned(),
            secret_hash: key.secret_hash(),
            created_at: Utc::now(),
            revoked_at: None,
        }
    }
}

/// Where API keys are kept (the job store's database).
#[async_trait]
pub trait KeyIndex: Send + Sync {
    /// Stores a new key.
    async fn add_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// One key by id, revoked or not.
    async fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;
    /// Every key, oldest first.
    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Revokes a key; `false` when there is no such key or it was already revoked.
    async fn revoke_key(&self, id: &KeyId) -> Result<bool, StoreError>;
}

/// The longest tenant name.
pub const MAX_TENANT_LEN: usize = 64;

/// Checks a tenant name: 1 to 64 characters of letters, digits, `-`, `_` and `.`.
pub fn check_tenant(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TENANT_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a tenant is 1 to {MAX_TENANT_LEN} letters, digits, '-', '_' or '.', not {name:?}"
        ))
    }
}
