//! `GET /api/v1/jobs/{id}/artifacts` and `GET /api/v1/jobs/{id}/artifacts/{name}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, ETAG};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::jobs::existing_job;
use super::problem::Problem;
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
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let id = existing_job(&state, &id).await?;
    let artifacts = state.artifacts.list(id).await.map_err(artifact_problem)?;
    let artifacts: Vec<Value> = artifacts
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "content_type": a.content_type,
                "bytes": a.bytes,
                "sha256": a.sha256,
                "created_at": a.created_at,
                "url": a.url(),
            })
        })
        .collect();
    Ok(Json(json!({ "artifacts": artifacts })))
}

/// Serves one artifact with its content type.
pub async fn get(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let id = existing_job(&state, &id).await?;
    let Some((record, bytes)) = state
        .artifacts
        .get(id, &name)
        .await
        .map_err(artifact_problem)?
    else {
        return Err(Problem::not_found(format!(
            "job {id} has no artifact named {name:?}"
        )));
    };
    let disposition = format!("inline; filename=\"{}\"", record.name);
    Ok((
        [
            (CONTENT_TYPE, record.content_type.clone()),
            (ETAG, format!("\"{}\"", record.sha256)),
            (CACHE_CONTROL, "private, max-age=3600".to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
