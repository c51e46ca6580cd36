//! Parsing the page options every browser kind accepts: `viewport`, `user_agent`, `locale`,
//! `timezone`, `headers`, `cookies`, `block`, `wait_until`, `proxy`.

use crate::job::target::is_dns_name;
use std::collections::BTreeMap;

use serde_json::Value;

use super::selectors::css;
use crate::engine::options::{
    BlockedResource, CookieSpec, PROFILE_NAME_RULE, PageEvent, PageOptions, ProfileUse, Viewport,
    WaitUntil,
};
use crate::job::fields::{Fields, Parsed, as_text, type_name};

/// The most cookies one job may set.
pub const MAX_COOKIES: usize = 50;
/// The most extra request headers one job may send.
pub const MAX_HEADERS: usize = 50;

/// Parses the page options present in a payload.
pub fn parse(f: &mut Fields<'_>) -> Parsed<PageOptions> {
    let viewport = f.object("viewport", viewport);
    let user_agent = f.with("user_agent", header_value);
    let locale = f.with("locale", locale);
    let timezone = f.with("timezone", timezone);
    let headers = headers(f);
    let cookies = cookies(f);
    let block = block(f);
    let wait_until = wait_until(f);
    let proxy = f.with("proxy", proxy_name);
    let profile = f.object("profile", profile_use);
    Some(PageOptions {
        viewport: viewport?,
        user_agent: user_agent?,
        locale: locale?,
        timezone: timezone?,
        headers: headers?,
        cookies: cookies?,
        block: block?,
        wait_until: wait_until?,
        proxy: proxy?,
        profile: profile?,
    })
}

/// A saving job must be able to run in a browser: `strategy: http` only reads a profile.
pub(crate) fn check_profile(
    payload: &crate::kinds::Payload,
    f: &Fields<'_>,
    strategy: Option<crate::job::Strategy>,
) -> Parsed<()> {
    let saves = payload.page().is_some_and(PageOptions::saves_profile);
    if saves && strategy == Some(crate::job::Strategy::Http) {
        f.problems().push(
            format!("{}.save", f.path_of("profile")),
            "invalid",
            "saving a profile needs a browser strategy (vanilla, stealth or auto); \
             strategy http only sends its cookies",
        );
        return None;
    }
    Some(())
}

/// `profile`: `{"name", "save"}`.
fn profile_use(f: &mut Fields<'_>) -> Parsed<ProfileUse> {
    let name = f.with("name", |value| {
        let name = as_text(value)?;
        if crate::engine::options::is_profile_name(name) {
            Ok(name.to_owned())
        } else {
            Err(("invalid", PROFILE_NAME_RULE.to_owned()))
        }
    });
    let save = f.flag("save");
    let name = match name? {
        Some(name) => name,
        None => {
            f.report("name", "missing", "name is required".to_owned());
            return None;
        }
    };
    Some(ProfileUse { name, save: save? })
}

/// A pool or tier name, or `none` (whether the pool exists is checked at submission).
fn proxy_name(value: &Value) -> Result<String, (&'static str, String)> {
    let name = as_text(value)?;
    if crate::engine::options::is_proxy_name(name) {
        Ok(name.to_owned())
    } else {
        Err((
            "invalid",
            "a pool or tier name (1 to 64 of a-z, 0-9, - and _), or none".to_owned(),
        ))
    }
}

fn viewport(f: &mut Fields<'_>) -> Parsed<Viewport> {
    let width = f.int("width", 200..=3840);
    let height = f.int("height", 200..=4320);
    let dimension = |key: &'static str, value: Parsed<Option<i64>>| match value? {
        Some(n) => Some(n as u32),
        None => {
            f.report(key, "missing", format!("{key} is required"));
            None
        }
    };
    let width = dimension("width", width);
    let height = dimension("height", height);
    Some(Viewport {
        width: width?,
        height: height?,
    })
}

fn header_value(value: &Value) -> Result<String, (&'static str, String)> {
    let text = as_text(value)?;
    reqwest::header::HeaderValue::from_str(text)
        .map(|_| text.to_owned())
        .map_err(|_| ("invalid", "not a valid header value".to_owned()))
}

/// Checks a locale setting (as a job's `locale` is checked).
pub(crate) fn parse_locale(text: &str) -> Result<String, String> {
    locale(&Value::String(text.to_owned())).map_err(|(_, why)| why)
}

/// Checks a time zone setting (as a job's `timezone` is checked).
pub(crate) fn parse_timezone(text: &str) -> Result<String, String> {
    timezone(&Value::String(text.to_owned())).map_err(|(_, why)| why)
}

fn locale(value: &Value) -> Result<String, (&'static str, String)> {
    let locale = as_text(value)?;
    let mut parts = locale.split(['-', '_']);
    let language = parts.next().unwrap_or_default();
    let valid = (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && locale.len() <= 35
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if valid {
        Ok(locale.to_owned())
    } else {
        Err((
            "invalid",
            "expected a BCP 47 language tag such as en-US or fr".to_owned(),
        ))
    }
}

fn timezone(value: &Value) -> Result<String, (&'static str, String)> {
    let tz = as_text(value)?;
    let plausible = !tz.is_empty()
        && tz.len() <= 64
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if plausible {
        Ok(tz.to_owned())
    } else {
        Err((
            "invalid",
            "expected an IANA time zone such as Europe/Paris".to_owned(),
        ))
    }
}

/// `headers`: an object of at most [`MAX_HEADERS`] valid header names → values.
fn headers(f: &mut Fields<'_>) -> Parsed<BTreeMap<String, String>> {
    let Some(value) = f.get("headers") else {
        return Some(BTreeMap::new());
    };
    let path = f.path_of("headers");
    let problems = f.problems();
    let Value::Object(entries) = value else {
        problems.push(
            path,
            "wrong_type",
            format!(
                "headers must be an object of name → value, not {}",
                type_name(value)
            ),
        );
        return None;
    };
    if entries.len() > MAX_HEADERS {
        problems.push(path, "too_large", format!("at most {MAX_HEADERS} entries"));
        return None;
    }
    let mut headers = BTreeMap::new();
    let mut valid = true;
    for (name, value) in entries {
        let field = format!("{path}.{name}");
        let parsed = match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
            Err(_) => Err(("invalid", "not a valid header name".to_owned())),
            Ok(header) if is_framing(header.as_str()) => Err((
                "forbidden",
                format!("{header} is set by the engine itself (it frames or routes the request)"),
            )),
            Ok(_) => header_value(value),
        };
        match parsed {
            Ok(value) => {
                headers.insert(name.clone(), value);
            }
            Err((code, detail)) => {
                problems.push(field, code, detail);
                valid = false;
            }
        }
    }
    valid.then_some(headers)
}

/// Headers that frame or route a request (or a connection): a job that sets them could
/// hang its own request (a `Content-Length` on a GET) or smuggle another through a proxy.
fn is_framing(name: &str) -> bool {
    matches!(
        name,
        "content-length"
            | "transfer-encoding"
            | "host"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "expect"
            | "http2-settings"
    ) || name.starts_with("proxy-")
}

/// The longest cookie value, as browsers cap a whole cookie.
const MAX_COOKIE_VALUE: usize = 4096;

/// A cookie value as RFC 6265 allows it: cookie-octets, optionally in double quotes (no
/// controls, spaces, `"`, `,`, `;` or `\\`), so a value cannot add attributes or cookies.
fn is_cookie_value(value: &str) -> bool {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    value.len() <= MAX_COOKIE_VALUE
        && inner
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e))
}

/// `cookies`: at most [`MAX_COOKIES`] objects `{"name", "value", "domain"?, "path"?,
/// "secure"?, "http_only"?}`.
fn cookies(f: &mut Fields<'_>) -> Parsed<Vec<CookieSpec>> {
    let Some(items) = f.array("cookies")? else {
        return Some(Vec::new());
    };
    if items.len() > MAX_COOKIES {
        f.report(
            "cookies",
            "too_large",
            format!("at most {MAX_COOKIES} cookies"),
        );
        return None;
    }
    let path = f.path_of("cookies");
    let mut cookies = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        let cookie = Fields::of(item, &format!("{path}.{index}"), f.problems()).and_then(cookie);
        match cookie {
            Some(cookie) => cookies.push(cookie),
            None => valid = false,
        }
    }
    valid.then_some(cookies)
}

fn cookie(mut f: Fields<'_>) -> Parsed<CookieSpec> {
    let name = f.text("name");
    let value = f.text("value");
    let domain = f.text("domain");
    let path = f.text("path");
    let secure = f.flag("secure");
    let http_only = f.flag("http_only");
    let required = |key: &'static str, parsed: Parsed<Option<&str>>| match parsed? {
        Some(text) => Some(text.to_owned()),
        None => {
            f.report(key, "missing", format!("{key} is required"));
            None
        }
    };
    let name = required("name", name).filter(|name| {
        let valid = !name.is_empty() && !name.contains([';', '=', ' ', '\t', '\r', '\n']);
        if !valid {
            f.report(
                "name",
                "invalid",
                "a cookie name is a non-empty token without ; = or spaces",
            );
        }
        valid
    });
    let value = required("value", value).filter(|value| {
        let valid = is_cookie_value(value);
        if !valid {
            f.report(
                "value",
                "invalid",
                format!("a cookie value is at most {MAX_COOKIE_VALUE} characters of letters, digits and !#$%&'()*+-./:<=>?@[]^_`{{|}}~ (no spaces, quotes, commas, semicolons or backslashes)"),
            );
        }
        valid
    });
    let path = path.map(|path| {
        path.filter(|p| {
            let valid = p.starts_with('/') && !p.contains(';') && !p.chars().any(char::is_control);
            if !valid {
                f.report(
                    "path",
                    "invalid",
                    "a cookie path starts with / and has no ; or control characters",
                );
            }
            valid
        })
    });
    let domain = domain.map(|domain| {
        domain.filter(|d| {
            let valid = is_dns_name(d.trim_start_matches('.'));
            if !valid {
                f.report("domain", "invalid", "a cookie domain is a host name");
            }
            valid
        })
    });
    f.finish();
    Some(CookieSpec {
        name: name?,
        value: value?,
        domain: domain?.map(str::to_owned),
        path: path?.map(str::to_owned),
        secure: secure?,
        http_only: http_only?,
    })
}

/// `block`: resource types to refuse, each named once.
fn block(f: &mut Fields<'_>) -> Parsed<Vec<BlockedResource>> {
    let Some(items) = f.array("block")? else {
        return Some(Vec::new());
    };
    let path = f.path_of("block");
    let mut block = Vec::new();
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        match serde_json::from_value::<BlockedResource>(item.clone()) {
            Ok(resource) if !block.contains(&resource) => block.push(resource),
            Ok(_) => {}
            Err(_) => {
                f.problems().push(
                    format!("{path}.{index}"),
                    "unknown_value",
                    format!(
                        "unknown resource type {item}; expected one of: image, font, media, stylesheet"
                    ),
                );
                valid = false;
            }
        }
    }
    valid.then_some(block)
}

/// `wait_until`: `load`, `domcontentloaded`, `networkidle` or `{"selector": "…"}`.
fn wait_until(f: &mut Fields<'_>) -> Parsed<WaitUntil> {
    const EXPECTED: &str = "load, domcontentloaded, networkidle or {\"selector\": \"…\"}";
    match f.get("wait_until") {
        None => Some(WaitUntil::default()),
        Some(Value::String(name)) => {
            match serde_json::from_value::<PageEvent>(Value::String(name.clone())) {
                Ok(event) => Some(WaitUntil::Event(event)),
                Err(_) => {
                    f.report(
                        "wait_until",
                        "unknown_value",
                        format!("unknown value {name:?}; expected {EXPECTED}"),
                    );
                    None
                }
            }
        }
        Some(Value::Object(_)) => {
            let waited = f.object("wait_until", |w| {
                let selector = w.with("selector", css);
                match selector? {
                    Some(selector) => Some(WaitUntil::Selector { selector }),
                    None => {
                        w.report("selector", "missing", "selector is required");
                        None
                    }
                }
            });
            waited.flatten()
        }
        Some(other) => {
            f.report(
                "wait_until",
                "wrong_type",
                format!("expected {EXPECTED}, not {}", type_name(other)),
            );
            None
        }
    }
}
