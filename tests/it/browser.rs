//! Browser jobs in real Chromium, through the API and a worker: every job type and strategy,
//! artifacts, isolation between jobs, block classification, crashes, and the botd judge.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, Options, TestApp, eventually, on_both_backends};
use crate::site::Site;

const LONG: Duration = Duration::from_secs(90);

async fn browser_app(backend: Backend) -> TestApp {
    TestApp::spawn_with(Options {
        backend,
        browser: true,
        concurrency: 2,
        ..Options::default()
    })
    .await
}

/// Submits a job and waits until it is terminal.
async fn run(app: &TestApp, body: Value) -> Value {
    let job = app.submit(&body).await;
    let id = job["id"].as_str().expect("id").to_owned();
    app.wait_terminal(&id, LONG).await
}

async fn succeeded(app: &TestApp, body: Value) -> Value {
    let job = run(app, body).await;
    assert_eq!(job["state"], "succeeded", "job failed: {job}");
    job
}

/// Downloads an artifact, asserting its content type.
async fn artifact(app: &TestApp, url: &str, content_type: &str) -> Vec<u8> {
    let response = app.get(url).await;
    assert_eq!(response.status(), 200, "GET {url}");
    let got = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(got.starts_with(content_type), "{url} served as {got}");
    // What a target page made must never run on the API's origin (stored XSS).
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        header("content-security-policy").starts_with("sandbox"),
        "{url}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff", "{url}");
    let disposition = header("content-disposition");
    let expected = if content_type.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    assert!(disposition.starts_with(expected), "{url}: {disposition}");
    response.bytes().await.expect("artifact body").to_vec()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

async fn js_content_is_found_only_by_the_browser(backend: Backend) {
    let site = Site::start().await;
    let app = browser_app(backend).await;
    let payload = json!({
        "selectors": {"late": "#late", "heading": "h1"},
        "wait_until": {"selector": "#late"},
        "evaluate": "({answer: 6 * 7, title: document.title})",
    });
    let job = succeeded(
        &app,
        json!({"url": site.url("/late"), "strategy": "vanilla", "payload": payload}),
    )
    .await;
    let result = &job["result"];
    assert_eq!(result["executed_with"], "vanilla");
    assert_eq!(result["status_code"], 200);
    assert_eq!(result["title"], "Late content");
    assert_eq!(result["data"]["late"], "Inserted by JavaScript");
    assert_eq!(result["data"]["heading"], "Static heading");
    assert_eq!(result["evaluate"]["answer"], 42);

    let plain = succeeded(
        &app,
        json!({"url": site.url("/late"), "strategy": "http", "payload": {"selectors": {"late": "#late"}}}),
    )
    .await;
    assert_eq!(plain["result"]["executed_with"], "http");
    assert_eq!(plain["result"]["data"]["late"], Value::Null);

    let redirected = succeeded(
        &app,
        json!({"url": site.url("/redirect/3"), "strategy": "vanilla"}),
    )
    .await;
    assert_eq!(redirected["result"]["executed_with"], "vanilla");
    assert_eq!(redirected["result"]["title"], "Landed");
    assert_eq!(redirected["result"]["final_url"], site.url("/redirect/0"));
}

on_both_backends!(
    js_content_is_found_only_by_the_browser,
    screenshots_and_pdfs_are_stored_as_artifacts
);

async fn screenshots_and_pdfs_are_stored_as_artifacts(backend: Backend) {
    let site = Site::start().await;
    let app = browser_app(backend).await;

    let job = succeeded(
        &app,
        json!({"url": site.url("/"), "job_type": "screenshot", "strategy": "vanilla",
               "payload": {"viewport": {"width": 800, "height": 600}}}),
    )
    .await;
    let shot = &job["result"]["screenshot"];
    assert_eq!(shot["name"], "screenshot.png");
    let png = artifact(&app, shot["url"].as_str().expect("url"), "image/png").await;
    assert_eq!(png_size(&png), (800, 600));
    assert_eq!(shot["bytes"], png.len());
    assert_eq!(job["result"]["artifacts"][0]["name"], "screenshot.png");

    let job = succeeded(
        &app,
        json!({"url": site.url("/long"), "job_type": "screenshot",
               "payload": {"viewport": {"width": 640, "height": 480}, "full_page": true}}),
    )
    .await;
    let png = artifact(
        &app,
        job["result"]["screenshot"]["url"].as_str().expect("url"),
        "image/png",
    )
    .await;
    let (width, height) = png_size(&png);
    assert_eq!(width, 640);
    assert!(
        height >= 4800,
        "a full page of 120 rows of 40 px, got {height}"
    );

    let job = succeeded(
        &app,
        json!({"url": site.url("/"), "job_type": "screenshot",
               "payload": {"format": "jpeg", "quality": 60, "selector": "h1"}}),
    )
    .await;
    let jpeg = artifact(
        &app,
        job["result"]["screenshot"]["url"].as_str().expect("url"),
        "image/jpeg",
    )
    .await;
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "not a JPEG");

    let job = succeeded(
        &app,
        json!({"url": site.url("/"), "job_type": "pdf", "strategy": "stealth",
               "payload": {"paper": "Letter", "landscape": true, "print_background": true}}),
    )
    .await;
    let pdf = artifact(
        &app,
        job["result"]["pdf"]["url"].as_str().expect("url"),
        "application/pdf",
    )
    .await;
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    let listed: Value = app
        .get(&format!(
            "/api/v1/jobs/{}/artifacts",
            job["id"].as_str().expect("id")
        ))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["artifacts"][0]["name"], "page.pdf");
    assert_eq!(
        listed["artifacts"][0]["sha256"].as_str().map(str::len),
        Some(64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_fills_a_form_and_reports_each_step() {
    let site = Site::start().await;
    let app = browser_app(Backend::Postgres).await;
    let steps = json!([
        {"type": {"selector": "#name", "text": "Ada"}},
        {"scroll": "bottom"},
        {"click": "#submit"},
        {"wait_for": "#greeting"},
        {"extract": {"greeting": "#greeting"}},
        {"evaluate": "document.title"},
        {"screenshot": "after"},
        {"goto": site.url("/products/2")},
        {"extract": {"product": "h1"}},
    ]);
    // Stealth pages run scripts alike (the Runtime domain off, their workers held).
    let stealth = succeeded(
        &app,
        json!({"url": site.url("/form"), "job_type": "script", "strategy": "stealth",
               "payload": {"steps": steps}}),
    )
    .await;
    assert_eq!(stealth["result"]["data"]["greeting"], "Hello, Ada");
    assert_eq!(stealth["result"]["data"]["product"], "Product 2");
    let job = succeeded(
        &app,
        json!({"url": site.url("/form"), "job_type": "script", "payload": {"steps": steps}}),
    )
    .await;
    let result = &job["result"];
    assert_eq!(result["data"]["greeting"], "Hello, Ada");
    assert_eq!(result["data"]["product"], "Product 2");
    let outcomes = result["steps"].as_array().expect("steps");
    assert_eq!(outcomes.len(), 9);
    assert!(outcomes.iter().all(|s| s["ok"] == true));
    assert_eq!(outcomes[5]["value"], "Greeting");
    assert_eq!(outcomes[6]["value"]["name"], "after.png");
    let png = artifact(
        &app,
        outcomes[6]["value"]["url"].as_str().expect("url"),
        "image/png",
    )
    .await;
    assert_eq!(png_size(&png), (1366, 768));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_is_named_and_leaves_failure_artifacts() {
    let site = Site::start().await;
    let app = browser_app(Backend::Postgres).await;
    let job = run(
        &app,
        json!({"url": site.url("/form"), "job_type": "script", "max_attempts": 1,
               "payload": {"steps": [{"type": {"selector": "#name", "text": "x"}}, {"click": "#missing"}]}}),
    )
    .await;
    assert_eq!(job["state"], "failed");
    let error = &job["error"];
    assert_eq!(error["kind"], "script");
    let message = error["message"].as_str().expect("message");
    assert!(message.starts_with("step 1 (click)"), "{message}");
    let urls: Vec<&str> = error["artifacts"]
        .as_array()
        .expect("failure artifacts")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(urls.len(), 2, "{error}");
    let html = artifact(&app, urls[1], "text/html").await;
    assert!(String::from_utf8_lossy(&html).contains("id=\"submit\""));
    let png = artifact(&app, urls[0], "image/png").await;
    assert_eq!(png_size(&png), (1366, 768));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_and_options_apply_to_one_job_and_never_leak_to_the_next() {
    let site = Site::start().await;
    // One worker slot: both jobs run in the same browser, one after the other.
    let app = TestApp::spawn_with(Options {
        browser: true,
        concurrency: 1,
        ..Options::default()
    })
    .await;
    let first = succeeded(
        &app,
        json!({"url": site.url("/cookies"), "payload": {
            "cookies": [{"name": "secret", "value": "s1"}],
            "selectors": {"cookies": "#cookies"}}}),
    )
    .await;
    assert_eq!(first["result"]["data"]["cookies"], "[secret=s1]");
    let second = succeeded(
        &app,
        json!({"url": site.url("/cookies"), "payload": {"selectors": {"cookies": "#cookies"}}}),
    )
    .await;
    assert_eq!(
        second["result"]["data"]["cookies"], "[]",
        "cookies leaked from the first job"
    );

    let echo = succeeded(
        &app,
        json!({"url": site.url("/echo"), "payload": {
            "user_agent": "fixture-agent/1.0", "locale": "fr-FR", "timezone": "Asia/Tokyo",
            "headers": {"x-test": "yes"}, "block": ["image", "stylesheet"],
            "selectors": {"echo": "#echo"},
            "evaluate": "[Intl.DateTimeFormat().resolvedOptions().timeZone, navigator.language, innerWidth]"}}),
    )
    .await;
    let seen: Value =
        serde_json::from_str(echo["result"]["data"]["echo"].as_str().expect("echo")).expect("json");
    assert_eq!(seen["user_agent"], "fixture-agent/1.0");
    assert_eq!(seen["x_test"], "yes");
    assert!(
        seen["accept_language"]
            .as_str()
            .is_some_and(|l| l.starts_with("fr-FR")),
        "{seen}"
    );
    assert_eq!(
        echo["result"]["evaluate"],
        json!(["Asia/Tokyo", "fr-FR", 1366])
    );
}

/// A page that opens `alert`, `confirm` and `prompt` goes on at once (each accepted, the
/// prompt answered empty) instead of stalling until the job's timeout; the result lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_dialogs_are_answered_and_recorded() {
    let site = Site::start().await;
    let app = browser_app(Backend::Postgres).await;
    for strategy in ["vanilla", "stealth"] {
        let job = succeeded(
            &app,
            json!({"url": site.url("/dialogs"), "strategy": strategy, "timeout_ms": 60_000,
                   "max_attempts": 1, "payload": {"selectors": {"answers": "#answers"}}}),
        )
        .await;
        let result = &job["result"];
        assert_eq!(
            result["data"]["answers"], "confirm=true prompt=\"\"",
            "{strategy}: {result}"
        );
        let kinds: Vec<&str> = result["dialogs"]
            .as_array()
            .expect("dialogs listed")
            .iter()
            .filter_map(|d| d["type"].as_str())
            .collect();
        assert_eq!(
            kinds,
            ["alert", "confirm", "prompt"],
            "{strategy}: {result}"
        );
        assert_eq!(result["dialogs"][0]["message"], "hello from the page");
        assert!(
            result["spent"]["browser_ms"]
                .as_u64()
                .is_some_and(|ms| ms > 0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captcha_and_challenge_pages_are_blocked_with_a_reason() {
    let site = Site::start().await;
    let app = browser_app(Backend::Postgres).await;
    let captcha = run(
        &app,
        json!({"url": site.url("/captcha"), "strategy": "vanilla", "max_attempts": 1}),
    )
    .await;
    assert_eq!(captcha["state"], "failed");
    assert_eq!(captcha["error"]["kind"], "blocked");
    assert_eq!(captcha["error"]["reason"], "captcha");
    assert_eq!(captcha["error"]["retryable"], true);

    for strategy in ["stealth", "http"] {
        let challenge = run(
            &app,
            json!({"url": site.url("/challenge"), "strategy": strategy, "max_attempts": 1}),
        )
        .await;
        assert_eq!(
            challenge["error"]["kind"], "blocked",
            "{strategy}: {challenge}"
        );
        assert_eq!(challenge["error"]["reason"], "challenge");
        assert_eq!(challenge["error"]["status_code"], 429);
        assert_eq!(challenge["error"]["retry_after_ms"], 30_000);
    }

    let empty = run(
        &app,
        json!({"url": site.url("/empty"), "strategy": "vanilla", "max_attempts": 1}),
    )
    .await;
    assert_eq!(empty["error"]["reason"], "empty_body", "{empty}");

    let missing = run(
        &app,
        json!({"url": site.url("/status/404"), "max_attempts": 1}),
    )
    .await;
    assert_eq!(missing["error"]["kind"], "http_status");
    assert_eq!(missing["error"]["status_code"], 404);
}

/// The botd bundle from the npm registry, fetched once per test run (never committed).
fn botd_bundle() -> &'static [u8] {
    static BUNDLE: OnceLock<Vec<u8>> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cp-botd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("botd dir");
        let pack = std::process::Command::new("npm")
            .args(["pack", "@fingerprintjs/botd@2", "--silent"])
            .current_dir(&dir)
            .output()
            .expect("npm must be installed to fetch @fingerprintjs/botd");
        assert!(
            pack.status.success(),
            "npm pack @fingerprintjs/botd failed: {}",
            String::from_utf8_lossy(&pack.stderr)
        );
        let tarball = String::from_utf8_lossy(&pack.stdout).trim().to_owned();
        let untar = std::process::Command::new("tar")
            .args(["xzf", &tarball])
            .current_dir(&dir)
            .status()
            .expect("tar");
        assert!(untar.success(), "cannot unpack {tarball}");
        let bundle = std::fs::read(dir.join("package/dist/botd.esm.js")).expect("botd.esm.js");
        let _ = std::fs::remove_dir_all(&dir);
        bundle
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botd_reports_no_bot_under_stealth() {
    let bundle = tokio::task::spawn_blocking(botd_bundle)
        .await
        .expect("fetch botd");
    let site = Site::start_with_botd(bundle).await;
    let app = browser_app(Backend::Postgres).await;
    let mut verdicts = Vec::new();
    for strategy in ["vanilla", "stealth"] {
        let job = succeeded(
            &app,
            json!({"url": site.url("/botd"), "strategy": strategy, "payload": {
                "wait_until": {"selector": "#result:not(:empty)"},
                "evaluate": "window.__botd"}}),
        )
        .await;
        let verdict = job["result"]["evaluate"]["verdict"].clone();
        println!("botd under {strategy}: {verdict}");
        assert!(
            verdict["bot"].is_boolean(),
            "botd did not run under {strategy}: {}",
            job["result"]["evaluate"]
        );
        verdicts.push(verdict);
    }
    assert_eq!(
        verdicts[1]["bot"], false,
        "botd detected the stealth browser: {}",
        verdicts[1]
    );
}

/// Every place of the consistency page under `strategy` (with `options` in the payload):
/// `main`, `frame`, `dedicated`, `shared` and `service`.
async fn seen_everywhere(app: &TestApp, site: &Site, strategy: &str, options: Value) -> Value {
    let mut payload = json!({
        "wait_until": {"selector": "#result:not(:empty)"},
        "selectors": {"result": "#result"},
        "evaluate": "window.__looks"});
    if let (Some(payload), Some(options)) = (payload.as_object_mut(), options.as_object()) {
        payload.extend(options.clone());
    }
    let job = succeeded(
        app,
        json!({"url": site.url("/consistency"), "strategy": strategy, "payload": payload}),
    )
    .await;
    let mut seen: Value =
        serde_json::from_str(job["result"]["data"]["result"].as_str().expect("result"))
            .expect("json");
    // How often the page saw the toolkit call its `document.querySelector`.
    seen["looks_seen"] = job["result"]["evaluate"].clone();
    println!("{strategy} {options}: {seen:#}");
    for place in PLACES {
        assert!(
            seen[place]["ua"].is_string(),
            "{place} did not answer: {seen}"
        );
    }
    seen
}

const PLACES: [&str; 5] = ["main", "frame", "dedicated", "shared", "service"];

/// What does not hold together in `seen`, in words (empty when it tells one story).
fn inconsistencies(seen: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let main = &seen["main"];
    for place in PLACES {
        let here = &seen[place];
        if here["timezone"] != main["timezone"] || here["intl_locale"] != main["intl_locale"] {
            found.push(format!(
                "{place}: time zone or Intl locale differs from the page's"
            ));
        }
        if here["eval_length"] != 33 {
            found.push(format!("{place}: eval.toString() is not Chrome's"));
        }
        if here["webdriver"] != false {
            found.push(format!("{place}: navigator.webdriver"));
        }
    }
    if seen["looks_seen"] != 0 {
        found.push(format!(
            "the page saw the toolkit look: {}",
            seen["looks_seen"]
        ));
    }
    if main["timezone"] == "UTC" {
        found.push("the time zone is UTC".into());
    }
    for place in PLACES {
        let here = &seen[place];
        if here["ua"].as_str().unwrap_or_default().contains("Headless") {
            found.push(format!("{place}: a headless user agent"));
        }
        if here["brands"]
            .as_str()
            .unwrap_or_default()
            .contains("Headless")
        {
            found.push(format!(
                "{place}: a headless brand in navigator.userAgentData"
            ));
        }
        if here["brands"] != main["brands"] {
            found.push(format!(
                "{place}: navigator.userAgentData differs from the page's"
            ));
        }
        if here["ua"] != main["ua"] || here["languages"] != main["languages"] {
            found.push(format!(
                "{place}: user agent or languages differ from the page's"
            ));
        }
        if here["languages"].as_str().unwrap_or_default().contains(';') {
            found.push(format!("{place}: quality values in navigator.languages"));
        }
        if here["webgl"] != main["webgl"] {
            found.push(format!("{place}: WebGL differs from the page's"));
        }
        if here["webgl"]
            .as_str()
            .unwrap_or_default()
            .contains("SwiftShader")
        {
            found.push(format!("{place}: a software WebGL renderer"));
        }
    }
    for place in ["main", "frame"] {
        let here = &seen[place];
        let language = here["language"].as_str().unwrap_or_default();
        if here["intl_locale"].as_str() != Some(language) {
            found.push(format!("{place}: Intl's locale is not navigator.language"));
        }
        let screen = &here["screen"];
        let at = |name: &str| screen[name].as_i64().unwrap_or(0);
        if !(at("width") >= at("outer_width")
            && at("outer_width") >= at("inner_width")
            && at("height") >= at("outer_height")
            && at("outer_height") > at("inner_height")
            && at("avail_width") <= at("width")
            && at("avail_height") <= at("height"))
        {
            found.push(format!(
                "{place}: screen, window and viewport disagree: {screen}"
            ));
        }
    }
    for place in PLACES {
        if seen[place]["console_heard"] != false {
            found.push(format!("{place}: a DevTools client hears its console"));
        }
        for problem in seen[place]["not_native"].as_array().into_iter().flatten() {
            found.push(format!("{place}: {problem}"));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stealth_tells_one_story_in_every_frame_and_worker_and_vanilla_does_not() {
    let site = Site::start().await;
    let app = browser_app(Backend::Sqlite).await;

    // The checks can fail: Chromium as shipped is caught by them.
    let vanilla = inconsistencies(&seen_everywhere(&app, &site, "vanilla", json!({})).await);
    for expected in [
        "the time zone is UTC",
        "main: navigator.webdriver",
        "main: a DevTools client hears its console",
        "the page saw the toolkit look",
        "main: screen",
    ] {
        assert!(
            vanilla.iter().any(|found| found.starts_with(expected)),
            "vanilla should show {expected:?}: {vanilla:?}"
        );
    }

    // The default persona tells one story everywhere.
    let seen = seen_everywhere(&app, &site, "stealth", json!({})).await;
    let found = inconsistencies(&seen);
    assert!(found.is_empty(), "stealth: {found:?}");

    // A job's own user agent is told everywhere, client hints included.
    let older = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    let seen = seen_everywhere(&app, &site, "stealth", json!({"user_agent": older})).await;
    let found = inconsistencies(&seen);
    assert!(found.is_empty(), "stealth as Chrome 120: {found:?}");
    for place in PLACES {
        assert_eq!(seen[place]["ua"], older, "{place}: {seen}");
        let brands = seen[place]["brands"].as_str().unwrap_or_default();
        assert!(brands.contains("Chromium 120"), "{place}: {brands}");
    }

    // A job's locale chooses the persona: languages, Intl and a time zone that fits, told
    // the same way everywhere.
    let seen = seen_everywhere(&app, &site, "stealth", json!({"locale": "fr-FR"})).await;
    let found = inconsistencies(&seen);
    assert!(found.is_empty(), "stealth in French: {found:?}");
    for place in PLACES {
        assert_eq!(seen[place]["languages"], "fr-FR,fr", "{place}: {seen}");
        assert_eq!(seen[place]["intl_locale"], "fr-FR", "{place}: {seen}");
        assert_eq!(seen[place]["timezone"], "Europe/Paris", "{place}: {seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_browser_fails_the_attempt_as_crashed_and_the_retry_succeeds() {
    let site = Site::start().await;
    let app = browser_app(Backend::Postgres).await;
    let job = app
        .submit(&json!({"url": site.url("/slow?ms=3000"), "strategy": "vanilla"}))
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    app.wait_for(&id, LONG, |job| job["state"] == "running")
        .await;
    let pool = app.pool.clone().expect("pool");
    let pids = eventually("the browser process", LONG, || {
        let pids = pool.browser_process_ids();
        async move { (!pids.is_empty()).then_some(pids) }
    })
    .await;
    // Give the page time to start loading the slow document, then kill the browser.
    eventually("the slow page to be requested", LONG, || async {
        (pool.stats().contexts > 0).then_some(())
    })
    .await;
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let done = app.wait_terminal(&id, LONG).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempt"], 2);
    let events: Value = app
        .get(&format!("/api/v1/jobs/{id}/events"))
        .await
        .json()
        .await
        .expect("events");
    let crashed = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["detail"].to_string().contains("browser_crashed"));
    assert!(crashed, "no browser_crashed attempt in {events}");
    assert_eq!(pool.stats().restarts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_job_releases_its_context_and_stop_leaves_no_chromium() {
    let site = Site::start().await;
    let app = browser_app(Backend::Postgres).await;
    let job = run(
        &app,
        json!({"url": site.url("/slow?ms=20000"), "strategy": "vanilla", "timeout_ms": 2000, "max_attempts": 1}),
    )
    .await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["error"]["kind"], "timeout", "{job}");
    let pool = app.pool.clone().expect("pool");
    eventually("the context to be disposed", LONG, || async {
        (pool.stats().contexts == 0).then_some(())
    })
    .await;
    assert!(
        !pool.process_ids().is_empty(),
        "the browser should still run"
    );

    let ready: Value = app.get("/ready").await.json().await.expect("ready");
    assert_eq!(ready["browser"], "ready", "{ready}");
    // Workers report every few seconds.
    eventually("the pool's counters in queue statistics", LONG, || async {
        let stats: Value = app.get("/api/v1/queue/stats").await.json().await.ok()?;
        (stats["browser"]["pages_served"].as_u64() >= Some(1)).then_some(())
    })
    .await;

    app.stop().await;
    eventually("every Chromium process to exit", LONG, || {
        let left = pool.process_ids();
        async move { left.is_empty().then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_chromium_browser_jobs_fail_fast_and_extraction_falls_back_to_http() {
    let site = Site::start().await;
    let app = TestApp::spawn().await;
    let ready: Value = eventually("a worker report", LONG, || async {
        let ready: Value = app.get("/ready").await.json().await.ok()?;
        (ready["browser"] != "unknown").then_some(ready)
    })
    .await;
    assert_eq!(ready["browser"], "unavailable", "{ready}");

    let shot = run(
        &app,
        json!({"url": site.url("/"), "job_type": "screenshot"}),
    )
    .await;
    assert_eq!(shot["state"], "failed");
    assert_eq!(shot["attempt"], 1, "browser_unavailable is not retried");
    assert_eq!(shot["error"]["kind"], "browser_unavailable");
    assert!(
        shot["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("apt-get install -y chromium")),
        "{shot}"
    );

    let extract = succeeded(&app, json!({"url": site.url("/"), "strategy": "stealth"})).await;
    assert_eq!(extract["result"]["executed_with"], "http");
    assert!(extract["result"]["fallback_reason"].is_string());
}

#[tokio::test]
async fn browser_payloads_are_checked_at_submission() {
    let app = TestApp::spawn_with(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let cases = [
        (
            json!({"job_type": "screenshot", "payload": {"colour": "red"}}),
            "payload.colour",
        ),
        (
            json!({"job_type": "screenshot", "strategy": "http"}),
            "strategy",
        ),
        (
            json!({"job_type": "screenshot", "payload": {"quality": 50}}),
            "payload.quality",
        ),
        (
            json!({"job_type": "pdf", "payload": {"paper": "A0"}}),
            "payload.paper",
        ),
        (json!({"job_type": "script"}), "payload.steps"),
        (
            json!({"job_type": "script", "payload": {"steps": [{"dance": 1}]}}),
            "payload.steps.0.dance",
        ),
        (
            json!({"job_type": "script", "payload": {"steps": [{"click": "[["}]}}),
            "payload.steps.0.click",
        ),
        (
            json!({"strategy": "http", "payload": {"evaluate": "1"}}),
            "payload.evaluate",
        ),
        (
            json!({"payload": {"viewport": {"width": 5}}}),
            "payload.viewport.width",
        ),
        (json!({"payload": {"block": ["video"]}}), "payload.block.0"),
        (
            json!({"payload": {"wait_until": "never"}}),
            "payload.wait_until",
        ),
        (
            json!({"payload": {"cookies": [{"name": "a"}]}}),
            "payload.cookies.0.value",
        ),
    ];
    for (mut body, field) in cases {
        body["url"] = json!("https://example.com/");
        let response = app.post_json("/api/v1/jobs", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let problem: Value = response.json().await.expect("problem");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }
    assert_eq!(app.job_rows().await, 0, "no half-stored job");
}

/// Browser processes whose profile lives under `dir`.
fn chromium_under(dir: &std::path::Path) -> Vec<i32> {
    control_plane::engine::browser::process::processes_with_arg(&format!(
        "--user-data-dir={}",
        dir.display()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_chromium_outlives_the_worker_on_sigterm_or_sigkill() {
    use crate::cli::{Process, fetch_json, wait_healthy};
    let site = Site::start().await;
    let client = reqwest::Client::new();
    for signal in ["TERM", "KILL"] {
        let data = crate::common::TestDataDir::new();
        let tmp = crate::common::TestDataDir::new();
        let mut dev = Process::spawn(
            "dev",
            &[
                ("DATA_DIR", data.0.display().to_string()),
                ("TMPDIR", tmp.0.display().to_string()),
                ("ALLOW_PRIVATE_TARGETS", "true".to_owned()),
                ("CHROME_PATH", crate::common::chrome().display().to_string()),
            ],
        );
        wait_healthy(&dev, &client).await;
        let ready = fetch_json(&client, &format!("{}/ready", dev.base))
            .await
            .expect("ready");
        assert_eq!(ready["browser"], "ready", "{ready}");
        let body = json!({"url": site.url("/"), "job_type": "screenshot"});
        let id = crate::cli::submit(&client, &dev.base, &body).await;
        eventually("the screenshot", LONG, || async {
            let job = fetch_json(&client, &format!("{}/api/v1/jobs/{id}", dev.base)).await?;
            (job["state"] == "succeeded").then_some(())
        })
        .await;
        assert!(!chromium_under(&tmp.0).is_empty(), "Chromium should run");
        if signal == "TERM" {
            dev.terminate();
            let status = dev.wait_exit(LONG).await;
            assert!(status.success(), "{}", dev.log());
            // A clean exit also removes the profile directories.
            let leftovers: Vec<_> = std::fs::read_dir(&tmp.0)
                .expect("tmp")
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("control-plane-chromium-"))
                .collect();
            assert!(leftovers.is_empty(), "profiles left: {leftovers:?}");
        } else {
            dev.kill_9();
        }
        eventually(
            &format!("Chromium to exit after SIG{signal}"),
            LONG,
            || async { chromium_under(&tmp.0).is_empty().then_some(()) },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_is_recycled_after_its_page_budget() {
    let site = Site::start().await;
    let app = TestApp::spawn_with(Options {
        browser: true,
        concurrency: 1,
        recycle_pages: 2,
        ..Options::default()
    })
    .await;
    for _ in 0..5 {
        succeeded(
            &app,
            json!({"url": site.url("/products/1"), "strategy": "vanilla"}),
        )
        .await;
    }
    let pool = app.pool.clone().expect("pool");
    let stats = pool.stats();
    assert_eq!(stats.pages_served, 5);
    assert_eq!(stats.recycles, 2, "{stats:?}");
    eventually("retired browsers to exit", LONG, || {
        let browsers = pool.browser_process_ids().len();
        async move { (browsers == 1).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_refuses_private_targets_unless_allowed() {
    use control_plane::attempt::Attempts;
    use control_plane::engine::browser::{BrowserPool, PoolConfig};
    use control_plane::engine::{Browser, Engine};
    use control_plane::job::target::TargetPolicy;
    use control_plane::job::{Priority, Strategy};
    use control_plane::kinds::{JobType, RunningJob};

    let site = Site::start().await;
    let dir = crate::common::TestDataDir::new();
    let store = std::sync::Arc::new(
        control_plane::store::SqliteStore::open(&dir.0)
            .await
            .expect("store"),
    );
    let artifacts =
        control_plane::artifact::ArtifactStore::local(&dir.0.join("artifacts"), store.clone())
            .expect("artifacts");
    let pool = BrowserPool::new(PoolConfig {
        executable: crate::common::chrome(),
        size: 1,
        max_contexts: 1,
        recycle_pages: 100,
    });
    // A job that got past submission (say, a name that later resolved to 127.0.0.1) is still
    // refused by the worker's browser, for the page and for every request it makes.
    let strict = TargetPolicy::new(false);
    let engine = Engine::new(strict, Some(Browser::new(pool.clone(), strict, artifacts)));
    let domains = control_plane::memory::Domains::new(
        store.clone(),
        std::sync::Arc::new(control_plane::memory::LocalPacer::new()),
    );
    let runner = Attempts::new(std::sync::Arc::new(engine), std::sync::Arc::new(domains));
    let job = RunningJob {
        id: uuid::Uuid::now_v7(),
        domain: "127.0.0.1".into(),
        url: site.url("/redirect/2"),
        job_type: JobType::NavigateExtract,
        strategy: Strategy::Vanilla,
        priority: Priority::default(),
        payload: json!({}),
        attempt: 1,
        max_attempts: 1,
        timeout_ms: 20_000,
        worker_id: "test".into(),
        tenant_id: "default".into(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let error = runner.run(&job, &stop).await.expect_err("refused");
    assert_eq!(
        error.kind,
        control_plane::job::ErrorKind::TargetPolicy,
        "{error}"
    );
    assert!(!error.retryable);
    assert_eq!(site.hits("/redirect/2"), 0);
    pool.shutdown().await;
}
