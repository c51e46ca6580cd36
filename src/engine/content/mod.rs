//! A page's content in the formats a job asks for: its main content as Markdown, cleaned
//! HTML or text, the raw document, its links and its metadata. Pure functions of a
//! document: the same HTML gives the same output whichever engine loaded it.

mod boilerplate;
mod clean;
pub mod format;
mod links;
mod main_content;
pub mod markdown;
mod metadata;

use dom_query::{Document, Matcher};
use serde::Serialize;
use url::Url;

pub use format::{FORMAT_NAMES, Format, Formats};
pub use links::{MAX_LINKS, PageLink};
pub use main_content::{ContentSource, MAX_READABLE_DEPTH, MAX_READABLE_ELEMENTS};
pub use metadata::PageMetadata;

use crate::engine::extract::truncate_to;
use markdown::{Flavor, render};

/// The most bytes of Markdown, HTML or text a result carries; past it the output is cut
/// and `truncated` names it.
pub const MAX_CONTENT_BYTES: usize = 2 * 1024 * 1024;

/// What a job asked of the page's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRequest<'a> {
    /// The outputs asked for.
    pub formats: &'a Formats,
    /// Only the main content (else the whole page) for `markdown`, `html` and `text`.
    pub only_main_content: bool,
    /// Elements taken as the content instead of the main content.
    pub include: &'a [String],
    /// Elements left out of the content.
    pub exclude: &'a [String],
}

/// Where the document came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The url that answered, after redirects (relative urls resolve against it, or against
    /// the page's `<base>`).
    pub final_url: &'a Url,
    /// The main document's status.
    pub status_code: u16,
}

/// The outputs a job asked for, each present only when asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PageContent {
    /// The content as Markdown (CommonMark with GitHub tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    /// The content as cleaned HTML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The whole document as loaded or rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_html: Option<String>,
    /// The content's visible text, blocks separated by blank lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The page's links (at most 1,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<PageLink>>,
    /// Whether the page had more links than were listed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub links_truncated: bool,
    /// The page's metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PageMetadata>,
    /// How the content of `markdown`, `html` and `text` was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_source: Option<ContentSource>,
    /// The formats cut to stay within their bounds (2 MiB each, a table's 5,000 rows).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<Format>,
    /// Whether the body showed no text and no link (a script-rendered shell, a blank
    /// challenge): for the judge, not the result.
    #[serde(skip)]
    #[schema(ignore)]
    pub blank: bool,
}

/// The content of an HTML document, as `request` asks. Bounded in time and size by the
/// caps of the modules it uses; call it off the async threads.
pub fn of_html(html: &str, origin: Origin<'_>, request: &ContentRequest<'_>) -> PageContent {
    let document = Document::from(html);
    let base = base_of(&document, origin.final_url);
    let formats = request.formats;
    let mut content = PageContent {
        blank: shows_nothing(&document),
        raw_html: formats.has(Format::RawHtml).then(|| html.to_owned()),
        metadata: formats
            .has(Format::Metadata)
            .then(|| metadata::metadata(&document, origin.final_url, origin.status_code)),
        ..PageContent::default()
    };
    if formats.has(Format::Links) {
        let (links, truncated) = links::links(&document, &base);
        content.links = Some(links);
        content.links_truncated = truncated;
    }
    if formats.show_content() {
        remove_excluded(&document, request.exclude);
        let choice = main_content::Choice {
            only_main_content: request.only_main_content,
            include: request.include,
        };
        let (chosen, source) = main_content::choose(document, &base, &choice);
        clean::clean(&chosen.root(), &base);
        content.content_source = Some(source);
        fill_content(&mut content, &chosen, formats);
    }
    content
}

/// The content of a text body (not HTML): the text itself in every content format.
pub fn of_text(text: &str, origin: Origin<'_>, formats: &Formats) -> PageContent {
    let mut content = PageContent {
        blank: text.trim().is_empty(),
        raw_html: formats.has(Format::RawHtml).then(|| text.to_owned()),
        links: formats.has(Format::Links).then(Vec::new),
        metadata: formats.has(Format::Metadata).then(|| PageMetadata {
            final_url: origin.final_url.to_string(),
            status_code: origin.status_code,
            ..PageMetadata::default()
        }),
        ..PageContent::default()
    };
    if formats.show_content() {
        let mut cut = text.to_owned();
        let truncated = truncate_to(&mut cut, MAX_CONTENT_BYTES);
        let escaped = cut.replace('&', "&amp;").replace('<', "&lt;");
        content.markdown = formats.has(Format::Markdown).then(|| cut.clone());
        content.text = formats.has(Format::Text).then(|| cut.clone());
        content.html = formats
            .has(Format::Html)
            .then(|| format!("<pre>{escaped}</pre>"));
        content.content_source = Some(ContentSource::WholePage);
        if truncated {
            content.truncated = [Format::Markdown, Format::Html, Format::Text]
                .into_iter()
                .filter(|f| formats.has(*f))
                .collect();
        }
    }
    content
}

/// Whether the body shows no text and links nowhere.
fn shows_nothing(document: &Document) -> bool {
    let Some(body) = document.body() else {
        return true;
    };
    let links = body
        .descendants_it()
        .any(|n| n.node_name().as_deref() == Some("a") && n.has_attr("href"));
    !links && markdown::plain_text(&body).trim().is_empty()
}

/// Relative urls resolve against the page's `<base href>`, else the url that answered.
fn base_of(document: &Document, final_url: &Url) -> Url {
    document
        .select_single("base[href]")
        .attr("href")
        .and_then(|href| final_url.join(href.trim()).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .unwrap_or_else(|| final_url.clone())
}

fn remove_excluded(document: &Document, exclude: &[String]) {
    for css in exclude {
        if let Ok(matcher) = Matcher::new(css) {
            document.select_matcher(&matcher).remove();
        }
    }
}

fn fill_content(content: &mut PageContent, chosen: &Document, formats: &Formats) {
    let root = chosen.root();
    if formats.has(Format::Markdown) {
        let rendered = render(&root, Flavor::Markdown, MAX_CONTENT_BYTES);
        if rendered.truncated {
            content.truncated.push(Format::Markdown);
        }
        content.markdown = Some(rendered.text);
    }
    if formats.has(Format::Html) {
        let mut html = shown_part(chosen).inner_html().trim().to_owned();
        let truncated = truncate_to(&mut html, MAX_CONTENT_BYTES);
        if truncated {
            content.truncated.push(Format::Html);
        }
        content.html = Some(html);
    }
    if formats.has(Format::Text) {
        let rendered = render(&root, Flavor::Text, MAX_CONTENT_BYTES);
        if rendered.truncated {
            content.truncated.push(Format::Text);
        }
        content.text = Some(rendered.text);
    }
}

/// What of a document is shown: its body, or a fragment's content (inside the `html`
/// element the parser puts around it).
fn shown_part(document: &Document) -> dom_query::NodeRef<'_> {
    document
        .body()
        .or_else(|| document.root().first_element_child())
        .unwrap_or_else(|| document.root())
}

#[cfg(test)]
mod tests;
