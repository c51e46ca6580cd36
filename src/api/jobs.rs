//! `/api/v1/jobs`: submit, read, list, cancel jobs and read their timelines.

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::auth::{Reader, Writer};
use super::body::{JsonBody, OptionalJsonBody};
use super::deadline::Deadline;
use super::problem::Problem;
use super::schemas::{CancelRequest, JobRequest, RetryRequest};
use crate::auth::Caller;
use crate::dispatch::{Admitted, WriteBy};
use crate::job::JobState;
use crate::job::{FieldError, JobEvent, Replay};
use crate::kinds::JobType;
use crate::spec::JobSpec;
use crate::store::{CancelOutcome, Created, IdempotencyKey, Job, ListQuery, ReplayOutcome};

/// Jobs per page when the request does not say.
pub const DEFAULT_PAGE: u32 = 50;
/// The most jobs one page may hold.
pub const MAX_PAGE: u32 = 500;

/// `POST /api/v1/jobs`: validates, stores, then rings the job's doorbell.
#[utoipa::path(
    post,
    operation_id = "create_job",
    path = "/api/v1/jobs",
    tag = "jobs",
    request_body = JobRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; the same key with the same body within 24 hours answers the first job again")),
    responses(
        (status = 201, description = "The job, stored and queued", body = Job,
         headers(("Location" = String, description = "The job's url")),
         links(
             ("get" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))),
             ("cancel" = (operation_id = "cancel_job", parameters(("id" = "$response.body#/id")))),
             ("retry" = (operation_id = "retry_job", parameters(("id" = "$response.body#/id")))),
             ("events" = (operation_id = "job_events", parameters(("id" = "$response.body#/id")))),
             ("artifacts" = (operation_id = "list_artifacts", parameters(("id" = "$response.body#/id")))),
         )),
        (status = 200, description = "The job this Idempotency-Key created earlier", body = Job,
         headers(("Idempotent-Replayed" = String, description = "true")),
         links(
             ("get" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))),
             ("cancel" = (operation_id = "cancel_job", parameters(("id" = "$response.body#/id")))),
             ("retry" = (operation_id = "retry_job", parameters(("id" = "$response.body#/id")))),
             ("events" = (operation_id = "job_events", parameters(("id" = "$response.body#/id")))),
             ("artifacts" = (operation_id = "list_artifacts", parameters(("id" = "$response.body#/id")))),
         )),
        (status = 429, description = "A quota of the tenant is used up (see Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    Writer(caller): Writer,
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, Problem> {
    let key = idempotency_key(&headers, || body.clone())?;
    let mut spec = JobSpec::parse(&body).map_err(Problem::invalid_fields)?;
    permitted_target(&state, "url", &spec.url).await?;
    if let Some(callback) = &spec.callback {
        check_callback(&state, callback).await?;
    }
    route_proxy(&state, &caller.tenant, &mut spec).await?;
    let admitted = admit(&state, &caller, 1, deadline).await?;
    let created = state
        .dispatcher
        .submit(admitted, &spec, key.as_ref())
        .await?;
    match created {
        Created::New(job) => {
            Ok((StatusCode::CREATED, location(job.id), Json(*job)).into_response())
        }
        Created::Replayed(job) => {
            let mut headers = location(job.id);
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
            Ok((StatusCode::OK, headers, Json(*job)).into_response())
        }
        Created::KeyMismatch => Err(key_reused()),
    }
}

/// Takes `jobs` submissions from the caller's tenant's quota, to be written by `deadline`;
/// 429 with `Retry-After` when a quota is used up.
pub(super) async fn admit(
    state: &AppState,
    caller: &Caller,
    jobs: u64,
    deadline: Deadline,
) -> Result<Admitted, Problem> {
    match state.quotas.admit_jobs(&caller.tenant, jobs).await? {
        Ok(permit) => Ok(Admitted {
            tenant: caller.tenant.clone(),
            permit,
            write_by: WriteBy::at(deadline.0),
        }),
        Err(over) => Err(Problem::quota(over.to_string(), over.retry_after())),
    }
}

/// 422: the `Idempotency-Key` was used with another request.
pub(super) fn key_reused() -> Problem {
    Problem::invalid_fields(vec![FieldError::new(
        "Idempotency-Key",
        "reused",
        "this key was used with a different request in the last 24 hours",
    )])
}

/// A `Location` header pointing at a job.
pub(super) fn location(id: Uuid) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/jobs/{id}")) {
        headers.insert(header::LOCATION, location);
    }
    headers
}

/// The header that marks an answer replayed for an idempotency key.
pub(super) const REPLAYED: header::HeaderName =
    header::HeaderName::from_static("idempotent-replayed");
/// The longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// An idempotency key as the contract writes it: 1 to 255 printable ASCII characters,
/// spaces inside allowed (HTTP drops them at either end).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]{0,253}[!-~])?$";

/// The request's `Idempotency-Key` and the hash of what `hashed` makes of its body, when it
/// has one (made only then: a batch's document is a thousand jobs deep).
pub(super) fn idempotency_key(
    headers: &HeaderMap,
    hashed: impl FnOnce() -> Value,
) -> Result<Option<IdempotencyKey>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = |detail: &str| {
        Problem::invalid_fields(vec![FieldError::new("Idempotency-Key", "invalid", detail)])
    };
    let key = value
        .to_str()
        .map_err(|_| invalid("the key must be visible ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(invalid("the key must be 1 to 255 characters"));
    }
    // Header values may carry tabs; a key is printable ASCII and spaces only, as the
    // contract's IDEMPOTENCY_KEY_PATTERN says.
    if key.contains('\t') {
        return Err(invalid("the key must be visible ASCII"));
    }
    let canonical = canonical_json(&hashed());
    let request_hash = crate::artifact::sha256_hex(canonical.as_bytes());
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_hash,
    }))
}

/// JSON with object keys sorted, so equal requests hash equally whatever their key order:
/// serde_json's compact form, since its maps keep keys sorted (its `preserve_order` feature
/// is off; a test below fails if a dependency ever turns it on).
fn canonical_json(value: &Value) -> String {
    value.to_string()
}

/// A callback needs a secret to be signed with, and must pass the target policy as job urls do.
pub(super) async fn check_callback(
    state: &AppState,
    callback: &crate::job::TargetUrl,
) -> Result<(), Problem> {
    if !state.callbacks {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "callback",
            "not_configured",
            "this server has no WEBHOOK_SECRET to sign deliveries with; ask its operator to set one",
        )]));
    }
    permitted_target(state, "callback.url", callback).await
}

/// A job's `proxy`: the one it names, which must be a pool or tier this deployment has (or
/// `none`), else a 422 naming the field; or its tenant's default, written into the job so
/// that it is seen and kept whatever the settings become.
pub(super) async fn route_proxy(
    state: &AppState,
    tenant: &str,
    spec: &mut crate::spec::JobSpec,
) -> Result<(), Problem> {
    let Some(page) = spec.payload.page_mut() else {
        return Ok(());
    };
    let Some(choice) = page.proxy.as_deref() else {
        page.proxy = state.pools.default_for(tenant).map(str::to_owned);
        return Ok(());
    };
    if state.pools.knows(choice).await {
        return Ok(());
    }
    Err(Problem::invalid_fields(vec![FieldError::new(
        "payload.proxy",
        "unknown_proxy",
        format!(
            "no proxy pool or tier is named {choice:?} (GET /api/v1/proxies lists them); none goes direct"
        ),
    )]))
}

/// `url` (the request's `field`) passes the target policy, or a 422 naming the field.
pub(super) async fn permitted_target(
    state: &AppState,
    field: &str,
    url: &crate::job::TargetUrl,
) -> Result<(), Problem> {
    state.policy.check_url(url.url()).await.map_err(|refused| {
        Problem::invalid_fields(vec![FieldError::new(
            field,
            "forbidden_target",
            refused.to_string(),
        )])
    })
}

pub(crate) fn parse_id(id: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(id).map_err(|_| {
        Problem::bad_parameter("id", "invalid", format!("{id:?} is not a job id (a UUID)"))
    })
}

pub(crate) fn no_such_job(id: Uuid) -> Problem {
    Problem::not_found(format!("no job {id}"))
}

/// The id of a job in the caller's scope: 400 when `id` is not one, 404 when there is no
/// such job (or it is another tenant's: its existence is not revealed).
pub(crate) async fn existing_job(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Uuid, Problem> {
    let id = parse_id(id)?;
    match state.dispatcher.store().get(caller.scope(), id).await? {
        Some(_) => Ok(id),
        None => Err(no_such_job(id)),
    }
}

/// `GET /api/v1/jobs/{id}`.
#[utoipa::path(
    get,
    operation_id = "get_job",
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(
        ("id" = Uuid, Path, description = "The job's id"),
        ("wait" = Option<String>, Query, pattern = r"^((60|[1-5]?[0-9])s?|([0-9]{1,4}|[1-5][0-9]{4}|60000)ms)$",
         description = "Answer once the job is finished or this long has passed (`30s`, `500ms`, or seconds; at most 60 s)"),
    ),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job (or another tenant's)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    Reader(caller): Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Job>, Problem> {
    let id = parse_id(&id)?;
    if let Some(wait) = super::live::parse_wait(raw.as_deref())? {
        let _hold = state.holds.take(&caller)?;
        return super::live::wait_for(&state, &caller, id, wait)
            .await
            .map(Json);
    }
    let job = state.dispatcher.store().get(caller.scope(), id).await?;
    job.map(Json).ok_or_else(|| no_such_job(id))
}

/// `POST /api/v1/jobs/{id}/cancel`: a queued or running job becomes `cancelled`.
#[utoipa::path(
    post,
    operation_id = "cancel_job",
    path = "/api/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job's id")),
    request_body(content = CancelRequest, description = "Optional: nothing (or an empty body), or an empty object"),
    responses(
        (status = 200, description = "The cancelled job", body = Job),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has already finished", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    Writer(caller): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Json<Job>, Problem> {
    let id = parse_id(&id)?;
    if body.as_object().is_none_or(|fields| !fields.is_empty()) {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "",
            "unexpected_body",
            "cancel takes no fields: send no body or {}",
        )]));
    }
    match state.dispatcher.cancel(caller.scope(), id).await? {
        CancelOutcome::Cancelled(job) => {
            let (kind, strategy) = (job.job_type.as_str(), job.strategy.as_str());
            (state.scrape.metrics).job_finished(kind, strategy, "cancelled", "");
            Ok(Json(*job))
        }
        CancelOutcome::AlreadyFinished(finished) => Err(Problem::conflict(format!(
            "job {id} is already {finished} and cannot be cancelled"
        ))),
        CancelOutcome::NotFound => Err(no_such_job(id)),
    }
}

/// `POST /api/v1/jobs/{id}/retry`: replays a failed or cancelled job with a fresh attempt
/// budget (`max_attempts`, default 3), optionally another `strategy` or `priority`. The body
/// may be empty.
#[utoipa::path(
    post,
    operation_id = "retry_job",
    path = "/api/v1/jobs/{id}/retry",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job's id")),
    request_body(content = RetryRequest, description = "Optional: nothing (or an empty body), or what the replay changes"),
    responses(
        (status = 200, description = "The job, queued again (it runs now)", body = Job),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not failed or cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry(
    Writer(caller): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Json<Job>, Problem> {
    let id = parse_id(&id)?;
    let change = Replay::parse(&body).map_err(Problem::invalid_fields)?;
    match state.dispatcher.replay(caller.scope(), id, &change).await? {
        ReplayOutcome::Queued(job) => Ok(Json(*job)),
        ReplayOutcome::NotReplayable(current) => Err(Problem::conflict(format!(
            "job {id} is {current}; only failed or cancelled jobs can be retried"
        ))),
        ReplayOutcome::NotFound => Err(no_such_job(id)),
    }
}

/// A job's timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsPage {
    /// Events, oldest first.
    pub events: Vec<JobEvent>,
}

/// `GET /api/v1/jobs/{id}/events`: the timeline as JSON, or, with
/// `Accept: text/event-stream`, live as Server-Sent Events.
#[utoipa::path(
    get,
    operation_id = "job_events",
    path = "/api/v1/jobs/{id}/events",
    tag = "jobs",
    params(
        ("id" = Uuid, Path, description = "The job's id"),
        ("Last-Event-ID" = Option<i64>, Header, nullable = false, minimum = 0, description = "With an event stream: resume after this event"),
    ),
    responses(
        (status = 200, description = "The job's timeline, oldest first; with `Accept: text/event-stream`, a stream of its events (`id` = event id, `event` = kind, `data` = the event), then `end` once the job is finished", body = EventsPage,
         content(
             (EventsPage = "application/json"),
             (String = "text/event-stream"),
         )),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn events(
    Reader(caller): Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let after = super::live::last_event_id(&headers)?;
    let id = existing_job(&state, &caller, &id).await?;
    if super::live::wants_stream(&headers) {
        let hold = state.holds.take(&caller)?;
        return Ok(super::live::stream(state, caller, id, after, hold).into_response());
    }
    let events = state.dispatcher.store().events(id).await?;
    Ok(Json(EventsPage { events }).into_response())
}

/// One page of jobs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobsPage {
    /// Jobs, newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Encodes the position after `id` as an opaque cursor.
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<Uuid> {
    // Lenient about the last character's unused bits: any 22 url-safe characters name a
    // position, as the contract's pattern says.
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let bytes = LENIENT.decode(cursor).ok()?;
    Uuid::from_slice(&bytes).ok()
}

pub(crate) fn parse_list_query(raw: Option<&str>) -> Result<ListQuery, Problem> {
    let mut query = ListQuery {
        limit: DEFAULT_PAGE,
        ..ListQuery::default()
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let bad = |code, detail: String| Problem::bad_parameter(&key, code, detail);
        match key.as_ref() {
            "state" => {
                query.state =
                    Some(value.parse().map_err(|e| {
                        bad("unknown_value", format!("unknown state {value:?}; {e}"))
                    })?);
            }
            "job_type" => {
                query.job_type = Some(value.parse().map_err(|e| {
                    bad("unknown_value", format!("unknown job_type {value:?}; {e}"))
                })?);
            }
            "domain" => query.domain = Some(crate::job::target::normalize_host(&value)),
            "limit" => query.limit = super::paging::limit(&value, MAX_PAGE)?,
            "cursor" => {
                query.before = Some(decode_cursor(&value).ok_or_else(|| {
                    bad("invalid", "not a cursor returned by this API".to_owned())
                })?);
            }
            _ => {
                return Err(bad(
                    "unknown_parameter",
                    "unknown parameter; expected state, domain, job_type, limit or cursor"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(query)
}

/// `GET /api/v1/jobs`: newest first, filtered, paginated with an opaque cursor.
#[utoipa::path(
    get,
    operation_id = "list_jobs",
    path = "/api/v1/jobs",
    tag = "jobs",
    params(
        ("state" = Option<JobState>, Query, description = "Only jobs in this state"),
        ("domain" = Option<String>, Query, description = "Only jobs for this host"),
        ("job_type" = Option<JobType>, Query, description = "Only jobs of this type"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Jobs per page [default: 50]"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{22}$", description = "The next_cursor of the previous page"),
    ),
    responses((status = 200, description = "One page of jobs, newest first", body = JobsPage))
)]
pub async fn list(
    Reader(caller): Reader,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<JobsPage>, Problem> {
    let mut query = parse_list_query(raw.as_deref())?;
    let page = query.limit as usize;
    query.limit += 1;
    let mut jobs = state
        .dispatcher
        .store()
        .list(caller.scope(), &query)
        .await?;
    let next_cursor = if jobs.len() > page {
        jobs.truncate(page);
        jobs.last().map(|job| encode_cursor(job.id))
    } else {
        None
    };
    Ok(Json(JobsPage { jobs, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_requests_are_written_alike_whatever_their_key_order() {
        let one: Value =
            serde_json::from_str(r#"{"url":"u","payload":{"b":1,"a":[{"y":2,"x":1}]}}"#)
                .expect("json");
        let other: Value =
            serde_json::from_str(r#"{"payload":{"a":[{"x":1,"y":2}],"b":1},"url":"u"}"#)
                .expect("json");
        assert_eq!(canonical_json(&one), canonical_json(&other));
        assert_eq!(
            canonical_json(&one),
            r#"{"payload":{"a":[{"x":1,"y":2}],"b":1},"url":"u"}"#
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        assert_eq!(decode_cursor("not-a-cursor"), None);
        assert_eq!(decode_cursor(""), None);
    }

    #[test]
    fn list_parameters_are_checked() {
        assert!(parse_list_query(Some("state=queued&limit=10&domain=Example.COM")).is_ok());
        for bad in [
            "state=done",
            "limit=0",
            "limit=501",
            "limit=x",
            "cursor=zz",
            "colour=red",
        ] {
            assert!(
                parse_list_query(Some(bad)).is_err(),
                "{bad} should be refused"
            );
        }
    }
}
