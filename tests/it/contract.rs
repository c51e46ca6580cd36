//! The contract, fuzzed: Schemathesis (from PyPI; `.ci/run` installs it) reads
//! `/api/v1/openapi.json` and runs every check it has against a real `dev` (SQLite) and a
//! real `serve` (PostgreSQL and Redis): no 5xx, every answer matching the schema, invalid
//! input refused, keys enforced, stateful sequences through the declared links.

use std::process::Command;

use crate::cli::{Process, command, wait_healthy};
use crate::common::{TestDataDir, TestDatabase, TestPrefix, redis_url};

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/contract/schemathesis.toml"
);

/// Runs Schemathesis against the API at `base` with `key`; panics with its report on failure.
fn fuzz(base: &str, key: &str, which: &str) {
    // Schemathesis keeps a cache where it runs: a directory of the test's own, not the clone.
    let scratch = TestDataDir::new();
    let output = Command::new("st")
        .current_dir(&scratch.0)
        .args(["--config-file", CONFIG, "run"])
        .arg(format!("{base}/api/v1/openapi.json"))
        .args([
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--seed",
            "1",
        ])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("Schemathesis (`st`) is needed: pip install schemathesis (.ci/run installs it)");
    let report = String::from_utf8_lossy(&output.stdout);
    let summary: String = report
        .lines()
        .skip_while(|line| !line.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("schemathesis against {which}:\n{summary}");
    assert!(
        output.status.success(),
        "schemathesis found problems in {which}:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A new admin key of the tenant `contract`, made by `control-plane keys create` with `env`.
pub fn new_key(env: &[(&str, String)]) -> String {
    let mut create = command(&["keys", "create", "--tenant", "contract", "--role", "admin"]);
    for (name, value) in env {
        create.env(name, value);
    }
    let created = create.output().expect("keys create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    String::from_utf8_lossy(&created.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_dev() {
    let dir = TestDataDir::new();
    let env = vec![
        ("DATA_DIR", dir.0.display().to_string()),
        ("AUTH", "keys".to_owned()),
        ("BROWSER", "off".to_owned()),
        // Generated urls name hosts that do not exist: skip their DNS checks.
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
    ];
    let key = new_key(&env);
    let dev = Process::spawn("dev", &env);
    wait_healthy(&dev, &reqwest::Client::new()).await;
    let base = dev.base.clone();
    tokio::task::spawn_blocking(move || fuzz(&base, &key, "dev (SQLite)"))
        .await
        .expect("schemathesis run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_serve() {
    let db = TestDatabase::create().await;
    let prefix = TestPrefix::new();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("QUEUE_PREFIX", prefix.0.clone()),
        ("AUTH", "keys".to_owned()),
        ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
    ];
    let key = new_key(&env);
    let serve = Process::spawn("serve", &env);
    wait_healthy(&serve, &reqwest::Client::new()).await;
    let base = serve.base.clone();
    tokio::task::spawn_blocking(move || fuzz(&base, &key, "serve (PostgreSQL)"))
        .await
        .expect("schemathesis run");
}

/// Redocly's recommended rules (`REDOCLY`, which scripts/test installs from the npm
/// registry, or `redocly` on the PATH) find nothing in the document `serve` serves: no error
/// and no warning.
#[test]
fn the_contract_passes_redoclys_recommended_rules() {
    let scratch = TestDataDir::new();
    let file = scratch.0.join("openapi.json");
    let document = serde_json::to_vec_pretty(control_plane::api::openapi::served())
        .expect("the document serializes");
    std::fs::write(&file, document).expect("write the document");
    let redocly = std::env::var("REDOCLY").unwrap_or_else(|_| "redocly".to_owned());
    let output = Command::new(&redocly)
        .current_dir(&scratch.0)
        .args(["lint", "--extends", "recommended", "--format", "json"])
        .arg(&file)
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .output()
        .expect("Redocly's CLI is needed (scripts/test installs it: npm install @redocly/cli)");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "redocly lint answered no report ({e}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let problems: Vec<String> = report["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} {}: {} at {}",
                p["severity"], p["ruleId"], p["message"], p["location"][0]["pointer"]
            )
        })
        .collect();
    assert_eq!(report["totals"]["errors"], 0, "{problems:#?}");
    assert_eq!(report["totals"]["warnings"], 0, "{problems:#?}");
}
