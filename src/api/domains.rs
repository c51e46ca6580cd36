//! `/api/v1/domains`: what the memory knows of each registrable domain, its pace, and the
//! operator's overrides. Admin only: the list shows which sites every tenant reaches.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use super::auth::Operator;
use super::body::JsonBody;
use super::problem::Problem;
use crate::job::Step;
use crate::job::target::{is_dns_name, normalize_host};
use crate::memory::evidence::WINDOW;
use crate::memory::{
    DecisionRecord, DomainPolicy, DomainSpend, DomainSummary, Evidence, Observation, RungStats,
    Subject, registrable,
};

/// Domains per page by default, and at most.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;
/// Decisions shown per domain.
const RECENT_DECISIONS: u32 = 20;

/// One page of domains, by name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainsPage {
    /// Domains, in name order.
    pub domains: Vec<DomainSummary>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next_after: Option<String>,
}

/// What is believed about each step of the ladder, by its name (`stealth`, `stealth via
/// residential`).
type RungTable = BTreeMap<Step, RungStats>;

/// One host under a domain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HostStats {
    /// The host.
    pub host: String,
    /// Per rung.
    #[schema(value_type = Object)]
    pub strategies: RungTable,
}

/// A domain's pace: the limits in force and the live state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pace {
    /// Requests in flight at once across every worker.
    pub cap: u32,
    /// The configured rate (requests per second); `null`: unlimited.
    pub rate: Option<f64>,
    /// Requests that may go at once above the rate.
    pub burst: u32,
    /// The least time between two starts.
    pub min_delay_ms: Option<u32>,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Until when every worker backs off, when it does.
    pub backoff_until: Option<DateTime<Utc>>,
    /// The rate a throttle lowered it to, while it climbs back.
    pub learned_rate: Option<f64>,
}

/// Everything known of one domain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainDetail {
    /// The registrable domain.
    pub domain: String,
    /// Per rung, over every host of the domain (the prior for a host never seen).
    #[schema(value_type = Object)]
    pub strategies: RungTable,
    /// Per host.
    pub hosts: Vec<HostStats>,
    /// The pace.
    pub pace: Pace,
    /// The operator's overrides, when set.
    pub policy: Option<DomainPolicy>,
    /// The latest decisions `auto` made here, newest first.
    pub recent_decisions: Vec<DecisionRecord>,
    /// What jobs spent here, summed over every attempt: judge the ladder's choices by it.
    pub spent: DomainSpend,
}

/// A domain's overrides as set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainPolicyView {
    /// The registrable domain.
    pub domain: String,
    /// The overrides.
    pub policy: DomainPolicy,
}

/// The registrable domain a path names, or a problem saying which one to use.
fn domain_param(raw: &str) -> Result<String, Problem> {
    let bad = |code, detail: String| Problem::bad_parameter("domain", code, detail);
    let name = normalize_host(raw);
    let literal = name.parse::<std::net::IpAddr>().is_ok();
    if !literal && !is_dns_name(&name) {
        return Err(bad("invalid", "not a host name".to_owned()));
    }
    let domain = registrable(&name);
    if domain != name {
        return Err(bad(
            "not_registrable",
            format!("{name} is a host under {domain}; domains are named by their registrable part"),
        ));
    }
    Ok(domain)
}

fn page_query(raw: Option<&str>) -> Result<(Option<String>, u32), Problem> {
    let (mut after, mut limit) = (None, DEFAULT_PAGE);
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let bad = |code, detail: String| Problem::bad_parameter(&key, code, detail);
        match key.as_ref() {
            "limit" => limit = super::paging::limit(&value, MAX_PAGE)?,
            "after" if value.len() <= 253 => after = Some(normalize_host(&value)),
            "after" => return Err(bad("too_long", "at most 253 characters".to_owned())),
            _ => {
                return Err(bad(
                    "unknown_parameter",
                    "unknown parameter; expected limit or after".to_owned(),
                ));
            }
        }
    }
    Ok((after, limit))
}

/// `GET /api/v1/domains`: every domain the memory knows or an override names, by name.
#[utoipa::path(
    get,
    operation_id = "list_domains",
    path = "/api/v1/domains",
    tag = "domains",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Domains per page [default: 50]"),
        ("after" = Option<String>, Query, max_length = 253, description = "The next_after of the previous page"),
    ),
    responses((status = 200, description = "One page of domains", body = DomainsPage))
)]
pub async fn list(
    _: Operator,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<DomainsPage>, Problem> {
    let (after, limit) = page_query(raw.as_deref())?;
    let index = state.domains.index();
    let mut domains = index.domains(after.as_deref(), limit + 1).await?;
    let next_after = if domains.len() > limit as usize {
        domains.truncate(limit as usize);
        domains.last().map(|d| d.domain.clone())
    } else {
        None
    };
    Ok(Json(DomainsPage {
        domains,
        next_after,
    }))
}

fn by_host(observations: &[Observation]) -> Vec<HostStats> {
    let mut hosts: BTreeMap<&str, Vec<Observation>> = BTreeMap::new();
    for seen in observations {
        hosts.entry(&seen.host).or_default().push(seen.clone());
    }
    let now = Utc::now();
    hosts
        .into_iter()
        .map(|(host, seen)| HostStats {
            host: host.to_owned(),
            strategies: Evidence::weigh(&seen, now).rungs,
        })
        .collect()
}

/// `GET /api/v1/domains/{domain}`: per rung and per host, the pace, overrides and decisions.
#[utoipa::path(
    get,
    operation_id = "get_domain",
    path = "/api/v1/domains/{domain}",
    tag = "domains",
    params(("domain" = String, Path, pattern = "^[A-Za-z0-9._:-]{1,253}$", description = "A registrable domain (example.co.uk), or an IP address")),
    responses(
        (status = 200, description = "What is known of the domain", body = DomainDetail),
        (status = 404, description = "Nothing is known of it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    _: Operator,
    State(state): State<AppState>,
    Path(domain): Path<String>,
) -> Result<Json<DomainDetail>, Problem> {
    let domain = domain_param(&domain)?;
    let index = state.domains.index();
    let observations = index.recent(Subject::Domain(&domain), WINDOW).await?;
    let record = index.domain_record(&domain).await?;
    if observations.is_empty() && record.is_none() {
        return Err(Problem::not_found(format!(
            "nothing is known of {domain}: no job reached it and no policy names it"
        )));
    }
    let policy = record.and_then(|r| r.policy);
    let (effective, limits) = state.domains.limits(&domain).await;
    let live = state.domains.view(&domain).await?;
    let pace = Pace {
        cap: limits.cap,
        rate: effective.rate,
        burst: limits.burst,
        min_delay_ms: effective.min_delay_ms,
        in_flight: live.in_flight,
        backoff_until: live
            .backoff_until_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        learned_rate: live.learned_rate,
    };
    Ok(Json(DomainDetail {
        strategies: Evidence::weigh(&observations, Utc::now()).rungs,
        hosts: by_host(&observations),
        pace,
        policy,
        recent_decisions: index.decisions(&domain, RECENT_DECISIONS).await?,
        spent: index.spend(&domain).await?,
        domain,
    }))
}

/// `PUT /api/v1/domains/{domain}/policy`: sets the domain's overrides (every field
/// optional; what is absent keeps its default). Workers apply it within two seconds.
#[utoipa::path(
    put,
    operation_id = "set_domain_policy",
    path = "/api/v1/domains/{domain}/policy",
    tag = "domains",
    params(("domain" = String, Path, pattern = "^[A-Za-z0-9._:-]{1,253}$", description = "A registrable domain, or an IP address")),
    request_body = DomainPolicy,
    responses((status = 200, description = "The overrides now in force", body = DomainPolicyView))
)]
pub async fn put_policy(
    _: Operator,
    State(state): State<AppState>,
    Path(domain): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<DomainPolicyView>, Problem> {
    let domain = domain_param(&domain)?;
    let policy = DomainPolicy::parse(&body).map_err(Problem::invalid_fields)?;
    state.domains.index().set_policy(&domain, &policy).await?;
    state.domains.forget();
    Ok(Json(DomainPolicyView { domain, policy }))
}

/// `DELETE /api/v1/domains/{domain}/policy`: back to the defaults.
#[utoipa::path(
    delete,
    operation_id = "delete_domain_policy",
    path = "/api/v1/domains/{domain}/policy",
    tag = "domains",
    params(("domain" = String, Path, pattern = "^[A-Za-z0-9._:-]{1,253}$", description = "A registrable domain, or an IP address")),
    responses(
        (status = 204, description = "The defaults apply again"),
        (status = 404, description = "The domain had no overrides", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_policy(
    _: Operator,
    State(state): State<AppState>,
    Path(domain): Path<String>,
) -> Result<Response, Problem> {
    let domain = domain_param(&domain)?;
    if !state.domains.index().clear_policy(&domain).await? {
        return Err(Problem::not_found(format!("{domain} has no overrides")));
    }
    state.domains.forget();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_named_by_their_registrable_part() {
        assert_eq!(
            domain_param("Example.CO.uk").ok().as_deref(),
            Some("example.co.uk")
        );
        assert_eq!(domain_param("127.0.0.1").ok().as_deref(), Some("127.0.0.1"));
        assert!(domain_param("www.example.com").is_err());
        assert!(domain_param("not a name").is_err());
        assert!(
            domain_param("co.uk").is_ok(),
            "a public suffix names itself"
        );
    }
}
