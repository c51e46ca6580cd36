//! `GET /api/v1/jobs/{id}/artifacts` and `GET /api/v1/jobs/{id}/artifacts/{name}`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Reader;
use super::jobs::existing_job;
use super::problem::Problem;
use super::schemas::{ArtifactInfo, ArtifactList, Binary};
use crate::artifact::ArtifactError;

fn artifact_problem(error: ArtifactError) -> Problem {
    match error {
        ArtifactError::Index(e) if e.unavailable => {
            tracing::warn!(error = %e, "artifact index unavailable");
            Problem::unavailable("the database is unavailable; retry later")
        }
        other => {
            tracing::error!(error = %other, "artifact store failed");
            Problem::internal()
        }
    }
}

/// Lists a job's artifacts with their urls.
#[utoipa::path(
    get,
    operation_id = "list_artifacts",
    path = "/api/v1/jobs/{id}/artifacts",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job's artifacts", body = ArtifactList),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    Reader(caller): Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ArtifactList>, Problem> {
    let id = existing_job(&state, &caller, &id).await?;
    let artifacts = state.artifacts.list(id).await.map_err(artifact_problem)?;
    let artifacts = artifacts
        .iter()
        .map(|a| ArtifactInfo {
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            bytes: a.bytes,
            sha256: a.sha256.clone(),
            created_at: a.created_at,
            url: a.url(),
        })
        .collect();
    Ok(Json(ArtifactList { artifacts }))
}

/// An artifact holds what a target page made (its HTML, its pixels): on the API's origin it
/// must never run. Every artifact is served sandboxed (no script, no same-origin access),
/// unsniffed, and everything but an image is a download rather than a page.
const SANDBOX: &str =
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'";

/// `inline` for images (shown in place), `attachment` for the rest, with a quoted name.
fn disposition(name: &str, content_type: &str) -> String {
    let inline = matches!(content_type, "image/png" | "image/jpeg" | "image/webp");
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\'))
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{name}\"")
}

/// Serves one artifact with its content type.
#[utoipa::path(
    get,
    operation_id = "get_artifact",
    path = "/api/v1/jobs/{id}/artifacts/{name}",
    tag = "jobs",
    params(
        ("id" = Uuid, Path, description = "The job's id"),
        ("name" = String, Path, description = "The artifact's name"),
    ),
    responses(
        (status = 200, description = "The artifact, sandboxed (images inline, the rest as downloads)",
         content((Binary = "image/png"), (Binary = "image/jpeg"), (Binary = "application/pdf"), (Binary = "text/html"), (Binary = "application/octet-stream"))),
        (status = 404, description = "No such job or artifact", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    Reader(caller): Reader,
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let id = existing_job(&state, &caller, &id).await?;
    let Some((record, bytes)) = state
        .artifacts
        .download(id, &name)
        .await
        .map_err(artifact_problem)?
    else {
        return Err(Problem::not_found(format!(
            "job {id} has no artifact named {name:?}"
        )));
    };
    Ok((
        [
            (CONTENT_TYPE, record.content_type.clone()),
            (ETAG, format!("\"{}\"", record.sha256)),
            (CACHE_CONTROL, "private, max-age=3600".to_owned()),
            (
                CONTENT_DISPOSITION,
                disposition(&record.name, &record.content_type),
            ),
            (CONTENT_SECURITY_POLICY, SANDBOX.to_owned()),
            (X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (CONTENT_LENGTH, record.bytes.to_string()),
        ],
        // Streamed from the store as it arrives: a large PDF is never held whole here.
        Body::from_stream(bytes),
    )
        .into_response())
}
