//! The domain memory as workers and the API use it: where a job starts and how far it may
//! climb, what it taught, and whether its domain may take it now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::warn;
use uuid::Uuid;

use super::choose::{Ladder, choose};
use super::evidence::{Evidence, Observation, WINDOW};
use super::pace::rule::DEFAULT_HOLD_MS;
use super::{
    Admission, DecisionRecord, DomainPolicy, DomainRecord, Limits, MemoryIndex, PaceView, Pacer,
    Seed, Subject, Throttle, Verdict, registrable,
};
use crate::job::{Step, Strategy, StrategyDecision, TriedRung};
use crate::queue::QueueError;
use crate::ttl_cache::TtlCache;

/// How long a process trusts its copy of the domains' overrides and learned pace: a policy
/// set through the API reaches every worker within this.
pub const RECORDS_TTL: Duration = Duration::from_secs(2);
/// How long a domain's typical latency is remembered for pacing, and for how many domains.
const LATENCY_TTL: Duration = Duration::from_secs(600);
const LATENCY_DOMAINS: usize = 10_000;

/// Where a job starts, and how far it may climb when blocked.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// The rungs open to it.
    pub ladder: Ladder,
    /// The step it starts on.
    pub first: Step,
    /// Why (only `auto` jobs choose).
    pub reason: Option<String>,
    /// What the choice rested on (`auto` only), for deciding whether to probe after.
    pub evidence: Evidence,
}

/// What a job can reach the web with: whether it needs a browser, whether this worker has
/// one, and the proxy tiers `auto` may climb into (none when the job named its own proxy).
#[derive(Debug, Clone, Copy)]
pub struct Reach<'a> {
    /// The kind cannot run without a browser.
    pub needs_browser: bool,
    /// This worker has a browser.
    pub has_browser: bool,
    /// The tiers, cheapest first.
    pub tiers: &'a [String],
}

#[derive(Default)]
struct Records {
    loaded: Option<Instant>,
    by_domain: Arc<HashMap<String, DomainRecord>>,
}

/// The domain memory of one process.
pub struct Domains {
    index: Arc<dyn MemoryIndex>,
    pacer: Arc<dyn Pacer>,
    records: Mutex<Records>,
    loading: tokio::sync::Mutex<()>,
    latency: TtlCache<String, i64>,
}

impl std::fmt::Debug for Domains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domains").finish_non_exhaustive()
    }
}

impl Domains {
    /// The memory kept in `index`, paced by `pacer`.
    pub fn new(index: Arc<dyn MemoryIndex>, pacer: Arc<dyn Pacer>) -> Domains {
        Domains {
            index,
            pacer,
            records: Mutex::new(Records::default()),
            loading: tokio::sync::Mutex::new(()),
            latency: TtlCache::new(LATENCY_TTL, LATENCY_DOMAINS),
        }
    }

    /// The index.
    pub fn index(&self) -> &Arc<dyn MemoryIndex> {
        &self.index
    }

    /// The pacer.
    pub fn pacer(&self) -> &Arc<dyn Pacer> {
        &self.pacer
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the next lookup read the overrides again (after this process changed one).
    pub fn forget(&self) {
        self.records().loaded = None;
    }

    /// A domain's overrides and learned pace, from a copy at most [`RECORDS_TTL`] old.
    pub async fn record(&self, domain: &str) -> DomainRecord {
        let (fresh, never) = {
            let records = self.records();
            let fresh = records.loaded.is_some_and(|at| at.elapsed() < RECORDS_TTL);
            (fresh, records.loaded.is_none())
        };
        if !fresh {
            // One load at a time; others use the copy they have unless there is none.
            let guard = if never {
                Some(self.loading.lock().await)
            } else {
                self.loading.try_lock().ok()
            };
            if guard.is_some() {
                self.reload().await;
            }
        }
        self.records()
            .by_domain
            .get(domain)
            .cloned()
            .unwrap_or_default()
    }

    async fn reload(&self) {
        if self
            .records()
            .loaded
            .is_some_and(|at| at.elapsed() < RECORDS_TTL)
        {
            return;
        }
        match self.index.domain_records().await {
            Ok(rows) => {
                let mut records = self.records();
                records.by_domain = Arc::new(rows.into_iter().collect());
                records.loaded = Some(Instant::now());
            }
            Err(e) => {
                warn!(error = %e, "cannot read the domains' overrides; keeping the last copy")
            }
        }
    }

    /// The pacing limits of `domain` now.
    pub async fn limits(&self, domain: &str) -> (DomainPolicy, Limits) {
        let record = self.record(domain).await;
        let policy = record.policy.unwrap_or_default();
        let limits = Limits {
            cap: policy.cap(),
            rate_milli: policy
                .rate
                .map_or(0, |rate| ((rate * 1000.0).round() as i64).max(1)),
            burst: policy.burst(),
            min_delay_ms: i64::from(policy.min_delay_ms.unwrap_or(0)),
            hold_ms: self
                .latency
                .get(&domain.to_owned())
                .unwrap_or(DEFAULT_HOLD_MS),
            seed: record.seed,
        };
        (policy, limits)
    }

    /// Asks whether `job` (to `host`) may start now; on admission it holds a slot of its
    /// domain for `lease`.
    pub async fn admit(
        &self,
        host: &str,
        job: Uuid,
        lease: Duration,
    ) -> Result<Admission, QueueError> {
        let domain = registrable(host);
        let (_, limits) = self.limits(&domain).await;
        self.pacer.admit(&domain, job, lease, &limits).await
    }

    /// Extends the slot `job` holds at `host`'s domain.
    pub async fn renew(&self, host: &str, job: Uuid, lease: Duration) {
        if let Err(e) = self.pacer.renew(&registrable(host), job, lease).await {
            warn!(error = %e, "cannot renew the domain slot; it lapses with the lease");
        }
    }

    /// Gives the slot `job` holds at `host`'s domain back.
    pub async fn release(&self, host: &str, job: Uuid) {
        if let Err(e) = self.pacer.release(&registrable(host), job).await {
            warn!(error = %e, "cannot release the domain slot; it lapses with the lease");
        }
    }

    /// Where a job with `strategy` to `host` starts: a fixed strategy is its own rung;
    /// `auto` chooses from the host's record (its domain's when the host is new), climbing
    /// into `tiers` (cheapest first) after the direct rungs.
    pub async fn start(&self, host: &str, strategy: Strategy, reach: Reach<'_>) -> Start {
        if let Some(rung) = strategy.rung() {
            return Start {
                ladder: Ladder::single(rung.into()),
                first: rung.into(),
                reason: None,
                evidence: Evidence::default(),
            };
        }
        let domain = registrable(host);
        let policy = self.record(&domain).await.policy.unwrap_or_default();
        let ladder = Ladder::open(reach.needs_browser, reach.has_browser, &policy, reach.tiers);
        let (evidence, prior) = self.evidence(host, &domain).await;
        let choice = choose(&ladder, &evidence, prior);
        let reason = match (policy.pin, ladder.rungs()) {
            (Some(pin), [_]) => format!("{pin} is pinned by the domain's policy"),
            (Some(pin), _) => format!("{pin} is pinned by the domain's policy; {}", choice.reason),
            (None, _) => choice.reason,
        };
        Start {
            ladder,
            first: choice.rung,
            reason: Some(reason),
            evidence,
        }
    }

    /// The host's evidence, or its domain's when the host has none (`true`: the prior).
    async fn evidence(&self, host: &str, domain: &str) -> (Evidence, bool) {
        let now = Utc::now();
        let host_seen = self.recent(Subject::Host(host)).await;
        if !host_seen.is_empty() {
            return (Evidence::weigh(&host_seen, now), false);
        }
        (
            Evidence::weigh(&self.recent(Subject::Domain(domain)).await, now),
            true,
        )
    }

    async fn recent(&self, of: Subject<'_>) -> Vec<Observation> {
        self.index.recent(of, WINDOW).await.unwrap_or_else(|e| {
            warn!(error = %e, "cannot read the domain memory; choosing as if new");
            Vec::new()
        })
    }

    /// Tells every worker that `host`'s domain throttled: back off, halve the rate, and keep
    /// the learned pace in the database.
    pub async fn throttled(&self, host: &str, retry_after_ms: Option<u64>) {
        let domain = registrable(host);
        let (_, limits) = self.limits(&domain).await;
        let throttle = Throttle {
            retry_after_ms: retry_after_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        };
        let view = match self.pacer.throttled(&domain, &throttle, &limits).await {
            Ok(view) => view,
            Err(e) => return warn!(error = %e, "cannot record the throttle in the pacer"),
        };
        let seed = Seed {
            learned_milli: view.learned_rate.map_or(0, |r| (r * 1000.0).round() as i64),
            backoff_until_ms: view.backoff_until_ms.unwrap_or(0),
        };
        if let Err(e) = self.index.save_pace(&domain, seed).await {
            warn!(error = %e, "cannot keep the learned pace");
        }
    }

    /// Records what a job's attempts taught, and the decision `auto` made for it.
    pub async fn learned(&self, observations: &[Observation], decision: Option<&StrategyDecision>) {
        let Some(first) = observations.first() else {
            return;
        };
        let domain = registrable(&first.host);
        if let Some(latency) = observations
            .iter()
            .rev()
            .find(|o| o.verdict == Verdict::Success)
            .map(|o| i64::from(o.latency_ms))
        {
            self.latency.put(domain.clone(), latency);
        }
        if let Err(e) = self.index.record(observations).await {
            warn!(error = %e, "cannot record what the job taught about its site");
        }
        if let Some(decision) = decision {
            let record = DecisionRecord {
                job_id: first.job_id,
                host: first.host.clone(),
                decision: decision.clone(),
                at: Utc::now(),
            };
            if let Err(e) = self.index.record_decision(&domain, &record).await {
                warn!(error = %e, "cannot keep the strategy decision");
            }
        }
    }

    /// Adds what one attempt at `host` spent to its domain's sums.
    pub async fn spent(&self, host: &str, spent: &crate::job::Spent) {
        if let Err(e) = self.index.add_spend(&registrable(host), spent).await {
            warn!(error = %e, "cannot add what the attempt spent to its domain's sums");
        }
    }

    /// A domain's pace now.
    pub async fn view(&self, domain: &str) -> Result<PaceView, QueueError> {
        self.pacer.view(domain).await
    }
}

/// The `strategy_decision` of a job's result: where it started, what it tried, why, and the
/// probe of a cheaper rung that followed, if any.
pub fn decision(
    first: &Step,
    tried: &[TriedRung],
    reason: &str,
    probe: Option<TriedRung>,
) -> StrategyDecision {
    StrategyDecision {
        chosen: first.rung,
        chosen_proxy_tier: first.tier.clone(),
        tried: tried.to_vec(),
        reason: reason.to_owned(),
        probe,
    }
}
