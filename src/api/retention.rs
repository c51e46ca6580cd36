//! `/api/v1/tenants/{tenant}/retention`: how long a tenant's finished jobs are kept, read and
//! set by an admin. Each state's age is `forever` or a duration (`7d`, `36h`); a state left
//! out follows the settings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::auth::Operator;
use super::body::JsonBody;
use super::problem::Problem;
use crate::job::{FieldError, Fields, Problems};
use crate::retention::{
    MAX_RETAIN, MIN_RETAIN, RETAIN_PATTERN, RetainFor, Retention, RetentionOverride,
};

/// One state's age and where it comes from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StateRetention {
    /// `forever`, or a duration such as `7days`.
    pub keep: String,
    /// The age in seconds; absent for `forever`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// `tenant` when an admin set it, `default` when the settings apply.
    #[schema(value_type = String)]
    pub source: &'static str,
}

/// How long a tenant's finished jobs are kept, per terminal state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantRetention {
    /// The tenant.
    pub tenant: String,
    /// After success.
    pub succeeded: StateRetention,
    /// After failing for good.
    pub failed: StateRetention,
    /// After being cancelled.
    pub cancelled: StateRetention,
}

/// What a `PUT` sets: each field an age in seconds, or `forever` or 1 to 9,999 minutes,
/// hours or days (`90m`, `36h`, `7d`); absent or null: the settings apply.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The contract's shape; the body is read field by field.
pub struct RetentionRequest {
    /// After success.
    #[schema(value_type = Option<RetainValue>)]
    succeeded: Option<()>,
    /// After failing for good.
    #[schema(value_type = Option<RetainValue>)]
    failed: Option<()>,
    /// After being cancelled.
    #[schema(value_type = Option<RetainValue>)]
    cancelled: Option<()>,
}

/// An age as the contract writes it: seconds (1 minute to 9,999 days), or text matching
/// [`RETAIN_PATTERN`]. The parser accepts exactly this.
pub struct RetainValue;

impl utoipa::PartialSchema for RetainValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
        let seconds = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .minimum(Some(MIN_RETAIN.as_secs()))
            .maximum(Some(MAX_RETAIN.as_secs()));
        let text = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .pattern(Some(RETAIN_PATTERN));
        OneOfBuilder::new().item(seconds).item(text).into()
    }
}

impl utoipa::ToSchema for RetainValue {}

/// One age from the body: whole seconds, or the text form.
fn retain_value(value: &Value) -> Result<RetainFor, (&'static str, String)> {
    match value {
        Value::String(text) => text.parse().map_err(|e| ("invalid", e)),
        // JSON Schema counts 60.0 as an integer: so does this.
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..1e15).contains(f))
                    .map(|f| f as u64)
            })
            .ok_or_else(|| ("invalid", format!("{n} is not a whole number of seconds")))
            .and_then(|seconds| RetainFor::from_seconds(seconds).map_err(|e| ("out_of_range", e))),
        other => Err(crate::job::fields::wrong_type(
            "a string or a number of seconds",
            other,
        )),
    }
}

fn answer(tenant: String, defaults: Retention, own: RetentionOverride) -> TenantRetention {
    let one = |own: Option<RetainFor>, default: RetainFor| {
        let keep = own.unwrap_or(default);
        StateRetention {
            keep: keep.to_string(),
            seconds: keep.age().map(|age| age.as_secs()),
            source: if own.is_some() { "tenant" } else { "default" },
        }
    };
    TenantRetention {
        tenant,
        succeeded: one(own.succeeded, defaults.succeeded),
        failed: one(own.failed, defaults.failed),
        cancelled: one(own.cancelled, defaults.cancelled),
    }
}

fn tenant_name(tenant: &str) -> Result<(), Problem> {
    crate::auth::check_tenant(tenant)
        .map_err(|detail| Problem::bad_parameter("tenant", "invalid", detail))
}

/// `GET /api/v1/tenants/{tenant}/retention`.
#[utoipa::path(
    get,
    operation_id = "get_retention",
    path = "/api/v1/tenants/{tenant}/retention",
    tag = "tenants",
    params(("tenant" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 200, description = "How long the tenant's finished jobs are kept", body = TenantRetention))
)]
pub async fn get(
    _: Operator,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<TenantRetention>, Problem> {
    tenant_name(&tenant)?;
    let own = state.dispatcher.store().retention_of(&tenant).await?;
    let defaults = state.purger.defaults();
    Ok(Json(answer(tenant, defaults, own.unwrap_or_default())))
}

/// `PUT /api/v1/tenants/{tenant}/retention` with `{"succeeded", "failed", "cancelled"}`.
#[utoipa::path(
    put,
    operation_id = "set_retention",
    path = "/api/v1/tenants/{tenant}/retention",
    tag = "tenants",
    params(("tenant" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$")),
    request_body = RetentionRequest,
    responses((status = 200, description = "The tenant's retention, now its own where set", body = TenantRetention))
)]
pub async fn put(
    _: Operator,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<TenantRetention>, Problem> {
    tenant_name(&tenant)?;
    let own = parse(&body).map_err(Problem::invalid_fields)?;
    state
        .dispatcher
        .store()
        .set_retention(&tenant, &own)
        .await?;
    Ok(Json(answer(tenant, state.purger.defaults(), own)))
}

/// `DELETE /api/v1/tenants/{tenant}/retention`: back to the settings.
#[utoipa::path(
    delete,
    operation_id = "delete_retention",
    path = "/api/v1/tenants/{tenant}/retention",
    tag = "tenants",
    params(("tenant" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 204, description = "The settings apply again"),
        (status = 404, description = "The tenant had no retention of its own", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    _: Operator,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<StatusCode, Problem> {
    tenant_name(&tenant)?;
    if !state.dispatcher.store().clear_retention(&tenant).await? {
        return Err(Problem::not_found(format!(
            "tenant {tenant} has no retention of its own"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn parse(body: &Value) -> Result<RetentionOverride, Vec<FieldError>> {
    let problems = Problems::new();
    let parsed = Fields::of(body, "", &problems).and_then(|mut f| {
        let mut age = |key: &'static str| f.with(key, retain_value);
        let (succeeded, failed, cancelled) = (age("succeeded"), age("failed"), age("cancelled"));
        f.finish();
        Some(RetentionOverride {
            succeeded: succeeded?,
            failed: failed?,
            cancelled: cancelled?,
        })
    });
    problems.verdict(parsed)
}
