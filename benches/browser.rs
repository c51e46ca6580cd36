//! Browser throughput and memory: `navigate_extract` on the fixture site in real Chromium at
//! 1, 2 and 4 concurrent jobs, a fresh browser context per job, beside baselines measured in
//! the same run (the machines are shared and noisy; ratios travel, seconds don't).
//!
//! Run: `cargo bench --bench browser` (needs Chromium; Node.js and npm for the peer).
//! `BENCH_PAGES` (default 100) sets the jobs per level.
//!
//! - control-plane: the engine's browser runner with one browser and `BROWSER_MAX_CONTEXTS`
//!   equal to the concurrency; memory is the sum of PSS of every Chromium process of the pool,
//!   sampled every 100 ms (peak and mean).
//!   At concurrency 1 the same jobs also run under `stealth`, printed beside `vanilla`.
//! - http baseline: the same jobs with the `http` strategy (no browser) at concurrency 4.
//! - profiles: at concurrency 1, jobs written to the store and claimed as a worker does,
//!   without a profile, loading one (20 cookies, 20 `localStorage` items), and saving one
//!   (the same state, captured, sealed and stored as a new version after each job): what a
//!   profile costs a page, as ratios to the run without one.
//! - peer: Playwright (`playwright-core` from npm, driving the same Chromium binary), a new
//!   context and page per job, `goto` then `content()`, at the same concurrency levels.

#[allow(dead_code, unused_macros, unused_imports)]
#[path = "../tests/it/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/it/site.rs"]
mod site;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use control_plane::artifact::ArtifactStore;
use control_plane::attempt::Attempts;
use control_plane::engine::browser::{BrowserPool, PoolConfig};
use control_plane::engine::{Browser, Engine};
use control_plane::job::target::TargetPolicy;
use control_plane::job::{Priority, Strategy};
use control_plane::kinds::{JobType, RunningJob};
use control_plane::memory::{Domains, LocalPacer};
use control_plane::profile::Profiles;
use control_plane::secrets::{Keyring, SecretKey};
use control_plane::spec::JobSpec;
use control_plane::store::{Created, JobStore, SqliteStore};
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn job(url: &str, strategy: Strategy) -> RunningJob {
    RunningJob {
        id: uuid::Uuid::now_v7(),
        domain: "127.0.0.1".into(),
        url: url.to_owned(),
        job_type: JobType::NavigateExtract,
        strategy,
        priority: Priority::default(),
        payload: json!({"selectors": {"price": ".price", "products": {"selector": "a.product", "all": true}}}),
        attempt: 1,
        max_attempts: 1,
        timeout_ms: 30_000,
        worker_id: "bench".into(),
        tenant_id: "default".into(),
    }
}

/// Sum of PSS of `pids`, in KiB.
fn pss_kib(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|rollup| {
            rollup.lines().find_map(|line| {
                line.strip_prefix("Pss:").and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
        })
        .sum()
}

struct Run {
    pages_per_s: f64,
    p50_ms: u128,
    p95_ms: u128,
    peak_mib: f64,
    mean_mib: f64,
}

/// Runs `pages` jobs, `concurrency` at a time, through `engine`'s attempts.
async fn drive(
    engine: Arc<Attempts>,
    url: &str,
    strategy: Strategy,
    pages: usize,
    concurrency: usize,
    pool: Option<BrowserPool>,
) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = pool.clone().map(|pool| {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !done.load(Ordering::SeqCst) {
                samples.push(pss_kib(&pool.process_ids()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (engine, next, url) = (Arc::clone(&engine), Arc::clone(&next), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::SeqCst) < pages {
                let began = Instant::now();
                let stop = tokio_util::sync::CancellationToken::new();
                let result = engine.run(&job(&url, strategy), &stop).await;
                assert!(result.is_ok(), "job failed: {result:?}");
                latencies.push(began.elapsed().as_millis());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("task"));
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let samples = match sampler {
        Some(sampler) => sampler.await.expect("sampler"),
        None => Vec::new(),
    };
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let mib = |kib: u64| kib as f64 / 1024.0;
    Run {
        pages_per_s: pages as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.5),
        p95_ms: at(0.95),
        peak_mib: mib(samples.iter().copied().max().unwrap_or(0)),
        mean_mib: if samples.is_empty() {
            0.0
        } else {
            mib(samples.iter().sum::<u64>() / samples.len() as u64)
        },
    }
}

/// Fills the page's origin with 20 cookies and 20 `localStorage` items of 100 bytes.
const FILL_STATE: &str = "(() => { for (let i = 0; i < 20; i++) { \
     document.cookie = 'c' + i + '=' + 'v'.repeat(40) + i + '; max-age=3600'; \
     localStorage.setItem('k' + i, 'x'.repeat(100)); } return 1; })()";

/// Runs `pages` jobs of `payload` one after the other, each written to the store and
/// claimed first (a saving job's version is stored only while its attempt holds the job).
async fn drive_claimed(
    engine: &Attempts,
    store: &Arc<dyn JobStore>,
    url: &str,
    payload: serde_json::Value,
    pages: usize,
) -> Run {
    let body = json!({"url": url, "strategy": "vanilla", "max_attempts": 1, "payload": payload});
    let spec = JobSpec::parse(&body).expect("a valid job");
    let mut latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..pages {
        let Ok(Created::New(job)) = store.create("default", &spec, None, None).await else {
            panic!("the job is stored");
        };
        let began = Instant::now();
        let running = store
            .claim(job.id, "bench", Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("claimed");
        let stop = tokio_util::sync::CancellationToken::new();
        let result = engine.run(&running, &stop).await;
        assert!(result.is_ok(), "job failed: {result:?}");
        latencies.push(began.elapsed().as_millis());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Run {
        pages_per_s: pages as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.5),
        p95_ms: at(0.95),
        peak_mib: 0.0,
        mean_mib: 0.0,
    }
}

/// What loading and saving a profile cost a page at concurrency 1.
async fn profiles(engine: &Attempts, store: &Arc<dyn JobStore>, url: &str, pages: usize) {
    let plain = json!({"selectors": {"price": ".price"}});
    let filled = json!({"evaluate": FILL_STATE, "profile": {"name": "bench", "save": true}});
    drive_claimed(engine, store, url, filled, 1).await;
    let without = drive_claimed(engine, store, url, plain.clone(), pages).await;
    let mut reading = plain.clone();
    reading["profile"] = json!({"name": "bench"});
    let loading = drive_claimed(engine, store, url, reading, pages).await;
    let mut saving = plain;
    saving["profile"] = json!({"name": "bench", "save": true});
    let saved = drive_claimed(engine, store, url, saving, pages).await;
    for (what, run) in [("loading", &loading), ("loading and saving", &saved)] {
        println!(
            "control-plane vanilla with a profile ({what}: 20 cookies, 20 localStorage items), concurrency 1: {:.2} pages/s (/ without a profile = {:.2}), p50 {} ms (+{} ms), p95 {} ms",
            run.pages_per_s,
            run.pages_per_s / without.pages_per_s,
            run.p50_ms,
            run.p50_ms.saturating_sub(without.p50_ms),
            run.p95_ms,
        );
    }
}

const PEER_SCRIPT: &str = r#"
const { chromium } = require('playwright-core');
const [executablePath, url, pages, ...levels] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  for (const level of levels.map(Number)) {
    let next = 0;
    const one = async () => {
      const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
      const page = await context.newPage();
      await page.goto(url, { waitUntil: 'load' });
      await page.content();
      await page.title();
      await context.close();
    };
    for (let i = 0; i < 5; i++) await one();
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: level }, async () => { while (next++ < Number(pages)) await one(); }));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(JSON.stringify({ level, pages_per_s: Number(pages) / seconds }));
  }
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
"#;

/// Playwright's pages/s per level, when Node.js and npm can fetch playwright-core.
fn peer(executable: &str, url: &str, pages: usize, levels: &[usize]) -> Option<Vec<f64>> {
    let dir = std::env::temp_dir().join(format!("cp-bench-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let installed = std::process::Command::new("npm")
        .args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "playwright-core@1",
        ])
        .current_dir(&dir)
        .status()
        .ok()?
        .success();
    if !installed {
        return None;
    }
    std::fs::write(dir.join("peer.js"), PEER_SCRIPT).ok()?;
    let mut args = vec![
        "peer.js".to_owned(),
        executable.to_owned(),
        url.to_owned(),
        pages.to_string(),
    ];
    args.extend(levels.iter().map(usize::to_string));
    let output = std::process::Command::new("node")
        .args(&args)
        .current_dir(&dir)
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    if !output.status.success() {
        eprintln!("peer failed: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["pages_per_s"].as_f64())
            .collect(),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pages = env_usize("BENCH_PAGES", 100);
    let levels = [1usize, 2, 4];
    let site = site::Site::start().await;
    let url = site.url("/");
    let dir = common::TestDataDir::new();
    let store: Arc<dyn JobStore> = Arc::new(SqliteStore::open(&dir.0).await.expect("store"));
    let artifacts =
        ArtifactStore::local(&dir.0.join("artifacts"), store.clone()).expect("artifacts");
    let domains = Arc::new(Domains::new(store.clone(), Arc::new(LocalPacer::new())));
    let policy = TargetPolicy::new(true);
    let executable = common::chrome();
    println!(
        "navigate_extract on the fixture site, {pages} jobs per level, fresh context per job, {}",
        executable.display()
    );

    let http = Arc::new(Attempts::new(
        Arc::new(Engine::new(policy, None)),
        domains.clone(),
    ));
    drive(Arc::clone(&http), &url, Strategy::Http, 20, 4, None).await;
    let baseline = drive(http, &url, Strategy::Http, pages * 4, 4, None).await;
    println!(
        "http strategy baseline (concurrency 4): {:.1} pages/s",
        baseline.pages_per_s
    );

    let mut ours = Vec::new();
    for &concurrency in &levels {
        let pool = BrowserPool::new(PoolConfig {
            executable: executable.clone(),
            size: 1,
            max_contexts: concurrency,
            recycle_pages: 100_000,
        });
        pool.warm_up().await.expect("Chromium starts");
        let idle_mib = pss_kib(&pool.process_ids()) as f64 / 1024.0;
        let browser = Browser::new(pool.clone(), policy, artifacts.clone());
        let keys = Keyring::new(Some(&SecretKey::generate()), &[]);
        let engine = Arc::new(
            Attempts::new(
                Arc::new(Engine::new(policy, Some(browser))),
                domains.clone(),
            )
            .with_profiles(Profiles::new(store.clone(), Arc::new(keys))),
        );
        drive(Arc::clone(&engine), &url, Strategy::Vanilla, 5, 1, None).await;
        let engine_again = Arc::clone(&engine);
        let run = drive(
            engine,
            &url,
            Strategy::Vanilla,
            pages,
            concurrency,
            Some(pool.clone()),
        )
        .await;
        println!(
            "control-plane vanilla, concurrency {concurrency}: {:.2} pages/s (http strategy is {:.0} x faster), p50 {} ms, p95 {} ms, Chromium PSS idle {:.0} MiB, peak {:.0} MiB, mean {:.0} MiB",
            run.pages_per_s,
            baseline.pages_per_s / run.pages_per_s,
            run.p50_ms,
            run.p95_ms,
            idle_mib,
            run.peak_mib,
            run.mean_mib,
        );
        ours.push(run.pages_per_s);
        if concurrency == 1 {
            profiles(&engine_again, &store, &url, pages).await;
            // What the stealth persona costs a page (evasions, persona, held workers).
            let stealth = drive(engine_again, &url, Strategy::Stealth, pages, 1, None).await;
            println!(
                "control-plane stealth, concurrency 1: {:.2} pages/s (stealth / vanilla = {:.2}), p50 {} ms, p95 {} ms",
                stealth.pages_per_s,
                stealth.pages_per_s / run.pages_per_s,
                stealth.p50_ms,
                stealth.p95_ms,
            );
        }
        pool.shutdown().await;
    }

    match peer(&executable.display().to_string(), &url, pages, &levels) {
        Some(theirs) if theirs.len() == levels.len() => {
            for ((level, ours), theirs) in levels.iter().zip(&ours).zip(&theirs) {
                println!(
                    "peer Playwright, concurrency {level}: {theirs:.2} pages/s; control-plane / Playwright = {:.2}",
                    ours / theirs
                );
            }
        }
        _ => println!("peer Playwright: skipped (Node.js, npm or playwright-core unavailable)"),
    }
}
