//! Applying quotas at submission, for every API process at once: each submission asks the
//! shared ledger (Redis) for an admission, which holds a tenant's rate and queued cap under
//! any concurrency; its writer reports how the write went ([`Permit`]). The tenant's quota
//! is read from the store at most once a second per process, and its queued jobs are
//! counted by one caller per second across all processes. While Redis is unreachable, each
//! process keeps books of its own (the same rule; the limits then hold per process).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};
use uuid::Uuid;

use super::batch::Batcher;
use super::ledger::{ADMISSION_TTL_MS, Ledger, RECOUNT_MS, Report};
use super::local::LocalLedger;
use super::rule::{Answer, Ask, Outcome, Snapshot, Verdict};
use super::{Quota, QuotaIndex};
use crate::persist::Cause;
use crate::persist::StoreError;

/// How old a tenant's quota may be in this process.
const QUOTA_REFRESH: Duration = Duration::from_secs(1);
/// Tenants whose quota is remembered at most; the table starts over when full.
const MAX_TENANTS: usize = 100_000;
/// How long the shared ledger is left alone after it failed (the local books serve).
const SHARED_PAUSE: Duration = Duration::from_secs(1);
/// How long a submission waits for another caller's count of its tenant before giving up
/// (the counter's right lapses after five seconds, and then this caller counts).
const COUNT_WAIT: Duration = Duration::from_secs(8);
/// Between two looks at whether another caller's count is in.
const COUNT_POLL: Duration = Duration::from_millis(20);

/// Why a submission is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverQuota {
    /// The tenant submits faster than its rate.
    Rate {
        /// The tenant's rate.
        per_second: u32,
        /// Until a token is back.
        wait: Duration,
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
            OverQuota::Rate { wait, .. } => {
                u32::try_from(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                    .unwrap_or(u32::MAX)
                    .max(1)
            }
            OverQuota::Queued { .. } => 5,
        }
    }
}

impl std::fmt::Display for OverQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverQuota::Rate { per_second, .. } => {
                write!(f, "this tenant may submit {per_second} jobs per second")
            }
            OverQuota::Queued { max_queued } => write!(
                f,
                "this tenant already has {max_queued} jobs queued, its limit; submit again when some have run"
            ),
        }
    }
}

/// An admission granted: its writer settles it with how the write went. One dropped
/// unsettled is reported as nothing stored.
pub struct Permit {
    ledger: Arc<dyn Ledger>,
    report: Option<Report>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("report", &self.report)
            .finish()
    }
}

impl Permit {
    /// Reports how the writes of `permits` went, one round trip per ledger.
    pub async fn settle_all(permits: impl IntoIterator<Item = (Permit, Outcome)>) {
        let mut by_ledger: Vec<(Arc<dyn Ledger>, Vec<Report>)> = Vec::new();
        for (mut permit, outcome) in permits {
            let Some(mut report) = permit.report.take() else {
                continue;
            };
            report.outcome = outcome;
            match by_ledger
                .iter_mut()
                .find(|(ledger, _)| Arc::ptr_eq(ledger, &permit.ledger))
            {
                Some((_, reports)) => reports.push(report),
                None => by_ledger.push((permit.ledger.clone(), vec![report])),
            }
        }
        for (ledger, reports) in by_ledger {
            if let Err(e) = ledger.settle(&reports).await {
                // Its admissions count until they expire: a tenant may be refused for a
                // minute, never let past its cap.
                warn!(error = %e, admissions = reports.len(), "cannot report admissions to the quota ledger");
            }
        }
    }

    /// Reports how this permit's write went.
    pub async fn settle(self, outcome: Outcome) {
        Permit::settle_all([(self, outcome)]).await;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(report) = self.report.take() else {
            return;
        };
        let ledger = self.ledger.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = ledger.settle(&[report]).await;
            });
        }
    }
}

/// Admits or refuses submissions per tenant.
#[derive(Clone)]
pub struct Limiter {
    defaults: Quota,
    index: Arc<dyn QuotaIndex>,
    shared: Arc<dyn Ledger>,
    batcher: Batcher,
    local: Arc<dyn Ledger>,
    shared_down_until: Arc<Mutex<Option<Instant>>>,
    quotas: Arc<Mutex<HashMap<String, (Quota, Instant)>>>,
}

impl Limiter {
    /// A limiter with `defaults` for tenants without their own quota, keeping its books in
    /// `shared` (and in this process while `shared` is unreachable).
    pub fn new(defaults: Quota, index: Arc<dyn QuotaIndex>, shared: Arc<dyn Ledger>) -> Limiter {
        Limiter {
            defaults,
            index,
            batcher: Batcher::start(shared.clone()),
            shared,
            local: Arc::new(LocalLedger::new()),
            shared_down_until: Arc::default(),
            quotas: Arc::default(),
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

    /// Forgets `tenant`'s quota, so a changed one applies at once here (other processes
    /// read it within a second).
    pub fn forget(&self, tenant: &str) {
        lock(&self.quotas).remove(tenant);
    }

    /// Admits one submission from `tenant`, or says why not.
    pub async fn admit(&self, tenant: &str) -> Result<Result<Permit, OverQuota>, StoreError> {
        self.admit_jobs(tenant, 1).await
    }

    /// Admits `jobs` jobs submitted together (a batch): refused when the queued cap would be
    /// passed. The rate admits a batch while a token is there and takes one per job, going
    /// into debt for a batch larger than the bucket.
    pub async fn admit_jobs(
        &self,
        tenant: &str,
        jobs: u64,
    ) -> Result<Result<Permit, OverQuota>, StoreError> {
        let quota = self.quota(tenant).await?;
        let ask = Ask {
            admission: Uuid::now_v7(),
            jobs,
            quota,
            ttl_ms: ADMISSION_TTL_MS,
            recount_ms: RECOUNT_MS,
        };
        let waiting = Instant::now();
        loop {
            let (ledger, answer) = self.ask(tenant, &ask).await;
            match (answer.verdict, answer.recount) {
                (Verdict::Uncounted, Some(snapshot)) => {
                    self.recount(ledger.as_ref(), tenant, snapshot).await?;
                    continue;
                }
                (_, Some(snapshot)) => {
                    let (limiter, tenant, ledger) =
                        (self.clone(), tenant.to_owned(), ledger.clone());
                    tokio::spawn(async move {
                        if let Err(e) = limiter.recount(ledger.as_ref(), &tenant, snapshot).await {
                            debug!(error = %e, "cannot count a tenant's queued jobs; another caller will");
                        }
                    });
                }
                (_, None) => {}
            }
            return Ok(match answer.verdict {
                Verdict::Admitted => Ok(Permit {
                    ledger,
                    report: Some(Report {
                        tenant: tenant.to_owned(),
                        admission: ask.admission,
                        jobs,
                        outcome: Outcome::Dropped,
                    }),
                }),
                Verdict::OverQueued => Err(OverQuota::Queued {
                    max_queued: quota.max_queued,
                }),
                Verdict::OverRate { wait_ms } => Err(OverQuota::Rate {
                    per_second: quota.submit_rate,
                    wait: Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)),
                }),
                Verdict::Uncounted if waiting.elapsed() < COUNT_WAIT => {
                    // Another caller is counting the tenant's queued jobs.
                    tokio::time::sleep(COUNT_POLL).await;
                    continue;
                }
                Verdict::Uncounted => {
                    return Err(StoreError::Unavailable(
                        "the tenant's queued jobs could not be counted in time".into(),
                    ));
                }
            });
        }
    }

    /// Asks the shared ledger, or this process's books while it is unreachable.
    async fn ask(&self, tenant: &str, ask: &Ask) -> (Arc<dyn Ledger>, Answer) {
        if self.shared_usable() {
            match self.batcher.admit(tenant, ask).await {
                Ok(answer) => return (self.shared.clone(), answer),
                Err(e) => {
                    let mut down = lock(&self.shared_down_until);
                    if down.is_none() {
                        warn!(error = %e, "the quota ledger (Redis) is unreachable: quotas hold per API process until it is back");
                    }
                    *down = Some(Instant::now() + SHARED_PAUSE);
                }
            }
        }
        let answer = match self.local.admit(&[(tenant, ask)]).await {
            Ok(mut answers) if !answers.is_empty() => answers.swap_remove(0),
            _ => Answer {
                verdict: Verdict::Uncounted,
                recount: None,
            },
        };
        (self.local.clone(), answer)
    }

    /// Whether to ask the shared ledger: not within a second of its last failure.
    fn shared_usable(&self) -> bool {
        let mut down = lock(&self.shared_down_until);
        match *down {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                *down = None;
                true
            }
            None => true,
        }
    }

    /// Counts `tenant`'s queued jobs and installs the count taken after `snapshot`.
    async fn recount(
        &self,
        ledger: &dyn Ledger,
        tenant: &str,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        let queued = self.index.queued(tenant).await?;
        ledger
            .rebase(tenant, snapshot, queued)
            .await
            .map(drop)
            .map_err(|e| StoreError::Unavailable(Cause::of("the quota ledger", e)))
    }

    /// `tenant`'s quota, read at most once a second.
    async fn quota(&self, tenant: &str) -> Result<Quota, StoreError> {
        if let Some((quota, read_at)) = lock(&self.quotas).get(tenant)
            && read_at.elapsed() < QUOTA_REFRESH
        {
            return Ok(*quota);
        }
        let quota = self.effective(tenant).await?;
        let mut quotas = lock(&self.quotas);
        if quotas.len() >= MAX_TENANTS && !quotas.contains_key(tenant) {
            quotas.clear();
        }
        quotas.insert(tenant.to_owned(), (quota, Instant::now()));
        Ok(quota)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
