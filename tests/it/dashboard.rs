//! The dashboard in real Chromium: sign in, list and filter jobs, open a job, see its
//! screenshot, retry a failed job and watch it run; a job's markup shows as text and never
//! runs. Screenshots of the pages are kept as test artifacts.

use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::common::{Options, TestApp, TestDataDir, chrome, eventually};
use crate::site::Site;

/// Where the screenshots go: UI_SCREENSHOTS, else the test target's scratch directory.
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

async fn launch(profile: &TestDataDir) -> Browser {
    let config = BrowserConfig::builder()
        .chrome_executable(chrome())
        .user_data_dir(&profile.0)
        .no_sandbox()
        .window_size(1366, 900)
        .viewport(None)
        .args([
            "headless=new",
            "disable-gpu",
            "disable-quic",
            "no-first-run",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
        ])
        .build()
        .expect("browser config");
    let (browser, mut handler) = Browser::launch(config).await.expect("launch Chromium");
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    browser
}

async fn eval<T: serde::de::DeserializeOwned>(page: &Page, script: &str) -> T {
    page.evaluate(script)
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Waits until `script` evaluates to true on `page`.
async fn until(page: &Page, what: &str, script: &str) {
    eventually(what, Duration::from_secs(30), || async {
        let holds = page
            .evaluate(script)
            .await
            .ok()
            .and_then(|r| r.into_value::<bool>().ok())
            .unwrap_or(false);
        holds.then_some(())
    })
    .await;
}

/// Runs `script` on `page` for its effect (a click, a form filled and sent).
async fn act(page: &Page, script: &str) {
    eval::<Value>(page, &format!("{script}; true")).await;
}

/// Opens `url` and waits until `ready` holds.
async fn visit(page: &Page, url: String, what: &str, ready: &str) {
    page.goto(url).await.expect("goto");
    until(page, what, ready).await;
}

async fn save(page: &Page, name: &str) -> PathBuf {
    let png = page
        .screenshot(ScreenshotParams::builder().full_page(true).build())
        .await
        .expect("screenshot");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).expect("write screenshot");
    println!("dashboard screenshot: {}", path.display());
    path
}

async fn submit(app: &TestApp, body: Value) -> String {
    let job = app.submit(&body).await;
    job["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_filters_shows_and_retries_jobs_in_chromium() {
    let site = Site::start().await;
    let app = TestApp::spawn_with(Options {
        browser: true,
        ..Options::default()
    })
    .await;
    let shot = submit(
        &app,
        json!({"url": site.url("/"), "job_type": "screenshot", "strategy": "vanilla"}),
    )
    .await;
    let flaky = submit(
        &app,
        json!({"url": site.url(&format!("/flaky/ui-{}?fail=1", uuid::Uuid::new_v4().simple())),
               "strategy": "http", "max_attempts": 1}),
    )
    .await;
    let hostile_url = site.url(
        r#"/hostile/markup?q="><img src=x onerror=window.pwned=3><script>window.pwned=4</script>"#,
    );
    let hostile = submit(
        &app,
        json!({"url": hostile_url, "strategy": "http",
               "payload": {"selectors": {"title": "h1", "note": "p"}}}),
    )
    .await;
    for id in [&shot, &flaky, &hostile] {
        app.wait_terminal(id, Duration::from_secs(60)).await;
    }
    assert_eq!(app.job(&flaky).await["state"], "failed");
    assert_eq!(app.job(&shot).await["state"], "succeeded");
    let markup = app.job(&hostile).await;
    assert_eq!(
        markup["result"]["data"]["title"], "<script>window.pwned=1</script>",
        "{markup}"
    );

    let profile = TestDataDir::new();
    let browser = launch(&profile).await;
    let page = browser.new_page(app.url("/ui")).await.expect("page");

    // Not signed in: the sign-in form; a key signs in.
    until(
        &page,
        "the sign-in page",
        "location.pathname === '/ui/login'",
    )
    .await;
    let key = serde_json::to_string(&app.key).expect("key");
    act(
        &page,
        &format!("document.querySelector('#key').value = {key}; document.querySelector('form.login').submit()"),
    )
    .await;
    until(&page, "the jobs list", "location.pathname === '/ui/jobs' && document.querySelectorAll('table.jobs tbody tr').length === 3").await;
    save(&page, "jobs.png").await;

    // Filter by state.
    act(
        &page,
        "document.querySelector('#filter-state').value = 'failed'; document.querySelector('#apply-filters').click()",
    )
    .await;
    until(
        &page,
        "the failed jobs",
        "location.search.includes('state=failed')",
    )
    .await;
    let states: Vec<String> = eval(
        &page,
        "Array.from(document.querySelectorAll('table.jobs tbody .state')).map(s => s.textContent)",
    )
    .await;
    assert_eq!(states, ["failed"]);

    // Open the failed job and retry it: the page follows it to its new end.
    act(&page, "document.querySelector('a.job-link').click()").await;
    until(
        &page,
        "the job page",
        &format!("location.pathname === '/ui/jobs/{flaky}'"),
    )
    .await;
    save(&page, "job-failed.png").await;
    act(
        &page,
        "document.querySelector('button[data-action=retry]').click()",
    )
    .await;
    until(
        &page,
        "the retried job to succeed on the page",
        "document.querySelector('#job-state')?.textContent === 'succeeded'",
    )
    .await;
    assert_eq!(app.job(&flaky).await["state"], "succeeded");
    let kinds: Vec<String> = eval(
        &page,
        "Array.from(document.querySelectorAll('#timeline tbody tr td:nth-child(3)')).map(c => c.textContent)",
    )
    .await;
    assert!(
        kinds.contains(&"retried".to_owned()) && kinds.ends_with(&["succeeded".to_owned()]),
        "{kinds:?}"
    );

    // The screenshot job shows its screenshot.
    visit(
        &page,
        app.url(&format!("/ui/jobs/{shot}")),
        "the screenshot to load",
        "(() => { const img = document.querySelector('img.artifact-image'); return !!img && img.complete && img.naturalWidth > 0; })()",
    )
    .await;
    save(&page, "job-screenshot.png").await;

    // Markup from a job is text: nothing of it runs, on its page or in the list.
    visit(
        &page,
        app.url(&format!("/ui/jobs/{hostile}")),
        "the hostile job's page",
        "document.querySelector('#result') !== null",
    )
    .await;
    save(&page, "job-markup.png").await;
    let text: String = eval(&page, "document.querySelector('#result').textContent").await;
    assert!(text.contains("<script>window.pwned=1</script>"), "{text}");
    assert!(text.contains(r#""><img src=x onerror="#), "{text}");
    let url: String = eval(&page, "document.querySelector('dd.url').textContent").await;
    assert!(url.contains("hostile/markup?q="), "{url}");
    for path in [format!("/ui/jobs/{hostile}"), "/ui/jobs".to_owned()] {
        let ready = "document.readyState === 'complete'";
        visit(&page, app.url(&path), "the page", ready).await;
        let pwned: bool = eval(&page, "typeof window.pwned !== 'undefined'").await;
        assert!(!pwned, "{path}: a job's markup ran");
        let injected: usize = eval(
            &page,
            "document.querySelectorAll('img[onerror], main script').length",
        )
        .await;
        assert_eq!(injected, 0, "{path}: a job's markup became elements");
    }
    drop(page);
    drop(browser);
    app.stop().await;
}

#[tokio::test]
async fn dashboard_pages_send_a_browser_to_sign_in_and_carry_a_strict_policy() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client
        .get(app.url("/ui/jobs"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/ui/login");
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
        "{policy}"
    );

    // A wrong key is refused; a right one is kept in a strict cookie the API accepts.
    let wrong = client
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("key=cp_wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401);
    let signed = client
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", app.key))
        .send()
        .await
        .expect("request");
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap_or_default().to_owned();
    let api = client
        .get(app.url("/api/v1/jobs"))
        .header("cookie", &pair)
        .send()
        .await
        .expect("request");
    assert_eq!(api.status(), 200);
    // A change from another site is refused even with the cookie.
    let cross = client
        .post(app.url("/api/v1/jobs"))
        .header("cookie", &pair)
        .header("origin", "https://evil.example")
        .json(&json!({"url": "https://example.com/", "job_type": "noop"}))
        .send()
        .await
        .expect("request");
    assert_eq!(cross.status(), 403);
    app.stop().await;
}
