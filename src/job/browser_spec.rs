//! Payload options of browser jobs: page options, screenshot, pdf and script steps.

use serde_json::{Map, Value};

use super::spec::{
    FieldError, SelectorSpec, as_str, int_in, parse_headers, parse_selector_map, present,
    reject_unknown, type_name,
};

/// The viewport used when a job does not set one.
pub const DEFAULT_VIEWPORT: Viewport = Viewport {
    width: 1366,
    height: 768,
};
/// The most cookies one job may set.
pub const MAX_COOKIES: usize = 50;
/// The most steps one script may have.
pub const MAX_STEPS: usize = 100;
/// The longest JavaScript expression a job may carry, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 100 * 1024;
/// The longest a `wait_for` step may wait, in milliseconds.
pub const MAX_WAIT_MS: i64 = 60_000;

/// Payload fields every browser job type accepts.
pub const PAGE_FIELDS: &[&str] = &[
    "viewport",
    "user_agent",
    "locale",
    "timezone",
    "headers",
    "cookies",
    "block",
    "wait_until",
];

/// Page options that only a browser can apply (the `http` strategy refuses them).
pub const BROWSER_ONLY_FIELDS: &[&str] =
    &["viewport", "timezone", "block", "wait_until", "evaluate"];

/// A viewport size in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewport {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// One cookie set before the page loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSpec {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// Domain; the job url's host when absent.
    pub domain: Option<String>,
    /// Path; `/` when absent.
    pub path: Option<String>,
    /// Sent over HTTPS only.
    pub secure: bool,
    /// Hidden from page scripts.
    pub http_only: bool,
}

/// Resource types a job may refuse to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedResource {
    /// Images.
    Image,
    /// Fonts.
    Font,
    /// Audio and video.
    Media,
    /// Style sheets.
    Stylesheet,
}

impl BlockedResource {
    const NAMES: &[(&str, BlockedResource)] = &[
        ("image", BlockedResource::Image),
        ("font", BlockedResource::Font),
        ("media", BlockedResource::Media),
        ("stylesheet", BlockedResource::Stylesheet),
    ];
}

/// When a navigation counts as done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WaitUntil {
    /// The `load` event.
    #[default]
    Load,
    /// The `DOMContentLoaded` event.
    DomContentLoaded,
    /// No network activity for 500 ms after load.
    NetworkIdle,
    /// An element matching the selector exists.
    Selector(String),
}

/// Options that shape the page of every browser job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOptions {
    /// Viewport size.
    pub viewport: Viewport,
    /// User agent replacing the browser's.
    pub user_agent: Option<String>,
    /// Locale (`Accept-Language`, `navigator.language`, Intl).
    pub locale: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Cookies set before the first request.
    pub cookies: Vec<CookieSpec>,
    /// Resource types refused.
    pub block: Vec<BlockedResource>,
    /// When navigation counts as done.
    pub wait_until: WaitUntil,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            viewport: DEFAULT_VIEWPORT,
            user_agent: None,
            locale: None,
            timezone: None,
            headers: Vec::new(),
            cookies: Vec::new(),
            block: Vec::new(),
            wait_until: WaitUntil::Load,
        }
    }
}

/// Image format of a screenshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// PNG (lossless).
    Png,
    /// JPEG (with `quality`).
    Jpeg,
}

impl ImageFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
        }
    }
}

/// Options of a `screenshot` job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenshotOptions {
    /// png or jpeg.
    pub format: ImageFormat,
    /// JPEG quality 1..=100.
    pub quality: Option<u8>,
    /// The whole page, not only the viewport.
    pub full_page: bool,
    /// Clip to the first element matching this selector.
    pub selector: Option<String>,
}

/// Paper sizes for `pdf` jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    /// 210 × 297 mm.
    A4,
    /// 8.5 × 11 in.
    Letter,
}

impl Paper {
    /// Width and height in inches.
    pub fn inches(self) -> (f64, f64) {
        match self {
            Paper::A4 => (8.27, 11.69),
            Paper::Letter => (8.5, 11.0),
        }
    }
}

/// Options of a `pdf` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdfOptions {
    /// Paper size.
    pub paper: Paper,
    /// Landscape orientation.
    pub landscape: bool,
    /// Print background colours and images.
    pub print_background: bool,
}

/// One step of a `script` job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Navigate to a url (under the target policy).
    Goto(String),
    /// Click the first element matching a selector.
    Click(String),
    /// Type text into the first element matching a selector.
    Type {
        /// The field.
        selector: String,
        /// What to type.
        text: String,
    },
    /// Wait until an element matches a selector.
    WaitForSelector(String),
    /// Wait a number of milliseconds.
    WaitForMs(u64),
    /// Scroll to the bottom of the page.
    ScrollBottom,
    /// Scroll by a number of pixels (negative: up).
    ScrollBy(i64),
    /// Extract named selectors into `data`.
    Extract(Vec<(String, SelectorSpec)>),
    /// Evaluate a JavaScript expression.
    Evaluate(String),
    /// Take a viewport screenshot stored as `<name>.png`.
    Screenshot(String),
}

impl Step {
    /// The step's kind, as written in the payload.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Goto(_) => "goto",
            Step::Click(_) => "click",
            Step::Type { .. } => "type",
            Step::WaitForSelector(_) | Step::WaitForMs(_) => "wait_for",
            Step::ScrollBottom | Step::ScrollBy(_) => "scroll",
            Step::Extract(_) => "extract",
            Step::Evaluate(_) => "evaluate",
            Step::Screenshot(_) => "screenshot",
        }
    }
}

const STEP_KINDS: &str = "goto, click, type, wait_for, scroll, extract, evaluate, screenshot";

/// Whether `name` is usable as an artifact name (letters, digits, `.`, `_`, `-`; ≤ 100).
pub fn valid_artifact_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Parses the page options present in `map`.
pub fn parse_page_options(map: &Map<String, Value>, errors: &mut Vec<FieldError>) -> PageOptions {
    let mut options = PageOptions::default();
    if let Some(value) = present(map, "viewport") {
        match value {
            Value::Object(v) => {
                reject_unknown_in(v, "payload.viewport", &["width", "height"], errors);
                let width = dimension(v, "width", 200, 3840, errors);
                let height = dimension(v, "height", 200, 4320, errors);
                if let (Some(width), Some(height)) = (width, height) {
                    options.viewport = Viewport { width, height };
                }
            }
            other => errors.push(FieldError::new(
                "payload.viewport",
                "wrong_type",
                format!(
                    "expected {{\"width\", \"height\"}}, not {}",
                    type_name(other)
                ),
            )),
        }
    }
    options.user_agent = present(map, "user_agent").and_then(|value| {
        as_str(value, "payload.user_agent")
            .and_then(|ua| {
                reqwest::header::HeaderValue::from_str(ua)
                    .map(|_| ua.to_owned())
                    .map_err(|_| {
                        FieldError::new("payload.user_agent", "invalid", "not a valid header value")
                    })
            })
            .map_err(|e| errors.push(e))
            .ok()
    });
    options.locale = present(map, "locale").and_then(|value| {
        as_str(value, "payload.locale")
            .and_then(|locale| {
                valid_locale(locale)
                    .then(|| locale.to_owned())
                    .ok_or_else(|| {
                        FieldError::new(
                            "payload.locale",
                            "invalid",
                            "expected a BCP 47 language tag such as en-US or fr",
                        )
                    })
            })
            .map_err(|e| errors.push(e))
            .ok()
    });
    options.timezone = present(map, "timezone").and_then(|value| {
        as_str(value, "payload.timezone")
            .and_then(|tz| {
                let plausible = !tz.is_empty()
                    && tz.len() <= 64
                    && tz
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
                plausible.then(|| tz.to_owned()).ok_or_else(|| {
                    FieldError::new(
                        "payload.timezone",
                        "invalid",
                        "expected an IANA time zone such as Europe/Paris",
                    )
                })
            })
            .map_err(|e| errors.push(e))
            .ok()
    });
    options.headers = parse_headers(map, errors);
    options.cookies = parse_cookies(map, errors);
    options.block = parse_block(map, errors);
    if let Some(value) = present(map, "wait_until") {
        match value {
            Value::String(s) => match s.as_str() {
                "load" => options.wait_until = WaitUntil::Load,
                "domcontentloaded" => options.wait_until = WaitUntil::DomContentLoaded,
                "networkidle" => options.wait_until = WaitUntil::NetworkIdle,
                other => errors.push(FieldError::new(
                    "payload.wait_until",
                    "unknown_value",
                    format!(
                        "unknown value {other:?}; expected load, domcontentloaded, networkidle or {{\"selector\": \"…\"}}"
                    ),
                )),
            },
            Value::Object(o) => {
                reject_unknown_in(o, "payload.wait_until", &["selector"], errors);
                if let Some(css) = css_field(o, "selector", "payload.wait_until.selector", errors) {
                    options.wait_until = WaitUntil::Selector(css);
                } else if present(o, "selector").is_none() {
                    errors.push(FieldError::new(
                        "payload.wait_until.selector",
                        "missing",
                        "selector is required",
                    ));
                }
            }
            other => errors.push(FieldError::new(
                "payload.wait_until",
                "wrong_type",
                format!(
                    "expected load, domcontentloaded, networkidle or {{\"selector\": \"…\"}}, not {}",
                    type_name(other)
                ),
            )),
        }
    }
    options
}

fn valid_locale(locale: &str) -> bool {
    let mut parts = locale.split(['-', '_']);
    let Some(language) = parts.next() else {
        return false;
    };
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && locale.len() <= 35
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn dimension(
    map: &Map<String, Value>,
    key: &str,
    min: i64,
    max: i64,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    let field = format!("payload.viewport.{key}");
    match present(map, key) {
        None => {
            errors.push(FieldError::new(
                field,
                "missing",
                format!("{key} is required"),
            ));
            None
        }
        Some(value) => int_in(value, &field, min, max)
            .map(|n| n as u32)
            .map_err(|e| errors.push(e))
            .ok(),
    }
}

fn reject_unknown_in(
    map: &Map<String, Value>,
    prefix: &str,
    known: &[&str],
    errors: &mut Vec<FieldError>,
) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            errors.push(FieldError::new(
                format!("{prefix}.{key}"),
                "unknown_field",
                format!("unknown field; expected one of: {}", known.join(", ")),
            ));
        }
    }
}

/// A CSS selector at `map[key]`, checked to parse.
fn css_field(
    map: &Map<String, Value>,
    key: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let value = present(map, key)?;
    css_value(value, field, errors)
}

fn css_value(value: &Value, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let css = as_str(value, field).map_err(|e| errors.push(e)).ok()?;
    match scraper::Selector::parse(css) {
        Ok(_) => Some(css.to_owned()),
        Err(e) => {
            errors.push(FieldError::new(
                field,
                "invalid",
                format!("not a valid CSS selector: {e}"),
            ));
            None
        }
    }
}

fn bool_field(
    map: &Map<String, Value>,
    key: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> bool {
    match present(map, key) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.push(FieldError::new(
                field,
                "wrong_type",
                format!("expected a boolean, not {}", type_name(other)),
            ));
            false
        }
    }
}

fn parse_cookies(map: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Vec<CookieSpec> {
    let Some(value) = present(map, "cookies") else {
        return Vec::new();
    };
    let Value::Array(items) = value else {
        errors.push(FieldError::new(
            "payload.cookies",
            "wrong_type",
            format!(
                "expected an array of {{\"name\", \"value\", …}}, not {}",
                type_name(value)
            ),
        ));
        return Vec::new();
    };
    if items.len() > MAX_COOKIES {
        errors.push(FieldError::new(
            "payload.cookies",
            "too_large",
            format!("at most {MAX_COOKIES} cookies"),
        ));
        return Vec::new();
    }
    let mut cookies = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = format!("payload.cookies.{index}");
        let Value::Object(cookie) = item else {
            errors.push(FieldError::new(
                field,
                "wrong_type",
                format!("expected an object, not {}", type_name(item)),
            ));
            continue;
        };
        let before = errors.len();
        reject_unknown_in(
            cookie,
            &field,
            &["name", "value", "domain", "path", "secure", "http_only"],
            errors,
        );
        let text = |key: &str, required: bool, errors: &mut Vec<FieldError>| -> Option<String> {
            match present(cookie, key) {
                None if required => {
                    errors.push(FieldError::new(
                        format!("{field}.{key}"),
                        "missing",
                        format!("{key} is required"),
                    ));
                    None
                }
                None => None,
                Some(v) => as_str(v, &format!("{field}.{key}"))
                    .map(str::to_owned)
                    .map_err(|e| errors.push(e))
                    .ok(),
            }
        };
        let name = text("name", true, errors);
        let value = text("value", true, errors);
        let domain = text("domain", false, errors);
        let path = text("path", false, errors);
        let secure = bool_field(cookie, "secure", &format!("{field}.secure"), errors);
        let http_only = bool_field(cookie, "http_only", &format!("{field}.http_only"), errors);
        if let (Some(name), Some(value)) = (name, value)
            && errors.len() == before
        {
            if name.is_empty() || name.contains([';', '=', ' ', '\t', '\r', '\n']) {
                errors.push(FieldError::new(
                    format!("{field}.name"),
                    "invalid",
                    "a cookie name is a non-empty token without ; = or spaces",
                ));
                continue;
            }
            cookies.push(CookieSpec {
                name,
                value,
                domain,
                path,
                secure,
                http_only,
            });
        }
    }
    cookies
}

fn parse_block(map: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Vec<BlockedResource> {
    let Some(value) = present(map, "block") else {
        return Vec::new();
    };
    let expected = "image, font, media, stylesheet";
    let Value::Array(items) = value else {
        errors.push(FieldError::new(
            "payload.block",
            "wrong_type",
            format!(
                "expected an array of resource types ({expected}), not {}",
                type_name(value)
            ),
        ));
        return Vec::new();
    };
    let mut block = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let found = item.as_str().and_then(|name| {
            BlockedResource::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, r)| *r)
        });
        match found {
            Some(resource) if !block.contains(&resource) => block.push(resource),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("payload.block.{index}"),
                "unknown_value",
                format!("unknown resource type {item}; expected one of: {expected}"),
            )),
        }
    }
    block
}

/// Parses `payload.evaluate`.
pub fn parse_expression(
    value: &Value,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let expression = as_str(value, field).map_err(|e| errors.push(e)).ok()?;
    if expression.trim().is_empty() {
        errors.push(FieldError::new(field, "invalid", "the expression is empty"));
        None
    } else if expression.len() > MAX_EXPRESSION_BYTES {
        errors.push(FieldError::new(
            field,
            "too_large",
            format!("at most {MAX_EXPRESSION_BYTES} bytes"),
        ));
        None
    } else {
        Some(expression.to_owned())
    }
}

/// Parses the options of a `screenshot` job.
pub fn parse_screenshot(
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> ScreenshotOptions {
    let format = match present(map, "format") {
        None => ImageFormat::Png,
        Some(Value::String(s)) if s == "png" => ImageFormat::Png,
        Some(Value::String(s)) if s == "jpeg" || s == "jpg" => ImageFormat::Jpeg,
        Some(other) => {
            errors.push(FieldError::new(
                "payload.format",
                "unknown_value",
                format!("unknown format {other}; expected png or jpeg"),
            ));
            ImageFormat::Png
        }
    };
    let quality = present(map, "quality").and_then(|value| {
        if format != ImageFormat::Jpeg {
            errors.push(FieldError::new(
                "payload.quality",
                "invalid",
                "quality applies to jpeg only; set \"format\": \"jpeg\"",
            ));
            return None;
        }
        int_in(value, "payload.quality", 1, 100)
            .map(|q| q as u8)
            .map_err(|e| errors.push(e))
            .ok()
    });
    ScreenshotOptions {
        format,
        quality,
        full_page: bool_field(map, "full_page", "payload.full_page", errors),
        selector: css_field(map, "selector", "payload.selector", errors),
    }
}

/// Parses the options of a `pdf` job.
pub fn parse_pdf(map: &Map<String, Value>, errors: &mut Vec<FieldError>) -> PdfOptions {
    let paper = match present(map, "paper") {
        None => Paper::A4,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("a4") => Paper::A4,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("letter") => Paper::Letter,
        Some(other) => {
            errors.push(FieldError::new(
                "payload.paper",
                "unknown_value",
                format!("unknown paper {other}; expected A4 or Letter"),
            ));
            Paper::A4
        }
    };
    PdfOptions {
        paper,
        landscape: bool_field(map, "landscape", "payload.landscape", errors),
        print_background: bool_field(map, "print_background", "payload.print_background", errors),
    }
}

/// Parses `payload.steps` of a `script` job.
pub fn parse_steps(map: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Vec<Step> {
    let Some(value) = present(map, "steps") else {
        errors.push(FieldError::new(
            "payload.steps",
            "missing",
            "a script job needs steps: an array of one-key objects",
        ));
        return Vec::new();
    };
    let Value::Array(items) = value else {
        errors.push(FieldError::new(
            "payload.steps",
            "wrong_type",
            format!(
                "expected an array of one-key objects, not {}",
                type_name(value)
            ),
        ));
        return Vec::new();
    };
    if items.is_empty() || items.len() > MAX_STEPS {
        errors.push(FieldError::new(
            "payload.steps",
            "out_of_range",
            format!("between 1 and {MAX_STEPS} steps"),
        ));
        return Vec::new();
    }
    let mut steps = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let field = format!("payload.steps.{index}");
        let single = item.as_object().filter(|o| o.len() == 1);
        let Some((kind, arg)) = single.and_then(|o| o.iter().next()) else {
            errors.push(FieldError::new(
                field,
                "wrong_type",
                format!("each step is an object with exactly one key: {STEP_KINDS}"),
            ));
            continue;
        };
        let field = format!("{field}.{kind}");
        let step = match kind.as_str() {
            "goto" => as_str(arg, &field)
                .and_then(|url| {
                    super::target::TargetUrl::parse(url)
                        .map(|u| Step::Goto(u.as_str().to_owned()))
                        .map_err(|e| FieldError::new(field.as_str(), "invalid", e.to_string()))
                })
                .map_err(|e| errors.push(e))
                .ok(),
            "click" => css_value(arg, &field, errors).map(Step::Click),
            "type" => match arg {
                Value::Object(o) => {
                    let before = errors.len();
                    reject_unknown_in(o, &field, &["selector", "text"], errors);
                    let selector = css_field(o, "selector", &format!("{field}.selector"), errors);
                    let text = present(o, "text").and_then(|t| {
                        as_str(t, &format!("{field}.text"))
                            .map(str::to_owned)
                            .map_err(|e| errors.push(e))
                            .ok()
                    });
                    match (selector, text) {
                        (Some(selector), Some(text)) if errors.len() == before => {
                            Some(Step::Type { selector, text })
                        }
                        _ => {
                            if errors.len() == before {
                                errors.push(FieldError::new(
                                    field.as_str(),
                                    "missing",
                                    "type needs {\"selector\", \"text\"}",
                                ));
                            }
                            None
                        }
                    }
                }
                other => {
                    errors.push(FieldError::new(
                        field.as_str(),
                        "wrong_type",
                        format!(
                            "expected {{\"selector\", \"text\"}}, not {}",
                            type_name(other)
                        ),
                    ));
                    None
                }
            },
            "wait_for" => match arg {
                Value::Number(_) => int_in(arg, &field, 0, MAX_WAIT_MS)
                    .map(|ms| Step::WaitForMs(ms as u64))
                    .map_err(|e| errors.push(e))
                    .ok(),
                _ => css_value(arg, &field, errors).map(Step::WaitForSelector),
            },
            "scroll" => match arg {
                Value::String(s) if s == "bottom" => Some(Step::ScrollBottom),
                Value::Number(_) => int_in(arg, &field, -1_000_000, 1_000_000)
                    .map(Step::ScrollBy)
                    .map_err(|e| errors.push(e))
                    .ok(),
                other => {
                    errors.push(FieldError::new(
                        field.as_str(),
                        "wrong_type",
                        format!("expected \"bottom\" or a number of pixels, not {other}"),
                    ));
                    None
                }
            },
            "extract" => {
                let before = errors.len();
                let selectors = parse_selector_map(arg, &field, errors);
                (errors.len() == before).then_some(Step::Extract(selectors))
            }
            "evaluate" => parse_expression(arg, &field, errors).map(Step::Evaluate),
            "screenshot" => match arg.as_str() {
                Some(name) if valid_artifact_name(name) => Some(Step::Screenshot(name.to_owned())),
                _ => {
                    errors.push(FieldError::new(
                        field.as_str(),
                        "invalid",
                        "expected a name of letters, digits, '.', '_' or '-' (at most 100)",
                    ));
                    None
                }
            },
            _ => {
                errors.push(FieldError::new(
                    field.as_str(),
                    "unknown_value",
                    format!("unknown step; expected one of: {STEP_KINDS}"),
                ));
                None
            }
        };
        steps.extend(step);
    }
    steps
}

/// Rejects keys of `map` outside the page fields plus `extra`.
pub fn reject_unknown_browser_fields(
    map: &Map<String, Value>,
    extra: &[&str],
    errors: &mut Vec<FieldError>,
) {
    let known: Vec<&str> = PAGE_FIELDS.iter().chain(extra).copied().collect();
    reject_unknown(map, &known, errors);
}
