//! `/api/v1/proxies`: the proxy pools, their tiers, and each proxy's health and use as this
//! process sees them. Admin only; credentials are never shown.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::auth::Operator;
use crate::proxy::PoolView;

/// Every pool, cheapest tier first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProxyPools {
    /// The pools.
    pub pools: Vec<PoolView>,
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
    Json(ProxyPools {
        pools: state.pools.views(),
    })
}
