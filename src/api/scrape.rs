//! `GET /metrics` (here, and on a worker's own small listener): reads the gauges of things kept elsewhere (job counts and queue levels in
//! API processes; the browser pool and database connections everywhere), then renders the
//! registry. A worker process serves it on its own small listener (`METRICS_BIND`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::browser::BrowserPool;
use crate::metrics::{Metrics, catch_up, gauge};
use crate::proxy::Pools;
use crate::queue::JobQueue;
use crate::store::JobStore;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a scrape reads besides the registry.
#[derive(Clone)]
pub struct Sources {
    /// The registry.
    pub metrics: Metrics,
    /// The store (its connections always; its job counts when `backlog` is set).
    pub store: Arc<dyn JobStore>,
    /// The queue, whose levels are read when `backlog` is set.
    pub queue: Arc<dyn JobQueue>,
    /// This process's browser pool, if it has one.
    pub pool: Option<BrowserPool>,
    /// Whether to read job counts and queue levels (API processes; a worker leaves the
    /// shared backlog to them, so it is counted once).
    pub backlog: bool,
    /// The upstream proxy pools, whose health this process keeps.
    pub proxies: Pools,
}

impl Sources {
    /// Reads the gauges, then renders every metric.
    pub async fn scrape(&self) -> String {
        self.local();
        if self.backlog {
            self.backlog().await;
        }
        self.metrics.render()
    }

    /// What this process knows without asking anyone: its pool and connections.
    fn local(&self) {
        let f = self.metrics.families();
        let db = self.store.database_use();
        f.db_connections
            .with_label_values(&["in_use"])
            .set(gauge(db.in_use));
        f.db_connections
            .with_label_values(&["idle"])
            .set(gauge(db.idle));
        catch_up(&f.db_queries, db.queries);
        if let Some(pool) = &self.pool {
            let stats = pool.stats();
            f.browsers.set(gauge(stats.browsers as u64));
            f.browser_contexts.set(gauge(stats.contexts as u64));
            f.browser_capacity.set(gauge(stats.capacity as u64));
            catch_up(&f.browser_restarts, stats.restarts);
            catch_up(&f.browser_recycles, stats.recycles);
            catch_up(&f.browser_pages, stats.pages_served);
        }
        self.proxy_health();
    }

    /// Each upstream proxy's use and health, by pool, tier and name (never its address's
    /// credentials).
    fn proxy_health(&self) {
        let f = self.metrics.families();
        for pool in self.proxies.views() {
            for proxy in &pool.proxies {
                let labels = [pool.name.as_str(), pool.tier.as_str(), proxy.name.as_str()];
                catch_up(&f.proxy_attempts.with_label_values(&labels), proxy.attempts);
                catch_up(&f.proxy_failures.with_label_values(&labels), proxy.failures);
                f.proxy_in_flight
                    .with_label_values(&labels)
                    .set(i64::from(proxy.in_flight));
                f.proxy_benched
                    .with_label_values(&labels)
                    .set(i64::from(proxy.state == "benched"));
            }
        }
    }

    /// Job counts from the store, queue levels from the queue; a backend that does not
    /// answer leaves its gauges as they were (and logs why).
    async fn backlog(&self) {
        let f = self.metrics.families();
        let (jobs, levels) = tokio::join!(self.store.stats(), self.queue.stats());
        match jobs {
            Ok(stats) => {
                for (state, n) in &stats.by_state {
                    f.jobs.with_label_values(&[state]).set(*n);
                }
                for level in crate::job::Priority::LEVELS.map(crate::job::Priority::get) {
                    let due = stats.due_by_priority.iter().find(|d| d.0 == level);
                    let (count, oldest) = due.map_or((0, None), |d| (d.1, d.2));
                    let age = oldest.map_or(0.0, |t| {
                        (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
                    });
                    let label = level.to_string();
                    f.queue_due.with_label_values(&[&label]).set(count);
                    f.queue_oldest_due_age.with_label_values(&[&label]).set(age);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read job counts"),
        }
        match levels {
            Ok(levels) => {
                for level in levels {
                    let label = level.priority.get().to_string();
                    f.queue_depth
                        .with_label_values(&[&label])
                        .set(gauge(level.length));
                    f.queue_pending
                        .with_label_values(&[&label])
                        .set(gauge(level.pending));
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the queue"),
        }
    }
}

/// The `/metrics` response.
pub fn response(body: String) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

async fn metrics(State(sources): State<Sources>) -> Response {
    response(sources.scrape().await)
}

/// Serves `/metrics` (and `/health`) on `listener` until `shutdown`: a worker process's
/// metrics listener. It answers without keys: bind it where only the scraper reaches.
pub async fn serve(listener: TcpListener, sources: Sources, shutdown: CancellationToken) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let _own = addr.map(|addr| crate::engine::own_ports::OwnPort::guard(addr.port()));
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .with_state(sources);
    tracing::info!(?addr, "metrics listening");
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "metrics listener stopped");
    }
}
