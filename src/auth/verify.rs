//! Checking the key a request presents, with a short cache so a busy client costs one
//! lookup per half second rather than one per request, and a revoked key is refused within
//! that half second on every process.

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;

use super::{ApiKey, Caller, KeyId, KeyIndex, KeyRecord};
use crate::persist::StoreError;
use crate::ttl_cache::TtlCache;

/// How long a looked-up key (or its absence) is trusted: the most a revocation takes to
/// reach a process that used the key a moment before.
pub const KEY_CACHE_TTL: Duration = Duration::from_millis(500);
/// Keys remembered at most; the cache starts over when full (random ids cannot grow it).
const KEY_CACHE_SIZE: usize = 10_000;

/// Whether the API asks for keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Every `/api` request needs `Authorization: Bearer <key>`.
    Keys,
    /// No keys: anyone who reaches the port is an admin of the default tenant.
    Off,
}

/// Why a request's credentials are refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("this API needs a key: send Authorization: Bearer <key>")]
    Missing,
    /// A header that is not `Bearer cp_…` with a well-formed key.
    #[error(
        "the Authorization header is not 'Bearer <key>' with a key made by `control-plane keys create`"
    )]
    Malformed,
    /// No such key, a wrong secret, or a revoked key (told apart only in logs).
    #[error("the key is unknown or revoked")]
    Refused,
    /// The key store did not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks presented keys against the key index.
#[derive(Clone)]
pub struct Authenticator {
    mode: AuthMode,
    index: Arc<dyn KeyIndex>,
    /// Key records (or their absence) by id.
    cache: Arc<TtlCache<KeyId, Option<KeyRecord>>>,
}

impl Authenticator {
    /// An authenticator in `mode` over `index`.
    pub fn new(mode: AuthMode, index: Arc<dyn KeyIndex>) -> Authenticator {
        Authenticator {
            mode,
            index,
            cache: Arc::new(TtlCache::new(KEY_CACHE_TTL, KEY_CACHE_SIZE)),
        }
    }

    /// Whether keys are asked for.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The caller an `Authorization` header value stands for.
    pub async fn caller(&self, authorization: Option<&[u8]>) -> Result<Caller, AuthError> {
        if self.mode == AuthMode::Off {
            return Ok(Caller::open());
        }
        let header = authorization.ok_or(AuthError::Missing)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthError::Malformed)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        let key = ApiKey::parse(token.trim()).ok_or(AuthError::Malformed)?;
        let record = self.record(key.id()).await?.ok_or(AuthError::Refused)?;
        if record.revoked_at.is_some() || !key.matches(&record.secret_hash) {
            tracing::info!(key_id = %key.id(), revoked = record.revoked_at.is_some(), "key refused");
            return Err(AuthError::Refused);
        }
        Ok(Caller {
            tenant: record.tenant,
            role: record.role,
            key: Some(key.id().to_string()),
        })
    }

    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        if let Some(record) = self.cache.get(id) {
            return Ok(record);
        }
        let record = self.index.key(id).await?;
        self.cache.put(id.clone(), record.clone());
        Ok(record)
    }
}
