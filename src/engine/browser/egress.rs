//! The only way out for a browser job: a forward proxy inside the worker, one per attempt,
//! that every request of the job's browser context goes through — navigations,
//! sub-resources, redirects, WebSockets, every kind of worker. It resolves each host itself,
//! checks every address against the target policy, and connects to the address it checked,
//! so a name that answers a public address to a check and a private one to the connection
//! (DNS rebinding) gets nowhere. A name that does not resolve in time is refused, never let
//! through. The browser's own DevTools endpoint is refused even when private targets are
//! allowed.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::debug;

use super::session::Refusals;
use crate::job::target::{ResolveError, TargetPolicy};

/// How long connecting to a checked address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Ports the proxy never connects to on loopback: the DevTools endpoints of this worker's
/// browsers (a page reaching one could drive every job's browser and read their urls).
#[derive(Debug, Clone, Default)]
pub struct GuardedPorts(Arc<Mutex<HashSet<u16>>>);

impl GuardedPorts {
    /// Guards `port`.
    pub fn guard(&self, port: u16) {
        if let Ok(mut ports) = self.0.lock() {
            ports.insert(port);
        }
    }

    /// Stops guarding `port` (its browser is gone).
    pub fn release(&self, port: u16) {
        if let Ok(mut ports) = self.0.lock() {
            ports.remove(&port);
        }
    }

    /// The guarded ports.
    pub fn ports(&self) -> Vec<u16> {
        self.0
            .lock()
            .map(|ports| ports.iter().copied().collect())
            .unwrap_or_default()
    }

    fn contains(&self, port: u16) -> bool {
        // A poisoned lock guards everything: refusing is the safe answer.
        self.0.lock().map_or(true, |ports| ports.contains(&port))
    }
}

/// One attempt's proxy; it stops (with every connection it carries) when dropped.
pub struct Egress {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the proxy decides for each destination.
#[derive(Clone)]
struct Gate {
    policy: TargetPolicy,
    guarded: GuardedPorts,
    refusals: Arc<Mutex<Refusals>>,
}

/// A request the policy refused; the connection is closed without an answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// Why a destination is not connected to.
enum Denied {
    /// The policy refuses it: recorded, so the job fails with `target_policy`.
    Refused(String),
    /// It cannot be reached (no such host, no answer, connection refused).
    Unreachable(String),
}

impl Egress {
    /// Starts a proxy on a free loopback port for one attempt.
    pub(super) async fn start(
        policy: TargetPolicy,
        guarded: GuardedPorts,
        refusals: Arc<Mutex<Refusals>>,
    ) -> std::io::Result<Egress> {
        let listener = TcpListener::bind((IpAddr::from([127, 0, 0, 1]), 0)).await?;
        let addr = listener.local_addr()?;
        // The proxy must not be a way to reach itself.
        guarded.guard(addr.port());
        let gate = Gate {
            policy,
            guarded: guarded.clone(),
            refusals,
        };
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, gate.clone()));
                while connections.try_join_next().is_some() {}
            }
            guarded.release(addr.port());
        });
        Ok(Egress { addr, task })
    }

    /// The proxy as Chromium's `proxyServer` names it.
    pub fn proxy_server(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Serves one connection from the browser: CONNECT tunnels and plain http requests.
async fn serve(stream: TcpStream, gate: Gate) {
    // A refused request gets no answer at all: the connection closes, so the browser sees a
    // network error (which the session explains with the recorded refusal) rather than a page.
    let service = service_fn(move |request| {
        let gate = gate.clone();
        async move { gate.handle(request).await }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        debug!(error = %e, "egress connection ended");
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn answer(status: StatusCode, reason: &str) -> Response<ProxyBody> {
    let mut response = Response::new(
        http_body_util::Full::new(Bytes::from(reason.to_owned()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

impl Gate {
    async fn handle(&self, request: Request<Incoming>) -> Result<Response<ProxyBody>, Refused> {
        let Some((host, port)) = destination(&request) else {
            return Ok(answer(StatusCode::BAD_REQUEST, "no destination"));
        };
        let stream = match self.connect(&host, port).await {
            Ok(stream) => stream,
            Err(Denied::Refused(why)) => {
                debug!(%why, "egress refused a request");
                if let Ok(mut refusals) = self.refusals.lock() {
                    refusals.policy.push(why.clone());
                }
                return Err(Refused(why));
            }
            Err(Denied::Unreachable(why)) => return Ok(answer(StatusCode::BAD_GATEWAY, &why)),
        };
        Ok(if request.method() == Method::CONNECT {
            tunnel(request, stream)
        } else {
            forward(request, stream).await
        })
    }

    /// Resolves `host`, checks every address, and connects to a checked one.
    async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, Denied> {
        let addrs = self.policy.resolve(host, port).await.map_err(|e| match e {
            ResolveError::Refused(refused) => Denied::Refused(refused.to_string()),
            lookup => Denied::Unreachable(lookup.to_string()),
        })?;
        if addrs.iter().any(|addr| addr.ip().is_loopback()) && self.guarded.contains(port) {
            return Err(Denied::Refused(format!(
                "target {host}:{port} is refused: it is this worker's own browser control port"
            )));
        }
        let mut last = format!("{host} has no address");
        for addr in addrs {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => last = format!("cannot connect to {host} ({addr}): {e}"),
                Err(_) => last = format!("connecting to {host} ({addr}) timed out"),
            }
        }
        Err(Denied::Unreachable(last))
    }
}

/// The host and port a proxied request is for: the authority of a CONNECT, or the host of
/// an absolute http url.
fn destination(request: &Request<Incoming>) -> Option<(String, u16)> {
    let uri = request.uri();
    if request.method() == Method::CONNECT {
        let authority = uri.authority()?;
        return Some((authority.host().to_owned(), authority.port_u16()?));
    }
    if uri.scheme_str() != Some("http") {
        return None;
    }
    Some((uri.host()?.to_owned(), uri.port_u16().unwrap_or(80)))
}

/// Answers a CONNECT and joins the browser to the checked connection.
fn tunnel(request: Request<Incoming>, mut upstream: TcpStream) -> Response<ProxyBody> {
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            Err(e) => debug!(error = %e, "a CONNECT was not upgraded"),
        }
    });
    Response::new(Empty::new().map_err(|never| match never {}).boxed())
}

/// Sends a plain http request over the checked connection, in origin form, without the
/// proxy's own headers.
async fn forward(mut request: Request<Incoming>, upstream: TcpStream) -> Response<ProxyBody> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let Ok(uri) = path.parse() else {
        return answer(StatusCode::BAD_REQUEST, "bad path");
    };
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.remove("proxy-connection");
    headers.remove("proxy-authorization");
    let handshake = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake::<_, Incoming>(TokioIo::new(upstream))
        .await;
    let (mut sender, connection) = match handshake {
        Ok(parts) => parts,
        Err(e) => return answer(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            debug!(error = %e, "an upstream connection ended");
        }
    });
    match sender.send_request(request).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(e) => answer(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}
