//! What is around a page's content rather than in it: navigation, headers and footers of
//! the site, sidebars, banners, cookie notices, ads, "related" boxes, comment threads. Used
//! where the readability pass does not decide (pages that are not articles). The names are
//! Readability's own "unlikely candidate" words, with the few it misses added.

use dom_query::NodeRef;

use super::markdown::plain_text;

/// Elements that are never content wherever they stand.
const AROUND: &[&str] = &["nav", "aside", "menu", "dialog"];
/// Elements that are the site's, not the content's, when no `article` or `main` holds them.
const SITE_FRAME: &[&str] = &["header", "footer"];
/// ARIA roles of what surrounds content.
const ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "dialog",
    "alertdialog",
    "menu",
    "menubar",
    "toolbar",
];
/// Words that mark an element as surrounding content when one of its class or id names
/// holds them as a part (`site-header`, `related_posts`; a plural `s` allowed). Parts, not
/// substrings: `shared-history` must not read as `share`.
const UNLIKELY: &[&str] = &[
    "ad",
    "adsbygoogle",
    "advert",
    "advertisement",
    "agegate",
    "banner",
    "breadcrumb",
    "combx",
    "comment",
    "community",
    "consent",
    "cookie",
    "disqus",
    "extra",
    "footer",
    "gdpr",
    "header",
    "legend",
    "masthead",
    "menu",
    "modal",
    "nav",
    "navbar",
    "navigation",
    "newsletter",
    "pager",
    "pagination",
    "popup",
    "promo",
    "recommended",
    "related",
    "remark",
    "replies",
    "rss",
    "share",
    "sharing",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "social",
    "sponsor",
    "sponsored",
    "subscribe",
    "supplemental",
    "toolbar",
];
/// Words distinctive enough to mark a class name wherever they stand in it
/// (`cookieconsent`, `js-newsletter-form`).
const UNLIKELY_ANYWHERE: &[&str] = &[
    "cookie",
    "consent",
    "gdpr",
    "newsletter",
    "advert",
    "disqus",
    "breadcrumb",
    "sidebar",
    "skyscraper",
    "shoutbox",
    "agegate",
];
/// Parts that keep an element despite an unlikely one (`comment-content`, `entry-header`).
const MAYBE: &[&str] = &[
    "article", "body", "column", "content", "main", "post", "thread", "message", "entry", "story",
    "text",
];

/// How many elements one strip may look at, ancestors and descendants included: past it a
/// hostile page keeps what is left rather than cost a worker quadratic time.
const WORK: usize = 2_000_000;

/// Removes what surrounds the content from the subtree under `scope`, top down: a removed
/// element's subtree is not looked at.
pub fn strip(scope: &NodeRef<'_>) {
    let mut work = WORK;
    let mut stack: Vec<NodeRef<'_>> = scope.element_children();
    stack.reverse();
    while let Some(element) = stack.pop() {
        work = work.saturating_sub(1);
        if work == 0 {
            return;
        }
        if is_around(&element, &mut work) && !holds_content(&element, &mut work) {
            element.remove_from_parent();
            continue;
        }
        let mut children = element.element_children();
        children.reverse();
        stack.extend(children);
    }
}

fn is_around(element: &NodeRef<'_>, work: &mut usize) -> bool {
    let name = element.node_name().unwrap_or_default();
    if AROUND.contains(&&*name) {
        return true;
    }
    if SITE_FRAME.contains(&&*name) && !inside_content(element, work) {
        return true;
    }
    if element
        .attr("role")
        .is_some_and(|role| ROLES.contains(&role.trim().to_ascii_lowercase().as_str()))
        || element
            .attr("aria-modal")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return true;
    }
    if matches!(
        &*name,
        "body" | "html" | "main" | "article" | "a" | "td" | "th" | "tr" | "li"
    ) {
        return false;
    }
    let class = element.class().unwrap_or_default().to_ascii_lowercase();
    let id = element.id_attr().unwrap_or_default().to_ascii_lowercase();
    // An id of three parts or more is most often a section's heading made a slug
    // (`sharing-with-multiple-developers`): its words say nothing of the element's role.
    let short_id = id.split(['-', '_']).filter(|p| !p.is_empty()).count() <= 2;
    let parts: Vec<&str> = class
        .split_whitespace()
        .chain(id.split_whitespace().filter(|_| short_id))
        .flat_map(|name| name.split(['-', '_']))
        .filter(|part| !part.is_empty())
        .collect();
    let has = |words: &[&str]| {
        parts.iter().any(|part| {
            words
                .iter()
                .any(|w| part == w || part.strip_suffix('s') == Some(w))
        })
    };
    let unlikely = has(UNLIKELY)
        || class
            .split_whitespace()
            .any(|name| UNLIKELY_ANYWHERE.iter().any(|w| name.contains(w)));
    unlikely && !has(MAYBE)
}

/// Whether an `article` or `main` holds the element (its header is the content's).
fn inside_content(element: &NodeRef<'_>, work: &mut usize) -> bool {
    element.ancestors_it(None).any(|a| {
        *work = work.saturating_sub(1);
        matches!(a.node_name().as_deref(), Some("article" | "main"))
            || a.attr("role").is_some_and(|r| r.trim() == "main")
    })
}

/// Whether the element holds what is plainly content: the page's heading, its `main`, or
/// an `article` (a wrapper named `has-sidebar` must not take the page with it).
fn holds_content(element: &NodeRef<'_>, work: &mut usize) -> bool {
    element.descendants_it().any(|node| {
        *work = work.saturating_sub(1);
        *work == 0
            || matches!(node.node_name().as_deref(), Some("h1" | "main" | "article"))
            || node.attr("role").is_some_and(|r| r.trim() == "main")
    })
}

/// Removes, from a page whose content is not Readability's pick, what its markup does not
/// name but its shape gives away: clusters of links before the page's `h1` (a site's
/// menu in plain `div`s) and short lines of small print (`© 2026 …`).
pub fn strip_by_shape(root: &NodeRef<'_>) {
    let heading = root
        .descendants_it()
        .find(|n| n.node_name().as_deref() == Some("h1"));
    if let Some(heading) = heading {
        let mut stack = root.element_children();
        stack.reverse();
        while let Some(element) = stack.pop() {
            if element.id == heading.id {
                break;
            }
            if heading.ancestors_it(None).any(|a| a.id == element.id) {
                let mut children = element.element_children();
                children.reverse();
                stack.extend(children);
            } else if is_link_cluster(&element) {
                element.remove_from_parent();
            }
        }
    }
    let small_print: Vec<NodeRef<'_>> = root
        .descendants_it()
        .filter(|n| n.is_element() && is_small_print(n))
        .collect();
    for element in small_print {
        element.remove_from_parent();
    }
}

/// Two links or more, and most of the words in them.
fn is_link_cluster(element: &NodeRef<'_>) -> bool {
    let links: Vec<NodeRef<'_>> = element
        .descendants_it()
        .filter(|n| n.node_name().as_deref() == Some("a"))
        .collect();
    if links.len() < 2 {
        return false;
    }
    let words = |node: &NodeRef<'_>| plain_text(node).split_whitespace().count();
    let linked: usize = links.iter().map(words).sum();
    linked * 10 >= words(element) * 6
}

/// A copyright line: a leaf block of under 30 words starting with `©` or `Copyright`.
fn is_small_print(element: &NodeRef<'_>) -> bool {
    if element.element_children().iter().any(|c| {
        !matches!(
            c.node_name().as_deref(),
            Some("a" | "span" | "small" | "b" | "strong" | "br")
        )
    }) {
        return false;
    }
    let text = plain_text(element);
    let text = text.trim_start();
    (text.starts_with('©') || text.to_ascii_lowercase().starts_with("copyright"))
        && text.split_whitespace().count() < 30
}
