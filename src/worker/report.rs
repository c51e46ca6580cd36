//! Worker status reports: each worker publishes its browser pool's state as a signal,
//! so `/ready` and queue statistics show it wherever the API runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::queue::Signals;

/// How often a worker publishes its report.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a report stays visible without being renewed.
pub const REPORT_TTL: Duration = Duration::from_secs(15);

/// This worker's report now: its id, its slots, and its browser's status and pool counters.
pub fn snapshot(worker: &str, engine: &Engine, note: Option<&str>, metrics: &Metrics) -> Value {
    let browser = match engine.browser() {
        Some(runner) => json!({
            "status": "ready",
            "executable": runner.pool().config().executable.display().to_string(),
            "pool": runner.pool().stats(),
        }),
        None => json!({
            "status": "unavailable",
            "detail": note,
        }),
    };
    let families = metrics.families();
    let slots = json!({
        "running": families.worker_running.with_label_values(&[worker]).get(),
        "free": families.worker_free_slots.with_label_values(&[worker]).get(),
    });
    json!({"worker": worker, "slots": slots, "browser": browser})
}

/// Publishes this worker's report once.
pub async fn publish(
    signals: &dyn Signals,
    worker: &str,
    engine: &Engine,
    note: Option<&str>,
    metrics: &Metrics,
) {
    let report = snapshot(worker, engine, note, metrics);
    if let Err(e) = signals.report(worker, &report, REPORT_TTL).await {
        debug!(error = %e, "cannot publish the worker report");
    }
}

/// Publishes the report every [`REPORT_INTERVAL`] until `shutdown`, the first one at once.
pub async fn run(
    signals: Arc<dyn Signals>,
    worker: String,
    engine: Arc<Engine>,
    note: Option<String>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    loop {
        publish(
            signals.as_ref(),
            &worker,
            &engine,
            note.as_deref(),
            &metrics,
        )
        .await;
        beat();
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(REPORT_INTERVAL) => {}
        }
    }
}

/// Sums workers' reports into the browser section of `/ready` and queue statistics.
pub fn browser_summary(reports: &[Value]) -> Value {
    let ready: Vec<&Value> = reports
        .iter()
        .filter(|r| r["browser"]["status"] == "ready")
        .collect();
    let status = if reports.is_empty() {
        "unknown"
    } else if ready.is_empty() {
        "unavailable"
    } else {
        "ready"
    };
    let sum = |key: &str| -> u64 {
        ready
            .iter()
            .filter_map(|r| r["browser"]["pool"][key].as_u64())
            .sum()
    };
    let detail = match status {
        "unknown" => json!("no worker has reported yet"),
        "unavailable" => reports
            .iter()
            .find_map(|r| r["browser"]["detail"].as_str())
            .map_or(Value::Null, |d| json!(d)),
        _ => Value::Null,
    };
    json!({
        "status": status,
        "detail": detail,
        "workers": reports.len(),
        "workers_with_browser": ready.len(),
        "browsers": sum("browsers"),
        "contexts": sum("contexts"),
        "capacity": sum("capacity"),
        "pages_served": sum("pages_served"),
        "restarts": sum("restarts"),
        "recycles": sum("recycles"),
    })
}

/// The file a worker touches with each report (every 5 s) while it runs: the container's
/// health check (`control-plane probe`) reads its age, since workers serve no HTTP.
pub fn heartbeat_file() -> PathBuf {
    std::env::temp_dir().join("control-plane-worker.alive")
}

/// Touches the heartbeat file; failures only cost the health check.
fn beat() {
    let _ = std::fs::write(heartbeat_file(), b"");
}
