//! The only way out for a job: a forward proxy inside the worker, one per attempt, that
//! every request of the attempt goes through — the http engine's, and every request of the
//! job's browser context (navigations, sub-resources, redirects, WebSockets, every kind of
//! worker). The webhook courier leaves through one too.
//!
//! Going direct, it resolves each host itself, checks every address against the target
//! policy, and connects to the address it checked, so a name that answers a public address to
//! a check and a private one to the connection (DNS rebinding) gets nowhere; a name that does
//! not resolve in time is refused, never let through. Going through an upstream proxy (see
//! [`Route`]), the proxy resolves the name: the policy still holds for the name and for every
//! literal address, and the proxy is an operator-trusted hop. Either way the service's own
//! ports ([`super::own_ports`]) are refused, even when private targets are allowed.

mod connect;
mod forward;
pub mod upstream;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::debug;

use super::own_ports::OwnPort;
use super::tally::{DIRECT, Tally};
use crate::job::target::TargetPolicy;
use crate::job::{ErrorKind, JobError};

pub use upstream::{Relay, Upstream, UpstreamScheme};

use forward::{ProxyBody, answer, forward, tunnel};

/// What the egress refused for its attempt, so a failed request can be explained.
#[derive(Debug, Default)]
pub struct Refusals {
    /// Each refusal by the target policy (or the own-port guard), first first.
    pub policy: Vec<String>,
    /// Each time no upstream proxy could carry a request (each failed proxy is benched).
    pub proxy: Vec<String>,
    /// Each destination that could not be reached (no such host, no answer, refused).
    pub unreachable: Vec<String>,
}

impl Refusals {
    /// Why a request through the egress failed, when the egress knows: the first policy
    /// refusal (`target_policy`), else the last proxy failure (another attempt may find a
    /// proxy), else the first destination that could not be reached (`navigation`).
    pub fn explain(&self) -> Option<JobError> {
        if let Some(why) = self.policy.first() {
            return Some(JobError::new(ErrorKind::TargetPolicy, why.clone()));
        }
        if let Some(why) = self.proxy.last() {
            return Some(JobError::new(ErrorKind::Navigation, why.clone()).retryable(true));
        }
        let why = self.unreachable.first()?;
        Some(JobError::new(ErrorKind::Navigation, why.clone()))
    }
}

/// The record of one egress's refusals, shared with whoever explains its failures.
pub type SharedRefusals = Arc<Mutex<Refusals>>;

/// How an attempt's connections leave the worker.
#[derive(Clone, Default)]
pub enum Route {
    /// Straight to the target, from the worker's own address.
    #[default]
    Direct,
    /// Through the upstream proxy the relay names (one proxy per attempt; another when it
    /// fails).
    Via(Arc<dyn Relay>),
}

impl Route {
    /// What the tally counts its requests under: `direct`, or the proxy tier.
    pub fn name(&self) -> &str {
        self.tier().unwrap_or(DIRECT)
    }

    /// The proxy tier it goes through; none when direct.
    pub fn tier(&self) -> Option<&str> {
        match self {
            Route::Direct => None,
            Route::Via(relay) => Some(relay.tier()),
        }
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Direct => f.write_str("Direct"),
            Route::Via(_) => f.write_str("Via(..)"),
        }
    }
}

/// One attempt's proxy; it stops (with every connection it carries) when dropped.
pub struct Egress {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    refusals: SharedRefusals,
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the proxy decides for each destination, and how it gets there.
#[derive(Clone)]
struct Gate {
    policy: TargetPolicy,
    route: Route,
    refusals: SharedRefusals,
    tally: Tally,
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
    /// No proxy of the attempt's pool could carry it: recorded, so the job says so.
    ProxyFailed(String),
}

impl Egress {
    /// Starts a proxy on a free loopback port for one attempt, leaving by `route`, counting
    /// what it carries in `tally`.
    pub async fn start(
        policy: TargetPolicy,
        route: Route,
        tally: Tally,
    ) -> std::io::Result<Egress> {
        let listener = TcpListener::bind((IpAddr::from([127, 0, 0, 1]), 0)).await?;
        let addr = listener.local_addr()?;
        // The proxy must not be a way to reach itself (or another attempt's).
        let own = OwnPort::guard(addr.port());
        let refusals = SharedRefusals::default();
        let gate = Gate {
            policy,
            route,
            refusals: refusals.clone(),
            tally,
        };
        let task = tokio::spawn(async move {
            let _own = own;
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, gate.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Egress {
            addr,
            task,
            refusals,
        })
    }

    /// The proxy's url, as Chromium's `proxyServer` and reqwest name it.
    pub fn proxy_server(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What this egress refused so far.
    pub fn refusals(&self) -> &SharedRefusals {
        &self.refusals
    }

    /// The first refusal by the target policy.
    pub fn first_refusal(&self) -> Option<String> {
        self.refusals
            .lock()
            .ok()
            .and_then(|r| r.policy.first().cloned())
    }

    /// Why a request through this egress failed, when it knows ([`Refusals::explain`]).
    pub fn explain(&self) -> Option<JobError> {
        self.refusals.lock().ok().and_then(|r| r.explain())
    }
}

/// Serves one connection from the client: CONNECT tunnels and plain http requests.
async fn serve(stream: TcpStream, gate: Gate) {
    // A refused request gets no answer at all: the connection closes, so the client sees a
    // network error (which the engine explains with the recorded refusal) rather than a page.
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

impl Gate {
    async fn handle(&self, request: Request<Incoming>) -> Result<Response<ProxyBody>, Refused> {
        let Some((host, port)) = destination(&request) else {
            return Ok(answer(StatusCode::BAD_REQUEST, "no destination"));
        };
        let tunnelled = request.method() == Method::CONNECT;
        let leg = match self.connect(&host, port, tunnelled).await {
            Ok(leg) => leg,
            Err(Denied::Refused(why)) => {
                debug!(%why, "egress refused a request");
                if let Ok(mut refusals) = self.refusals.lock() {
                    refusals.policy.push(why.clone());
                }
                return Err(Refused(why));
            }
            // Closed unanswered too: an answer of our own would read as the site's.
            Err(Denied::Unreachable(why)) => {
                debug!(%why, "egress could not reach a destination");
                if let Ok(mut refusals) = self.refusals.lock() {
                    refusals.unreachable.push(why.clone());
                }
                return Err(Refused(why));
            }
            Err(Denied::ProxyFailed(why)) => {
                self.proxy_failed(&why);
                return Err(Refused(why));
            }
        };
        self.tally.request(self.route.name());
        if tunnelled {
            return Ok(tunnel(request, leg.stream));
        }
        let relayed = leg.relayed.clone();
        let response = forward(request, leg).await;
        match relayed {
            // A proxy that refuses our credentials on a plain request answers 407 (tinyproxy
            // says 401 with a Proxy-Authenticate challenge): its fault, not the site's.
            Some((relay, upstream)) if refuses_credentials(&response) => {
                let why = format!("proxy {}: refused the credentials", upstream.name);
                relay.failed(&upstream, &why);
                self.proxy_failed(&why);
                Err(Refused(why))
            }
            _ => Ok(response),
        }
    }

    fn proxy_failed(&self, why: &str) {
        debug!(%why, "no proxy carried a request");
        if let Ok(mut refusals) = self.refusals.lock() {
            refusals.proxy.push(why.to_owned());
        }
    }
}

/// Whether a proxy's answer to a plain request refuses its credentials: a 407, or a 401
/// that is the proxy's own (with a Proxy-Authenticate challenge, or from tinyproxy, which
/// refuses with 401 and a WWW-Authenticate challenge of its own up to 1.11).
fn refuses_credentials(response: &Response<ProxyBody>) -> bool {
    let headers = response.headers();
    let from_tinyproxy = headers
        .get(hyper::header::SERVER)
        .and_then(|server| server.to_str().ok())
        .is_some_and(|server| server.starts_with("tinyproxy/"));
    match response.status() {
        StatusCode::PROXY_AUTHENTICATION_REQUIRED => true,
        StatusCode::UNAUTHORIZED => {
            headers.contains_key(hyper::header::PROXY_AUTHENTICATE) || from_tinyproxy
        }
        _ => false,
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
