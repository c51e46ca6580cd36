//! Readying chosen content for output: what no visitor sees goes, urls become absolute,
//! lazily loaded images get their real source, and only attributes a reader needs stay.

use dom_query::NodeRef;
use url::Url;

use super::markdown::is_hidden_element;

/// Attributes kept in the cleaned HTML.
const KEPT: &[&str] = &[
    "href", "src", "alt", "title", "colspan", "rowspan", "start", "lang", "dir", "datetime",
    "scope", "class",
];

/// Where lazily loaded images keep their real source, most common first.
const LAZY_SOURCES: &[&str] = &[
    "data-src",
    "data-lazy-src",
    "data-original",
    "data-url",
    "data-hi-res-src",
    "data-lazy",
];

/// Cleans the subtree under `root` in place.
pub fn clean(root: &NodeRef<'_>, base: &Url) {
    let elements: Vec<NodeRef<'_>> = root.descendants_it().filter(NodeRef::is_element).collect();
    for element in elements {
        if element.parent().is_none() {
            continue; // under an element already removed
        }
        if is_invisible(&element) {
            element.remove_from_parent();
            continue;
        }
        match element.node_name().as_deref() {
            Some("a" | "area") => absolute_href(&element, base),
            Some("img") => real_source(&element, base),
            Some("pre" | "code") => keep_language_class(&element),
            _ => element.remove_attr("class"),
        }
        element.retain_attrs(KEPT);
    }
}

/// Hidden by name (scripts, styles, controls), by `hidden`, by `aria-hidden`, or by an
/// inline style: the same in the served HTML and the rendered DOM.
fn is_invisible(element: &NodeRef<'_>) -> bool {
    if element
        .node_name()
        .is_some_and(|name| is_hidden_element(&name))
    {
        return true;
    }
    if element.has_attr("hidden")
        || element
            .attr("aria-hidden")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return true;
    }
    element.attr("style").is_some_and(|style| {
        let style: String = style.chars().filter(|c| !c.is_whitespace()).collect();
        let style = style.to_ascii_lowercase();
        style.contains("display:none") || style.contains("visibility:hidden")
    })
}

/// An absolute http(s) or mailto `href`; any other (`javascript:`) is dropped.
fn absolute_href(element: &NodeRef<'_>, base: &Url) {
    let Some(href) = element.attr("href") else {
        return;
    };
    match base.join(href.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https" | "mailto") => {
            element.set_attr("href", url.as_str());
        }
        _ => element.remove_attr("href"),
    }
}

/// The image's real, absolute source: a lazy loader's attribute when `src` is missing, a
/// `data:` placeholder, or a known placeholder file.
fn real_source(element: &NodeRef<'_>, base: &Url) {
    let src = element
        .attr("src")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let lazy = LAZY_SOURCES
        .iter()
        .find_map(|name| element.attr(name).filter(|v| !v.trim().is_empty()))
        .map(|v| v.trim().to_owned())
        .or_else(|| first_candidate(element.attr("data-srcset").as_deref()))
        .or_else(|| first_candidate(element.attr("srcset").as_deref()));
    let chosen = match lazy {
        Some(lazy) if is_placeholder(&src) => lazy,
        _ => src,
    };
    match base.join(&chosen) {
        Ok(url) if !chosen.is_empty() && matches!(url.scheme(), "http" | "https") => {
            element.set_attr("src", url.as_str());
        }
        _ => element.remove_attr("src"),
    }
}

fn is_placeholder(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    src.is_empty()
        || lower.starts_with("data:")
        || [
            "placeholder",
            "blank.gif",
            "spacer.gif",
            "pixel.gif",
            "1x1",
            "lazy",
        ]
        .iter()
        .any(|p| lower.contains(p))
}

/// The first url of a `srcset`.
fn first_candidate(srcset: Option<&str>) -> Option<String> {
    let first = srcset?.split(',').next()?.split_whitespace().next()?;
    (!first.is_empty()).then(|| first.to_owned())
}

/// Keeps only a `language-x`/`lang-x` class (the code's language).
fn keep_language_class(element: &NodeRef<'_>) {
    let Some(class) = element.class() else {
        return;
    };
    let kept: Vec<&str> = class
        .split_whitespace()
        .filter(|c| c.starts_with("language-") || c.starts_with("lang-"))
        .collect();
    if kept.is_empty() {
        element.remove_attr("class");
    } else {
        element.set_attr("class", &kept.join(" "));
    }
}
