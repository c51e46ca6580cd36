//! Every metric family's name, help and labels, written once, and how a family is
//! registered from them.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// A family as Prometheus shows it.
pub struct Spec {
    /// The metric's name.
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Its labels (none for a single series).
    pub labels: &'static [&'static str],
}

/// Registers `metric` in `registry`. The names and labels are fixed in this file, so a
/// failure is a programming error caught by every test, not something input can cause.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("a metric's name and labels are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

/// Counters, one per label set.
pub fn counters(registry: &Registry, spec: &Spec) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(spec.name, spec.help), spec.labels),
    )
}

/// Gauges, one per label set.
pub fn gauges(registry: &Registry, spec: &Spec) -> IntGaugeVec {
    register(
        registry,
        IntGaugeVec::new(Opts::new(spec.name, spec.help), spec.labels),
    )
}

/// Gauges of fractions (seconds), one per label set.
pub fn float_gauges(registry: &Registry, spec: &Spec) -> GaugeVec {
    register(
        registry,
        GaugeVec::new(Opts::new(spec.name, spec.help), spec.labels),
    )
}

/// Histograms over `buckets`, one per label set.
pub fn histograms(registry: &Registry, spec: &Spec, buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(spec.name, spec.help).buckets(buckets.to_vec());
    register(registry, HistogramVec::new(opts, spec.labels))
}

/// One counter.
pub fn int_counter(registry: &Registry, spec: &Spec) -> IntCounter {
    register(registry, IntCounter::new(spec.name, spec.help))
}

/// One gauge.
pub fn int_gauge(registry: &Registry, spec: &Spec) -> IntGauge {
    register(registry, IntGauge::new(spec.name, spec.help))
}

/// `control_plane_jobs_finished_total`.
pub const JOBS_FINISHED: Spec = Spec {
    name: "control_plane_jobs_finished_total",
    help: "Jobs that reached a terminal state.",
    labels: &["job_type", "strategy", "outcome", "error_kind"],
};

/// `control_plane_attempts_total`.
pub const ATTEMPTS: Spec = Spec {
    name: "control_plane_attempts_total",
    help: "Attempts this process ran, by how they ended.",
    labels: &["job_type", "strategy", "outcome"],
};

/// `control_plane_attempt_duration_seconds`.
pub const ATTEMPT_SECONDS: Spec = Spec {
    name: "control_plane_attempt_duration_seconds",
    help: "How long attempts ran.",
    labels: &["job_type", "strategy"],
};

/// `control_plane_jobs`.
pub const JOBS: Spec = Spec {
    name: "control_plane_jobs",
    help: "Jobs by state.",
    labels: &["state"],
};

/// `control_plane_queue_depth`.
pub const QUEUE_DEPTH: Spec = Spec {
    name: "control_plane_queue_depth",
    help: "Doorbells in a queue level: waiting plus delivered and unacknowledged.",
    labels: &["priority"],
};

/// `control_plane_queue_pending`.
pub const QUEUE_PENDING: Spec = Spec {
    name: "control_plane_queue_pending",
    help: "Doorbells delivered to a worker and not yet acknowledged.",
    labels: &["priority"],
};

/// `control_plane_queue_due_jobs`.
pub const QUEUE_DUE: Spec = Spec {
    name: "control_plane_queue_due_jobs",
    help: "Queued jobs that are due now.",
    labels: &["priority"],
};

/// `control_plane_queue_oldest_due_age_seconds`.
pub const QUEUE_OLDEST_DUE_AGE: Spec = Spec {
    name: "control_plane_queue_oldest_due_age_seconds",
    help: "How long the oldest due queued job has waited (0 when none).",
    labels: &["priority"],
};

/// `control_plane_worker_running_jobs`.
pub const WORKER_RUNNING: Spec = Spec {
    name: "control_plane_worker_running_jobs",
    help: "Jobs a worker is running now.",
    labels: &["worker"],
};

/// `control_plane_worker_free_slots`.
pub const WORKER_FREE_SLOTS: Spec = Spec {
    name: "control_plane_worker_free_slots",
    help: "Jobs a worker could start now.",
    labels: &["worker"],
};

/// `control_plane_browsers`.
pub const BROWSERS: Spec = Spec {
    name: "control_plane_browsers",
    help: "Chromium processes alive.",
    labels: &[],
};

/// `control_plane_browser_contexts`.
pub const BROWSER_CONTEXTS: Spec = Spec {
    name: "control_plane_browser_contexts",
    help: "Browser contexts (one per running browser job) open.",
    labels: &[],
};

/// `control_plane_browser_context_capacity`.
pub const BROWSER_CAPACITY: Spec = Spec {
    name: "control_plane_browser_context_capacity",
    help: "Browser contexts the pool may open at once.",
    labels: &[],
};

/// `control_plane_browser_restarts_total`.
pub const BROWSER_RESTARTS: Spec = Spec {
    name: "control_plane_browser_restarts_total",
    help: "Browsers replaced after a crash or a lost connection.",
    labels: &[],
};

/// `control_plane_browser_recycles_total`.
pub const BROWSER_RECYCLES: Spec = Spec {
    name: "control_plane_browser_recycles_total",
    help: "Browsers replaced after serving BROWSER_RECYCLE_PAGES jobs.",
    labels: &[],
};

/// `control_plane_browser_pages_served_total`.
pub const BROWSER_PAGES: Spec = Spec {
    name: "control_plane_browser_pages_served_total",
    help: "Jobs the browser pool served.",
    labels: &[],
};

/// `control_plane_http_requests_total`.
pub const HTTP_REQUESTS: Spec = Spec {
    name: "control_plane_http_requests_total",
    help: "HTTP requests answered, by route template and status.",
    labels: &["method", "route", "status"],
};

/// `control_plane_http_request_duration_seconds`.
pub const HTTP_SECONDS: Spec = Spec {
    name: "control_plane_http_request_duration_seconds",
    help: "How long HTTP requests took to answer (a stream: until its headers).",
    labels: &["method", "route"],
};

/// `control_plane_http_requests_in_flight`.
pub const HTTP_IN_FLIGHT: Spec = Spec {
    name: "control_plane_http_requests_in_flight",
    help: "HTTP requests being answered now (a wait until it answers, a stream until its headers).",
    labels: &["route"],
};

/// `control_plane_db_connections`.
pub const DB_CONNECTIONS: Spec = Spec {
    name: "control_plane_db_connections",
    help: "Database connections of this process.",
    labels: &["state"],
};

/// `control_plane_db_queries_total`.
pub const DB_QUERIES: Spec = Spec {
    name: "control_plane_db_queries_total",
    help: "Statements this process sent to the database.",
    labels: &[],
};

/// `control_plane_webhook_deliveries_total`.
pub const WEBHOOK_DELIVERIES: Spec = Spec {
    name: "control_plane_webhook_deliveries_total",
    help: "Webhook delivery attempts, by how they ended.",
    labels: &["outcome"],
};

/// `control_plane_purged_rows_total`.
pub const PURGED_ROWS: Spec = Spec {
    name: "control_plane_purged_rows_total",
    help: "Rows deleted by retention or an erased job, by table.",
    labels: &["table"],
};

/// `control_plane_purged_bytes_total`.
pub const PURGED_BYTES: Spec = Spec {
    name: "control_plane_purged_bytes_total",
    help: "Bytes of artifacts deleted from the artifact store.",
    labels: &[],
};

/// `control_plane_proxy_attempts_total`.
pub const PROXY_ATTEMPTS: Spec = Spec {
    name: "control_plane_proxy_attempts_total",
    help: "Attempts given an upstream proxy, by pool, tier and proxy name.",
    labels: &["pool", "tier", "proxy"],
};

/// `control_plane_proxy_failures_total`.
pub const PROXY_FAILURES: Spec = Spec {
    name: "control_plane_proxy_failures_total",
    help: "Times an upstream proxy failed (and was benched), by pool, tier and proxy name.",
    labels: &["pool", "tier", "proxy"],
};

/// `control_plane_proxy_in_flight`.
pub const PROXY_IN_FLIGHT: Spec = Spec {
    name: "control_plane_proxy_in_flight",
    help: "Attempts an upstream proxy carries now.",
    labels: &["pool", "tier", "proxy"],
};

/// `control_plane_proxy_benched`.
pub const PROXY_BENCHED: Spec = Spec {
    name: "control_plane_proxy_benched",
    help: "1 while an upstream proxy is benched after failures, else 0.",
    labels: &["pool", "tier", "proxy"],
};
