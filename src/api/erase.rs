//! `DELETE /api/v1/jobs/{id}`: erases one finished job now, with its timeline, artifacts
//! (rows and objects), idempotency record and webhook delivery.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::auth::Writer;
use super::jobs::{no_such_job, parse_id};
use super::problem::Problem;
use crate::auth::Scope;
use crate::retention::EraseRefused;

/// Erases a finished job; a queued or running one must be cancelled first.
#[utoipa::path(
    delete,
    operation_id = "delete_job",
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 204, description = "The job and everything of its are gone"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is queued or running: cancel it first", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    Writer(caller): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = parse_id(&id)?;
    let tenant = match caller.scope() {
        Scope::Tenant(tenant) => Some(tenant),
        Scope::All => None,
    };
    match state.purger.erase(id, tenant).await? {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(EraseRefused::Missing) => Err(no_such_job(id)),
        Err(EraseRefused::Unfinished(job_state)) => Err(Problem::conflict(format!(
            "job {id} is {job_state}: cancel it first, then delete it"
        ))),
    }
}
