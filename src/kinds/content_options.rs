//! `navigate_extract`'s content fields: `formats`, `only_main_content`,
//! `include_selectors` and `exclude_selectors`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::content::{ContentRequest, FORMAT_NAMES, Format, Formats};
use crate::job::fields::{Fields, Parsed, as_text, type_name, wrong_type};

/// The most selectors in `include_selectors` or `exclude_selectors`.
pub const MAX_CONTENT_SELECTORS: usize = 50;

/// What a job asks of the page's content beside its named selectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContentOptions {
    /// The outputs to return under the result's `content` (`markdown`, `html`, `raw_html`,
    /// `text`, `links`, `metadata`). Absent: the result has the fields it always had
    /// (`title`, `description`, `canonical`, `links`, `text`) and no `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Format>>, min_items = 1)]
    pub formats: Option<Formats>,
    /// Whether `markdown`, `html` and `text` hold only the page's main content (the
    /// default) or the whole page.
    #[serde(default = "main_only", skip_serializing_if = "is_main_only")]
    pub only_main_content: bool,
    /// CSS selectors of the elements to take as the content instead of the main content
    /// (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_selectors: Vec<String>,
    /// CSS selectors of elements to leave out of the content (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_selectors: Vec<String>,
}

fn main_only() -> bool {
    true
}

fn is_main_only(only: &bool) -> bool {
    *only
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            formats: None,
            only_main_content: true,
            include_selectors: Vec::new(),
            exclude_selectors: Vec::new(),
        }
    }
}

impl ContentOptions {
    /// What the content module is asked, when formats were asked at all.
    pub fn request(&self) -> Option<ContentRequest<'_>> {
        Some(ContentRequest {
            formats: self.formats.as_ref()?,
            only_main_content: self.only_main_content,
            include: &self.include_selectors,
            exclude: &self.exclude_selectors,
        })
    }
}

/// Reads the content fields of a `navigate_extract` payload.
pub fn parse(f: &mut Fields<'_>) -> Parsed<ContentOptions> {
    let formats = formats(f);
    let only_main_content = f.with("only_main_content", |value| match value {
        Value::Bool(b) => Ok(*b),
        other => Err(wrong_type("a boolean", other)),
    });
    let include_selectors = selector_list(f, "include_selectors");
    let exclude_selectors = selector_list(f, "exclude_selectors");
    let options = ContentOptions {
        formats: formats?,
        only_main_content: only_main_content?.unwrap_or(true),
        include_selectors: include_selectors?,
        exclude_selectors: exclude_selectors?,
    };
    let shows_content = options.formats.as_ref().is_some_and(Formats::show_content);
    let mut compatible = true;
    for field in [
        "only_main_content",
        "include_selectors",
        "exclude_selectors",
    ] {
        if !shows_content && f.entries().get(field).is_some_and(|v| !v.is_null()) {
            f.report(
                field,
                "incompatible",
                "chooses the content of the markdown, html and text formats; ask for one of them in formats",
            );
            compatible = false;
        }
    }
    compatible.then_some(options)
}

/// `formats`: one to six format names.
fn formats(f: &mut Fields<'_>) -> Parsed<Option<Formats>> {
    let Some(items) = f.array("formats")? else {
        return Some(None);
    };
    let path = f.path_of("formats");
    let mut asked = Vec::new();
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        match item
            .as_str()
            .map(|_| serde_json::from_value::<Format>(item.clone()))
        {
            Some(Ok(format)) => asked.push(format),
            _ => {
                f.problems().push(
                    format!("{path}.{index}"),
                    "unknown_value",
                    format!("unknown format {item}; expected one of: {FORMAT_NAMES}"),
                );
                valid = false;
            }
        }
    }
    if !valid {
        return None;
    }
    match Formats::new(asked) {
        Some(formats) => Some(Some(formats)),
        None => {
            f.report(
                "formats",
                "too_small",
                format!("ask for at least one format: {FORMAT_NAMES}"),
            );
            None
        }
    }
}

/// A list of at most [`MAX_CONTENT_SELECTORS`] CSS selectors.
fn selector_list(f: &mut Fields<'_>, key: &'static str) -> Parsed<Vec<String>> {
    let Some(items) = f.array(key)? else {
        return Some(Vec::new());
    };
    let path = f.path_of(key);
    if items.len() > MAX_CONTENT_SELECTORS {
        f.report(
            key,
            "too_large",
            format!("at most {MAX_CONTENT_SELECTORS} selectors"),
        );
        return None;
    }
    let mut selectors = Vec::new();
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        match content_css(item) {
            Ok(css) => selectors.push(css),
            Err((code, detail)) => {
                f.problems().push(format!("{path}.{index}"), code, detail);
                valid = false;
            }
        }
    }
    valid.then_some(selectors)
}

/// A CSS selector the content module's parser takes.
fn content_css(value: &Value) -> Result<String, (&'static str, String)> {
    let text = as_text(value).map_err(|_| {
        (
            "wrong_type",
            format!("expected a CSS selector string, not {}", type_name(value)),
        )
    })?;
    dom_query::Matcher::new(text)
        .map(|_| text.to_owned())
        .map_err(|e| ("invalid", format!("not a valid CSS selector: {e:?}")))
}
