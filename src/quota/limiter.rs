//! Applying quotas at submission, cheaply: a token bucket per tenant for the rate, and the
//! queued count and the tenant's quota read from the store at most once a second per
//! tenant (submissions since are counted here), so a busy tenant costs no extra query per
//! request. Each API process keeps its own buckets: with N processes behind a balancer a
//! tenant can submit up to N times its rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Quota, QuotaIndex};
use crate::store::StoreError;

/// How old a tenant's queued count and quota may be.
const REFRESH: Duration = Duration::from_secs(1);
/// Tenants remembered at most; the table starts over when full.
const MAX_TENANTS: usize = 100_000;

/// Why a submission is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverQuota {
    /// The tenant submits faster than its rate.
    Rate {
        /// The tenant's rate.
        per_second: u32,
    },
    /// The tenant has as many jobs queued as it may.
    Queued {
        /// The tenant's cap.
        max_queued: u64,
    },
}

impl OverQuota {
    /// Seconds until a retry may pass.
    pub fn retry_after(&self) -> u32 {
        match self {
            OverQuota::Rate { .. } => 1,
            OverQuota::Queued { .. } => 5,
        }
    }
}

impl std::fmt::Display for OverQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverQuota::Rate { per_second } => {
                write!(f, "this tenant may submit {per_second} jobs per second")
            }
            OverQuota::Queued { max_queued } => write!(
                f,
                "this tenant already has {max_queued} jobs queued, its limit; submit again when some have run"
            ),
        }
    }
}

#[derive(Debug)]
struct TenantState {
    quota: Quota,
    queued: u64,
    read_at: Instant,
    /// A submission is reading the quota and queued count now.
    reading: bool,
    tokens: f64,
    filled_at: Instant,
}

/// Admits or refuses submissions per tenant.
#[derive(Clone)]
pub struct Limiter {
    defaults: Quota,
    index: Arc<dyn QuotaIndex>,
    tenants: Arc<Mutex<HashMap<String, TenantState>>>,
}

impl Limiter {
    /// A limiter with `defaults` for tenants without their own quota.
    pub fn new(defaults: Quota, index: Arc<dyn QuotaIndex>) -> Limiter {
        Limiter {
            defaults,
            index,
            tenants: Arc::default(),
        }
    }

    /// The quota of tenants without their own.
    pub fn defaults(&self) -> Quota {
        self.defaults
    }

    /// The quota that applies to `tenant` now.
    pub async fn effective(&self, tenant: &str) -> Result<Quota, StoreError> {
        Ok(self.index.quota(tenant).await?.unwrap_or(self.defaults))
    }

    /// Forgets what is known of `tenant`, so a changed quota applies at once here.
    pub fn forget(&self, tenant: &str) {
        if let Ok(mut tenants) = self.tenants.lock() {
            tenants.remove(tenant);
        }
    }

    /// Takes one submission from `tenant`'s quota, or says why it cannot.
    pub async fn admit(&self, tenant: &str) -> Result<Result<(), OverQuota>, StoreError> {
        self.admit_jobs(tenant, 1).await
    }

    /// Admits `jobs` jobs submitted together (a batch): refused when the queued cap would
    /// be passed. The rate admits a batch when a token is there and takes one per job, going
    /// into debt for a batch larger than the bucket, so the tenant's next submission waits
    /// until the batch is paid for.
    pub async fn admit_jobs(
        &self,
        tenant: &str,
        jobs: u64,
    ) -> Result<Result<(), OverQuota>, StoreError> {
        // Dropped when the submission is done with, however it ends (a failed reading, a
        // client that hung up), so the next one reads again.
        let reader = self.must_read(tenant).then(|| Reader {
            limiter: self,
            tenant,
        });
        let reading = match &reader {
            Some(_) => Some(tokio::try_join!(
                self.effective(tenant),
                self.index.queued(tenant)
            )?),
            None => None,
        };
        let now = Instant::now();
        let Ok(mut tenants) = self.tenants.lock() else {
            return Ok(Ok(()));
        };
        if tenants.len() >= MAX_TENANTS && !tenants.contains_key(tenant) {
            tenants.clear();
        }
        let state = tenants
            .entry(tenant.to_owned())
            .or_insert_with(|| TenantState {
                quota: self.defaults,
                queued: 0,
                read_at: now,
                reading: false,
                tokens: f64::from(self.defaults.submit_rate),
                filled_at: now,
            });
        if let Some((quota, queued)) = reading {
            state.quota = quota;
            state.queued = queued;
            state.read_at = now;
        }
        Ok(state.take(now, jobs))
    }

    /// Whether this submission reads `tenant`'s quota and queued count: when nothing is
    /// known of the tenant, or what is known is older than [`REFRESH`] and no other
    /// submission is reading it already. The others go on with what is known, so a busy
    /// tenant costs one count a second, not one per request waiting at that moment.
    fn must_read(&self, tenant: &str) -> bool {
        let Ok(mut tenants) = self.tenants.lock() else {
            return true;
        };
        match tenants.get_mut(tenant) {
            None => true,
            Some(state) if state.reading || state.read_at.elapsed() < REFRESH => false,
            Some(state) => {
                state.reading = true;
                true
            }
        }
    }
}

/// The submission reading a tenant's quota and queued count.
struct Reader<'a> {
    limiter: &'a Limiter,
    tenant: &'a str,
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Ok(mut tenants) = self.limiter.tenants.lock()
            && let Some(state) = tenants.get_mut(self.tenant)
        {
            state.reading = false;
        }
    }
}

impl TenantState {
    fn take(&mut self, now: Instant, jobs: u64) -> Result<(), OverQuota> {
        let rate = f64::from(self.quota.submit_rate);
        let elapsed = now.duration_since(self.filled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        self.filled_at = now;
        if self.queued.saturating_add(jobs) > self.quota.max_queued {
            return Err(OverQuota::Queued {
                max_queued: self.quota.max_queued,
            });
        }
        if self.tokens < 1.0 || rate == 0.0 {
            return Err(OverQuota::Rate {
                per_second: self.quota.submit_rate,
            });
        }
        self.tokens -= jobs as f64;
        self.queued += jobs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max_queued: u64, submit_rate: u32, queued: u64) -> (TenantState, Instant) {
        let now = Instant::now();
        let state = TenantState {
            quota: Quota {
                max_queued,
                submit_rate,
            },
            queued,
            read_at: now,
            reading: false,
            tokens: f64::from(submit_rate),
            filled_at: now,
        };
        (state, now)
    }

    #[test]
    fn the_rate_allows_a_second_of_burst_then_refills() {
        let (mut tenant, now) = state(1_000, 5, 0);
        for _ in 0..5 {
            assert_eq!(tenant.take(now, 1), Ok(()));
        }
        assert_eq!(tenant.take(now, 1), Err(OverQuota::Rate { per_second: 5 }));
        assert_eq!(tenant.take(now + Duration::from_millis(250), 1), Ok(()));
    }

    #[test]
    fn the_queue_cap_counts_submissions_since_the_last_reading() {
        let (mut tenant, now) = state(2, 100, 1);
        assert_eq!(tenant.take(now, 1), Ok(()));
        assert_eq!(
            tenant.take(now, 1),
            Err(OverQuota::Queued { max_queued: 2 })
        );
        let (mut suspended, now) = state(10, 0, 0);
        assert!(suspended.take(now, 1).is_err());
    }

    #[test]
    fn a_batch_takes_a_token_per_job_and_its_debt_delays_the_next() {
        let (mut tenant, now) = state(1_000, 100, 0);
        assert_eq!(tenant.take(now, 300), Ok(()));
        assert_eq!(
            tenant.take(now + Duration::from_secs(1), 1),
            Err(OverQuota::Rate { per_second: 100 })
        );
        assert_eq!(tenant.take(now + Duration::from_secs(3), 1), Ok(()));
        assert_eq!(
            tenant.take(now + Duration::from_secs(4), 800),
            Err(OverQuota::Queued { max_queued: 1_000 })
        );
    }
}
