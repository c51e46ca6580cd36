//! `/metrics`: counters and histograms move by exactly what ran, and the output passes
//! `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::TestApp;
use crate::site::Site;

/// The sum of the samples of `name` whose labels include every pair of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let matches = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The metric names `text` mentions.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.match_indices("control_plane_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .collect()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("text")
}

/// `promtool check metrics` on `text`: its complaints, none when it passes.
fn promtool(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus; scripts/test installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let output = child.wait_with_output().expect("promtool runs");
    if output.status.success() {
        String::new()
    } else {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

#[tokio::test]
async fn counters_and_histograms_move_by_exactly_what_ran_and_promtool_agrees() {
    let site = Site::start().await;
    let app = TestApp::spawn().await;
    let before = scrape(&app).await;

    let mut ids = Vec::new();
    for _ in 0..3 {
        let job = app
            .submit(&json!({"url": "https://example.com/", "job_type": "noop"}))
            .await;
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    let failing = app
        .submit(&json!({
            "url": site.url("/status/404"),
            "job_type": "navigate_extract",
            "strategy": "http",
            "max_attempts": 1,
        }))
        .await;
    ids.push(failing["id"].as_str().expect("id").to_owned());
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let cancelled = app
        .submit(&json!({"url": "https://example.com/", "job_type": "noop", "run_at": later}))
        .await;
    let cancelled = cancelled["id"].as_str().expect("id").to_owned();
    let response = app
        .post_json(&format!("/api/v1/jobs/{cancelled}/cancel"), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    for id in &ids {
        app.wait_terminal(id, Duration::from_secs(30)).await;
    }
    let failed = app.job(&ids[3]).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let error_kind = failed["error"]["kind"].as_str().expect("kind").to_owned();

    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let finished = "control_plane_jobs_finished_total";
    assert_eq!(
        moved(finished, &[("job_type", "noop"), ("outcome", "succeeded")]),
        3.0
    );
    assert_eq!(
        moved(
            finished,
            &[
                ("job_type", "navigate_extract"),
                ("strategy", "http"),
                ("outcome", "failed"),
                ("error_kind", &error_kind),
            ]
        ),
        1.0
    );
    assert_eq!(
        moved(finished, &[("job_type", "noop"), ("outcome", "cancelled")]),
        1.0
    );
    assert_eq!(moved(finished, &[]), 5.0, "nothing else finished");
    let durations = "control_plane_attempt_duration_seconds_count";
    assert_eq!(moved(durations, &[("job_type", "noop")]), 3.0);
    assert_eq!(
        moved(
            durations,
            &[("job_type", "navigate_extract"), ("strategy", "http")]
        ),
        1.0
    );
    assert_eq!(moved(durations, &[]), 4.0, "the cancelled job never ran");
    let buckets = "control_plane_attempt_duration_seconds_bucket";
    assert_eq!(moved(buckets, &[("job_type", "noop"), ("le", "+Inf")]), 3.0);
    assert_eq!(
        moved(
            "control_plane_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/v1/jobs"),
                ("status", "201")
            ]
        ),
        5.0
    );
    assert_eq!(
        moved(
            "control_plane_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/api/v1/jobs")]
        ),
        5.0
    );
    assert_eq!(
        sample(&after, "control_plane_jobs", &[("state", "succeeded")]),
        3.0
    );
    assert_eq!(
        sample(&after, "control_plane_jobs", &[("state", "failed")]),
        1.0
    );
    assert_eq!(
        sample(&after, "control_plane_jobs", &[("state", "cancelled")]),
        1.0
    );
    assert!(sample(&after, "control_plane_db_queries_total", &[]) > 0.0);
    assert!(
        after.contains("control_plane_worker_free_slots{worker="),
        "worker gauges are exported"
    );
    assert!(after.contains("control_plane_queue_depth{priority=\"1\"}"));

    // The example Grafana dashboard asks only for metrics that exist.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/control-plane.json"
    ))
    .expect("the Grafana dashboard");
    for name in metric_names(&dashboard) {
        assert!(
            after.contains(&format!("\n{name}{{")) || after.contains(&format!("\n{name} ")),
            "the dashboard's {name} is not exported"
        );
    }

    let complaints = promtool(&after);
    assert!(
        complaints.is_empty(),
        "promtool check metrics: {complaints}"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_an_admin_key() {
    let app = TestApp::spawn().await;
    let anonymous = reqwest::get(app.url("/metrics")).await.expect("request");
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}
