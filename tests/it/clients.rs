//! Clients generated from the contract a running `serve` serves, as a user generates them:
//! Python with openapi-python-client, TypeScript with @hey-api/openapi-ts. Each scenario
//! (`tests/clients/`) is type-checked strictly (`mypy --strict`, `tsc --strict`), then run
//! against real `serve` and `worker` processes on PostgreSQL and Redis, with Chromium and the
//! fixture site as the web: submit, wait with `?wait=`, read typed result fields, list, read
//! events, cancel a delayed job, retry a failed one, download a screenshot's bytes.
//!
//! The generators and checkers live under the tools directory `scripts/test` fills
//! (`CONTROL_PLANE_TOOLS`, default `~/.cache/control-plane/tools`): `venv/` (Python) and
//! `clients/node_modules/` (Node).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cli::{Process, wait_healthy};
use crate::common::{TestDataDir, TestDatabase, TestPrefix, chrome, redis_url};
use crate::contract::new_key;
use crate::site::Site;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");

/// Where `scripts/test` keeps the tools it installs.
fn tools() -> PathBuf {
    std::env::var_os("CONTROL_PLANE_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/control-plane/tools"))
        })
        .expect("CONTROL_PLANE_TOOLS or HOME")
}

/// A tool the scenarios need, with how to get it when it is missing.
fn tool(relative: &str) -> PathBuf {
    let path = tools().join(relative);
    assert!(
        path.exists(),
        "{} is missing: scripts/test installs the client generators and checkers",
        path.display()
    );
    path
}

/// Runs `command`, failing with everything it printed unless it succeeds.
fn run(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `serve` and one `worker` on their own database, key prefix and artifact directory, with
/// the fixture site to visit.
struct Stack {
    serve: Process,
    _worker: Process,
    key: String,
    site: Site,
    _db: TestDatabase,
    _prefix: TestPrefix,
    _artifacts: TestDataDir,
}

impl Stack {
    async fn start() -> Stack {
        let site = Site::start().await;
        let db = TestDatabase::create().await;
        let prefix = TestPrefix::new();
        let artifacts = TestDataDir::new();
        let env = vec![
            ("DATABASE_URL", db.url.clone()),
            ("REDIS_URL", redis_url()),
            ("QUEUE_PREFIX", prefix.0.clone()),
            ("AUTH", "keys".to_owned()),
            // The fixture site is on 127.0.0.1.
            ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
            ("ARTIFACT_DIR", artifacts.0.display().to_string()),
            ("CHROME_PATH", chrome().display().to_string()),
            ("WORKER_CONCURRENCY", "2".to_owned()),
        ];
        let key = new_key(&env);
        let serve = Process::spawn("serve", &env);
        wait_healthy(&serve, &reqwest::Client::new()).await;
        let worker = Process::spawn("worker", &env);
        Stack {
            serve,
            _worker: worker,
            key,
            site,
            _db: db,
            _prefix: prefix,
            _artifacts: artifacts,
        }
    }

    /// The contract as this `serve` serves it, written to `dir/openapi.json`.
    async fn contract(&self, dir: &Path) -> PathBuf {
        let document = reqwest::get(format!("{}/api/v1/openapi.json", self.serve.base))
            .await
            .expect("the contract")
            .bytes()
            .await
            .expect("its bytes");
        let path = dir.join("openapi.json");
        std::fs::write(&path, document).expect("write the contract");
        path
    }

    /// Runs a scenario with the stack's address, key and site in its environment.
    fn scenario(&self, command: &mut Command, what: &str) -> String {
        command
            .env("CP_BASE_URL", &self.serve.base)
            .env("CP_API_KEY", &self.key)
            .env("CP_SITE_URL", self.site.url("").trim_end_matches('/'));
        let output = run(command, what);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

fn copy_scenario(name: &str, dir: &Path) {
    let from = Path::new(SCENARIOS).join(name);
    std::fs::copy(&from, dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_runs_the_scenario_type_checked() {
    let stack = Stack::start().await;
    let dir = TestDataDir::new();
    let contract = stack.contract(&dir.0).await;
    let venv = tools().join("venv/bin");
    let config = dir.0.join("generator.yaml");
    // No formatter runs after generating: the client is checked, not kept.
    std::fs::write(&config, "post_hooks: []\n").expect("generator config");
    run(
        Command::new(tool("venv/bin/openapi-python-client"))
            .args(["generate", "--meta", "none", "--output-path", "cp_client"])
            .arg("--path")
            .arg(&contract)
            .arg("--config")
            .arg(&config)
            .current_dir(&dir.0),
        "openapi-python-client generate",
    );
    copy_scenario("scenario.py", &dir.0);
    run(
        Command::new(tool("venv/bin/mypy"))
            .args(["--strict", "--cache-dir", ".mypy_cache", "scenario.py"])
            .current_dir(&dir.0),
        "mypy --strict scenario.py",
    );
    let printed = stack.scenario(
        Command::new(venv.join("python"))
            .arg("scenario.py")
            .current_dir(&dir.0),
        "the Python scenario",
    );
    assert!(printed.contains("python scenario: ok"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_typescript_client_runs_the_scenario_type_checked() {
    let stack = Stack::start().await;
    let dir = TestDataDir::new();
    let contract = stack.contract(&dir.0).await;
    let modules = tools().join("clients/node_modules");
    let bin = modules.join(".bin");
    run(
        Command::new(tool("clients/node_modules/.bin/openapi-ts"))
            .arg("-i")
            .arg(&contract)
            .args(["-o", "client"])
            .current_dir(&dir.0),
        "openapi-ts",
    );
    copy_scenario("scenario.ts", &dir.0);
    copy_scenario("tsconfig.json", &dir.0);
    // The compiler finds Node's types beside the scenario, as in a project of its own.
    std::os::unix::fs::symlink(&modules, dir.0.join("node_modules")).expect("node_modules");
    run(
        Command::new(bin.join("tsc"))
            .args(["-p", "."])
            .current_dir(&dir.0),
        "tsc --strict",
    );
    let printed = stack.scenario(
        Command::new("node")
            .arg("out/scenario.js")
            .current_dir(&dir.0),
        "the TypeScript scenario",
    );
    assert!(printed.contains("typescript scenario: ok"), "{printed}");
}
