//! The API's HTTP server: hyper with the limits axum's default `serve` leaves out — a
//! deadline for a request's headers (which also closes idle keep-alive connections) and a
//! cap on open connections — and a graceful stop.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::api::{self, AppState};
use crate::engine::own_ports::OwnPort;

/// How long a client may take to send a request's headers, and how long an idle keep-alive
/// connection stays open: a slow or silent client cannot hold a connection for long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the kernel's accept queue until one closes.
pub const MAX_CONNECTIONS: usize = 4096;
/// Pause after `accept` fails (out of descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the API on `listener` until `shutdown`, then lets requests finish within `grace`.
pub async fn serve_api(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    // No job may call the API from inside the worker, whatever ALLOW_PRIVATE_TARGETS says.
    let _own = listener
        .local_addr()
        .ok()
        .map(|addr| OwnPort::guard(addr.port()));
    let router = api::router(state, crate::ui::router());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(HEADER_READ_TIMEOUT))
        .keep_alive_timeout(HEADER_READ_TIMEOUT);
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let graceful_watch = graceful.watcher();
        let router = router.clone();
        tokio::spawn(async move {
            // hyper's timer starts once it reads a request; before the first byte (while the
            // server tells HTTP/1 from HTTP/2) nothing times out, so wait here with a deadline.
            let mut first = [0u8; 1];
            match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => {
                    debug!("closing a connection that sent nothing");
                    return;
                }
            }
            let service = router.map_request(|request: hyper::Request<Incoming>| {
                request.map(axum::body::Body::new)
            });
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            let connection = graceful_watch.watch(connection.into_owned());
            if let Err(e) = connection.await {
                debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            warn!("grace period over: closing the API with requests in flight");
        }
    }
    Ok(())
}
