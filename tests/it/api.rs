//! The API's edges: bad input gets a precise problem and stores nothing; the target policy;
//! service endpoints.

use serde_json::{Value, json};

use crate::common::{Backend, Options, TestApp, on_both_backends};

const JOBS: &str = "/api/v1/jobs";

/// Sends a raw body with a content type; returns status, content type and body.
async fn send(app: &TestApp, content_type: Option<&str>, body: Vec<u8>) -> (u16, String, Value) {
    let mut request = app.client.post(app.url(JOBS)).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, ct, body)
}

fn named_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn every_bad_input_gets_its_status_names_its_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::on(backend).await;
    let good = json!({"url": "https://example.com/", "job_type": "noop"});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases: Vec<(&str, Value, u16, Vec<&str>)> = vec![
        (
            "unknown field",
            with("colour", json!("red")),
            422,
            vec!["colour"],
        ),
        (
            "wrong type",
            with("priority", json!("high")),
            422,
            vec!["priority"],
        ),
        (
            "unknown enum value",
            with("strategy", json!("turbo")),
            422,
            vec!["strategy"],
        ),
        (
            "unknown job type",
            with("job_type", json!("crawl")),
            422,
            vec!["job_type"],
        ),
        (
            "browser job type over http",
            json!({"url": "https://example.com/", "job_type": "screenshot", "strategy": "http"}),
            422,
            vec!["strategy"],
        ),
        (
            "priority too low",
            with("priority", json!(0)),
            422,
            vec!["priority"],
        ),
        (
            "priority too high",
            with("priority", json!(6)),
            422,
            vec!["priority"],
        ),
        (
            "fractional priority",
            with("priority", json!(2.5)),
            422,
            vec!["priority"],
        ),
        (
            "url not http",
            with("url", json!("ftp://example.com/file")),
            422,
            vec!["url"],
        ),
        (
            "url without host",
            with("url", json!("http://")),
            422,
            vec!["url"],
        ),
        (
            "url not a url",
            with("url", json!("example.com")),
            422,
            vec!["url"],
        ),
        (
            "url too long",
            with(
                "url",
                json!(format!("https://example.com/{}", "a".repeat(2100))),
            ),
            422,
            vec!["url"],
        ),
        ("url missing", json!({"job_type": "noop"}), 422, vec!["url"]),
        (
            "payload not an object",
            with("payload", json!([1, 2])),
            422,
            vec!["payload"],
        ),
        (
            "payload too large",
            with("payload", json!({"pad": "x".repeat(300 * 1024)})),
            422,
            vec!["payload"],
        ),
        (
            "payload field unknown",
            with("payload", json!({"sleep": 5})),
            422,
            vec!["payload.sleep"],
        ),
        (
            "sleep too long",
            with("payload", json!({"sleep_ms": 60_001})),
            422,
            vec!["payload.sleep_ms"],
        ),
        (
            "max_attempts out of range",
            with("max_attempts", json!(11)),
            422,
            vec!["max_attempts"],
        ),
        (
            "timeout out of range",
            with("timeout_ms", json!(999)),
            422,
            vec!["timeout_ms"],
        ),
        (
            "domain mismatch",
            with("domain", json!("example.org")),
            422,
            vec!["domain"],
        ),
        ("body not an object", json!([good.clone()]), 422, vec![""]),
        // Hostile input an attacker sends (issue 10): each refused at the edge, by name.
        (
            "NUL in a field",
            with("url", json!("https://example.com/\u{0}")),
            422,
            vec!["url"],
        ),
        (
            "NUL deep in the payload",
            json!({"url": "https://example.com/", "job_type": "navigate_extract",
                   "payload": {"headers": {"x-a": "a\u{0}b"}}}),
            422,
            vec!["payload.headers.x-a"],
        ),
        (
            "credentials in the url",
            with("url", json!("https://user:secret@example.com/")),
            422,
            vec!["url"],
        ),
        (
            "port 0",
            with("url", json!("https://example.com:0/")),
            422,
            vec!["url"],
        ),
        (
            "not a DNS name",
            with("url", json!("https://-bad-.example.com/")),
            422,
            vec!["url"],
        ),
        (
            "framing headers",
            json!({"url": "https://example.com/", "job_type": "navigate_extract",
                   "payload": {"headers": {"Content-Length": "5", "Transfer-Encoding": "chunked",
                                           "Host": "internal", "x-fine": "1"}}}),
            422,
            vec![
                "payload.headers.Content-Length",
                "payload.headers.Host",
                "payload.headers.Transfer-Encoding",
            ],
        ),
        (
            "cookie values that add cookies or attributes",
            json!({"url": "https://example.com/", "job_type": "navigate_extract",
                   "payload": {"cookies": [
                       {"name": "a", "value": "1; Domain=evil.example"},
                       {"name": "b", "value": "x\r\nSet-Cookie: c=d"},
                       {"name": "c", "value": "ok", "path": "/;x"}]}}),
            422,
            vec![
                "payload.cookies.0.value",
                "payload.cookies.1.value",
                "payload.cookies.2.path",
            ],
        ),
        (
            "several at once",
            json!({"url": "ftp://x", "priority": 9, "strategy": 1}),
            422,
            vec!["url", "strategy", "priority"],
        ),
    ];
    for (name, body, status, fields) in cases {
        let bytes = serde_json::to_vec(&body).expect("serialize");
        let (got, ct, problem) = send(&app, Some("application/json"), bytes).await;
        assert_eq!(got, status, "{name}: {problem}");
        assert_eq!(ct, "application/problem+json", "{name}");
        assert_eq!(problem["status"], status, "{name}");
        let mut named = named_fields(&problem);
        named.sort();
        let mut expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        expected.sort();
        assert_eq!(named, expected, "{name}: {problem}");
    }

    let raw_cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        (
            "malformed JSON",
            Some("application/json"),
            b"{\"url\": ".to_vec(),
            400,
        ),
        ("empty body", Some("application/json"), Vec::new(), 400),
        (
            "wrong content type",
            Some("text/plain"),
            serde_json::to_vec(&good).unwrap_or_default(),
            415,
        ),
        (
            "no content type",
            None,
            serde_json::to_vec(&good).unwrap_or_default(),
            415,
        ),
        (
            "body over 1 MiB",
            Some("application/json"),
            serde_json::to_vec(
                &json!({"url": "https://example.com/", "payload": {"pad": "x".repeat(1_100_000)}}),
            )
            .unwrap_or_default(),
            413,
        ),
    ];
    for (name, ct, body, status) in raw_cases {
        let (got, got_ct, problem) = send(&app, ct, body).await;
        assert_eq!(got, status, "{name}: {problem}");
        assert_eq!(got_ct, "application/problem+json", "{name}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: {problem}"
        );
    }

    // A chunked body (no Content-Length) over the limit, several times on one client: each
    // answer is a 413, never a reset connection.
    for _ in 0..5 {
        let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]));
        let response = app
            .client
            .post(app.url(JOBS))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .expect("an answer, not a reset");
        assert_eq!(response.status(), 413);
    }

    // Unknown and malformed ids, unknown routes and methods.
    let unknown = app.get(&format!("{JOBS}/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(unknown.status(), 404);
    let malformed = app.get(&format!("{JOBS}/not-a-uuid")).await;
    assert_eq!(malformed.status(), 400);
    let problem: Value = malformed.json().await.expect("problem");
    assert_eq!(named_fields(&problem), ["id"]);
    let bad_query = app.get(&format!("{JOBS}?limit=501")).await;
    assert_eq!(bad_query.status(), 400);
    let problem: Value = bad_query.json().await.expect("problem");
    assert_eq!(named_fields(&problem), ["limit"]);
    assert_eq!(app.get("/api/v1/nothing").await.status(), 404);
    let wrong_method = app
        .client
        .delete(app.url(JOBS))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_method.status(), 405);

    assert_eq!(app.job_rows().await, 0, "a rejected request stores nothing");
    let events = app.db.scalar("SELECT count(*) FROM job_events").await;
    assert_eq!(events, 0);

    // The same body, made good, is accepted.
    let (status, _, job) = send(
        &app,
        Some("application/json; charset=utf-8"),
        serde_json::to_vec(&good).unwrap_or_default(),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(app.job_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_policy_refuses_private_and_local_targets() {
    let app = TestApp::spawn_with(Options {
        allow_private: false,
        workers: 0,
        ..Options::default()
    })
    .await;
    for url in [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://192.168.0.10:8080/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://localhost:8080/",
    ] {
        let response = app
            .post_json(JOBS, &json!({"url": url, "job_type": "noop"}))
            .await;
        assert_eq!(response.status(), 422, "{url}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(named_fields(&problem), ["url"], "{url}: {problem}");
        assert_eq!(problem["errors"][0]["code"], "forbidden_target", "{url}");
    }
    assert_eq!(app.job_rows().await, 0);
    // A public name that does not resolve here is accepted: the worker reports it.
    app.submit(&json!({"url": "https://example.com/", "job_type": "noop"}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_checks_the_target_again_when_it_runs() {
    use control_plane::engine::Attempt;
    use control_plane::engine::http::{FetchRequest, HttpClient};
    use control_plane::job::Hold;
    use control_plane::job::target::TargetPolicy;
    let site = crate::site::Site::start().await;
    let attempt = Attempt {
        id: uuid::Uuid::now_v7(),
        url: site.url("/"),
        timeout: std::time::Duration::from_secs(5),
        hold: Hold {
            attempt: 1,
            worker: "w".into(),
        },
        route: Default::default(),
        tally: Default::default(),
        profile: None,
    };
    let strict = HttpClient::new(TargetPolicy::new(false));
    let error = strict
        .fetch(&attempt, &FetchRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(error.kind.as_str(), "target_policy");
    assert!(!error.retryable);
    let open = HttpClient::new(TargetPolicy::new(true));
    let page = open
        .fetch(&attempt, &FetchRequest::default())
        .await
        .expect("allowed");
    assert!(page.text().contains("<title>Fixture Shop</title>"));
}

/// Posts to one of a job's actions with an optional content type and raw body.
async fn act(app: &TestApp, id: &str, action: &str, body: Option<(&str, &str)>) -> (u16, Value) {
    let mut request = app.client.post(app.url(&format!("{JOBS}/{id}/{action}")));
    if let Some((content_type, bytes)) = body {
        request = request
            .header("content-type", content_type)
            .body(bytes.to_owned());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Cancel and retry take no body, an empty body with a JSON content type (what generated
/// clients send for an omitted optional body), `{}`, or (retry) its fields; anything else
/// (`null` too) is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_retry_take_no_body_an_empty_one_or_an_object() {
    let app = TestApp::spawn_with(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let later = json!({"url": "https://example.com/", "job_type": "noop", "delay_ms": 3_600_000});
    let json_ct = "application/json";
    let bodies = [
        None,
        Some((json_ct, "")),
        Some((json_ct, " \n")),
        Some((json_ct, "{}")),
    ];
    for body in bodies {
        let job = app.submit(&later).await;
        let id = job["id"].as_str().expect("id");
        let (status, cancelled) = act(&app, id, "cancel", body).await;
        assert_eq!(
            (status, &cancelled["state"]),
            (200, &json!("cancelled")),
            "cancel with {body:?}: {cancelled}"
        );
        let (status, replayed) = act(&app, id, "retry", body).await;
        assert_eq!(
            (status, &replayed["state"]),
            (200, &json!("queued")),
            "retry with {body:?}: {replayed}"
        );
    }

    let job = app.submit(&later).await;
    let id = job["id"].as_str().expect("id");
    let (status, problem) = act(&app, id, "cancel", Some((json_ct, r#"{"reason": "x"}"#))).await;
    assert_eq!(
        (status, named_fields(&problem)),
        (422, vec![String::new()]),
        "{problem}"
    );
    let (status, problem) = act(&app, id, "cancel", Some(("text/plain", ""))).await;
    assert_eq!(status, 415, "{problem}");
    assert_eq!(act(&app, id, "cancel", None).await.0, 200);
    let (status, replayed) = act(&app, id, "retry", Some((json_ct, r#"{"priority": 1}"#))).await;
    assert_eq!(
        (status, &replayed["priority"]),
        (200, &json!(1)),
        "{replayed}"
    );
    assert_eq!(act(&app, id, "cancel", None).await.0, 200);
    let (status, problem) = act(&app, id, "retry", Some((json_ct, r#"{"bogus": 1}"#))).await;
    assert_eq!(
        (status, named_fields(&problem)),
        (422, vec!["bogus".to_owned()]),
        "{problem}"
    );
    // A body, when sent, is an object (as the contract says): `null` is not one.
    for action in ["cancel", "retry"] {
        let (status, problem) = act(&app, id, action, Some((json_ct, "null"))).await;
        assert_eq!(status, 422, "{action} with null: {problem}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_endpoints_describe_liveness_and_readiness() {
    let app = TestApp::spawn().await;
    let root: Value = app.get("/").await.json().await.expect("root");
    assert_eq!(root["name"], "control-plane");
    assert_eq!(root["links"]["jobs"], JOBS);
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("ready");
    assert_eq!(ready["checks"]["database"]["status"], "up");
    assert_eq!(ready["checks"]["queue"]["status"], "up");
    let response = app.get("/health").await;
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_ready_names_the_queue_and_jobs_are_still_accepted() {
    use std::time::Duration;

    // A Redis server of the test's own, to stop; the app is built as every test app is.
    let mut redis = crate::common::OwnRedis::start().await;
    let app = TestApp::spawn_with(Options {
        workers: 0,
        scheduler: false,
        redis_url: Some(redis.url.clone()),
        ..Options::default()
    })
    .await;
    assert_eq!(app.get("/ready").await.status(), 200);

    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["failed"], json!(["queue"]), "{ready}");
    assert_eq!(ready["checks"]["database"]["status"], "up");

    // The database is the truth: the job is stored, left for the scheduler to ring later.
    let response = app
        .post_json(
            JOBS,
            &json!({"url": "https://example.com/", "job_type": "noop"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    // The job is answered once committed; its ring (which fails) follows.
    const NEEDED: &str = "SELECT count(*) FROM jobs WHERE state = 'queued' AND doorbell = 'needed'";
    crate::common::eventually(
        "the failed ring to leave the job for the scheduler",
        Duration::from_secs(10),
        || async { (app.db.scalar(NEEDED).await == 1).then_some(()) },
    )
    .await;

    // The scheduler takes the job, cannot ring it, and leaves it for another ring.
    let term = app
        .store
        .lead("test", Duration::from_secs(5), None)
        .await
        .expect("lead")
        .expect("nobody else leads");
    assert!(
        app.app().dispatcher().dispatch_due(term).await.is_err(),
        "the queue is down"
    );
    assert_eq!(
        app.db.scalar(NEEDED).await,
        1,
        "still waiting for a doorbell"
    );
}

on_both_backends!(every_bad_input_gets_its_status_names_its_field_and_stores_nothing,);
