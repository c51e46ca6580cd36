//! `/api/v1/proxies`: the proxy pools (of the settings and made through the API), their
//! tiers, and each proxy's health and use as this process sees them. Admin only;
//! credentials are never shown.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::auth::Operator;
use crate::proxy::{PoolView, UnreadablePool};

/// Every pool, cheapest tier first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProxyPools {
    /// The pools.
    pub pools: Vec<PoolView>,
    /// Pools made through the API that this process cannot use, and why (e.g. sealed under
    /// a key that is neither its SECRETS_KEY nor one of its SECRETS_OLD_KEYS).
    pub unreadable: Vec<UnreadablePool>,
}

/// `GET /api/v1/proxies`: the pools and their proxies' health.
#[utoipa::path(
    get,
    operation_id = "list_proxies",
    path = "/api/v1/proxies",
    tag = "proxies",
    responses((status = 200, description = "The proxy pools", body = ProxyPools))
)]
pub async fn list(_: Operator, State(state): State<AppState>) -> Json<ProxyPools> {
    state.pools.fresh().await;
    Json(ProxyPools {
        pools: state.pools.views(),
        unreadable: state.pools.unreadable(),
    })
}
