//! What a page says about itself: `<title>`, `<meta>` (description, author, Open Graph,
//! Twitter cards, article times), `<link rel=canonical>`, `lang`, and JSON-LD where the
//! meta tags are silent.

use std::collections::BTreeMap;

use dom_query::Document;
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::engine::extract::collapse_whitespace;

/// The most characters of one value.
const MAX_VALUE: usize = 2_000;
/// The most Open Graph or Twitter entries kept.
const MAX_ENTRIES: usize = 64;
/// The most JSON-LD scripts read, and the most bytes of each.
const MAX_JSON_LD: (usize, usize) = (8, 256 * 1024);

/// A page's metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PageMetadata {
    /// `<title>` (or `og:title`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `<meta name=description>` (or `og:description`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `<link rel=canonical>` (or `og:url`), absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical_url: Option<String>,
    /// `<html lang>` (or `content-language`, `og:locale`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `<meta name=author>`, `article:author` or JSON-LD's `author`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// `article:published_time` or JSON-LD's `datePublished`, as the page wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_time: Option<String>,
    /// `article:modified_time` or JSON-LD's `dateModified`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<String>,
    /// `og:site_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    /// `og:*` properties (`og:title` → `title`), at most 64.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub open_graph: BTreeMap<String, String>,
    /// `twitter:*` names (`twitter:card` → `card`), at most 64.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub twitter: BTreeMap<String, String>,
    /// The url that answered, after redirects.
    pub final_url: String,
    /// The main document's status.
    pub status_code: u16,
}

/// The metadata of `document`, loaded from `final_url` with `status_code`.
pub fn metadata(document: &Document, final_url: &Url, status_code: u16) -> PageMetadata {
    let meta = Meta::read(document);
    let json_ld = JsonLd::read(document);
    let og = |key: &str| meta.open_graph.get(key).cloned();
    let title = first_text(document, "title").or_else(|| og("title"));
    let canonical = document
        .select_single(r#"link[rel~="canonical" i][href]"#)
        .attr("href")
        .or_else(|| og("url").map(Into::into))
        .and_then(|href| final_url.join(href.trim()).ok())
        .map(String::from);
    let language = document
        .select_single("html[lang]")
        .attr("lang")
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .or_else(|| meta.named("content-language"))
        .or_else(|| og("locale"));
    PageMetadata {
        title,
        description: meta.named("description").or_else(|| og("description")),
        canonical_url: canonical,
        language,
        author: meta
            .named("author")
            .or_else(|| meta.property("article:author"))
            .or(json_ld.author),
        published_time: meta
            .property("article:published_time")
            .or(json_ld.published),
        modified_time: meta.property("article:modified_time").or(json_ld.modified),
        site_name: og("site_name"),
        open_graph: meta.open_graph.clone(),
        twitter: meta.twitter.clone(),
        final_url: final_url.to_string(),
        status_code,
    }
}

/// The `<meta>` tags, read once.
#[derive(Default)]
struct Meta {
    by_name: BTreeMap<String, String>,
    by_property: BTreeMap<String, String>,
    open_graph: BTreeMap<String, String>,
    twitter: BTreeMap<String, String>,
}

impl Meta {
    fn read(document: &Document) -> Meta {
        let mut meta = Meta::default();
        for tag in document.select("meta[content]").nodes() {
            let Some(content) = tag
                .attr("content")
                .map(|c| clip(&c))
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let name = tag.attr("name").map(|n| n.trim().to_ascii_lowercase());
            let property = tag.attr("property").map(|p| p.trim().to_ascii_lowercase());
            let equiv = tag
                .attr("http-equiv")
                .map(|p| p.trim().to_ascii_lowercase());
            for key in [&name, &property].into_iter().flatten() {
                if let Some(rest) = key.strip_prefix("og:") {
                    insert(&mut meta.open_graph, rest, &content);
                } else if let Some(rest) = key.strip_prefix("twitter:") {
                    insert(&mut meta.twitter, rest, &content);
                }
            }
            if let Some(name) = name.or(equiv) {
                meta.by_name.entry(name).or_insert_with(|| content.clone());
            }
            if let Some(property) = property {
                meta.by_property.entry(property).or_insert(content);
            }
        }
        meta
    }

    fn named(&self, name: &str) -> Option<String> {
        self.by_name.get(name).cloned()
    }

    fn property(&self, property: &str) -> Option<String> {
        self.by_property.get(property).cloned()
    }
}

fn insert(map: &mut BTreeMap<String, String>, key: &str, value: &str) {
    if map.len() < MAX_ENTRIES && !key.is_empty() && key.len() <= 100 {
        map.entry(key.to_owned())
            .or_insert_with(|| value.to_owned());
    }
}

/// What JSON-LD says of the author and dates, from the first object that says it.
#[derive(Default)]
struct JsonLd {
    author: Option<String>,
    published: Option<String>,
    modified: Option<String>,
}

impl JsonLd {
    fn read(document: &Document) -> JsonLd {
        let mut found = JsonLd::default();
        let scripts = document.select(r#"script[type="application/ld+json" i]"#);
        for script in scripts.nodes().iter().take(MAX_JSON_LD.0) {
            let text = script.text();
            if text.len() > MAX_JSON_LD.1 {
                continue;
            }
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                found.visit(&value, 0);
            }
        }
        found
    }

    fn visit(&mut self, value: &Value, depth: usize) {
        if depth > 4 {
            return;
        }
        match value {
            Value::Array(items) => items.iter().for_each(|v| self.visit(v, depth + 1)),
            Value::Object(object) => {
                if self.author.is_none() {
                    self.author = object.get("author").and_then(author_name);
                }
                let date = |key: &str| object.get(key).and_then(Value::as_str).map(clip);
                self.published = self.published.take().or_else(|| date("datePublished"));
                self.modified = self.modified.take().or_else(|| date("dateModified"));
                if let Some(graph) = object.get("@graph") {
                    self.visit(graph, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// A JSON-LD author: a name, a `{"name"}`, or a list of them (joined).
fn author_name(value: &Value) -> Option<String> {
    let name = match value {
        Value::String(name) => clip(name),
        Value::Object(object) => object.get("name").and_then(Value::as_str).map(clip)?,
        Value::Array(items) => items
            .iter()
            .take(10)
            .filter_map(author_name)
            .collect::<Vec<_>>()
            .join(", "),
        _ => return None,
    };
    (!name.is_empty()).then_some(name)
}

fn first_text(document: &Document, css: &str) -> Option<String> {
    let node = document.select_single(css);
    let text = clip(&node.text());
    (!text.is_empty()).then_some(text)
}

/// Whitespace collapsed, at most [`MAX_VALUE`] characters.
fn clip(text: &str) -> String {
    collapse_whitespace(text).chars().take(MAX_VALUE).collect()
}
