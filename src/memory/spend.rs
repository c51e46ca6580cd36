//! What jobs spent at a domain, summed over every attempt, so the ladder's choices can be
//! judged against a site's cheapest working rung: a domain that costs residential requests
//! while a direct rung would do shows it here.

use std::collections::BTreeMap;

use serde::Serialize;

/// A domain's spend since its first job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DomainSpend {
    /// Attempts that reached it (every job's attempt, whatever its outcome).
    pub attempts: u64,
    /// Time those attempts held a browser page, in milliseconds.
    pub browser_ms: u64,
    /// Requests sent and pages loaded, by route: `direct`, or the proxy tier they went through.
    pub requests: BTreeMap<String, u64>,
}
