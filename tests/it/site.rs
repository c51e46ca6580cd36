//! The fixture web site the tests point jobs at, served on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

/// The home page: metadata, links and data for selectors.
pub const HOME: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Fixture Shop</title>
  <meta name="description" content="A shop that exists only in tests.">
  <link rel="canonical" href="/home">
  <style>body { font-family: sans-serif }</style>
</head>
<body>
  <h1>Welcome to the <em>Fixture</em> Shop</h1>
  <p class="price" data-currency="EUR">19.99</p>
  <ul>
    <li><a class="product" href="/products/1">First product</a></li>
    <li><a class="product" href="/products/2#reviews">Second product</a></li>
    <li><a class="product" href="https://elsewhere.example/3">Third product</a></li>
    <li><a href="/products/1">First product, again</a></li>
  </ul>
  <script>document.title = "changed by script";</script>
</body>
</html>"#;

#[derive(Clone, Default)]
struct Counters(Arc<Mutex<HashMap<String, u32>>>);

impl Counters {
    fn hit(&self, key: &str) -> u32 {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = map.entry(key.to_owned()).or_default();
        *count += 1;
        *count
    }
}

/// A running fixture site.
pub struct Site {
    /// Its base URL (`http://127.0.0.1:<port>`).
    pub base: String,
    counters: Counters,
}

impl Site {
    /// Serves the site on a random port until the test ends.
    pub async fn start() -> Site {
        let counters = Counters::default();
        let router = Router::new()
            .route("/", get(|| async { Html(HOME) }))
            .route("/products/{n}", get(product))
            .route("/flaky/{key}", get(flaky))
            .route("/status/{code}", get(status))
            .route("/slow", get(slow))
            .route("/redirect/{n}", get(redirect))
            .with_state(counters.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture site");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Site { base, counters }
    }

    /// The URL of a path on the site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// How many times a counted path was requested.
    pub fn hits(&self, key: &str) -> u32 {
        let map = self.counters.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).copied().unwrap_or_default()
    }
}

async fn product(Path(n): Path<u32>) -> Html<String> {
    Html(format!(
        "<html><head><title>Product {n}</title></head><body><h1>Product {n}</h1></body></html>"
    ))
}

/// Fails with 503 `fail` times (default 2) per key, then answers 200.
async fn flaky(
    State(counters): State<Counters>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, u32>>,
) -> Response {
    let fail = query.get("fail").copied().unwrap_or(2);
    let hit = counters.hit(&key);
    if hit <= fail {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("try again (hit {hit})"),
        )
            .into_response()
    } else {
        Html(format!(
            "<html><head><title>Recovered after {fail}</title></head><body>ok</body></html>"
        ))
        .into_response()
    }
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
    let mut response = (status, format!("status {code}")).into_response();
    if code == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

async fn slow(Query(query): Query<HashMap<String, u64>>) -> Html<&'static str> {
    let ms = query.get("ms").copied().unwrap_or(5_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Html("<html><head><title>Slow</title></head><body>finally</body></html>")
}

async fn redirect(Path(n): Path<u32>) -> Response {
    if n == 0 {
        Html("<html><head><title>Landed</title></head><body>end of the chain</body></html>")
            .into_response()
    } else {
        Redirect::to(&format!("/redirect/{}", n - 1)).into_response()
    }
}
