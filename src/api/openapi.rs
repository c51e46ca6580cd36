//! The API's contract: an OpenAPI 3.1 document generated from the handlers and types
//! (`GET /api/v1/openapi.json`), and a plain page that reads it (`GET /api/v1/docs`).

use std::sync::OnceLock;

use axum::Json;
use axum::response::Html;
use serde_json::{Value, json};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::jobs::{IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY};
use super::problem::Problem;
use crate::engine::tally::{Dialog, Spent};

/// The document, built once from every annotated handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "control-plane",
        description = "A control plane for browser-automation jobs. Every /api route needs \
                       `Authorization: Bearer <key>` (keys come from `control-plane keys create`); \
                       errors are application/problem+json naming the fields at fault.",
    ),
    servers((url = "/", description = "The server that serves this document; a generated client takes its base url")),
    paths(
        super::jobs::create,
        super::batch::create_batch,
        super::jobs::list,
        super::jobs::get,
        super::jobs::cancel,
        super::jobs::retry,
        super::erase::delete,
        super::jobs::events,
        super::artifacts::list,
        super::artifacts::get,
        super::queue_stats,
        super::tenants::get,
        super::tenants::put,
        super::tenants::delete,
        super::retention::get,
        super::retention::put,
        super::retention::delete,
        super::proxies::list,
        super::proxy_pools::get,
        super::proxy_pools::put,
        super::proxy_pools::delete,
        super::profiles::list,
        super::profiles::get,
        super::profiles::delete,
        super::profiles::restore,
        super::domains::list,
        super::domains::get,
        super::domains::put_policy,
        super::domains::delete_policy,
        super::root,
        super::health,
        super::ready,
        openapi_json,
        docs,
    ),
    components(schemas(Problem, Dialog, Spent)),
    modifiers(&Contract),
    security(("bearer" = [])),
    tags(
        (name = "jobs", description = "Submit, read, cancel and retry jobs of the caller's tenant"),
        (name = "tenants", description = "Quotas and retention (admin)"),
        (name = "domains", description = "The domain memory, pace and overrides (admin)"),
        (name = "proxies", description = "Upstream proxy pools and their health (admin)"),
        (name = "profiles", description = "Profiles: a visitor's cookies, storage and identity carried across jobs (metadata only)"),
        (name = "service", description = "Liveness, readiness and this contract (no key needed)"),
    )
)]
struct ApiDoc;

/// Adds what every route shares: the bearer scheme, and the errors any route may answer.
struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cp_<id>_<secret>")
                    .build(),
            ),
        );
        super::by_kind::register(components);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let keyed = path.starts_with("/api/v1/")
                && !path.ends_with("/openapi.json")
                && !path.ends_with("/docs");
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, false),
            ];
            for (operation, with_body) in operations {
                if let Some(operation) = operation.as_mut() {
                    shared_errors(operation, keyed, with_body);
                    idempotency_key_rules(operation);
                    optional_body(operation);
                }
            }
        }
    }
}

/// Cancel and retry take a body or none: the contract says the body is not required (an
/// object when sent), which generated clients turn into an argument they may leave out.
fn optional_body(operation: &mut Operation) {
    let optional = matches!(
        operation.operation_id.as_deref(),
        Some("cancel_job" | "retry_job")
    );
    if let (true, Some(RefOr::T(body))) = (optional, operation.request_body.as_mut()) {
        body.required = Some(utoipa::openapi::Required::False);
    }
}

/// The `Idempotency-Key` header's rules, from the constants the server checks (utoipa's
/// parameter attributes take only literals).
fn idempotency_key_rules(operation: &mut Operation) {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let parameters = operation.parameters.iter_mut().flatten();
    let inline = parameters.filter_map(|p| match p {
        RefOr::T(parameter) => Some(parameter),
        RefOr::Ref(_) => None,
    });
    for parameter in inline.filter(|p| p.name == "Idempotency-Key") {
        let rules = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .min_length(Some(1))
            .max_length(Some(MAX_IDEMPOTENCY_KEY))
            .pattern(Some(IDEMPOTENCY_KEY_PATTERN));
        parameter.schema = Some(rules.into());
    }
}

/// Documents the errors every keyed route may answer, and those of routes with a body.
fn shared_errors(operation: &mut Operation, keyed: bool, with_body: bool) {
    if !keyed {
        operation.security = Some(Vec::new());
        // The Host check stands before every route, open ones too.
        let host = [(
            "400",
            "A Host this API does not answer to (see ALLOWED_HOSTS)",
        )];
        add_problems(operation, &host);
        return;
    }
    let mut errors = vec![
        (
            "400",
            "A malformed path or query parameter, or a Host this API does not answer to",
        ),
        ("401", "No key, or a key that is unknown or revoked"),
        (
            "403",
            "The key's role does not allow this, or a cross-site change",
        ),
        (
            "503",
            "The database or the queue does not answer (see Retry-After)",
        ),
    ];
    if with_body {
        errors.extend([
            ("408", "The body did not arrive within 10 s"),
            ("413", "The body is over 1 MiB"),
            ("415", "The body is not application/json"),
            ("422", "Fields that are not acceptable, each named"),
        ]);
    }
    add_problems(operation, &errors);
}

/// Adds each problem answer the operation does not document already.
fn add_problems(operation: &mut Operation, errors: &[(&str, &str)]) {
    for &(status, description) in errors {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_owned(), response.into());
    }
}

/// The document.
pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// The document as served: what utoipa derives, with jobs typed by their kind, plus the one
/// rule its derives cannot say (`run_at` and `delay_ms` are alternatives: not both, unless
/// one is null).
pub fn served() -> &'static Value {
    static SERVED: OnceLock<Value> = OnceLock::new();
    SERVED.get_or_init(|| {
        let mut document = serde_json::to_value(document()).unwrap_or(Value::Null);
        if let Some(request) = document["components"]["schemas"]["JobRequest"].as_object_mut() {
            request.insert(
                "not".to_owned(),
                json!({
                    "required": ["run_at", "delay_ms"],
                    "properties": {"run_at": {"type": "string"}, "delay_ms": {"type": "integer"}}
                }),
            );
        }
        // After the rule above, which each kind's request keeps.
        super::by_kind::type_requests(&mut document);
        super::by_kind::type_jobs(&mut document);
        super::by_kind::type_events(&mut document);
        document
    })
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    operation_id = "openapi",
    path = "/api/v1/openapi.json",
    tag = "service",
    responses((status = 200, description = "This document", body = Object))
)]
pub async fn openapi_json() -> Json<&'static Value> {
    Json(served())
}

/// `GET /api/v1/docs`: every operation, its parameters and answers, on one plain page.
#[utoipa::path(
    get,
    operation_id = "docs",
    path = "/api/v1/docs",
    tag = "service",
    responses((status = 200, description = "The API, for people", content_type = "text/html"))
)]
pub async fn docs() -> Html<&'static str> {
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(|| render(document())))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render(document: &Document) -> String {
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>control-plane API</title>\
         <style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         code{background:#f3f3f3;padding:0 .2rem}h2{margin-top:2rem;border-top:1px solid #ddd;padding-top:1rem}\
         li{margin:.2rem 0}</style></head><body><h1>control-plane API</h1>",
    );
    if let Some(description) = &document.info.description {
        page.push_str(&format!("<p>{}</p>", escape(description)));
    }
    page.push_str("<p>The machine-readable contract: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>");
    for (path, item) in &document.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            page.push_str(&format!("<h2><code>{method} {}</code></h2>", escape(path)));
            if let Some(description) = operation
                .description
                .as_ref()
                .or(operation.summary.as_ref())
            {
                page.push_str(&format!("<p>{}</p>", escape(description)));
            }
            if let Some(parameters) = &operation.parameters {
                page.push_str("<p>Parameters:</p><ul>");
                for parameter in parameters {
                    let utoipa::openapi::RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    let about = parameter.description.as_deref().unwrap_or_default();
                    page.push_str(&format!(
                        "<li><code>{}</code> ({}) {}</li>",
                        escape(&parameter.name),
                        serde_json::to_value(&parameter.parameter_in)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        escape(about)
                    ));
                }
                page.push_str("</ul>");
            }
            page.push_str("<p>Answers:</p><ul>");
            for (status, response) in &operation.responses.responses {
                let about = match response {
                    utoipa::openapi::RefOr::T(response) => response.description.clone(),
                    utoipa::openapi::RefOr::Ref(reference) => reference.ref_location.clone(),
                };
                page.push_str(&format!(
                    "<li><code>{}</code> {}</li>",
                    escape(status),
                    escape(&about)
                ));
            }
            page.push_str("</ul>");
        }
    }
    page.push_str("</body></html>");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every property the contract names for a job request is one the parser knows (it
    /// treats `null` as absent, so a known property set to null changes nothing).
    #[test]
    fn the_job_request_schema_names_only_fields_the_parser_knows() {
        let document = served();
        // Every kind's request names the same properties; the default kind's is the one a
        // request without `job_type` matches.
        let properties = document["components"]["schemas"]["NavigateExtractRequest"]["properties"]
            .as_object()
            .expect("NavigateExtractRequest properties")
            .clone();
        assert!(properties.len() >= 9, "{properties:?}");
        for name in properties.keys().filter(|name| *name != "url") {
            let mut body = json!({"url": "https://example.com/"});
            body[name] = Value::Null;
            let parsed = crate::spec::JobSpec::parse(&body);
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
        let unknown =
            crate::spec::JobSpec::parse(&json!({"url": "https://example.com/", "nope": 1}));
        assert!(unknown.is_err(), "an unknown field is refused");
    }

    /// The contract describes each content format's output and the fields that ask for
    /// them, so generated clients get them typed.
    #[test]
    fn the_contract_describes_the_content_formats() {
        let document = served();
        let schemas = &document["components"]["schemas"];
        let content = &schemas["PageContent"]["properties"];
        for field in [
            "markdown",
            "html",
            "raw_html",
            "text",
            "links",
            "metadata",
            "content_source",
            "truncated",
        ] {
            assert!(
                content.get(field).is_some(),
                "PageContent.{field}: {content}"
            );
        }
        assert!(content.get("blank").is_none(), "internal fields stay out");
        for field in ["url", "text", "internal"] {
            assert!(schemas["PageLink"]["properties"].get(field).is_some());
        }
        for field in [
            "open_graph",
            "twitter",
            "author",
            "published_time",
            "final_url",
        ] {
            assert!(schemas["PageMetadata"]["properties"].get(field).is_some());
        }
        let formats = serde_json::to_string(&schemas["Format"]).expect("json");
        for name in ["markdown", "html", "raw_html", "text", "links", "metadata"] {
            assert!(formats.contains(&format!("\"{name}\"")), "{formats}");
        }
        let payload = serde_json::to_string(&schemas["NavigateExtractPayload"]).expect("json");
        assert!(payload.contains("ContentOptions"), "{payload}");
        let options = &schemas["ContentOptions"]["properties"];
        for field in [
            "formats",
            "only_main_content",
            "include_selectors",
            "exclude_selectors",
        ] {
            assert!(options.get(field).is_some(), "{field}: {options}");
        }
        let output = serde_json::to_string(&schemas["Extraction"]).expect("json");
        assert!(output.contains("PageContent"), "{output}");
    }

    /// Every `format` in the contract is one that OpenAPI or JSON Schema defines, so
    /// generators map it to a type instead of falling back (`u-int32` once slipped in).
    #[test]
    fn the_contract_uses_standard_formats_only() {
        fn formats(value: &Value, found: &mut Vec<String>) {
            match value {
                Value::Object(fields) => {
                    if let Some(Value::String(format)) = fields.get("format") {
                        found.push(format.clone());
                    }
                    fields.values().for_each(|v| formats(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| formats(v, found)),
                _ => {}
            }
        }
        let standard = [
            "int32",
            "int64",
            "float",
            "double",
            "byte",
            "binary",
            "date",
            "date-time",
            "time",
            "duration",
            "uuid",
            "uri",
            "email",
            "password",
        ];
        let mut found = Vec::new();
        formats(served(), &mut found);
        assert!(found.iter().any(|f| f == "int32"), "{found:?}");
        for format in found {
            assert!(
                standard.contains(&format.as_str()),
                "non-standard format {format:?}"
            );
        }
    }

    /// The contract's `Idempotency-Key` rules are the server's: a key the pattern admits is
    /// taken, one it refuses is refused (HTTP has trimmed the value's ends before either).
    #[test]
    fn the_idempotency_key_rules_are_the_servers() {
        let document = served();
        let parameters = &document["paths"]["/api/v1/jobs"]["post"]["parameters"];
        let key = parameters
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == "Idempotency-Key"))
            .expect("the header is in the contract");
        assert_eq!(key["schema"]["maxLength"], MAX_IDEMPOTENCY_KEY);
        let pattern = regex::Regex::new(IDEMPOTENCY_KEY_PATTERN).expect("compiles");
        let mut keys: Vec<String> = (0x20u8..0x7f).map(|b| format!("a{}b", b as char)).collect();
        keys.extend(["a\tb".into(), "x".into(), "y".repeat(255), "z".repeat(256)]);
        for key in keys {
            let Ok(value) = axum::http::HeaderValue::from_str(&key) else {
                continue;
            };
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("idempotency-key", value);
            let taken = super::super::jobs::idempotency_key(&headers, || json!({})).is_ok();
            assert_eq!(taken, pattern.is_match(&key), "{key:?}");
        }
    }

    #[test]
    fn every_route_is_in_the_contract_with_the_bearer_scheme() {
        let document = serde_json::to_value(document()).expect("json");
        for path in [
            "/api/v1/jobs",
            "/api/v1/jobs/{id}",
            "/api/v1/jobs/{id}/cancel",
            "/api/v1/jobs/{id}/retry",
            "/api/v1/jobs/{id}/events",
            "/api/v1/jobs/{id}/artifacts",
            "/api/v1/jobs/{id}/artifacts/{name}",
            "/api/v1/queue/stats",
            "/api/v1/tenants/{tenant}/quota",
            "/health",
            "/ready",
        ] {
            assert!(document["paths"][path].is_object(), "{path} is missing");
        }
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let responses = &document["paths"]["/api/v1/jobs"]["post"]["responses"];
        for status in ["201", "401", "403", "415", "422", "429"] {
            assert!(
                responses[status].is_object(),
                "POST /api/v1/jobs lacks {status}"
            );
        }
    }
}
