//! `/api/v1/profiles`: a tenant's profiles, as metadata only (origins, cookie count, sizes,
//! versions, when last used). No answer ever holds a cookie or storage value: the state
//! leaves the store only sealed, and only to a worker running a job that names it.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::auth::{Reader, Writer};
use super::body::JsonBody;
use super::problem::Problem;
use crate::engine::options::{PROFILE_NAME_RULE, is_profile_name};
use crate::job::{Fields, Problems};
use crate::memory::Admission;
use crate::profile::{ProfileError, ProfileView, lease_key, writer_limits};

/// How long a restore may hold the profile's writer lease.
const RESTORE_LEASE: Duration = Duration::from_secs(30);

/// `GET /api/v1/profiles`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileList {
    /// The tenant's profiles, by name.
    pub profiles: Vec<ProfileView>,
}

/// `POST /api/v1/profiles/{name}/restore`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The kept version to make current again (as a new version).
    #[schema(minimum = 1)]
    pub version: u32,
}

fn profile_name(name: &str) -> Result<(), Problem> {
    if is_profile_name(name) {
        Ok(())
    } else {
        Err(Problem::bad_parameter("name", "invalid", PROFILE_NAME_RULE))
    }
}

fn not_found(name: &str) -> Problem {
    Problem::not_found(format!("no profile is named {name:?}"))
}

/// `GET /api/v1/profiles`: the caller's tenant's profiles.
#[utoipa::path(
    get,
    operation_id = "list_profiles",
    path = "/api/v1/profiles",
    tag = "profiles",
    responses((status = 200, description = "The tenant's profiles (metadata only)", body = ProfileList))
)]
pub async fn list(
    Reader(caller): Reader,
    State(state): State<AppState>,
) -> Result<Json<ProfileList>, Problem> {
    let profiles = state.profiles.index().list_profiles(&caller.tenant).await?;
    Ok(Json(ProfileList { profiles }))
}

/// `GET /api/v1/profiles/{name}`: one profile, with its kept versions.
#[utoipa::path(
    get,
    operation_id = "get_profile",
    path = "/api/v1/profiles/{name}",
    tag = "profiles",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The profile and its versions (metadata only)", body = ProfileView),
        (status = 404, description = "No profile of that name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    Reader(caller): Reader,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ProfileView>, Problem> {
    profile_name(&name)?;
    let view = state
        .profiles
        .index()
        .profile(&caller.tenant, &name)
        .await?;
    view.map(Json).ok_or_else(|| not_found(&name))
}

/// `DELETE /api/v1/profiles/{name}`: the profile and every version of it are gone; a job
/// naming it afterwards fails, saying so (a saving job makes it anew).
#[utoipa::path(
    delete,
    operation_id = "delete_profile",
    path = "/api/v1/profiles/{name}",
    tag = "profiles",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")),
    responses(
        (status = 204, description = "The profile is gone"),
        (status = 404, description = "No profile of that name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    Writer(caller): Writer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    profile_name(&name)?;
    if state
        .profiles
        .index()
        .delete_profile(&caller.tenant, &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(&name))
    }
}

/// `POST /api/v1/profiles/{name}/restore`: a kept version becomes current again, as the
/// profile's next version (the versions after it stay kept, and can be restored in turn).
#[utoipa::path(
    post,
    operation_id = "restore_profile",
    path = "/api/v1/profiles/{name}/restore",
    tag = "profiles",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")),
    request_body = RestoreRequest,
    responses(
        (status = 200, description = "The profile, the restored state current", body = ProfileView),
        (status = 404, description = "No profile of that name, or no such version kept", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A job is saving the profile now, or the service has no SECRETS_KEY", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn restore(
    Writer(caller): Writer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<ProfileView>, Problem> {
    profile_name(&name)?;
    let version = parse_restore(&body)?;
    let (tenant, holder) = (&caller.tenant, Uuid::now_v7());
    // A restore is a write like a job's save: it takes the writer lease, so a job saving
    // meanwhile cannot store its state over the restored one.
    let key = lease_key(tenant, &name);
    let pacer = state.domains.pacer();
    let admitted = pacer
        .admit(&key, holder, RESTORE_LEASE, &writer_limits())
        .await;
    if let Ok(Admission::Deferred { .. }) = admitted {
        return Err(Problem::conflict(format!(
            "a job is saving profile {name:?} now; restore it once that job is done"
        )));
    }
    let restored = state.profiles.restore(tenant, &name, version).await;
    if admitted.is_ok() {
        let _ = pacer.release(&key, holder).await;
    }
    restored.map_err(|e| restore_problem(&name, e))?;
    let view = state.profiles.index().profile(tenant, &name).await?;
    view.map(Json).ok_or_else(|| not_found(&name))
}

fn parse_restore(body: &Value) -> Result<u32, Problem> {
    let problems = Problems::new();
    let version = Fields::of(body, "", &problems).and_then(|mut f| {
        let version = f.int("version", 1..=i64::from(u32::MAX));
        if version == Some(None) {
            f.report("version", "missing", "version is required");
        }
        f.finish();
        version.flatten()
    });
    problems
        .verdict(version)
        .map(|version| version as u32)
        .map_err(Problem::invalid_fields)
}

fn restore_problem(name: &str, error: ProfileError) -> Problem {
    match error {
        ProfileError::Store(e) => e.into(),
        ProfileError::NotFound(_) => not_found(name),
        ProfileError::NoVersion(..) => Problem::not_found(error.to_string()),
        ProfileError::NoKey => Problem::conflict(error.to_string()),
        other => {
            tracing::warn!(profile = name, error = %other, "a profile could not be restored");
            Problem::conflict(other.to_string())
        }
    }
}
