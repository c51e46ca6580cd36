//! Extraction from an HTML document: title, meta, links, visible text and selected data.

use std::collections::HashSet;

use scraper::{ElementRef, Html, Node, Selector};
use serde_json::{Map, Value};
use url::Url;

use super::options::{SelectorSpec, Selectors};
use crate::job::{ErrorKind, JobError};

/// The most links a result lists.
pub const MAX_LINKS: usize = 1_000;
/// The most visible text a result carries, in bytes.
pub const MAX_TEXT_BYTES: usize = 100 * 1024;

/// Elements whose content is never visible text.
const INVISIBLE: &[&str] = &[
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object",
];

/// What a page yields. (A result holds all of it or, for content that is neither HTML nor
/// text, none of it: the contract marks each field optional for that reason.)
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Extracted {
    /// The document's `<title>`.
    #[schema(required = false)]
    pub title: Option<String>,
    /// `<meta name="description">`.
    #[schema(required = false)]
    pub description: Option<String>,
    /// `<link rel="canonical">`, absolute.
    #[schema(required = false)]
    pub canonical: Option<String>,
    /// Absolute http(s) links, without fragments, deduplicated, in page order.
    #[schema(required = false)]
    pub links: Vec<String>,
    /// Whether links were cut at [`MAX_LINKS`].
    #[schema(required = false)]
    pub links_truncated: bool,
    /// Visible text, whitespace collapsed.
    #[schema(required = false)]
    pub text: String,
    /// Whether text was cut at [`MAX_TEXT_BYTES`].
    #[schema(required = false)]
    pub text_truncated: bool,
}

/// One value per named selector.
pub type Data = Map<String, Value>;

fn selector(css: &str) -> Option<Selector> {
    Selector::parse(css).ok()
}

/// Collapses runs of whitespace to single spaces and trims.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn element_text(element: ElementRef<'_>) -> String {
    collapse_whitespace(&element.text().collect::<Vec<_>>().join(" "))
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate_to(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// The most text and attributes all selectors of one job may take, in bytes: nested
/// elements repeat their children's text, so `all` over a deep page grows quadratically.
pub const MAX_SELECTED_BYTES: usize = 1024 * 1024;

/// Extracts everything from `html`, resolving relative urls against `base`; fails when the
/// selectors take more than [`MAX_SELECTED_BYTES`].
pub fn extract(
    html: &str,
    base: &Url,
    selectors: &Selectors,
) -> Result<(Extracted, Data), JobError> {
    let document = Html::parse_document(html);
    let data = data(&document, selectors)?;
    let first = |css: &str| selector(css).and_then(|s| document.select(&s).next());

    let base = first("base[href]")
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| base.join(href).ok())
        .unwrap_or_else(|| base.clone());

    let title = first("title").map(element_text).filter(|t| !t.is_empty());
    let description = first(r#"meta[name="description" i][content]"#)
        .and_then(|m| m.value().attr("content"))
        .map(collapse_whitespace);
    let canonical = first(r#"link[rel~="canonical" i][href]"#)
        .and_then(|l| l.value().attr("href"))
        .and_then(|href| base.join(href.trim()).ok())
        .map(String::from);

    let (links, links_truncated) = links(&document, &base);
    let (text, text_truncated) = visible_text(&document);
    let extracted = Extracted {
        title,
        description,
        canonical,
        links,
        links_truncated,
        text,
        text_truncated,
    };
    Ok((extracted, data))
}

/// The values of the named selectors in `html` alone.
pub fn select_data(html: &str, selectors: &Selectors) -> Result<Data, JobError> {
    data(&Html::parse_document(html), selectors)
}

/// One value per selector; fails when they take more than [`MAX_SELECTED_BYTES`].
fn data(document: &Html, selectors: &Selectors) -> Result<Data, JobError> {
    let mut budget = MAX_SELECTED_BYTES;
    let mut data = Map::new();
    for (name, spec) in selectors {
        let value = select(document, spec, &mut budget).ok_or_else(|| {
            JobError::new(
                ErrorKind::TooLarge,
                format!(
                    "payload.selectors.{name}: the selectors matched more than {MAX_SELECTED_BYTES} bytes of text; select fewer or smaller elements"
                ),
            )
        })?;
        data.insert(name.clone(), value);
    }
    Ok(data)
}

/// What a text body (not HTML) yields: its text.
pub fn extract_text(text: &str) -> Extracted {
    let mut text = collapse_whitespace(text);
    let text_truncated = truncate_to(&mut text, MAX_TEXT_BYTES);
    Extracted {
        title: None,
        description: None,
        canonical: None,
        links: Vec::new(),
        links_truncated: false,
        text,
        text_truncated,
    }
}

/// No match for any selector (a body that is not HTML).
pub fn no_matches(selectors: &Selectors) -> Data {
    selectors.keys().map(|n| (n.clone(), Value::Null)).collect()
}

impl Extracted {
    /// Whether the page showed nothing: no title, no visible text, no links.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.shows_nothing()
    }

    /// Whether the page's body showed nothing to read or follow (a title alone is what a
    /// script-rendered shell or a challenge interstitial also has).
    pub fn shows_nothing(&self) -> bool {
        self.text.is_empty() && self.links.is_empty()
    }
}

fn links(document: &Html, base: &Url) -> (Vec<String>, bool) {
    let Some(anchors) = selector("a[href], area[href]") else {
        return (Vec::new(), false);
    };
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for anchor in document.select(&anchors) {
        let Some(mut url) = anchor
            .value()
            .attr("href")
            .and_then(|href| base.join(href.trim()).ok())
        else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        let url = String::from(url);
        if seen.insert(url.clone()) {
            if links.len() == MAX_LINKS {
                return (links, true);
            }
            links.push(url);
        }
    }
    (links, false)
}

fn visible_text(document: &Html) -> (String, bool) {
    let root = selector("body")
        .and_then(|s| document.select(&s).next())
        .map(|body| *body)
        .unwrap_or_else(|| document.tree.root());
    let mut text = String::new();
    // Depth-first with an explicit stack: deeply nested pages cannot overflow the call stack.
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match node.value() {
            Node::Text(t) => {
                for word in t.split_whitespace() {
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(word);
                }
                if text.len() > MAX_TEXT_BYTES {
                    break;
                }
            }
            Node::Element(e) if INVISIBLE.contains(&e.name()) => {}
            Node::Element(e) if e.attr("hidden").is_some() => {}
            _ => {
                let children: Vec<_> = node.children().collect();
                stack.extend(children.into_iter().rev());
            }
        }
    }
    let truncated = truncate_to(&mut text, MAX_TEXT_BYTES);
    (text, truncated)
}

/// The value one selector takes, charged to `budget`; `None` when the budget runs out.
fn select(document: &Html, spec: &SelectorSpec, budget: &mut usize) -> Option<Value> {
    let Some(css) = selector(&spec.selector) else {
        return Some(Value::Null);
    };
    let value_of = |element: ElementRef<'_>| -> Option<Value> {
        match &spec.attr {
            Some(attr) => element
                .value()
                .attr(attr)
                .map(|v| Value::String(v.to_owned())),
            None => Some(Value::String(element_text(element))),
        }
    };
    let mut charge = |value: Value| -> Option<Value> {
        let size = value.as_str().map_or(0, str::len);
        *budget = budget.checked_sub(size)?;
        Some(value)
    };
    let mut matches = document.select(&css);
    if spec.all {
        let mut values = Vec::new();
        for value in matches.filter_map(value_of) {
            values.push(charge(value)?);
        }
        Some(Value::Array(values))
    } else {
        match matches.next().and_then(value_of) {
            Some(value) => charge(value),
            None => Some(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!doctype html><html><head>
        <title> The   Page </title>
        <meta name="Description" content="A  test page">
        <link rel="canonical" href="/canonical">
        <style>.x { color: red }</style>
        </head><body>
        <h1>Hello <b>world</b></h1>
        <script>var hidden = 1;</script>
        <p hidden>secret</p>
        <a href="/a#top">A</a> <a href="/a">A again</a> <a href="https://other.example/b">B</a>
        <a href="mailto:x@example.com">mail</a> <a href="javascript:void(0)">js</a>
        <ul><li class="item" data-id="1">one</li><li class="item" data-id="2">two</li></ul>
        </body></html>"#;

    fn spec(selector: &str, attr: Option<&str>, all: bool) -> SelectorSpec {
        SelectorSpec {
            selector: selector.into(),
            attr: attr.map(String::from),
            all,
        }
    }

    #[test]
    fn extracts_metadata_links_and_text() {
        let base = Url::parse("http://site.test/dir/page").expect("url");
        let selectors: Selectors = [
            ("heading".to_owned(), spec("h1", None, false)),
            ("ids".to_owned(), spec("li.item", Some("data-id"), true)),
            ("missing".to_owned(), spec(".nothing", None, false)),
        ]
        .into_iter()
        .collect();
        let (out, data) = extract(PAGE, &base, &selectors).expect("extracts");
        assert_eq!(out.title.as_deref(), Some("The Page"));
        assert_eq!(out.description.as_deref(), Some("A test page"));
        assert_eq!(out.canonical.as_deref(), Some("http://site.test/canonical"));
        assert_eq!(out.links, ["http://site.test/a", "https://other.example/b"]);
        assert_eq!(out.text, "Hello world A A again B mail js one two");
        assert_eq!(data["heading"], "Hello world");
        assert_eq!(data["ids"], serde_json::json!(["1", "2"]));
        assert_eq!(data["missing"], Value::Null);
    }

    #[test]
    fn caps_links_and_text() {
        let mut page = String::from("<body>");
        for i in 0..1_500 {
            page.push_str(&format!("<a href='/p{i}'>{}</a>", "word ".repeat(20)));
        }
        let base = Url::parse("http://site.test/").expect("url");
        let (out, _) = extract(&page, &base, &Selectors::new()).expect("extracts");
        assert_eq!(out.links.len(), MAX_LINKS);
        assert!(out.links_truncated);
        assert!(out.text.len() <= MAX_TEXT_BYTES && out.text_truncated);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut text = "é".repeat(10);
        assert!(truncate_to(&mut text, 5));
        assert_eq!(text, "éé");
    }

    #[test]
    fn selecting_every_nested_element_is_bounded() {
        // 2,000 nested divs of 100 bytes: each div's text holds all below it (~100 MB in all).
        let depth = 2_000;
        let page = format!(
            "<html><body>{}{}</body></html>",
            "<div>".to_owned() + &"x".repeat(100),
            format!("<div>{}", "y".repeat(100)).repeat(depth - 1) + &"</div>".repeat(depth)
        );
        let base = Url::parse("https://example.com/").expect("url");
        let selectors: Selectors = [("all".to_owned(), spec("div", None, true))].into();
        let error = extract(&page, &base, &selectors).expect_err("over the budget");
        assert_eq!(error.kind, ErrorKind::TooLarge);
        assert!(
            error.message.contains("payload.selectors.all"),
            "{}",
            error.message
        );
    }
}
