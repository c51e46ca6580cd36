//! Where a request's connection goes: checked, then straight to a checked address or
//! through the attempt's upstream proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use url::Host;

use super::upstream::{Relay, Upstream, UpstreamError};
use super::{Denied, Gate, Route};
use crate::engine::own_ports;
use crate::job::target::ResolveError;

/// How long connecting to a checked address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many proxies one request tries before it gives up (each failure benches one).
const PROXIES_PER_REQUEST: usize = 3;

/// A connection on its way to the target.
pub(super) struct Leg {
    /// The stream: to the target, or (for plain http through an HTTP proxy) to the proxy.
    pub stream: TcpStream,
    /// Set when `stream` is an HTTP proxy's and a plain http request goes to it whole:
    /// its `Proxy-Authorization` value, if any.
    pub proxied: Option<Option<String>>,
    /// The relay and proxy that carry it, to hear how the proxy answered.
    pub relayed: Option<(Arc<dyn Relay>, Upstream)>,
}

impl Leg {
    fn direct(stream: TcpStream) -> Leg {
        Leg {
            stream,
            proxied: None,
            relayed: None,
        }
    }
}

impl Gate {
    /// Checks `host:port` and connects to it by the attempt's route. `tunnel` says whether
    /// the client wants a byte stream to the target (CONNECT), rather than to send one plain
    /// http request.
    pub(super) async fn connect(&self, host: &str, port: u16, tunnel: bool) -> Result<Leg, Denied> {
        match &self.route {
            Route::Direct => self.connect_direct(host, port).await.map(Leg::direct),
            Route::Via(relay) => {
                self.check_name(host, port)?;
                self.connect_via(relay, host, port, tunnel).await
            }
        }
    }

    /// Resolves `host`, checks every address, and connects to a checked one.
    async fn connect_direct(&self, host: &str, port: u16) -> Result<TcpStream, Denied> {
        let addrs = self.policy.resolve(host, port).await.map_err(|e| match e {
            ResolveError::Refused(refused) => Denied::Refused(refused.to_string()),
            lookup => Denied::Unreachable(lookup.to_string()),
        })?;
        if let Some(why) = own_ports::refusal(host, port, &addrs) {
            return Err(Denied::Refused(why));
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

    /// What can be checked when the proxy resolves the name: the name itself (`localhost`),
    /// a literal address by the policy, and a literal address of this machine on one of its
    /// own ports.
    fn check_name(&self, host: &str, port: u16) -> Result<(), Denied> {
        let url = url::Url::parse(&format!("http://{}/", bracketed(host)))
            .map_err(|_| Denied::Unreachable(format!("{host:?} is not a host")))?;
        self.policy
            .check_literal(&url)
            .map_err(|refused| Denied::Refused(refused.to_string()))?;
        let literal = match url.host() {
            Some(Host::Ipv4(v4)) => Some(SocketAddr::from((v4, port))),
            Some(Host::Ipv6(v6)) => Some(SocketAddr::from((v6, port))),
            _ => None,
        };
        match literal.and_then(|addr| own_ports::refusal(host, port, &[addr])) {
            Some(why) => Err(Denied::Refused(why)),
            None => Ok(()),
        }
    }

    /// Through the relay's proxy; a proxy that fails is reported (and benched) and the next
    /// one tried.
    async fn connect_via(
        &self,
        relay: &Arc<dyn Relay>,
        host: &str,
        port: u16,
        tunnel: bool,
    ) -> Result<Leg, Denied> {
        let mut last = "no proxy of the pool is free or healthy".to_owned();
        for _ in 0..PROXIES_PER_REQUEST {
            let Some(upstream) = relay.current() else {
                break;
            };
            match open(&upstream, host, port, tunnel).await {
                Ok(mut leg) => {
                    relay.worked(&upstream);
                    leg.relayed = Some((relay.clone(), upstream));
                    return Ok(leg);
                }
                Err(UpstreamError::Proxy(why)) => {
                    relay.failed(&upstream, &why);
                    last = why;
                }
                Err(UpstreamError::Target(why)) => {
                    relay.worked(&upstream);
                    return Err(Denied::Unreachable(why));
                }
            }
        }
        Err(Denied::ProxyFailed(last))
    }
}

/// A tunnel through `upstream`, or (plain http through an HTTP proxy) a connection to it.
async fn open(
    upstream: &Upstream,
    host: &str,
    port: u16,
    tunnel: bool,
) -> Result<Leg, UpstreamError> {
    use super::upstream::UpstreamScheme::Http;
    if !tunnel && upstream.scheme == Http {
        return Ok(Leg {
            stream: upstream.reach().await?,
            proxied: Some(upstream.authorization()),
            relayed: None,
        });
    }
    Ok(Leg::direct(upstream.tunnel(host, port).await?))
}

/// An IPv6 literal in brackets, as a url's host.
fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
