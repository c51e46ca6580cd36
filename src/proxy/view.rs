//! What the API, the dashboard and the metrics show of a pool: its proxies' names, where
//! they are, their health and use. Never a credential.

use std::time::Instant;

use serde::Serialize;

use super::pool::{Pool, Source};
use super::spec::Rotation;
use super::stored::StoredPool;
use crate::engine::egress::UpstreamScheme;

/// A pool as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PoolView {
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: String,
    /// Where it was made: `settings` (PROXY_POOLS) or `api`.
    pub source: Source,
    /// For a pool made through the API, the id of the key its proxies are sealed under (the
    /// one in the log line `secrets are sealed under SECRETS_KEY` once rotated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_with: Option<String>,
    /// How it spreads attempts.
    pub rotation: Rotation,
    /// The most attempts one proxy carries at once.
    pub max_per_proxy: u32,
    /// Its proxies.
    pub proxies: Vec<ProxyView>,
}

/// A pool made through the API that this process cannot use, and why (e.g. sealed under a
/// key it does not have).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnreadablePool {
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: String,
    /// Why it is not used.
    pub reason: String,
}

impl UnreadablePool {
    pub(super) fn new(row: &StoredPool, reason: String) -> UnreadablePool {
        UnreadablePool {
            name: row.name.clone(),
            tier: row.tier.clone(),
            reason,
        }
    }
}

/// One proxy as shown (its credentials never are).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProxyView {
    /// Its name.
    pub name: String,
    /// `http` or `socks5`.
    #[schema(value_type = String)]
    pub scheme: UpstreamScheme,
    /// `host:port`.
    pub address: String,
    /// Whether it has credentials.
    pub authenticated: bool,
    /// `ok`, or `benched` after failures.
    pub state: &'static str,
    /// How long its bench still runs, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub benched_ms: Option<u64>,
    /// Attempts it carries now.
    pub in_flight: u32,
    /// Attempts it was given.
    pub attempts: u64,
    /// Connections it carried.
    pub connections: u64,
    /// Times it failed.
    pub failures: u64,
    /// Why it last failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl PoolView {
    pub(super) fn of(pool: &Pool) -> PoolView {
        let now = Instant::now();
        let health = pool.health.lock().map(|h| h.clone()).unwrap_or_default();
        let proxies = pool
            .spec
            .proxies
            .iter()
            .zip(health)
            .map(|(proxy, h)| {
                let benched_ms = h
                    .benched_until
                    .filter(|until| *until > now)
                    .map(|until| (until - now).as_millis() as u64);
                ProxyView {
                    name: proxy.name.clone(),
                    scheme: proxy.scheme,
                    address: format!("{}:{}", proxy.host, proxy.port),
                    authenticated: proxy.credentials.is_some(),
                    state: if benched_ms.is_some() {
                        "benched"
                    } else {
                        "ok"
                    },
                    benched_ms,
                    in_flight: h.in_flight,
                    attempts: h.attempts,
                    connections: h.connections,
                    failures: h.failed,
                    last_error: h.last_error,
                }
            })
            .collect();
        PoolView {
            name: pool.spec.name.clone(),
            tier: pool.spec.tier.clone(),
            source: pool.source,
            sealed_with: None,
            rotation: pool.spec.rotation,
            max_per_proxy: pool.spec.max_per_proxy,
            proxies,
        }
    }
}
