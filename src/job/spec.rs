//! Parsing a job request into a [`JobSpec`]: every bad field is named, nothing invalid gets through.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::browser_spec::{
    BROWSER_ONLY_FIELDS, PageOptions, PdfOptions, ScreenshotOptions, Step, parse_expression,
    parse_page_options, parse_pdf, parse_screenshot, parse_steps, reject_unknown_browser_fields,
};
use super::target::{TargetUrl, normalize_host};
use super::{JobType, Priority, Strategy};

/// The most a serialized payload may weigh.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// The longest a `noop` job may sleep, in milliseconds.
pub const MAX_SLEEP_MS: u64 = 60_000;
/// Attempts allowed when the request does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Per-attempt timeout when the request does not say, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 60_000;
/// The most named selectors one job may extract.
pub const MAX_SELECTORS: usize = 200;
/// The most extra request headers one job may send.
pub const MAX_HEADERS: usize = 50;

const CREATE_FIELDS: &[&str] = &[
    "domain",
    "url",
    "job_type",
    "strategy",
    "priority",
    "payload",
    "max_attempts",
    "timeout_ms",
    "run_at",
    "delay_ms",
];

/// How far ahead a job may be scheduled.
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(366 * 24 * 3600);

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as a dotted path (`payload.selectors.title`).
    pub field: String,
    /// A stable machine-readable code (`unknown_field`, `wrong_type`, `out_of_range`, …).
    pub code: &'static str,
    /// What is wrong, for humans.
    pub detail: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, code: &'static str, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code,
            detail: detail.into(),
        }
    }
}

/// A validated job request: everything needed to store and run the job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The target.
    pub url: TargetUrl,
    /// The target's domain (the url's host, lower-case).
    pub domain: String,
    /// What the job does.
    pub job_type: JobType,
    /// How the job reaches the web.
    pub strategy: Strategy,
    /// 1 (most urgent) to 5.
    pub priority: Priority,
    /// The payload as given (an object, validated for the job type).
    pub payload: Value,
    /// Attempts allowed (1..=10).
    pub max_attempts: u32,
    /// Per-attempt timeout (1 s ..= 10 min).
    pub timeout: Duration,
    /// When the job becomes due (`run_at`, or now + `delay_ms`); `None` means now.
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What to extract with one named CSS selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorSpec {
    /// The CSS selector (checked to parse).
    pub selector: String,
    /// Take this attribute instead of the element's text.
    pub attr: Option<String>,
    /// Take every match (an array) instead of the first.
    pub all: bool,
}

/// A payload parsed for its job type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Options of a `noop` job.
    Noop {
        /// How long to sleep before succeeding.
        sleep: Duration,
    },
    /// Options of a `navigate_extract` job.
    NavigateExtract {
        /// Named selectors whose matches go into the result's `data`.
        selectors: Vec<(String, SelectorSpec)>,
        /// A JavaScript expression whose JSON value goes into the result (browser only).
        evaluate: Option<String>,
        /// Page options.
        page: PageOptions,
    },
    /// Options of a `screenshot` job.
    Screenshot {
        /// Page options.
        page: PageOptions,
        /// Image options.
        shot: ScreenshotOptions,
    },
    /// Options of a `pdf` job.
    Pdf {
        /// Page options.
        page: PageOptions,
        /// Print options.
        pdf: PdfOptions,
    },
    /// Options of a `script` job.
    Script {
        /// Page options.
        page: PageOptions,
        /// The steps, in order.
        steps: Vec<Step>,
    },
}

impl JobSpec {
    /// Parses a create-job request body, collecting every bad field.
    pub fn parse(body: &Value) -> Result<JobSpec, Vec<FieldError>> {
        let Some(obj) = body.as_object() else {
            return Err(vec![FieldError::new(
                "",
                "wrong_type",
                format!("the body must be a JSON object, not {}", type_name(body)),
            )]);
        };
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !CREATE_FIELDS.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    key.as_str(),
                    "unknown_field",
                    format!(
                        "unknown field; expected one of: {}",
                        CREATE_FIELDS.join(", ")
                    ),
                ));
            }
        }

        let url = match present(obj, "url") {
            None => {
                errors.push(FieldError::new("url", "missing", "url is required"));
                None
            }
            Some(value) => as_str(value, "url")
                .and_then(|s| {
                    TargetUrl::parse(s)
                        .map_err(|e| FieldError::new("url", "invalid", e.to_string()))
                })
                .map_err(|e| errors.push(e))
                .ok(),
        };

        let domain = present(obj, "domain")
            .and_then(|value| as_str(value, "domain").map_err(|e| errors.push(e)).ok());
        let domain = match (&url, domain) {
            (Some(url), Some(given)) => {
                let host = url.domain();
                if same_domain(given, &host) {
                    Some(host)
                } else {
                    errors.push(FieldError::new(
                        "domain",
                        "mismatch",
                        format!("domain {given:?} does not match the url's host {host:?}"),
                    ));
                    None
                }
            }
            (Some(url), None) => Some(url.domain()),
            (None, _) => None,
        };

        let job_type = enum_field(obj, "job_type", JobType::NavigateExtract, &mut errors);
        let strategy = enum_field(obj, "strategy", Strategy::Auto, &mut errors);
        if let (Some(job_type), Some(Strategy::Http)) = (job_type, strategy)
            && job_type.needs_browser()
        {
            errors.push(FieldError::new(
                "strategy",
                "incompatible",
                format!(
                    "job_type {job_type} needs a browser; use strategy vanilla, stealth or auto"
                ),
            ));
        }
        if let (Some(JobType::NavigateExtract), Some(Strategy::Http), Some(Value::Object(map))) =
            (job_type, strategy, present(obj, "payload"))
        {
            for field in BROWSER_ONLY_FIELDS {
                if present(map, field).is_some() {
                    errors.push(FieldError::new(
                        format!("payload.{field}"),
                        "incompatible",
                        "needs a browser; the http strategy cannot apply it (use vanilla, stealth or auto)",
                    ));
                }
            }
        }

        let priority = match present(obj, "priority") {
            None => Some(Priority::default()),
            Some(value) => int_in(value, "priority", 1, 5)
                .map(|n| Priority::new(n).unwrap_or_default())
                .map_err(|e| errors.push(e))
                .ok(),
        };
        let max_attempts = int_field(
            obj,
            "max_attempts",
            1,
            10,
            DEFAULT_MAX_ATTEMPTS,
            &mut errors,
        );
        let timeout_ms = int_field(
            obj,
            "timeout_ms",
            1_000,
            600_000,
            DEFAULT_TIMEOUT_MS,
            &mut errors,
        );

        let run_at = parse_schedule(obj, &mut errors);

        let payload = match present(obj, "payload") {
            None => {
                if let Some(job_type) = job_type
                    && let Err(mut bad) = Payload::parse(job_type, &Map::new())
                {
                    errors.append(&mut bad);
                }
                Some(Value::Object(Map::new()))
            }
            Some(value @ Value::Object(map)) => {
                let size = serde_json::to_vec(value)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX);
                if size > MAX_PAYLOAD_BYTES {
                    errors.push(FieldError::new(
                        "payload",
                        "too_large",
                        format!("payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}"),
                    ));
                    None
                } else {
                    if let Some(job_type) = job_type
                        && let Err(mut bad) = Payload::parse(job_type, map)
                    {
                        errors.append(&mut bad);
                    }
                    Some(value.clone())
                }
            }
            Some(other) => {
                errors.push(FieldError::new(
                    "payload",
                    "wrong_type",
                    format!("payload must be an object, not {}", type_name(other)),
                ));
                None
            }
        };

        match (
            url,
            domain,
            job_type,
            strategy,
            priority,
            payload,
            max_attempts,
            timeout_ms,
        ) {
            (
                Some(url),
                Some(domain),
                Some(job_type),
                Some(strategy),
                Some(priority),
                Some(payload),
                Some(max_attempts),
                Some(timeout_ms),
            ) if errors.is_empty() => Ok(JobSpec {
                url,
                domain,
                job_type,
                strategy,
                priority,
                payload,
                max_attempts,
                timeout: Duration::from_millis(u64::from(timeout_ms)),
                run_at,
            }),
            _ => Err(errors),
        }
    }
}

impl Payload {
    /// Parses a payload object for a job type, naming every bad field as `payload.…`.
    pub fn parse(job_type: JobType, map: &Map<String, Value>) -> Result<Payload, Vec<FieldError>> {
        let mut errors = Vec::new();
        let payload = match job_type {
            JobType::Noop => {
                reject_unknown(map, &["sleep_ms"], &mut errors);
                let sleep_ms = match present(map, "sleep_ms") {
                    None => Some(0),
                    Some(value) => int_in(value, "payload.sleep_ms", 0, MAX_SLEEP_MS as i64)
                        .map_err(|e| errors.push(e))
                        .ok(),
                };
                sleep_ms.map(|ms| Payload::Noop {
                    sleep: Duration::from_millis(ms as u64),
                })
            }
            JobType::NavigateExtract => {
                reject_unknown_browser_fields(map, &["selectors", "evaluate"], &mut errors);
                let selectors = parse_selectors(map, &mut errors);
                let evaluate = present(map, "evaluate")
                    .and_then(|v| parse_expression(v, "payload.evaluate", &mut errors));
                let page = parse_page_options(map, &mut errors);
                Some(Payload::NavigateExtract {
                    selectors,
                    evaluate,
                    page,
                })
            }
            JobType::Screenshot => {
                reject_unknown_browser_fields(
                    map,
                    &["format", "quality", "full_page", "selector"],
                    &mut errors,
                );
                let page = parse_page_options(map, &mut errors);
                let shot = parse_screenshot(map, &mut errors);
                Some(Payload::Screenshot { page, shot })
            }
            JobType::Pdf => {
                reject_unknown_browser_fields(
                    map,
                    &["paper", "landscape", "print_background"],
                    &mut errors,
                );
                let page = parse_page_options(map, &mut errors);
                let pdf = parse_pdf(map, &mut errors);
                Some(Payload::Pdf { page, pdf })
            }
            JobType::Script => {
                reject_unknown_browser_fields(map, &["steps"], &mut errors);
                let page = parse_page_options(map, &mut errors);
                let steps = parse_steps(map, &mut errors);
                Some(Payload::Script { page, steps })
            }
        };
        match payload {
            Some(payload) if errors.is_empty() => Ok(payload),
            _ => Err(errors),
        }
    }
}

fn parse_selectors(
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Vec<(String, SelectorSpec)> {
    match present(map, "selectors") {
        None => Vec::new(),
        Some(value) => parse_selector_map(value, "payload.selectors", errors),
    }
}

/// Parses an object of name → selector (a CSS string or `{selector, attr, all}`) at `field`.
pub(crate) fn parse_selector_map(
    value: &Value,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<(String, SelectorSpec)> {
    let selectors = match value {
        Value::Object(object) if object.len() <= MAX_SELECTORS => object,
        Value::Object(_) => {
            errors.push(FieldError::new(
                field,
                "too_large",
                format!("at most {MAX_SELECTORS} entries"),
            ));
            return Vec::new();
        }
        other => {
            errors.push(FieldError::new(
                field,
                "wrong_type",
                format!(
                    "expected an object of name → CSS selector, not {}",
                    type_name(other)
                ),
            ));
            return Vec::new();
        }
    };
    let prefix = field;
    let mut parsed = Vec::with_capacity(selectors.len());
    for (name, spec) in selectors {
        let field = format!("{prefix}.{name}");
        let spec = match spec {
            Value::String(css) => Some(SelectorSpec {
                selector: css.clone(),
                attr: None,
                all: false,
            }),
            Value::Object(options) => {
                let before = errors.len();
                for key in options.keys() {
                    if !["selector", "attr", "all"].contains(&key.as_str()) {
                        errors.push(FieldError::new(
                            format!("{field}.{key}"),
                            "unknown_field",
                            "unknown field; expected one of: selector, attr, all",
                        ));
                    }
                }
                let selector = match present(options, "selector") {
                    None => {
                        errors.push(FieldError::new(
                            format!("{field}.selector"),
                            "missing",
                            "selector is required",
                        ));
                        None
                    }
                    Some(v) => as_str(v, &format!("{field}.selector"))
                        .map_err(|e| errors.push(e))
                        .ok(),
                };
                let attr = present(options, "attr").and_then(|v| {
                    as_str(v, &format!("{field}.attr"))
                        .map_err(|e| errors.push(e))
                        .ok()
                });
                let all = match present(options, "all") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        errors.push(FieldError::new(
                            format!("{field}.all"),
                            "wrong_type",
                            format!("expected a boolean, not {}", type_name(other)),
                        ));
                        false
                    }
                };
                match selector {
                    Some(selector) if errors.len() == before => Some(SelectorSpec {
                        selector: selector.to_owned(),
                        attr: attr.map(str::to_owned),
                        all,
                    }),
                    _ => None,
                }
            }
            other => {
                errors.push(FieldError::new(
                    field.as_str(),
                    "wrong_type",
                    format!(
                        "expected a CSS selector string or {{\"selector\", \"attr\", \"all\"}}, not {}",
                        type_name(other)
                    ),
                ));
                None
            }
        };
        if let Some(spec) = spec {
            match scraper::Selector::parse(&spec.selector) {
                Ok(_) => parsed.push((name.clone(), spec)),
                Err(e) => errors.push(FieldError::new(
                    field,
                    "invalid",
                    format!("not a valid CSS selector: {e}"),
                )),
            }
        }
    }
    parsed
}

pub(crate) fn parse_headers(
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Vec<(String, String)> {
    let Some(headers) = bounded_object(
        map,
        "headers",
        MAX_HEADERS,
        "an object of name → value",
        errors,
    ) else {
        return Vec::new();
    };
    let mut parsed = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let field = format!("payload.headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(FieldError::new(field, "invalid", "not a valid header name"));
            continue;
        }
        match value {
            Value::String(v) if reqwest::header::HeaderValue::from_str(v).is_ok() => {
                parsed.push((name.clone(), v.clone()));
            }
            Value::String(_) => {
                errors.push(FieldError::new(
                    field,
                    "invalid",
                    "not a valid header value",
                ));
            }
            other => errors.push(FieldError::new(
                field,
                "wrong_type",
                format!("expected a string, not {}", type_name(other)),
            )),
        }
    }
    parsed
}

/// The object at `payload.<key>` when present, an object, and at most `max` entries long.
fn bounded_object<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    max: usize,
    expected: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    let field = format!("payload.{key}");
    match present(map, key)? {
        Value::Object(object) if object.len() <= max => Some(object),
        Value::Object(_) => {
            errors.push(FieldError::new(
                field,
                "too_large",
                format!("at most {max} entries"),
            ));
            None
        }
        other => {
            errors.push(FieldError::new(
                field,
                "wrong_type",
                format!("{key} must be {expected}, not {}", type_name(other)),
            ));
            None
        }
    }
}

/// A field's value, treating JSON `null` as absent.
pub(crate) fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

pub(crate) fn reject_unknown(
    map: &Map<String, Value>,
    known: &[&str],
    errors: &mut Vec<FieldError>,
) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            errors.push(FieldError::new(
                format!("payload.{key}"),
                "unknown_field",
                format!(
                    "unknown field for this job type; expected one of: {}",
                    known.join(", ")
                ),
            ));
        }
    }
}

pub(crate) fn as_str<'a>(value: &'a Value, field: &str) -> Result<&'a str, FieldError> {
    value.as_str().ok_or_else(|| {
        FieldError::new(
            field,
            "wrong_type",
            format!("expected a string, not {}", type_name(value)),
        )
    })
}

pub(crate) fn int_in(value: &Value, field: &str, min: i64, max: i64) -> Result<i64, FieldError> {
    let Value::Number(number) = value else {
        return Err(FieldError::new(
            field,
            "wrong_type",
            format!("expected an integer, not {}", type_name(value)),
        ));
    };
    let out_of_range = || {
        FieldError::new(
            field,
            "out_of_range",
            format!("must be between {min} and {max}, not {number}"),
        )
    };
    match number.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(_) => Err(out_of_range()),
        None if number.is_u64() => Err(out_of_range()),
        None => Err(FieldError::new(
            field,
            "wrong_type",
            format!("expected an integer, not {number}"),
        )),
    }
}

fn int_field(
    obj: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
    default: u32,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    match present(obj, field) {
        None => Some(default),
        Some(value) => int_in(value, field, min, max)
            .map(|n| n as u32)
            .map_err(|e| errors.push(e))
            .ok(),
    }
}

fn enum_field<T>(
    obj: &Map<String, Value>,
    field: &str,
    default: T,
    errors: &mut Vec<FieldError>,
) -> Option<T>
where
    T: std::str::FromStr<Err = super::UnknownName>,
{
    match present(obj, field) {
        None => Some(default),
        Some(value) => as_str(value, field)
            .and_then(|s| {
                s.parse::<T>().map_err(|e| {
                    FieldError::new(field, "unknown_value", format!("unknown value {s:?}; {e}"))
                })
            })
            .map_err(|e| errors.push(e))
            .ok(),
    }
}

/// Parses the body of a replay request: `max_attempts`, `strategy`, `priority`.
pub fn parse_retry(body: &Value) -> Result<crate::store::RetryChange, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new(
            "",
            "wrong_type",
            format!("the body must be a JSON object, not {}", type_name(body)),
        )]);
    };
    let mut errors = Vec::new();
    reject_unknown_top(obj, &["max_attempts", "strategy", "priority"], &mut errors);
    let budget = int_field(
        obj,
        "max_attempts",
        1,
        10,
        DEFAULT_MAX_ATTEMPTS,
        &mut errors,
    );
    let strategy = present(obj, "strategy")
        .and_then(|_| enum_field(obj, "strategy", Strategy::Auto, &mut errors));
    let priority = present(obj, "priority").and_then(|value| {
        int_in(value, "priority", 1, 5)
            .map(|n| Priority::new(n).unwrap_or_default())
            .map_err(|e| errors.push(e))
            .ok()
    });
    match budget {
        Some(budget) if errors.is_empty() => Ok(crate::store::RetryChange {
            budget,
            strategy,
            priority,
        }),
        _ => Err(errors),
    }
}

fn reject_unknown_top(obj: &Map<String, Value>, known: &[&str], errors: &mut Vec<FieldError>) {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            errors.push(FieldError::new(
                key.as_str(),
                "unknown_field",
                format!("unknown field; expected one of: {}", known.join(", ")),
            ));
        }
    }
}

/// `run_at` (RFC 3339) or `delay_ms`, at most one, within [`MAX_SCHEDULE_AHEAD`].
fn parse_schedule(
    obj: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let now = chrono::Utc::now();
    let ahead = chrono::Duration::from_std(MAX_SCHEDULE_AHEAD).unwrap_or(chrono::Duration::MAX);
    match (present(obj, "run_at"), present(obj, "delay_ms")) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "delay_ms",
                "conflict",
                "give run_at or delay_ms, not both",
            ));
            None
        }
        (Some(value), None) => {
            let text = as_str(value, "run_at").map_err(|e| errors.push(e)).ok()?;
            match chrono::DateTime::parse_from_rfc3339(text) {
                Ok(at) if at.with_timezone(&chrono::Utc) - now > ahead => {
                    errors.push(FieldError::new(
                        "run_at",
                        "out_of_range",
                        "at most 366 days ahead",
                    ));
                    None
                }
                Ok(at) => Some(at.with_timezone(&chrono::Utc)),
                Err(e) => {
                    errors.push(FieldError::new(
                        "run_at",
                        "invalid",
                        format!("expected an RFC 3339 time such as 2026-11-27T15:00:00Z: {e}"),
                    ));
                    None
                }
            }
        }
        (None, Some(value)) => {
            let max = MAX_SCHEDULE_AHEAD.as_millis() as i64;
            let ms = int_in(value, "delay_ms", 0, max)
                .map_err(|e| errors.push(e))
                .ok()?;
            Some(now + chrono::Duration::milliseconds(ms))
        }
        (None, None) => None,
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

/// The JSON type of a value, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(spec.job_type, JobType::NavigateExtract);
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
        let Ok(Payload::Script { steps, page }) =
            Payload::parse(spec.job_type, spec.payload.as_object().expect("object"))
        else {
            panic!("a script payload");
        };
        assert_eq!(
            steps,
            [
                Step::WaitForMs(10),
                Step::WaitForSelector("#x".into()),
                Step::ScrollBy(-5)
            ]
        );
        assert_eq!(page.viewport.width, 1366);
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
    fn selectors_parse_both_forms() {
        let map =
            json!({"selectors":{"title":"h1","links":{"selector":"a","attr":"href","all":true}}});
        let parsed = Payload::parse(JobType::NavigateExtract, map.as_object().expect("object"));
        let Ok(Payload::NavigateExtract { selectors, .. }) = parsed else {
            panic!("expected navigate_extract payload, got {parsed:?}");
        };
        assert_eq!(selectors.len(), 2);
        assert!(
            selectors
                .iter()
                .any(|(n, s)| n == "links" && s.all && s.attr.as_deref() == Some("href"))
        );
    }
}
