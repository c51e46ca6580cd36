//! The domain memory: what each site taught. Every finished attempt is classified
//! ([`Verdict`]) and recorded per host; `auto` chooses the cheapest rung likely to get
//! through from that record ([`choose`]), and every registrable domain is paced across all
//! workers ([`pace`]). The database holds the truth (observations, decisions, overrides,
//! the learned pace); Redis holds the live pace and can be lost.

pub mod choose;
pub mod domain;
pub mod evidence;
pub mod pace;
pub mod policy;
mod service;
pub mod spend;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::job::{Spent, StrategyDecision};
use crate::persist::StoreError;

pub use crate::job::Verdict;
pub use choose::{Choice, Ladder};
pub use domain::registrable;
pub use evidence::{Evidence, Observation, RungStats};
pub use pace::{Admission, Limits, LocalPacer, PaceView, Pacer, RedisPacer, Seed, Throttle};
pub use policy::DomainPolicy;
pub use service::{Domains, RECORDS_TTL, Reach, Start, decision};
pub use spend::DomainSpend;

/// Whose observations to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// One host's.
    Host(&'a str),
    /// Every host's of a registrable domain.
    Domain(&'a str),
}

/// One decision `auto` made, as kept for the API.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DecisionRecord {
    /// The job.
    pub job_id: Uuid,
    /// The host.
    pub host: String,
    /// The decision, as in the job's result.
    pub decision: StrategyDecision,
    /// When it finished.
    pub at: DateTime<Utc>,
}

/// A domain in the list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DomainSummary {
    /// The registrable domain.
    pub domain: String,
    /// Hosts seen under it (in the kept window).
    pub hosts: u64,
    /// Observations kept.
    pub observations: u64,
    /// The latest observation.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The operator's overrides, when set.
    pub policy: Option<DomainPolicy>,
}

/// A domain's overrides and learned pace, as the database keeps them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainRecord {
    /// The overrides (`None`: none set).
    pub policy: Option<DomainPolicy>,
    /// The learned pace.
    pub seed: Seed,
}

/// Where the memory is kept (the job store's database).
#[async_trait]
pub trait MemoryIndex: Send + Sync {
    /// Records finished attempts (and trims each host's record to its window).
    async fn record(&self, observations: &[Observation]) -> Result<(), StoreError>;
    /// The newest observations of a host or domain, newest first.
    async fn recent(&self, of: Subject<'_>, limit: u32) -> Result<Vec<Observation>, StoreError>;
    /// Keeps the decision `auto` made for a job.
    async fn record_decision(
        &self,
        domain: &str,
        record: &DecisionRecord,
    ) -> Result<(), StoreError>;
    /// A domain's newest decisions, newest first.
    async fn decisions(&self, domain: &str, limit: u32) -> Result<Vec<DecisionRecord>, StoreError>;
    /// Every domain with overrides or a learned pace.
    async fn domain_records(&self) -> Result<Vec<(String, DomainRecord)>, StoreError>;
    /// One domain's overrides and learned pace.
    async fn domain_record(&self, domain: &str) -> Result<Option<DomainRecord>, StoreError>;
    /// Sets a domain's overrides.
    async fn set_policy(&self, domain: &str, policy: &DomainPolicy) -> Result<(), StoreError>;
    /// Removes a domain's overrides; `false` when it had none.
    async fn clear_policy(&self, domain: &str) -> Result<bool, StoreError>;
    /// Keeps a domain's learned pace (after a throttle).
    async fn save_pace(&self, domain: &str, seed: Seed) -> Result<(), StoreError>;
    /// Adds what one attempt at `domain` spent to the domain's sums.
    async fn add_spend(&self, domain: &str, spent: &Spent) -> Result<(), StoreError>;
    /// What jobs spent at `domain`, summed.
    async fn spend(&self, domain: &str) -> Result<DomainSpend, StoreError>;
    /// Domains known, by name, after `after`.
    async fn domains(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DomainSummary>, StoreError>;
}
