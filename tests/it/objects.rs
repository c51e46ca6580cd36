//! Artifacts in an S3-compatible store (a real `s3s-fs` process): a job's files go to the
//! bucket under its prefix and download through the API; a store that refuses the keys or
//! does not answer stops the start with a line naming it, and `/ready` reports it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::command;
use crate::common::{Options, TestApp, TestDataDir};
use crate::s3_server::S3Server;
use crate::site::Site;

const BUCKET: &str = "cp-artifacts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_go_to_the_bucket_and_download_through_the_api() {
    let mut s3 = S3Server::start(BUCKET).await;
    let site = Site::start().await;
    let app = TestApp::spawn_with(Options {
        browser: true,
        artifacts: Some((S3Server::location(BUCKET, "prod/eu"), s3.access())),
        ..Options::default()
    })
    .await;

    let job = app
        .submit(&json!({"url": site.url("/"), "job_type": "screenshot", "strategy": "vanilla"}))
        .await;
    let id = job["id"].as_str().expect("id");
    let job = app.wait_terminal(id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let url = job["result"]["screenshot"]["url"].as_str().expect("url");
    let answer = app.get(url).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "image/png");
    let downloaded = answer.bytes().await.expect("bytes");
    let kept = std::fs::read(s3.object_file(BUCKET, &format!("prod/eu/{id}/screenshot.png")))
        .expect("the object is in the bucket, under the prefix");
    assert_eq!(downloaded.as_ref(), kept.as_slice());
    assert!(downloaded.starts_with(b"\x89PNG"), "a PNG");

    let ready: Value = app.get("/ready").await.json().await.expect("json");
    assert_eq!(ready["checks"]["artifacts"]["status"], "up", "{ready}");
    s3.stop();
    let answer = app.get("/ready").await;
    assert_eq!(answer.status(), 503);
    let ready: Value = answer.json().await.expect("json");
    assert_eq!(ready["failed"], json!(["artifacts"]), "{ready}");
    let error = ready["checks"]["artifacts"]["error"]
        .as_str()
        .expect("error");
    assert!(error.contains("s3://cp-artifacts/prod/eu"), "{error}");
    app.stop().await;
}

/// `control-plane dev` with the bucket's settings; its exit status and stderr.
fn start_dev(envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let data = TestDataDir::new();
    let output = command(&["dev"])
        .env("DATA_DIR", &data.0)
        .env("BIND", "127.0.0.1:0")
        .env("BROWSER", "off")
        .env("STARTUP_TIMEOUT", "2s")
        .envs(envs.iter().copied())
        .output()
        .expect("run binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_stop_the_start_naming_the_store() {
    let s3 = S3Server::start(BUCKET).await;
    let (status, stderr) = start_dev(&[
        ("ARTIFACT_STORE", "s3://cp-artifacts/jobs"),
        ("AWS_ENDPOINT_URL", &s3.endpoint),
        ("AWS_ACCESS_KEY_ID", crate::s3_server::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
    ]);
    assert_eq!(status, Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("an error line: {stderr}"));
    assert!(
        line.contains("artifact store s3://cp-artifacts/jobs"),
        "{line}"
    );
    assert!(line.contains(&s3.endpoint), "names the endpoint: {line}");
    assert!(line.contains("cannot write"), "{line}");
    assert!(!line.contains("not-the-secret"), "never the secret: {line}");

    // A key the store does not know is refused as plainly.
    let (status, stderr) = start_dev(&[
        ("ARTIFACT_STORE", "s3://cp-artifacts"),
        ("AWS_ENDPOINT_URL", &s3.endpoint),
        ("AWS_ACCESS_KEY_ID", "nobody"),
        ("AWS_SECRET_ACCESS_KEY", crate::s3_server::SECRET_KEY),
    ]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("artifact store s3://cp-artifacts"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_stops_the_start_after_the_startup_timeout() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let started = std::time::Instant::now();
    let (status, stderr) = start_dev(&[
        ("ARTIFACT_STORE", "s3://cp-artifacts"),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_ACCESS_KEY_ID", crate::s3_server::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", crate::s3_server::SECRET_KEY),
    ]);
    assert_eq!(status, Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("an error line: {stderr}"));
    assert!(line.contains("artifact store s3://cp-artifacts"), "{line}");
    assert!(line.contains(&endpoint), "{line}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up within STARTUP_TIMEOUT and the store's retries"
    );
}

#[test]
fn an_artifact_store_that_is_not_a_bucket_or_directory_is_refused_by_name() {
    let (status, stderr) = start_dev(&[("ARTIFACT_STORE", "gs://bucket")]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("ARTIFACT_STORE"), "{stderr}");
}
