//! A job request: what `POST /api/v1/jobs` asks for, parsed once into a [`JobSpec`] whose
//! payload is typed for its kind. Every bad field is named; nothing invalid gets through.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::job::fields::{FieldError, Fields, Parsed, Problems, as_text, int_in, type_name};
use crate::job::target::normalize_host;
use crate::job::{Priority, Strategy, TargetUrl};
use crate::kinds::{JobType, Payload};

/// The most a serialized payload may weigh.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Attempts allowed when the request does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Per-attempt timeout when the request does not say, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 60_000;
/// How far ahead a job may be scheduled.
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(366 * 24 * 3600);

/// A valid job request: everything needed to store and run the job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The target.
    pub url: TargetUrl,
    /// The target's domain (the url's host, lower-case).
    pub domain: String,
    /// How the job reaches the web.
    pub strategy: Strategy,
    /// 1 (most urgent) to 5.
    pub priority: Priority,
    /// What the job does, with its options.
    pub payload: Payload,
    /// Attempts allowed (1..=10).
    pub max_attempts: u32,
    /// Per-attempt timeout (1 s ..= 10 min).
    pub timeout: Duration,
    /// When the job becomes due (`run_at`, or now + `delay_ms`); `None` means now.
    pub run_at: Option<DateTime<Utc>>,
    /// Where the finished job is POSTed (`callback.url`), if anywhere.
    pub callback: Option<TargetUrl>,
}

impl JobSpec {
    /// What the job does.
    pub fn job_type(&self) -> JobType {
        self.payload.job_type()
    }

    /// Parses a create-job request body, naming every bad field.
    pub fn parse(body: &Value) -> Result<JobSpec, Vec<FieldError>> {
        let problems = Problems::new();
        let parsed = Fields::of(body, "", &problems).and_then(|mut f| {
            let spec = fields(&mut f);
            f.finish();
            spec
        });
        problems.verdict(parsed)
    }
}

/// Reads every field of the body (so that every bad one is named), then builds the spec.
fn fields(f: &mut Fields<'_>) -> Parsed<JobSpec> {
    let url = target(f);
    let domain = f.text("domain");
    let job_type = f.choice::<JobType>("job_type");
    let strategy = f.choice::<Strategy>("strategy");
    let priority = f.int("priority", 1..=5);
    let max_attempts = f.int("max_attempts", 1..=10);
    let timeout_ms = f.int("timeout_ms", 1_000..=600_000);
    let run_at = schedule(f);
    let callback = f.object("callback", |c| {
        let url = c.with("url", |value| {
            as_text(value).and_then(|s| TargetUrl::parse(s).map_err(|e| ("invalid", e.to_string())))
        })?;
        if url.is_none() {
            c.report("url", "missing", "callback.url is required");
        }
        url
    });
    let job_type = job_type.map(|t| t.unwrap_or(JobType::DEFAULT));
    let strategy = strategy.map(|s| s.unwrap_or(Strategy::Auto));
    if let (Some(job_type), Some(Strategy::Http)) = (job_type, strategy)
        && job_type.needs_browser()
    {
        f.report(
            "strategy",
            "incompatible",
            format!("job_type {job_type} needs a browser; use strategy vanilla, stealth or auto"),
        );
    }
    let payload = job_type.and_then(|job_type| payload(f, job_type, strategy));
    let domain = match (&url, domain) {
        (Some(url), Some(Some(given))) => matching_domain(f, given, url),
        (Some(url), Some(None)) => Some(url.domain()),
        _ => None,
    };
    Some(JobSpec {
        url: url?,
        domain: domain?,
        strategy: strategy?,
        priority: priority?.and_then(Priority::new).unwrap_or_default(),
        payload: payload?,
        max_attempts: max_attempts?.map_or(DEFAULT_MAX_ATTEMPTS, |n| n as u32),
        timeout: Duration::from_millis(
            timeout_ms?.map_or(u64::from(DEFAULT_TIMEOUT_MS), |n| n as u64),
        ),
        run_at: run_at?,
        callback: callback?,
    })
}

/// `url`: required, an absolute http(s) url with a host.
fn target(f: &mut Fields<'_>) -> Parsed<TargetUrl> {
    let url = f.with("url", |value| {
        as_text(value).and_then(|s| TargetUrl::parse(s).map_err(|e| ("invalid", e.to_string())))
    })?;
    if url.is_none() {
        f.report("url", "missing", "url is required");
    }
    url
}

/// `domain`, when given, must be the url's host.
fn matching_domain(f: &Fields<'_>, given: &str, url: &TargetUrl) -> Parsed<String> {
    let host = url.domain();
    if same_domain(given, &host) {
        Some(host)
    } else {
        f.report(
            "domain",
            "mismatch",
            format!("domain {given:?} does not match the url's host {host:?}"),
        );
        None
    }
}

/// `payload`: an object of at most [`MAX_PAYLOAD_BYTES`], parsed by the job's kind.
fn payload(f: &mut Fields<'_>, job_type: JobType, strategy: Option<Strategy>) -> Parsed<Payload> {
    let empty = Value::Object(Map::new());
    let value = match f.get("payload") {
        None => &empty,
        Some(value @ Value::Object(_)) => {
            let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
            if size > MAX_PAYLOAD_BYTES {
                f.report(
                    "payload",
                    "too_large",
                    format!("payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}"),
                );
                return None;
            }
            value
        }
        Some(other) => {
            f.report(
                "payload",
                "wrong_type",
                format!("payload must be an object, not {}", type_name(other)),
            );
            return None;
        }
    };
    let mut fields = Fields::of(value, "payload", f.problems())?;
    let payload = Payload::parse(job_type, &mut fields, strategy);
    fields.finish();
    payload
}

/// `run_at` (RFC 3339) or `delay_ms`, at most one, within [`MAX_SCHEDULE_AHEAD`].
fn schedule(f: &mut Fields<'_>) -> Parsed<Option<DateTime<Utc>>> {
    let now = Utc::now();
    let ahead = chrono::Duration::from_std(MAX_SCHEDULE_AHEAD).unwrap_or(chrono::Duration::MAX);
    let max_delay = MAX_SCHEDULE_AHEAD.as_millis() as i64;
    let run_at = f.with("run_at", |value| {
        let text = as_text(value)?;
        let at = DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                (
                    "invalid",
                    format!("expected an RFC 3339 time such as 2026-11-27T15:00:00Z: {e}"),
                )
            })?
            .with_timezone(&Utc);
        if at - now > ahead {
            return Err(("out_of_range", "at most 366 days ahead".to_owned()));
        }
        Ok(at)
    });
    let delay = f.with("delay_ms", |value| int_in(value, &(0..=max_delay)));
    match (run_at?, delay?) {
        (Some(_), Some(_)) => {
            f.report("delay_ms", "conflict", "give run_at or delay_ms, not both");
            None
        }
        (Some(at), None) => Some(Some(at)),
        (None, Some(ms)) => Some(Some(now + chrono::Duration::milliseconds(ms))),
        (None, None) => Some(None),
    }
}

fn same_domain(given: &str, host: &str) -> bool {
    let given = normalize_host(given);
    if given == host {
        return true;
    }
    // Compare international names in their ASCII (punycode) form, as the url's host is.
    url::Url::parse(&format!("http://{given}/"))
        .ok()
        .and_then(|u| u.host_str().map(normalize_host))
        .is_some_and(|ascii| ascii == host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::script::{Scroll, Step, WaitFor};
    use serde_json::json;

    fn fields(body: Value) -> Vec<String> {
        match JobSpec::parse(&body) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn the_documented_body_parses() {
        let body = json!({"domain":"example.com","url":"https://example.com","job_type":"navigate_extract","strategy":"vanilla","priority":2,"payload":{}});
        let spec = JobSpec::parse(&body).expect("valid");
        assert_eq!(spec.domain, "example.com");
        assert_eq!(spec.priority.get(), 2);
        assert_eq!(spec.strategy, Strategy::Vanilla);
        assert_eq!(spec.max_attempts, 3);
        assert_eq!(spec.timeout, Duration::from_secs(60));
    }

    #[test]
    fn defaults_apply_and_domain_is_derived() {
        let spec = JobSpec::parse(&json!({"url":"https://Sub.Example.org/x"})).expect("valid");
        assert_eq!(spec.domain, "sub.example.org");
        assert_eq!(spec.job_type(), JobType::NavigateExtract);
        assert_eq!(spec.strategy, Strategy::Auto);
        assert_eq!(spec.priority, Priority::default());
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = json!({
            "url": "ftp://example.com",
            "priority": 9,
            "strategy": "turbo",
            "max_attempts": "3",
            "timeout_ms": 10,
            "colour": "red",
            "payload": []
        });
        let mut named = fields(body);
        named.sort();
        assert_eq!(
            named,
            [
                "colour",
                "max_attempts",
                "payload",
                "priority",
                "strategy",
                "timeout_ms",
                "url"
            ]
        );
    }

    #[test]
    fn a_callback_is_an_object_with_an_http_url() {
        let spec = JobSpec::parse(
            &json!({"url":"https://e.com","callback":{"url":"https://hooks.e.com/x"}}),
        )
        .expect("valid");
        assert_eq!(
            spec.callback.as_ref().map(TargetUrl::as_str),
            Some("https://hooks.e.com/x")
        );
        assert_eq!(
            fields(json!({"url":"https://e.com","callback":"https://x"})),
            ["callback"]
        );
        assert_eq!(
            fields(json!({"url":"https://e.com","callback":{}})),
            ["callback.url"]
        );
        assert_eq!(
            fields(json!({"url":"https://e.com","callback":{"url":"ftp://x/"}})),
            ["callback.url"]
        );
        assert_eq!(
            fields(json!({"url":"https://e.com","callback":{"url":"https://x/","secret":"s"}})),
            ["callback.secret"]
        );
    }

    #[test]
    fn domain_must_match_host() {
        assert_eq!(
            fields(json!({"url":"https://example.com","domain":"example.org"})),
            ["domain"]
        );
        assert!(fields(json!({"url":"https://example.com","domain":"EXAMPLE.com."})).is_empty());
        assert!(fields(json!({"url":"https://bücher.de/","domain":"bücher.de"})).is_empty());
    }

    #[test]
    fn browser_job_types_need_a_browser_strategy_and_their_own_fields() {
        assert_eq!(
            fields(json!({"url":"https://example.com","job_type":"screenshot","strategy":"http"})),
            ["strategy"]
        );
        assert!(fields(json!({"url":"https://example.com","job_type":"screenshot"})).is_empty());
        assert_eq!(
            fields(json!({"url":"https://e.com","job_type":"pdf","payload":{"selectors":{}}})),
            ["payload.selectors"]
        );
        let spec = JobSpec::parse(&json!({"url":"https://e.com","job_type":"script",
            "payload":{"steps":[{"wait_for": 10}, {"wait_for": "#x"}, {"scroll": -5}]}}))
        .expect("valid script");
        let Payload::Script(script) = &spec.payload else {
            panic!("a script payload");
        };
        assert_eq!(
            script.steps,
            [
                Step::WaitFor(WaitFor::Ms(10)),
                Step::WaitFor(WaitFor::Selector("#x".into())),
                Step::Scroll(Scroll::By(-5))
            ]
        );
        assert_eq!(script.page.viewport().width, 1366);
    }

    #[test]
    fn payload_is_checked_for_its_job_type() {
        assert_eq!(
            fields(json!({"url":"https://e.com","job_type":"noop","payload":{"sleep_ms":60001}})),
            ["payload.sleep_ms"]
        );
        assert_eq!(
            fields(json!({"url":"https://e.com","job_type":"noop","payload":{"viewport":{}}})),
            ["payload.viewport"]
        );
        assert_eq!(
            fields(
                json!({"url":"https://e.com","payload":{"selectors":{"a":"h1","b":"[[", "c":{"attr":"href"}, "d": 3}}})
            ),
            [
                "payload.selectors.b",
                "payload.selectors.c.selector",
                "payload.selectors.d"
            ]
        );
        let big = "x".repeat(MAX_PAYLOAD_BYTES);
        assert_eq!(
            fields(json!({"url":"https://e.com","job_type":"noop","payload":{"pad":big}})),
            ["payload"]
        );
    }

    #[test]
    fn a_parsed_payload_reads_back_from_its_stored_form() {
        for body in [
            json!({"url":"https://e.com","job_type":"noop","payload":{"sleep_ms": 5}}),
            json!({"url":"https://e.com","payload":{"selectors":{"a":"h1","b":{"selector":"a","all":true}},
                   "cookies":[{"name":"n","value":"v"}],"wait_until":"networkidle"}}),
            json!({"url":"https://e.com","job_type":"screenshot","payload":{"format":"jpg","quality":50,"full_page":true}}),
            json!({"url":"https://e.com","job_type":"pdf","payload":{"paper":"letter","landscape":true}}),
            json!({"url":"https://e.com","job_type":"script","payload":{"steps":[{"click":"#a"},{"extract":{"x":"h1"}}],
                   "viewport":{"width":800,"height":600}}}),
        ] {
            let spec = JobSpec::parse(&body).expect("valid");
            let stored = spec.payload.to_stored();
            let read = Payload::from_stored(spec.job_type(), &stored).expect("reads back");
            assert_eq!(read, spec.payload, "{stored}");
        }
    }
}
