//! `/api/v1/tenants/{tenant}/quota`: a tenant's quota, read and set by an admin.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::auth::Operator;
use super::body::JsonBody;
use super::problem::Problem;
use crate::job::{FieldError, Fields, Problems};
use crate::quota::{MAX_QUEUED_CAP, MAX_SUBMIT_RATE, Quota};

/// A tenant's quota and where it comes from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantQuota {
    /// The tenant.
    pub tenant: String,
    /// Jobs it may have queued at once.
    pub max_queued: u64,
    /// Submissions per second.
    pub submit_rate: u32,
    /// `tenant` when an admin set it, `default` when the settings apply.
    #[schema(value_type = String)]
    pub source: &'static str,
}

impl TenantQuota {
    fn new(tenant: String, quota: Quota, source: &'static str) -> TenantQuota {
        TenantQuota {
            tenant,
            max_queued: quota.max_queued,
            submit_rate: quota.submit_rate,
            source,
        }
    }
}

fn tenant_name(tenant: &str) -> Result<(), Problem> {
    crate::auth::check_tenant(tenant)
        .map_err(|detail| Problem::bad_parameter("tenant", "invalid", detail))
}

/// `GET /api/v1/tenants/{tenant}/quota`.
#[utoipa::path(
    get,
    operation_id = "get_quota",
    path = "/api/v1/tenants/{tenant}/quota",
    tag = "tenants",
    params(("tenant" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 200, description = "The tenant's quota", body = TenantQuota))
)]
pub async fn get(
    _: Operator,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<TenantQuota>, Problem> {
    tenant_name(&tenant)?;
    let own = state.dispatcher.store().quota(&tenant).await?;
    let quota = own.unwrap_or(state.quotas.defaults());
    let source = if own.is_some() { "tenant" } else { "default" };
    Ok(Json(TenantQuota::new(tenant, quota, source)))
}

/// `PUT /api/v1/tenants/{tenant}/quota` with `{"max_queued", "submit_rate"}`.
#[utoipa::path(
    put,
    operation_id = "set_quota",
    path = "/api/v1/tenants/{tenant}/quota",
    tag = "tenants",
    params(("tenant" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$")),
    request_body = Quota,
    responses((status = 200, description = "The tenant's quota, now its own", body = TenantQuota))
)]
pub async fn put(
    _: Operator,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<TenantQuota>, Problem> {
    tenant_name(&tenant)?;
    let quota = parse(&body).map_err(Problem::invalid_fields)?;
    state.dispatcher.store().set_quota(&tenant, quota).await?;
    state.quotas.forget(&tenant);
    Ok(Json(TenantQuota::new(tenant, quota, "tenant")))
}

/// `DELETE /api/v1/tenants/{tenant}/quota`: back to the defaults.
#[utoipa::path(
    delete,
    operation_id = "delete_quota",
    path = "/api/v1/tenants/{tenant}/quota",
    tag = "tenants",
    params(("tenant" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 204, description = "The defaults apply again"),
        (status = 404, description = "The tenant had no quota of its own", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    _: Operator,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Response, Problem> {
    tenant_name(&tenant)?;
    if !state.dispatcher.store().clear_quota(&tenant).await? {
        return Err(Problem::not_found(format!(
            "tenant {tenant} has no quota of its own"
        )));
    }
    state.quotas.forget(&tenant);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn parse(body: &Value) -> Result<Quota, Vec<FieldError>> {
    let problems = Problems::new();
    let parsed = Fields::of(body, "", &problems).and_then(|mut f| {
        let max_queued = f.int("max_queued", 0..=MAX_QUEUED_CAP as i64);
        let submit_rate = f.int("submit_rate", 0..=i64::from(MAX_SUBMIT_RATE));
        for (name, value) in [("max_queued", max_queued), ("submit_rate", submit_rate)] {
            if value == Some(None) {
                f.report(name, "missing", format!("{name} is required"));
            }
        }
        f.finish();
        Some(Quota {
            max_queued: u64::try_from(max_queued.flatten()?).ok()?,
            submit_rate: u32::try_from(submit_rate.flatten()?).ok()?,
        })
    });
    problems.verdict(parsed)
}
