//! Upstream proxies for the tests, real ones from Debian's packages: `tinyproxy` (HTTP
//! CONNECT and plain http, Basic credentials) and `microsocks` (SOCKS5, user name and
//! password), each sending its outgoing connections from an address of its own on loopback
//! (127.0.0.2, …), so a fixture site that answers with the peer address it saw tells which
//! way a job came.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Html;
use axum::routing::get;
use serde_json::{Value, json};

use crate::common::TestApp;

pub const LONG: Duration = Duration::from_secs(120);
pub const USER: &str = "scraper";
pub const PASSWORD: &str = "pr0xy-s3cret-7f3a";

/// A site that shows the address each request came from, and counts them.
pub struct WhoAmI {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl WhoAmI {
    pub async fn start() -> WhoAmI {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = Router::new().route(
            "/whoami",
            get(move |ConnectInfo(peer): ConnectInfo<SocketAddr>| {
                let record = record.clone();
                async move {
                    let ip = peer.ip().to_string();
                    record.lock().expect("lock").push(ip.clone());
                    Html(format!(
                        "<html><head><title>who</title></head><body><p id=\"ip\">{ip}</p></body></html>"
                    ))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        WhoAmI { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/whoami", self.addr.port())
    }

    pub fn count(&self, ip: &str) -> usize {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|seen| *seen == ip)
            .count()
    }
}

/// A proxy process, killed when dropped.
pub struct Proxy {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A directory of this proxy's own.
pub fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cp-proxy-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Proxy {
    /// tinyproxy on `port` (a free one when 0), leaving from `out`, asking for credentials.
    pub fn tinyproxy(out: &str, port: u16) -> Proxy {
        let port = if port == 0 { free_port() } else { port };
        let dir = scratch();
        let config = dir.join("tinyproxy.conf");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nBind {out}\nTimeout 30\nMaxClients 200\n\
                 LogLevel Critical\nBasicAuth {USER} {PASSWORD}\nDisableViaHeader Yes\n"
            ),
        )
        .expect("config");
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy runs (Debian's tinyproxy package)");
        Proxy::listening(child, port, dir)
    }

    /// microsocks on a free port, leaving from `out`, asking for credentials.
    pub fn microsocks(out: &str) -> Proxy {
        let port = free_port();
        let dir = scratch();
        let child = Command::new("microsocks")
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-b", out])
            .args(["-u", USER, "-P", PASSWORD])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("microsocks runs (Debian's microsocks package)");
        Proxy::listening(child, port, dir)
    }

    pub fn listening(child: Child, port: u16, dir: std::path::PathBuf) -> Proxy {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the proxy never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Proxy { child, port, dir }
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{USER}:{PASSWORD}@127.0.0.1:{}", self.port)
    }
}

pub async fn run(app: &TestApp, body: Value) -> Value {
    let id = app.submit(&body).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.wait_terminal(&id, LONG).await
}

pub async fn whoami(app: &TestApp, site: &WhoAmI, strategy: &str, proxy: Option<&str>) -> Value {
    let mut payload = json!({"selectors": {"ip": "#ip"}});
    if let Some(proxy) = proxy {
        payload["proxy"] = json!(proxy);
    }
    let job = run(
        app,
        json!({"url": site.url(), "strategy": strategy, "max_attempts": 1, "payload": payload}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{strategy} via {proxy:?}: {job}");
    job
}

/// Waits for a job of another process with its API's `?wait=`.
pub async fn finished(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let until = std::time::Instant::now() + LONG;
    loop {
        let job: Value = client
            .get(format!("{base}/api/v1/jobs/{id}?wait=30000ms"))
            .send()
            .await
            .expect("job")
            .json()
            .await
            .expect("json");
        if matches!(
            job["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return job;
        }
        assert!(
            std::time::Instant::now() < until,
            "job {id} did not finish: {job}"
        );
    }
}
