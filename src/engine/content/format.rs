//! What a `navigate_extract` job asks to get back from a page, beside its selectors.

use serde::{Deserialize, Serialize};

/// One output a job may ask for in `formats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The content as CommonMark with GitHub tables.
    Markdown,
    /// The content as HTML: scripts, styles, boilerplate and most attributes removed, urls
    /// absolute.
    Html,
    /// The whole document as it was loaded (over http) or rendered (in a browser).
    RawHtml,
    /// The content's visible text, one block per paragraph.
    Text,
    /// The page's links with their text, each marked internal or external.
    Links,
    /// The page's title, description, canonical url, language, author, dates, Open Graph
    /// and Twitter card fields, final url and status.
    Metadata,
}

/// Every format's name, as a client writes it.
pub const FORMAT_NAMES: &str = "markdown, html, raw_html, text, links, metadata";

impl Format {
    /// Whether the format shows the page's content (what `only_main_content` and the
    /// include and exclude selectors choose) rather than the whole document.
    pub fn shows_content(self) -> bool {
        matches!(self, Format::Markdown | Format::Html | Format::Text)
    }
}

/// The formats a job asked for: at least one, each once, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Formats(Vec<Format>);

impl Formats {
    /// The formats in `asked`, repeats dropped; `None` when there is none.
    pub fn new(asked: impl IntoIterator<Item = Format>) -> Option<Formats> {
        let mut formats = Vec::new();
        for format in asked {
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        (!formats.is_empty()).then_some(Formats(formats))
    }

    /// Whether `format` was asked for.
    pub fn has(&self, format: Format) -> bool {
        self.0.contains(&format)
    }

    /// Whether any asked format shows the page's content.
    pub fn show_content(&self) -> bool {
        self.0.iter().any(|f| f.shows_content())
    }
}
