//! Artifacts in an S3-compatible store (a real `s3s-fs` process): a job's files go to the
//! bucket under its prefix and download through the API; a store that refuses the keys or
//! does not answer stops the start with a line naming it, and `/ready` reports it.

use std::time::Duration;

use control_plane::job::Hold;
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
    let kept = std::fs::read(s3.object_file(BUCKET, &format!("prod/eu/{id}/1/screenshot.png")))
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

/// An attempt that lost its job (its worker cut off, then back) may still finish an upload;
/// it must never land on the bytes of the attempt that took the job over, and a later
/// attempt's artifact of the same name sends the earlier object away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_lost_its_job_never_replaces_what_the_next_attempt_kept() {
    let s3 = S3Server::start(BUCKET).await;
    let app = TestApp::spawn_with(Options {
        artifacts: Some((S3Server::location(BUCKET, "fenced"), s3.access())),
        ..Options::default()
    })
    .await;
    let id = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "payload": {"sleep_ms": 60_000}}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let job = app
        .wait_for(&id, Duration::from_secs(30), |job| {
            job["state"] == "running"
        })
        .await;
    let worker = job["worker_id"].as_str().expect("a worker").to_owned();
    let job_id = id.parse().expect("uuid");
    let first = Hold {
        attempt: 1,
        worker: worker.clone(),
    };
    let artifacts = app.app().artifacts();
    let put = |hold: Hold, bytes: &'static [u8]| {
        let artifacts = artifacts.clone();
        async move {
            artifacts
                .put(job_id, &hold, "screenshot.png", "image/png", bytes.to_vec())
                .await
        }
    };
    put(first.clone(), b"first attempt")
        .await
        .expect("the holder keeps its file");

    // The lease ran out and another worker took the job, as the reaper and a claim would
    // (it is the only job of this test's database).
    let took = app
        .db
        .change("UPDATE jobs SET attempt = 2, worker_id = 'took-over' WHERE state = 'running'")
        .await;
    assert_eq!(took, 1);
    let next = Hold {
        attempt: 2,
        worker: "took-over".to_owned(),
    };
    put(next, b"second attempt")
        .await
        .expect("the new holder keeps its file");
    let late = put(first, b"late first attempt").await;
    assert!(late.is_err(), "the attempt that lost the job keeps nothing");

    let answer = app
        .get(&format!("/api/v1/jobs/{id}/artifacts/screenshot.png"))
        .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.bytes().await.expect("bytes").as_ref(),
        b"second attempt"
    );
    let object =
        |attempt: u32| s3.object_file(BUCKET, &format!("fenced/{id}/{attempt}/screenshot.png"));
    assert!(!object(1).exists(), "the late upload was taken back");
    assert_eq!(
        std::fs::read(object(2)).expect("the second attempt's object"),
        b"second attempt"
    );
    // The replaced object was queued for deletion; the leader's first look may have deleted
    // it already.
    let queued = app
        .db
        .row("SELECT count(*) FROM artifact_purges WHERE attempt = 1")
        .await;
    let purged = app.metrics().families().purged_bytes.get();
    assert!(
        queued == [1] || purged == b"first attempt".len() as u64,
        "the replaced object is queued ({queued:?}) or gone ({purged} bytes purged)"
    );

    app.db
        .change("UPDATE jobs SET state = 'succeeded', finished_at = now() WHERE state = 'running'")
        .await;
    let erased = app
        .client
        .delete(app.url(&format!("/api/v1/jobs/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(erased.status(), 204);
    assert!(!object(2).exists(), "erased with its job");
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
