//! Prometheus metrics: one registry per process (so two apps in one test binary never share
//! counters), rendered in the Prometheus text format at `GET /metrics`. Names follow the
//! Prometheus conventions: a `control_plane_` prefix, base units, `_total` for counters.
//!
//! Counters and histograms are recorded where things happen (a settled attempt, an HTTP
//! request); gauges of things that exist elsewhere (queue levels, job counts, the browser
//! pool, database connections) are read when scraped (`app::scrape`, which knows them).

mod families;
pub mod http;

use std::sync::Arc;

use families::*;

use prometheus::{
    Encoder, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder,
};

/// Attempt durations: from a plain fetch (tens of ms) to a page that uses its whole timeout.
const ATTEMPT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// API latencies: most answers take milliseconds; a `?wait=` may take a minute.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// The process's metrics.
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

/// Every metric family, registered once.
pub struct Families {
    registry: Registry,
    /// Jobs that reached a terminal state: `job_type`, `strategy`, `outcome`, `error_kind`.
    pub jobs_finished: IntCounterVec,
    /// Attempts run: `job_type`, `strategy`, `outcome` (`succeeded`, `retrying`, `failed`).
    pub attempts: IntCounterVec,
    /// Attempt durations in seconds: `job_type`, `strategy`.
    pub attempt_seconds: HistogramVec,
    /// Jobs by state, from the store: `state`.
    pub jobs: IntGaugeVec,
    /// Doorbells in a queue level (waiting plus delivered, unacknowledged): `priority`.
    pub queue_depth: IntGaugeVec,
    /// Doorbells delivered to a worker and not yet acknowledged: `priority`.
    pub queue_pending: IntGaugeVec,
    /// Queued jobs that are due now: `priority`.
    pub queue_due: IntGaugeVec,
    /// Age of the oldest due queued job in seconds (0 when none): `priority`.
    pub queue_oldest_due_age: prometheus::GaugeVec,
    /// Jobs a worker is running now: `worker`.
    pub worker_running: IntGaugeVec,
    /// A worker's free slots: `worker`.
    pub worker_free_slots: IntGaugeVec,
    /// Chromium processes alive.
    pub browsers: IntGauge,
    /// Browser contexts (jobs) open.
    pub browser_contexts: IntGauge,
    /// Browser contexts the pool may open at once.
    pub browser_capacity: IntGauge,
    /// Browsers replaced after a crash.
    pub browser_restarts: IntCounter,
    /// Browsers replaced after serving their share of pages.
    pub browser_recycles: IntCounter,
    /// Pages (jobs) the pool served.
    pub browser_pages: IntCounter,
    /// HTTP requests answered: `method`, `route`, `status`.
    pub http_requests: IntCounterVec,
    /// HTTP request latency in seconds: `method`, `route`.
    pub http_seconds: HistogramVec,
    /// HTTP requests being answered now (a `?wait=` until it answers; an event stream until
    /// its headers): `route`.
    pub http_in_flight: IntGaugeVec,
    /// Database connections: `state` (`in_use`, `idle`).
    pub db_connections: IntGaugeVec,
    /// Statements this process sent to the database.
    pub db_queries: IntCounter,
    /// Webhook delivery attempts: `outcome` (`delivered`, `failed`, `gave_up`).
    pub webhook_deliveries: IntCounterVec,
    /// Rows deleted by retention and `DELETE /api/v1/jobs/{id}`: `table` (`jobs`,
    /// `job_events`, `job_artifacts`, `idempotency_keys`).
    pub purged_rows: IntCounterVec,
    /// Bytes of artifact objects deleted from the artifact store.
    pub purged_bytes: IntCounter,
    /// Attempts given each upstream proxy: `pool`, `tier`, `proxy` (its name).
    pub proxy_attempts: IntCounterVec,
    /// Failures of each upstream proxy: `pool`, `tier`, `proxy`.
    pub proxy_failures: IntCounterVec,
    /// Attempts each upstream proxy carries now: `pool`, `tier`, `proxy`.
    pub proxy_in_flight: IntGaugeVec,
    /// Whether each upstream proxy is benched: `pool`, `tier`, `proxy`.
    pub proxy_benched: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every family at zero.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let families = Families {
            jobs_finished: counters(&r, &JOBS_FINISHED),
            attempts: counters(&r, &ATTEMPTS),
            attempt_seconds: histograms(&r, &ATTEMPT_SECONDS, ATTEMPT_BUCKETS),
            jobs: gauges(&r, &JOBS),
            queue_depth: gauges(&r, &QUEUE_DEPTH),
            queue_pending: gauges(&r, &QUEUE_PENDING),
            queue_due: gauges(&r, &QUEUE_DUE),
            queue_oldest_due_age: float_gauges(&r, &QUEUE_OLDEST_DUE_AGE),
            worker_running: gauges(&r, &WORKER_RUNNING),
            worker_free_slots: gauges(&r, &WORKER_FREE_SLOTS),
            browsers: int_gauge(&r, &BROWSERS),
            browser_contexts: int_gauge(&r, &BROWSER_CONTEXTS),
            browser_capacity: int_gauge(&r, &BROWSER_CAPACITY),
            browser_restarts: int_counter(&r, &BROWSER_RESTARTS),
            browser_recycles: int_counter(&r, &BROWSER_RECYCLES),
            browser_pages: int_counter(&r, &BROWSER_PAGES),
            http_requests: counters(&r, &HTTP_REQUESTS),
            http_seconds: histograms(&r, &HTTP_SECONDS, HTTP_BUCKETS),
            http_in_flight: gauges(&r, &HTTP_IN_FLIGHT),
            db_connections: gauges(&r, &DB_CONNECTIONS),
            db_queries: int_counter(&r, &DB_QUERIES),
            webhook_deliveries: counters(&r, &WEBHOOK_DELIVERIES),
            purged_rows: counters(&r, &PURGED_ROWS),
            purged_bytes: int_counter(&r, &PURGED_BYTES),
            proxy_attempts: counters(&r, &PROXY_ATTEMPTS),
            proxy_failures: counters(&r, &PROXY_FAILURES),
            proxy_in_flight: gauges(&r, &PROXY_IN_FLIGHT),
            proxy_benched: gauges(&r, &PROXY_BENCHED),
            registry: r,
        };
        // Series that exist from the start read 0 rather than "no data".
        for outcome in ["delivered", "failed", "gave_up"] {
            families.webhook_deliveries.with_label_values(&[outcome]);
        }
        Metrics(Arc::new(families))
    }

    /// The families.
    pub fn families(&self) -> &Families {
        &self.0
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into memory fails only for malformed families, which registration rules out.
        if let Err(e) = TextEncoder::new().encode(&self.0.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// A job reached a terminal state.
    pub fn job_finished(&self, job_type: &str, strategy: &str, outcome: &str, error_kind: &str) {
        self.0
            .jobs_finished
            .with_label_values(&[job_type, strategy, outcome, error_kind])
            .inc();
    }

    /// An attempt ran for `seconds` and ended with `outcome`.
    pub fn attempt(&self, job_type: &str, strategy: &str, outcome: &str, seconds: f64) {
        let f = &self.0;
        f.attempts
            .with_label_values(&[job_type, strategy, outcome])
            .inc();
        f.attempt_seconds
            .with_label_values(&[job_type, strategy])
            .observe(seconds);
    }

    /// The gauges of worker `id` with `slots` slots.
    pub fn worker(&self, id: &str, slots: usize) -> WorkerGauges {
        let free = self.0.worker_free_slots.with_label_values(&[id]);
        free.set(gauge(slots as u64));
        let running = self.0.worker_running.with_label_values(&[id]);
        running.set(0);
        WorkerGauges {
            running,
            free,
            id: id.to_owned(),
            metrics: self.clone(),
        }
    }
}

/// A count as a gauge's value (saturating).
pub fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Raises `counter` to `total`, a count kept elsewhere that only grows.
pub fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

/// A worker's running and free-slot gauges; dropped when the worker stops (its series go).
pub struct WorkerGauges {
    running: IntGauge,
    free: IntGauge,
    id: String,
    metrics: Metrics,
}

impl WorkerGauges {
    /// Marks a slot busy until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        self.running.inc();
        self.free.dec();
        Busy {
            running: self.running.clone(),
            free: self.free.clone(),
        }
    }
}

impl Drop for WorkerGauges {
    fn drop(&mut self) {
        let f = &self.metrics.0;
        let _ = f.worker_running.remove_label_values(&[&self.id]);
        let _ = f.worker_free_slots.remove_label_values(&[&self.id]);
    }
}

/// A busy worker slot.
pub struct Busy {
    running: IntGauge,
    free: IntGauge,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.running.dec();
        self.free.inc();
    }
}
