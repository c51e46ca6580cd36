//! `POST /api/v1/jobs/batch`: up to a thousand jobs in one request, validated one by one,
//! stored in one commit (all or none) and rung in one round trip.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Writer;
use super::body::BatchBody;
use super::deadline::Deadline;
use super::jobs::{
    REPLAYED, admit, check_callback, idempotency_key, key_reused, permitted_target, route_proxy,
};
use super::problem::Problem;
use super::schemas::BatchRequest;
use crate::job::FieldError;
use crate::spec::JobSpec;
use crate::store::{Created, Job};

/// The most jobs one batch may carry.
pub const MAX_BATCH: usize = 1_000;

/// The jobs of a batch, in the order they were given.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchCreated {
    /// The stored jobs.
    pub jobs: Vec<Job>,
}

/// `POST /api/v1/jobs/batch`: validates every job, stores them all in one commit, then rings
/// those due now.
#[utoipa::path(
    post,
    operation_id = "create_jobs",
    path = "/api/v1/jobs/batch",
    tag = "jobs",
    request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; the same key with the same batch within 24 hours answers the same jobs again")),
    responses(
        (status = 201, description = "Every job, stored and queued, in the order given", body = BatchCreated),
        (status = 200, description = "The jobs this Idempotency-Key created earlier", body = BatchCreated,
         headers(("Idempotent-Replayed" = String, description = "true"))),
        (status = 413, description = "The body is over 16 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A quota of the tenant is used up (see Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_batch(
    Writer(caller): Writer,
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    headers: HeaderMap,
    BatchBody(body): BatchBody,
) -> Result<Response, Problem> {
    // The batch's key never answers a single submission, nor the other way round.
    let key = idempotency_key(&headers, || json!({ "batch": &body }))?;
    let mut specs = parse(&body).map_err(Problem::invalid_fields)?;
    for (index, spec) in specs.iter_mut().enumerate() {
        permitted_target(&state, &format!("jobs[{index}].url"), &spec.url).await?;
        if let Some(callback) = &spec.callback {
            check_callback(&state, callback)
                .await
                .map_err(|problem| problem.within(&format!("jobs[{index}].")))?;
        }
        route_proxy(&state, &caller.tenant, spec)
            .await
            .map_err(|problem| problem.within(&format!("jobs[{index}].")))?;
    }
    let admitted = admit(&state, &caller, specs.len() as u64, deadline).await?;
    let created = state.dispatcher.submit_batch(admitted, specs, key).await?;
    match created {
        Created::New(jobs) => {
            Ok((StatusCode::CREATED, Json(BatchCreated { jobs })).into_response())
        }
        Created::Replayed(jobs) => {
            let mut headers = HeaderMap::new();
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
            Ok((StatusCode::OK, headers, Json(BatchCreated { jobs })).into_response())
        }
        Created::KeyMismatch => Err(key_reused()),
    }
}

/// Every job of `{"jobs": [...]}`, or every problem, each naming its job's index.
fn parse(body: &Value) -> Result<Vec<JobSpec>, Vec<FieldError>> {
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new(
            "",
            "wrong_type",
            "the body must be an object with `jobs`",
        )]);
    };
    if let Some(unknown) = object.keys().find(|field| *field != "jobs") {
        return Err(vec![FieldError::new(
            unknown.as_str(),
            "unknown_field",
            "a batch has only `jobs`",
        )]);
    }
    let Some(items) = object.get("jobs").and_then(Value::as_array) else {
        return Err(vec![FieldError::new(
            "jobs",
            "required",
            "`jobs` must be an array of jobs",
        )]);
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(vec![FieldError::new(
            "jobs",
            "out_of_range",
            format!("a batch has 1 to {MAX_BATCH} jobs (given: {})", items.len()),
        )]);
    }
    let mut specs = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match JobSpec::parse(item) {
            Ok(spec) => specs.push(spec),
            Err(errors) => problems.extend(errors.into_iter().map(|mut error| {
                error.field = within(index, &error.field);
                error
            })),
        }
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems)
    }
}

/// Problems reported at most, so a batch of a thousand bad jobs gets a readable answer.
const MAX_PROBLEMS: usize = 100;

/// A job's field as named within the batch: `jobs[3].url`, or `jobs[3]` for the job itself.
fn within(index: usize, field: &str) -> String {
    if field.is_empty() {
        format!("jobs[{index}]")
    } else {
        format!("jobs[{index}].{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_job_is_named_by_its_index_and_field() {
        let body = json!({"jobs": [
            {"url": "https://example.com/"},
            {"url": "ftp://example.com/"},
            {"url": "https://example.com/", "priority": 9},
        ]});
        let problems = parse(&body).expect_err("two jobs are invalid");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["jobs[1].url", "jobs[2].priority"]);
    }

    #[test]
    fn a_batch_has_one_to_a_thousand_jobs() {
        let one = json!({"url": "https://example.com/"});
        assert!(parse(&json!({"jobs": vec![one.clone(); MAX_BATCH]})).is_ok());
        for jobs in [vec![], vec![one; MAX_BATCH + 1]] {
            let problems = parse(&json!({ "jobs": jobs })).expect_err("out of range");
            assert_eq!(problems[0].field, "jobs");
        }
        let problems = parse(&json!([])).expect_err("not an object");
        assert_eq!(problems[0].code, "wrong_type");
    }
}
