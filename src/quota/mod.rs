//! Quotas per tenant: how many jobs it may have queued at once and how many it may submit
//! per second. Defaults come from the settings; an admin may set a tenant's own.

mod batch;
mod ledger;
mod limiter;
mod local;
mod redis;
pub mod rule;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::persist::StoreError;

pub use ledger::{ADMISSION_TTL_MS, Ledger, RECOUNT_MS, Report};
pub use limiter::{Limiter, OverQuota, Permit};
pub use local::LocalLedger;
pub use redis::RedisLedger;
pub use rule::Outcome;

/// The most jobs a quota may allow queued at once.
pub const MAX_QUEUED_CAP: u64 = 100_000_000;
/// The highest submission rate a quota may allow, per second.
pub const MAX_SUBMIT_RATE: u32 = 1_000_000;

/// What a tenant may do. Zero in either field suspends the tenant's submissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Jobs the tenant may have queued (waiting to run) at once.
    #[schema(minimum = 0, maximum = 100000000)]
    pub max_queued: u64,
    /// Submissions per second (a burst of up to one second's worth is allowed).
    #[schema(minimum = 0, maximum = 1000000)]
    pub submit_rate: u32,
}

/// Where per-tenant quotas are kept (the job store's database).
#[async_trait]
pub trait QuotaIndex: Send + Sync {
    /// A tenant's own quota, when an admin set one.
    async fn quota(&self, tenant: &str) -> Result<Option<Quota>, StoreError>;
    /// Sets a tenant's own quota.
    async fn set_quota(&self, tenant: &str, quota: Quota) -> Result<(), StoreError>;
    /// Removes a tenant's own quota (it gets the defaults again); `false` when it had none.
    async fn clear_quota(&self, tenant: &str) -> Result<bool, StoreError>;
    /// How many of a tenant's jobs are queued now.
    async fn queued(&self, tenant: &str) -> Result<u64, StoreError>;
}
