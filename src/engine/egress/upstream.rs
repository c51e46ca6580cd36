//! Upstream proxies as the egress reaches them: an HTTP proxy (CONNECT for tunnels, absolute
//! urls for plain http, Basic credentials) or a SOCKS5 proxy (user name and password), and
//! the relay that names which one an attempt uses. Credentials never leave this file but on
//! the wire: `Debug` hides them and errors never quote what the proxy was sent.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long reaching the upstream proxy, and its handshake, may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest answer head an HTTP proxy may give to a CONNECT.
const MAX_CONNECT_ANSWER: usize = 16 * 1024;

/// How an upstream proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamScheme {
    /// An HTTP proxy: CONNECT, and absolute urls for plain http.
    Http,
    /// A SOCKS5 proxy; it resolves the names it is given.
    Socks5,
}

/// A user name and password for an upstream proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyCredentials(***)")
    }
}

/// One upstream proxy, as an attempt connects through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its name in its pool (what logs, metrics and results say: never its credentials).
    pub name: String,
    /// How it is spoken to.
    pub scheme: UpstreamScheme,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Its credentials, when it asks for them.
    pub credentials: Option<ProxyCredentials>,
}

/// Names the upstream proxy of one attempt, and hears how it went: a proxy that fails is
/// benched and the relay names another.
pub trait Relay: Send + Sync {
    /// The tier of the pool its proxies come from (what costs are counted under).
    fn tier(&self) -> &str;
    /// The proxy to use now; `None` when the pool has none available.
    fn current(&self) -> Option<Upstream>;
    /// `upstream` could not be used (unreachable, refused our credentials, broke the
    /// handshake): the fault is the proxy's.
    fn failed(&self, upstream: &Upstream, why: &str);
    /// `upstream` carried a connection.
    fn worked(&self, upstream: &Upstream);
    /// What the site `host` made of the page fetched through the proxy held now: blocked or
    /// not. A proxy blocked at several sites in a row is burned, and benched as if it failed.
    fn judged(&self, host: &str, blocked: bool);
}

/// Why a connection through an upstream proxy failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// The proxy itself failed: another proxy may do.
    Proxy(String),
    /// The proxy worked but could not reach the target.
    Target(String),
}

impl Upstream {
    /// The `Proxy-Authorization` value for an HTTP proxy with credentials.
    pub fn authorization(&self) -> Option<String> {
        let credentials = self.credentials.as_ref()?;
        let pair = format!("{}:{}", credentials.username, credentials.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    /// A connection to the proxy itself (an operator-trusted hop: the target policy is not
    /// asked about its address).
    pub async fn reach(&self) -> Result<TcpStream, UpstreamError> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, connect).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) => Err(self.fault(format!("cannot connect: {e}"))),
            Err(_) => Err(self.fault("no connection within 10 s".to_owned())),
        }
    }

    /// A connection to `host:port` through this proxy, ready for the client's bytes.
    pub async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream, UpstreamError> {
        let stream = self.reach().await?;
        let handshake = async {
            match self.scheme {
                UpstreamScheme::Http => self.connect_http(stream, host, port).await,
                UpstreamScheme::Socks5 => self.connect_socks(stream, host, port).await,
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(tunnelled) => tunnelled,
            Err(_) => Err(self.fault("no handshake within 10 s".to_owned())),
        }
    }

    fn fault(&self, why: String) -> UpstreamError {
        UpstreamError::Proxy(format!("proxy {}: {why}", self.name))
    }

    async fn connect_http(
        &self,
        mut stream: TcpStream,
        host: &str,
        port: u16,
    ) -> Result<TcpStream, UpstreamError> {
        let authority = authority(host, port);
        let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(authorization) = self.authorization() {
            head.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| self.fault(format!("cannot send CONNECT: {e}")))?;
        let status = read_status(&mut stream)
            .await
            .map_err(|why| self.fault(why))?;
        match status {
            200..=299 => Ok(stream),
            // tinyproxy refuses with 401; only the proxy can answer a CONNECT with either.
            401 | 407 => Err(self.fault(format!("refused the credentials ({status})"))),
            status => Err(UpstreamError::Target(format!(
                "proxy {} could not reach {authority} ({status})",
                self.name
            ))),
        }
    }

    async fn connect_socks(
        &self,
        stream: TcpStream,
        host: &str,
        port: u16,
    ) -> Result<TcpStream, UpstreamError> {
        let target = (host.trim_start_matches('[').trim_end_matches(']'), port);
        let connected = match &self.credentials {
            Some(c) => {
                tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(
                    stream,
                    target,
                    &c.username,
                    &c.password,
                )
                .await
            }
            None => tokio_socks::tcp::Socks5Stream::connect_with_socket(stream, target).await,
        };
        match connected {
            Ok(tunnel) => Ok(tunnel.into_inner()),
            Err(e) => Err(socks_error(self, e, &authority(host, port))),
        }
    }
}

/// A SOCKS reply about the target is the target's; the rest is the proxy's fault.
fn socks_error(upstream: &Upstream, error: tokio_socks::Error, authority: &str) -> UpstreamError {
    use tokio_socks::Error as E;
    match error {
        E::HostUnreachable
        | E::NetworkUnreachable
        | E::ConnectionRefused
        | E::TtlExpired
        | E::ConnectionNotAllowedByRuleset => UpstreamError::Target(format!(
            "proxy {} could not reach {authority} ({error})",
            upstream.name
        )),
        E::PasswordAuthFailure(_) | E::NoAcceptableAuthMethods => {
            upstream.fault("refused the credentials (SOCKS5)".to_owned())
        }
        other => upstream.fault(format!("handshake failed: {other}")),
    }
}

/// `host:port`, with brackets around an IPv6 literal.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Reads an HTTP answer head byte by byte (so nothing of the tunnel behind it is read) and
/// returns its status.
async fn read_status(stream: &mut TcpStream) -> Result<u16, String> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_ANSWER {
            return Err("answered CONNECT with an endless head".to_owned());
        }
        let byte = stream
            .read_u8()
            .await
            .map_err(|e| format!("closed during CONNECT: {e}"))?;
        head.push(byte);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().and_then(|s| s.parse().ok())) {
        (Some(version), Some(status)) if version.starts_with("HTTP/1.") => Ok(status),
        _ => Err("answered CONNECT with something other than HTTP".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_shown() {
        let upstream = Upstream {
            name: "res-1".into(),
            scheme: UpstreamScheme::Http,
            host: "proxy.example".into(),
            port: 3128,
            credentials: Some(ProxyCredentials {
                username: "alice".into(),
                password: "hunter2".into(),
            }),
        };
        let shown = format!("{upstream:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
        // "alice:hunter2" in base64.
        assert_eq!(
            upstream.authorization().as_deref(),
            Some("Basic YWxpY2U6aHVudGVyMg==")
        );
        assert_eq!(authority("::1", 80), "[::1]:80");
        assert_eq!(authority("[::1]", 80), "[::1]:80");
    }
}
