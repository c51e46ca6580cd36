//! The HTTP API: axum router, shared state, health, readiness and queue statistics.

pub mod artifacts;
pub mod auth;
pub mod batch;
pub mod body;
pub mod by_kind;
pub mod deadline;
pub mod domains;
pub mod erase;
pub mod holds;
pub mod hosts;
pub mod jobs;
pub mod live;
pub mod openapi;
pub mod paging;
pub mod problem;
pub mod profiles;
pub mod proxies;
pub mod proxy_pools;
pub mod retention;
pub mod schemas;
pub mod scrape;
pub mod tenants;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Value, json};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::artifact::ArtifactStore;
use crate::auth::Authenticator;
use crate::dispatch::Dispatcher;
use crate::job::target::TargetPolicy;
use crate::memory::Domains;
use crate::queue::Signals;
use crate::quota::Limiter;
use crate::worker::report;
use auth::Operator;
use hosts::AllowedHosts;
use problem::Problem;

/// How long a readiness probe waits for each dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The job store and the queue, together.
    pub dispatcher: Dispatcher,
    /// Worker reports and cancel notices.
    pub signals: Arc<dyn Signals>,
    /// Which targets jobs may reach.
    pub policy: TargetPolicy,
    /// Where job artifacts are kept.
    pub artifacts: ArtifactStore,
    /// Checks the keys requests present.
    pub auth: Authenticator,
    /// The host names the API answers to.
    pub allowed_hosts: AllowedHosts,
    /// Per-tenant quotas on submissions.
    pub quotas: Limiter,
    /// The domain memory and pacing.
    pub domains: Arc<Domains>,
    /// Requests waiting on jobs, woken by change notices.
    pub watchers: watch::Watchers,
    /// Caps on open waits and event streams per key and per tenant.
    pub holds: holds::Holds,
    /// Whether jobs may carry a `callback` (a `WEBHOOK_SECRET` is set to sign it with).
    pub callbacks: bool,
    /// The proxy pools jobs may name (and whose health the API shows).
    pub pools: crate::proxy::Pools,
    /// The tenants' profiles (their state never leaves the store unsealed through the API).
    pub profiles: crate::profile::Profiles,
    /// This process's metrics and what a scrape reads.
    pub scrape: scrape::Sources,
    /// Erases jobs on request.
    pub purger: crate::retention::Purger,
}

/// Builds the router, with `pages` (the dashboard's routes) under the same checks, request
/// ids and one tracing span per request.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let keyed = Router::new()
        .route("/api/v1/jobs", post(jobs::create).get(jobs::list))
        .route("/api/v1/jobs/batch", post(batch::create_batch))
        .route("/api/v1/jobs/{id}", get(jobs::get).delete(erase::delete))
        .route("/api/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/api/v1/jobs/{id}/events", get(jobs::events))
        .route("/api/v1/jobs/{id}/artifacts", get(artifacts::list))
        .route("/api/v1/jobs/{id}/artifacts/{name}", get(artifacts::get))
        .route("/api/v1/queue/stats", get(queue_stats))
        .route("/metrics", get(metrics))
        .route("/api/v1/proxies", get(proxies::list))
        .route(
            "/api/v1/proxies/pools/{name}",
            get(proxy_pools::get)
                .put(proxy_pools::put)
                .delete(proxy_pools::delete),
        )
        .route("/api/v1/profiles", get(profiles::list))
        .route(
            "/api/v1/profiles/{name}",
            get(profiles::get).delete(profiles::delete),
        )
        .route("/api/v1/profiles/{name}/restore", post(profiles::restore))
        .route("/api/v1/domains", get(domains::list))
        .route("/api/v1/domains/{domain}", get(domains::get))
        .route(
            "/api/v1/domains/{domain}/policy",
            put(domains::put_policy).delete(domains::delete_policy),
        )
        .route(
            "/api/v1/tenants/{tenant}/quota",
            get(tenants::get).put(tenants::put).delete(tenants::delete),
        )
        .route(
            "/api/v1/tenants/{tenant}/retention",
            get(retention::get)
                .put(retention::put)
                .delete(retention::delete),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/docs", get(openapi::docs))
        .merge(keyed)
        .merge(pages)
        .route_layer(middleware::from_fn_with_state(
            state.scrape.metrics.clone(),
            crate::metrics::http::record,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            hosts::check_origin,
        ))
        .with_state(state)
        .layer(middleware::from_fn(deadline::deadline))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %id,
                        status = tracing::field::Empty,
                        latency_ms = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(|response: &Response, latency: Duration, span: &Span| {
                    span.record("status", response.status().as_u16());
                    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
                    tracing::info!("request finished");
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// `GET /metrics`: Prometheus metrics of this process (an admin key; a scraper without keys
/// uses `METRICS_BIND`).
async fn metrics(_: Operator, State(state): State<AppState>) -> Response {
    scrape::response(state.scrape.scrape().await)
}

/// `GET /`: the service's name, version and where its routes are.
#[utoipa::path(
    get,
    operation_id = "root",
    path = "/",
    tag = "service",
    responses((status = 200, description = "The service's name, version and links", body = Object))
)]
async fn root() -> Json<Value> {
    Json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "links": {
            "health": "/health",
            "ready": "/ready",
            "jobs": "/api/v1/jobs",
            "queue_stats": "/api/v1/queue/stats",
            "openapi": "/api/v1/openapi.json",
            "docs": "/api/v1/docs",
        }
    }))
}

/// `GET /health`: answers while the process runs (liveness; nothing else is asked).
#[utoipa::path(
    get,
    operation_id = "health",
    path = "/health",
    tag = "service",
    responses((status = 200, description = "The process is up", body = Object))
)]
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn probe<E: std::fmt::Display>(
    check: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
    }
}

fn check_json(result: &Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({"status": "up"}),
        Err(e) => json!({"status": "down", "error": e}),
    }
}

/// The browser section: what the workers' reports say about their Chromium pools.
async fn browser_summary(state: &AppState) -> Value {
    match tokio::time::timeout(PROBE_TIMEOUT, state.signals.reports()).await {
        Ok(Ok(reports)) => report::browser_summary(&reports),
        Ok(Err(e)) => json!({"status": "unknown", "detail": e.to_string()}),
        Err(_) => json!({"status": "unknown", "detail": "the queue did not answer"}),
    }
}

/// `GET /ready`: 200 when the database, the queue and the artifact store answer, else 503
/// naming what failed.
/// The browser is reported (`ready`, `unavailable`, `unknown`) but never fails readiness:
/// without Chromium, jobs fall back or fail with `browser_unavailable`. Without a key (when
/// keys are asked for) it says only up or down: the details name internals.
#[utoipa::path(
    get,
    operation_id = "ready",
    path = "/ready",
    tag = "service",
    responses(
        (status = 200, description = "The database, the queue and the artifact store answer (details with a key)", body = Object),
        (status = 503, description = "A dependency does not answer (details with a key)", body = Object),
    )
)]
async fn ready(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let (database, queue, artifacts, browser) = tokio::join!(
        probe(state.dispatcher.store().ping()),
        probe(state.dispatcher.queue().ping()),
        probe(state.artifacts.check_reachable()),
        browser_summary(&state)
    );
    let failed: Vec<&str> = [
        ("database", &database),
        ("queue", &queue),
        ("artifacts", &artifacts),
    ]
    .into_iter()
    .filter(|(_, r)| r.is_err())
    .map(|(name, _)| name)
    .collect();
    let status = if failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if state.auth.caller(authorization).await.is_err() {
        let status_only =
            json!({"status": if failed.is_empty() { "ready" } else { "unavailable" }});
        return (status, Json(status_only)).into_response();
    }
    let body = json!({
        "status": if failed.is_empty() { "ready" } else { "unavailable" },
        "failed": failed,
        "dispatch": if queue.is_ok() { "ok" } else { "degraded: jobs are accepted and stored, and dispatched when the queue is back" },
        "browser": browser["status"].clone(),
        "checks": {
            "database": check_json(&database),
            "queue": check_json(&queue),
            "artifacts": check_json(&artifacts),
            "browser": browser,
        },
    });
    (status, Json(body)).into_response()
}

/// `GET /api/v1/queue/stats`: per-level queue state, job counts by state, backlog age,
/// across every tenant (admin).
#[utoipa::path(
    get,
    operation_id = "queue_stats",
    path = "/api/v1/queue/stats",
    tag = "service",
    responses((status = 200, description = "Queue levels, job counts by state, backlog age and browser pools", body = Object))
)]
async fn queue_stats(_: Operator, State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    let (jobs, levels, browser) = tokio::join!(
        state.dispatcher.store().stats(),
        state.dispatcher.queue().stats(),
        browser_summary(&state)
    );
    let jobs = jobs?;
    let oldest_due_age_ms = jobs
        .oldest_due_run_at()
        .map(|at| (Utc::now() - at).num_milliseconds().max(0));
    let (levels, queue_error) = match levels {
        Ok(levels) => (json!(levels), Value::Null),
        Err(e) => {
            tracing::warn!(error = %e, "queue stats unavailable");
            (Value::Null, json!(e.to_string()))
        }
    };
    Ok(Json(json!({
        "levels": levels,
        "queue_error": queue_error,
        "jobs": jobs.by_state,
        "oldest_due_age_ms": oldest_due_age_ms,
        "browser": browser,
    })))
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!("no route for {}", request.uri().path()))
}

async fn method_not_allowed(request: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
