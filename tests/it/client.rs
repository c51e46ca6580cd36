//! The command-line client against a running server: exit codes scripts can rely on.

use std::process::Output;

use serde_json::Value;

use crate::common::{Options, TestApp};
use crate::site::Site;

const BIN: &str = env!("CARGO_BIN_EXE_control-plane");

/// Runs `control-plane <args>` against `app`'s API with its admin key.
async fn client(app: &TestApp, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONTROL_PLANE_URL", &app.base)
        .env("CONTROL_PLANE_KEY", &app.key)
        .output()
        .await
        .expect("run the client")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_wait_prints_the_result_and_exits_zero() {
    let app = TestApp::spawn().await;
    let output = client(
        &app,
        &[
            "submit",
            "https://example.com/",
            "--type",
            "noop",
            "--payload",
            r#"{"sleep_ms": 200}"#,
            "--wait",
            "--json",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let job: Value = serde_json::from_str(&stdout(&output)).expect("--json prints the job");
    assert_eq!(job["state"], "succeeded");
    assert_eq!(job["result"]["slept_ms"], 200);

    // For people: the state and the result.
    let output = client(
        &app,
        &["submit", "https://example.com/", "--type", "noop", "--wait"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("state:    succeeded"),
        "{}",
        stdout(&output)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_exits_one_and_bad_usage_exits_two() {
    let site = Site::start().await;
    let app = TestApp::spawn().await;
    let url = site.url("/status/404");
    let output = client(
        &app,
        &["submit", &url, "--strategy", "http", "--wait", "--json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let job: Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(job["state"], "failed");

    for args in [
        vec!["submit"],
        vec![
            "submit",
            "https://example.com/",
            "--payload",
            "@/nonexistent.json",
        ],
        vec!["submit", "https://example.com/", "--payload", "{not json"],
        vec!["jobs", "frobnicate"],
    ] {
        let output = client(&app, &args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).is_empty(), "{args:?} says why");
    }

    // The API's refusal names the field and exits 1.
    let output = client(&app, &["submit", "ftp://example.com/"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("url"), "{}", stderr(&output));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_commands_list_show_cancel_retry_and_follow() {
    let app = TestApp::spawn_with(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let output = client(
        &app,
        &["submit", "https://example.com/", "--type", "noop", "--json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let job: Value = serde_json::from_str(&stdout(&output)).expect("json");
    let id = job["id"].as_str().expect("id").to_owned();

    let output = client(&app, &["jobs", "list", "--state", "queued", "--json"]).await;
    let page: Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(page["jobs"][0]["id"], id.as_str());

    let output = client(&app, &["jobs", "cancel", &id]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("cancelled"));
    let again = client(&app, &["jobs", "cancel", &id]).await;
    assert_eq!(
        again.status.code(),
        Some(1),
        "a finished job cannot be cancelled"
    );
    assert!(stderr(&again).contains("409"), "{}", stderr(&again));

    let output = client(&app, &["jobs", "events", &id, "--follow"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(
        printed.contains("created") && printed.contains("cancelled"),
        "{printed}"
    );
    assert!(printed.trim_end().ends_with("end: cancelled"), "{printed}");

    let output = client(&app, &["jobs", "retry", &id, "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let job: Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(job["state"], "queued");

    let missing = client(&app, &["artifacts", "get", &id, "screenshot.png"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("404"), "{}", stderr(&missing));
    app.stop().await;
}
