//! `/api/v1/proxies/pools/{name}`: proxy pools made, read and removed by an admin. The
//! proxies' credentials are sealed before they are stored and never shown again: answers
//! show each proxy's name, address and whether it has credentials.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Operator;
use super::body::JsonBody;
use super::problem::Problem;
use crate::job::{FieldError, Fields, Problems, fields};
use crate::proxy::spec::{DEFAULT_MAX_PER_PROXY, MAX_PER_PROXY, MAX_PROXIES, is_name, upstream};
use crate::proxy::{AdminError, NONE, PoolDraft, PoolView, ProxyEntry, Rotation};

/// `PUT /api/v1/proxies/pools/{name}`: a pool's tier, rotation, cap and proxies.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolRequest {
    /// Its tier (`datacenter`, `residential`, …): tiers are ordered by PROXY_TIERS.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub tier: String,
    /// How attempts are spread [default: round_robin].
    pub rotation: Option<Rotation>,
    /// The most attempts one proxy carries at once [default: 8].
    #[schema(minimum = 1, maximum = 10000)]
    pub max_per_proxy: Option<u32>,
    /// 1 to 1000 proxies: `http://user:pass@host:port`, `socks5://…` or `socks5h://…`, or
    /// `{"name", "url"}` to name one (default names: `<pool>-1`, `<pool>-2`, …).
    #[schema(min_items = 1, max_items = 1000)]
    pub proxies: Vec<ProxyRequest>,
}

/// One proxy of a [`PoolRequest`].
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ProxyRequest {
    /// Its url (with its credentials, if it wants them).
    #[schema(value_type = ProxyUrlText)]
    Url(String),
    /// A proxy with a name of its own.
    Named {
        /// Its name in the pool [default: `<pool>-<position from 1>`].
        #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
        name: Option<String>,
        /// Its url.
        #[schema(value_type = ProxyUrlText)]
        url: String,
    },
}

/// A proxy's url as the contract writes it: `http://`, `socks5://` or `socks5h://`, a host
/// and a port, credentials if it wants them, no path.
pub struct ProxyUrlText;

impl utoipa::PartialSchema for ProxyUrlText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .min_length(Some(10))
            .max_length(Some(2048))
            .pattern(Some("^(http|socks5h?)://"))
            .into()
    }
}

impl ToSchema for ProxyUrlText {}

fn pool_name(name: &str) -> Result<(), Problem> {
    if !is_name(name) {
        return Err(Problem::bad_parameter(
            "name",
            "invalid",
            "a pool's name is 1 to 64 of a-z, 0-9, - and _",
        ));
    }
    if name == NONE {
        return Err(Problem::bad_parameter(
            "name",
            "reserved",
            "`none` is what a job names to go direct",
        ));
    }
    Ok(())
}

/// `GET /api/v1/proxies/pools/{name}`: one pool (made through the API or the settings).
#[utoipa::path(
    get,
    operation_id = "get_proxy_pool",
    path = "/api/v1/proxies/pools/{name}",
    tag = "proxies",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The pool and its proxies' health", body = PoolView),
        (status = 404, description = "No pool of that name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    _: Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PoolView>, Problem> {
    pool_name(&name)?;
    state.pools.fresh().await;
    let view = state.pools.view(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(view))
}

/// `PUT /api/v1/proxies/pools/{name}`: makes the pool, or replaces it. This process uses it
/// at once; every other within 2 s of its next use of the pools. Proxies kept from the previous version keep their health.
#[utoipa::path(
    put,
    operation_id = "put_proxy_pool",
    path = "/api/v1/proxies/pools/{name}",
    tag = "proxies",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")),
    request_body = PoolRequest,
    responses(
        (status = 200, description = "The pool, replaced", body = PoolView),
        (status = 201, description = "The pool, made", body = PoolView),
        (status = 409, description = "A pool of PROXY_POOLS has the name, the service has no SECRETS_KEY, or 64 pools exist", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put(
    _: Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, Problem> {
    pool_name(&name)?;
    let draft = parse(&name, &body).map_err(Problem::invalid_fields)?;
    let (view, created) = state.pools.put(draft).await.map_err(problem)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

/// `DELETE /api/v1/proxies/pools/{name}`: removes a pool made through the API. Attempts
/// under way finish on their proxy; jobs naming it afterwards fail, saying so.
#[utoipa::path(
    delete,
    operation_id = "delete_proxy_pool",
    path = "/api/v1/proxies/pools/{name}",
    tag = "proxies",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")),
    responses(
        (status = 204, description = "The pool is gone"),
        (status = 404, description = "No pool of that name was made through the API", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The pool is one of PROXY_POOLS, or a tenant's default needs it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    _: Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    pool_name(&name)?;
    state.pools.remove(&name).await.map_err(problem)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn not_found(name: &str) -> Problem {
    Problem::not_found(format!("no proxy pool is named {name:?}"))
}

fn problem(error: AdminError) -> Problem {
    match error {
        AdminError::Store(e) => e.into(),
        AdminError::NotFound(name) => not_found(&name),
        AdminError::Invalid(detail) => {
            Problem::invalid_fields(vec![FieldError::new("proxies", "invalid", detail)])
        }
        other @ (AdminError::SetBySettings(_)
        | AdminError::NoKey
        | AdminError::TooMany
        | AdminError::NamedByDefault { .. }) => Problem::conflict(other.to_string()),
    }
}

/// The pool a body describes; every bad field named, no url ever quoted.
fn parse(name: &str, body: &Value) -> Result<PoolDraft, Vec<FieldError>> {
    let problems = Problems::new();
    let parsed = Fields::of(body, "", &problems).and_then(|mut f| {
        let tier = f.text("tier");
        let rotation = f.choice::<Rotation>("rotation");
        let max_per_proxy = f.int("max_per_proxy", 1..=i64::from(MAX_PER_PROXY));
        let proxies = f.array("proxies");
        if tier == Some(None) {
            f.report("tier", "missing", "tier is required");
        }
        let tier = tier.flatten().filter(|tier| {
            let fine = is_name(tier);
            if !fine {
                f.report("tier", "invalid", "a tier is 1 to 64 of a-z, 0-9, - and _");
            }
            fine
        });
        let proxies = match proxies {
            Some(Some(items)) => entries(name, items, &f),
            Some(None) => {
                f.report("proxies", "missing", "proxies is required");
                None
            }
            None => None,
        };
        f.finish();
        Some(PoolDraft {
            name: name.to_owned(),
            tier: tier?.to_owned(),
            rotation: rotation?.unwrap_or_default(),
            max_per_proxy: max_per_proxy?
                .map_or(Some(DEFAULT_MAX_PER_PROXY), |n| u32::try_from(n).ok())?,
            proxies: proxies?,
        })
    });
    problems.verdict(parsed)
}

/// The proxies of a pool named `pool`, each checked where it stands (`proxies[3].url`).
fn entries(pool: &str, items: &[Value], f: &Fields<'_>) -> Option<Vec<ProxyEntry>> {
    if items.is_empty() || items.len() > MAX_PROXIES {
        let detail = format!("a pool holds 1 to {MAX_PROXIES} proxies");
        f.report("proxies", "out_of_range", detail);
        return None;
    }
    let mut kept = Vec::with_capacity(items.len());
    let mut fine = true;
    for (at, item) in items.iter().enumerate() {
        let path = format!("{}[{at}]", f.path_of("proxies"));
        match entry(pool, at, item, &path, f.problems()) {
            Some(entry) if kept.iter().any(|e: &ProxyEntry| e.name == entry.name) => {
                let detail = format!("another proxy of the pool is named {:?}", entry.name);
                f.problems()
                    .push(format!("{path}.name"), "duplicate", detail);
                fine = false;
            }
            Some(entry) => kept.push(entry),
            None => fine = false,
        }
    }
    fine.then_some(kept)
}

/// One proxy: a url, or `{"name", "url"}`.
fn entry(
    pool: &str,
    at: usize,
    item: &Value,
    path: &str,
    problems: &Problems,
) -> Option<ProxyEntry> {
    let (entry, url_path) = match item {
        Value::String(url) => (ProxyEntry::unnamed(pool, at, url.clone()), path.to_owned()),
        Value::Object(_) => {
            let mut f = Fields::of(item, path, problems)?;
            let name = f.text("name");
            let url = f.text("url");
            if url == Some(None) {
                f.report("url", "missing", "url is required");
            }
            let url_path = f.path_of("url");
            f.finish();
            let url = url??.to_owned();
            let entry = match name? {
                Some(name) => ProxyEntry {
                    name: name.to_owned(),
                    url,
                },
                None => ProxyEntry::unnamed(pool, at, url),
            };
            if !is_name(&entry.name) {
                let detail = "a proxy's name is 1 to 64 of a-z, 0-9, - and _";
                problems.push(format!("{path}.name"), "invalid", detail);
                return None;
            }
            (entry, url_path)
        }
        other => {
            let (code, detail) = fields::wrong_type("a url or {\"name\", \"url\"}", other);
            problems.push(path, code, detail);
            return None;
        }
    };
    match upstream(entry.name.clone(), &entry.url) {
        Ok(_) => Some(entry),
        Err(why) => {
            problems.push(url_path, "invalid", why);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields_of(body: Value) -> Vec<String> {
        let errors = parse("res", &body).expect_err("refused");
        for error in &errors {
            assert!(!error.detail.contains("hunter2"), "{error:?}");
        }
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_pool_body_names_every_bad_field_and_never_quotes_a_url() {
        let draft = parse(
            "res",
            &json!({"tier": "residential", "proxies": [
                "http://u:hunter2@10.0.0.1:8080", {"name": "b", "url": "socks5://10.0.0.2:1080"}]}),
        )
        .expect("valid");
        assert_eq!(draft.proxies[0].name, "res-1");
        let unnamed = parse(
            "res",
            &json!({"tier": "t", "proxies": ["http://h:1", {"url": "http://h:2"}]}),
        );
        assert_eq!(unnamed.expect("valid").proxies[1].name, "res-2");
        assert_eq!(draft.max_per_proxy, DEFAULT_MAX_PER_PROXY);
        assert!(draft.spec().is_ok());
        assert_eq!(fields_of(json!({"proxies": ["http://h:1"]})), ["tier"]);
        assert_eq!(
            fields_of(json!({"tier": "Res!", "proxies": ["ftp://u:hunter2@h:1"], "x": 1})),
            ["tier", "proxies[0]", "x"]
        );
        assert_eq!(
            fields_of(json!({"tier": "t", "max_per_proxy": 0, "proxies": [
                {"name": "a", "url": "http://u:hunter2@h:1/path"},
                {"name": "a", "url": "http://h:2"}, 7, {"name": "d"}]})),
            [
                "max_per_proxy",
                "proxies[0].url",
                "proxies[2]",
                "proxies[3].url"
            ]
        );
        assert_eq!(
            fields_of(json!({"tier": "t", "proxies": [
                {"name": "a", "url": "http://h:1"}, {"name": "a", "url": "http://u:hunter2@h:2"}]})),
            ["proxies[1].name"]
        );
        assert_eq!(fields_of(json!({"tier": "t", "proxies": []})), ["proxies"]);
        assert_eq!(fields_of(json!([])), [""]);
    }
}
