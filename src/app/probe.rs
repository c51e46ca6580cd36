//! `control-plane probe`: the container's health check, for every role. Healthy when the API
//! on `BIND`'s port answers `/health`, or when this machine's worker has beaten its heart
//! within the last [`HEARTBEAT_STALE`] (workers serve no HTTP).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::worker::heartbeat_file;

/// How old the worker's heartbeat may be.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(30);
/// How long the probe waits for the API.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether this machine's API or worker is alive; says which on stdout.
pub async fn probe(bind: SocketAddr) -> bool {
    let port = bind.port();
    if api_answers(port).await {
        println!("api on port {port}: up");
        return true;
    }
    let fresh = std::fs::metadata(heartbeat_file())
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age < HEARTBEAT_STALE);
    if fresh {
        println!("worker: up");
    } else {
        println!(
            "no API answers on port {port} and no worker reported in {} s",
            HEARTBEAT_STALE.as_secs()
        );
    }
    fresh
}

async fn api_answers(port: u16) -> bool {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, ask).await,
        Ok(Some(true))
    )
}
