//! Carrying a request once its connection is open: joining a CONNECT to its tunnel, or
//! sending one plain http request (in origin form to the target, or whole to an HTTP proxy).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, PROXY_AUTHORIZATION};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

use super::connect::Leg;

pub(super) type ProxyBody = BoxBody<Bytes, hyper::Error>;

pub(super) fn answer(status: StatusCode, reason: &str) -> Response<ProxyBody> {
    let mut response = Response::new(
        http_body_util::Full::new(Bytes::from(reason.to_owned()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

/// Answers a CONNECT and joins the client to the checked connection.
pub(super) fn tunnel(request: Request<Incoming>, mut upstream: TcpStream) -> Response<ProxyBody> {
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

/// Sends a plain http request over the checked connection without the client's proxy
/// headers: in origin form to the target, or whole (with the upstream's credentials) to an
/// HTTP proxy.
pub(super) async fn forward(mut request: Request<Incoming>, leg: Leg) -> Response<ProxyBody> {
    let headers = request.headers_mut();
    headers.remove("proxy-connection");
    headers.remove(PROXY_AUTHORIZATION);
    match leg.proxied {
        Some(authorization) => {
            if let Some(value) = authorization.and_then(|v| HeaderValue::from_str(&v).ok()) {
                request.headers_mut().insert(PROXY_AUTHORIZATION, value);
            }
        }
        None => {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let Ok(uri) = path.parse() else {
                return answer(StatusCode::BAD_REQUEST, "bad path");
            };
            *request.uri_mut() = uri;
        }
    }
    let handshake = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake::<_, Incoming>(TokioIo::new(leg.stream))
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
