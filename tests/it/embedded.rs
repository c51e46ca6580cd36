//! The embedded mode's binary: `control-plane dev` alone, and surviving `kill -9`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::cli::{Process, fetch_json, wait_healthy};
use crate::common::{TestDataDir, eventually};

fn dev(dir: &TestDataDir, concurrency: u32) -> Process {
    Process::spawn(
        "dev",
        &[
            ("DATA_DIR", dir.0.display().to_string()),
            ("WORKER_CONCURRENCY", concurrency.to_string()),
            // Submissions skip the DNS check, so 500 of them are quick.
            ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ],
    )
}

async fn stats(client: &reqwest::Client, process: &Process) -> Option<Value> {
    fetch_json(client, &format!("{}/api/v1/queue/stats", process.base)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_alone_and_prints_how_to_use_it() {
    let dir = TestDataDir::new();
    let process = dev(&dir, 2);
    let client = reqwest::Client::new();
    wait_healthy(&process, &client).await;
    let log = process.log();
    assert!(log.contains(&format!("url:   {}", process.base)), "{log}");
    assert!(log.contains("mode:  embedded: SQLite at"), "{log}");
    assert!(log.contains("control-plane.db"), "{log}");
    assert!(log.contains("curl -s -X POST"), "{log}");

    // The banner's job: it reaches a terminal state (no internet here: a navigation error).
    let body =
        json!({"url": "https://example.com", "job_type": "navigate_extract", "strategy": "http"});
    let job: Value = client
        .post(format!("{}/api/v1/jobs", process.base))
        .json(&body)
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("job");
    let id = job["id"].as_str().expect("id").to_owned();
    let job = crate::cli::finished(&client, &process.base, &id, Duration::from_secs(60)).await;
    if job["state"] == "failed" {
        assert_eq!(job["error"]["kind"], "navigation", "{job}");
    }

    // A second process on the same data directory is refused, in one line.
    let second = crate::cli::command(&["dev"])
        .env("DATA_DIR", dir.0.display().to_string())
        .env("BIND", "127.0.0.1:0")
        .output()
        .expect("run binary");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another control-plane dev process"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_killed_with_sigkill_mid_run_loses_no_job_and_runs_none_twice() {
    const JOBS: usize = 500;
    let dir = TestDataDir::new();
    let client = reqwest::Client::new();
    let mut first = dev(&dir, 2);
    wait_healthy(&first, &client).await;

    let base = first.base.clone();
    let statuses: Vec<u16> = futures::stream::iter(0..JOBS)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let body = json!({
                    "url": "https://example.com/",
                    "job_type": "noop",
                    "priority": i % 5 + 1,
                    "payload": {"sleep_ms": 50}
                });
                client
                    .post(format!("{base}/api/v1/jobs"))
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201));

    // Kill it while jobs are running and many are still queued.
    let at_kill = eventually(
        "a tenth of the jobs to succeed",
        Duration::from_secs(60),
        || async {
            let jobs = stats(&client, &first).await?["jobs"].clone();
            (jobs["succeeded"].as_i64()? >= (JOBS / 10) as i64).then_some(jobs)
        },
    )
    .await;
    first.kill_9();
    println!("kill -9 with jobs {at_kill}");
    assert!(
        at_kill["queued"].as_i64() > Some(0),
        "killed mid-run: {at_kill}"
    );

    let started = Instant::now();
    let second = dev(&dir, 2);
    wait_healthy(&second, &client).await;
    let before_restart = eventually("every job to succeed", Duration::from_secs(120), || async {
        let stats = stats(&client, &second).await?;
        (stats["jobs"]["succeeded"].as_i64()? == JOBS as i64).then_some(stats)
    })
    .await;
    println!(
        "kill -9: all {JOBS} jobs succeeded {:.1} s after the restart; {before_restart}",
        started.elapsed().as_secs_f64()
    );

    let pool = SqlitePoolOptions::new()
        .connect_with(
            SqliteConnectOptions::new()
                .filename(dir.0.join("control-plane.db"))
                .read_only(true),
        )
        .await
        .expect("open the database");
    let not_once: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT j.id FROM jobs j
           LEFT JOIN job_events e ON e.job_id = j.id AND e.kind = 'succeeded'
           GROUP BY j.id HAVING count(e.id) <> 1) s",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(not_once, 0, "every job has exactly one succeeded event");
    let recovered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_events WHERE kind = 'lease_expired'")
            .fetch_one(&pool)
            .await
            .expect("count");
    println!("kill -9: {recovered} jobs were running at the kill and ran again after the restart");
    drop(second);
}
