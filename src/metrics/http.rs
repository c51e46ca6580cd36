//! Counting HTTP requests by route template (`/api/v1/jobs/{id}`, never the id itself, so
//! the number of series stays bounded) and status, with their latency. It is a route layer:
//! requests that match no route (404s of the fallback) are not counted.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::Metrics;

/// The route of a request no route matched: one series for every unknown path.
const UNMATCHED: &str = "unmatched";

/// A request being answered: counted in its route's in-flight gauge until dropped.
struct Answering(prometheus::IntGauge);

impl Answering {
    fn new(gauge: prometheus::IntGauge) -> Answering {
        gauge.inc();
        Answering(gauge)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A method label from a fixed set, so made-up methods cannot add series.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Records the request's route, status and latency in `metrics`.
pub async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let families = metrics.families();
    // Dropped with the request even when the client goes away mid-answer.
    let _answering = Answering::new(families.http_in_flight.with_label_values(&[&route]));
    let response = next.run(request).await;
    families
        .http_requests
        .with_label_values(&[method, &route, response.status().as_str()])
        .inc();
    families
        .http_seconds
        .with_label_values(&[method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}
