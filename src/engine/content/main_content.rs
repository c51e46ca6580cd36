//! Choosing a page's content: the elements a job's `include_selectors` name, the whole
//! page, or its main content. The main content is what Readability (`dom_smoothie`, a port
//! of Firefox's reader view) finds, unless it keeps too little of what the page shows once
//! its surroundings are stripped: listings, product pages, documentation and forums are
//! not articles, and there Readability keeps one item, one review or nothing.

use dom_query::{Document, Matcher, NodeRef};
use dom_smoothie::{Article, Config, Readability};
use serde::Serialize;
use url::Url;

use super::boilerplate;
use super::markdown::plain_text;

/// Past this depth Readability is not run: its scoring grows with depth times size (a
/// 1,000-deep page took it 2 s here), and no real article is nested so deep.
pub const MAX_READABLE_DEPTH: usize = 120;
/// Past this many elements Readability is not run either.
pub const MAX_READABLE_ELEMENTS: usize = 100_000;
/// The share of the stripped page's words Readability's pick must keep to be taken when
/// the page does not read as an article.
pub const MIN_SHARE: f64 = 0.25;

/// How the content was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentSource {
    /// Readability's pick of the main content.
    Article,
    /// The page (its `main` when it has one) without navigation, headers, footers,
    /// sidebars, banners and the like: Readability kept too little or was not run.
    Page,
    /// The elements the job's `include_selectors` matched.
    Selectors,
    /// The whole page (`only_main_content: false`).
    WholePage,
}

/// What content to choose.
pub struct Choice<'a> {
    /// Only the main content (else the whole page).
    pub only_main_content: bool,
    /// Elements to take as the content, overriding the main content.
    pub include: &'a [String],
}

/// The chosen content of `document` (whose excluded elements are already gone) as a
/// document of its own. A page that declares itself a product, a listing or a thread is
/// not given to Readability at all.
pub fn choose(document: Document, base: &Url, choice: &Choice<'_>) -> (Document, ContentSource) {
    if !choice.include.is_empty() {
        return (
            selected(&document, choice.include),
            ContentSource::Selectors,
        );
    }
    if !choice.only_main_content {
        return (document, ContentSource::WholePage);
    }
    // What surrounds content goes before Readability looks: it then never mistakes a
    // site's header, navigation or an advert inside the article for content.
    boilerplate::strip(&document.root());
    let heading = first_heading(&document);
    if !readable(&document) || declares_other_than_article(&document) {
        return (main_only(document), ContentSource::Page);
    }
    let config = Config {
        max_elements_to_parse: MAX_READABLE_ELEMENTS,
        // Classes stay for the cleaning after (a code block's `language-x` is kept there).
        keep_classes: true,
        ..Config::default()
    };
    let mut readability =
        match Readability::with_document(document, Some(base.as_str()), Some(config)) {
            Ok(readability) => readability,
            Err(_) => return (Document::fragment(""), ContentSource::Page),
        };
    // A page that reads as an article (paragraphs of prose) is taken as Readability picks
    // it; any other is compared with its stripped self, so only that needs a copy.
    let reads_as_article = readability.is_probably_readable();
    let unparsed = (!reads_as_article).then(|| readability.doc.clone());
    let article = readability.parse();
    let page = || main_only(unparsed.unwrap_or(readability.doc));
    match article {
        Ok(article) if reads_as_article => (titled(&article, heading), ContentSource::Article),
        Ok(article) => {
            let picked = titled(&article, heading);
            let page = page();
            let (kept, shown) = (words(&picked.root()), words(&page.root()));
            if shown == 0 || kept as f64 >= MIN_SHARE * shown as f64 {
                (picked, ContentSource::Article)
            } else {
                (page, ContentSource::Page)
            }
        }
        Err(_) => (page(), ContentSource::Page),
    }
}

/// The elements matched by any of `selectors`, in page order, each once (a match inside
/// another is part of it).
fn selected(document: &Document, selectors: &[String]) -> Document {
    let matchers: Vec<Matcher> = selectors
        .iter()
        .filter_map(|css| Matcher::new(css).ok())
        .collect();
    let mut html = String::new();
    let mut stack = document.root().element_children();
    stack.reverse();
    while let Some(element) = stack.pop() {
        if matchers.iter().any(|m| element.is_match(m)) {
            html.push_str(&element.html());
            continue;
        }
        let mut children = element.element_children();
        children.reverse();
        stack.extend(children);
    }
    Document::fragment(html)
}

/// The (stripped) page, only its `main` when it has one.
fn main_only(document: Document) -> Document {
    let main = document
        .try_select("main, [role=main]")
        .and_then(|found| found.nodes().first().cloned());
    if let (Some(main), Some(body)) = (main, document.body()) {
        main.remove_from_parent();
        body.remove_children();
        body.append_child(&main);
    }
    boilerplate::strip_by_shape(&document.root());
    document
}

/// Readability's pick, headed by the page's `h1` (or the article's title) when it has no
/// `h1` of its own: Readability takes out a heading that repeats the title.
fn titled(article: &Article, page_heading: Option<String>) -> Document {
    let title = page_heading.unwrap_or_else(|| article.title.trim().to_owned());
    if title.is_empty() || article.content.contains("<h1") {
        return Document::fragment(article.content.clone());
    }
    let heading = title.replace('&', "&amp;").replace('<', "&lt;");
    Document::fragment(format!("<h1>{heading}</h1>{}", article.content))
}

/// Kinds of page whose content is not one run of prose: Readability would keep a long
/// review of a product and drop its price and specifications, or keep a question and drop
/// its answers.
const NOT_ARTICLES: &[&str] = &[
    "product",
    "productgroup",
    "itemlist",
    "collectionpage",
    "searchresultspage",
    "qapage",
    "profilepage",
    "discussionforumposting",
];

/// Whether the page says (Open Graph's `og:type`, JSON-LD's `@type`) it is a product, a
/// listing, a search result, a forum thread or a question.
fn declares_other_than_article(document: &Document) -> bool {
    let og_type = document
        .select_single(r#"meta[property="og:type" i][content]"#)
        .attr("content")
        .map(|t| t.trim().to_ascii_lowercase());
    if og_type.is_some_and(|t| t == "product" || t.starts_with("product.")) {
        return true;
    }
    let scripts = document.select(r#"script[type="application/ld+json" i]"#);
    scripts.nodes().iter().take(8).any(|script| {
        let text = script.text();
        text.len() <= 256 * 1024
            && serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|value| {
                top_types(&value)
                    .iter()
                    .any(|t| NOT_ARTICLES.contains(&t.as_str()))
            })
    })
}

/// The `@type`s of a JSON-LD document's top objects (and of its `@graph`), lower case.
fn top_types(value: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let objects: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(object) => match object.get("@graph") {
            Some(Value::Array(graph)) => graph.iter().chain([value]).collect(),
            _ => vec![value],
        },
        _ => Vec::new(),
    };
    objects
        .iter()
        .take(64)
        .filter_map(|object| object.get("@type"))
        .flat_map(|types| match types {
            Value::String(one) => vec![one.to_ascii_lowercase()],
            Value::Array(many) => many
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The text of the page's first `h1`, when it has one.
fn first_heading(document: &Document) -> Option<String> {
    let heading = document.select_single("h1");
    let text = heading
        .text()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!text.is_empty()).then_some(text)
}

/// Whether Readability may run on `document` in bounded time.
fn readable(document: &Document) -> bool {
    let mut elements = 0;
    let mut stack = vec![(document.root(), 0usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_READABLE_DEPTH {
            return false;
        }
        elements += 1;
        if elements > MAX_READABLE_ELEMENTS {
            return false;
        }
        stack.extend(node.element_children().into_iter().map(|c| (c, depth + 1)));
    }
    true
}

fn words(root: &NodeRef<'_>) -> usize {
    plain_text(root).split_whitespace().count()
}
