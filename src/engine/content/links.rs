//! A page's links: absolute, without fragments, each once, with the text that names it and
//! whether it stays on the page's site.

use std::collections::HashMap;

use dom_query::Document;
use serde::Serialize;
use url::Url;

use super::markdown::plain_text;
use crate::engine::extract::collapse_whitespace;

/// The most links a result lists.
pub const MAX_LINKS: usize = 1_000;
/// The most characters of a link's text.
pub const MAX_LINK_TEXT: usize = 300;

/// One link of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PageLink {
    /// Absolute http(s) url, without its fragment.
    pub url: String,
    /// The link's text (or its image's `alt`, `aria-label` or `title`), whitespace
    /// collapsed, at most 300 characters; empty when it has none.
    pub text: String,
    /// Whether it points to the page's own host (`www.` aside).
    pub internal: bool,
}

/// The links of `document`, resolved against `base`, in page order; `true` when more than
/// [`MAX_LINKS`] were found.
pub fn links(document: &Document, base: &Url) -> (Vec<PageLink>, bool) {
    let mut found: Vec<PageLink> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut truncated = false;
    for anchor in document.select("a[href], area[href]").nodes() {
        let Some(mut url) = anchor
            .attr("href")
            .and_then(|href| base.join(href.trim()).ok())
        else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        let text = cut(&name_of(anchor));
        match seen.get(url.as_str()) {
            // A link named only by a later anchor (an image first, its title after) takes
            // that name.
            Some(&at) if found[at].text.is_empty() => found[at].text = text,
            Some(_) => {}
            None if found.len() == MAX_LINKS => {
                truncated = true;
                break;
            }
            None => {
                seen.insert(url.to_string(), found.len());
                found.push(PageLink {
                    internal: same_site(&url, base),
                    url: url.into(),
                    text,
                });
            }
        }
    }
    (found, truncated)
}

fn name_of(anchor: &dom_query::NodeRef<'_>) -> String {
    let text = plain_text(anchor);
    let text = collapse_whitespace(&text);
    if !text.is_empty() {
        return text;
    }
    let image_alt = anchor
        .descendants_it()
        .filter(|n| n.node_name().as_deref() == Some("img"))
        .find_map(|img| img.attr("alt").filter(|a| !a.trim().is_empty()));
    image_alt
        .or_else(|| anchor.attr("aria-label"))
        .or_else(|| anchor.attr("title"))
        .map(|t| collapse_whitespace(&t))
        .unwrap_or_default()
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_LINK_TEXT).collect()
}

/// Whether `url` is on `base`'s host, a leading `www.` on either ignored.
fn same_site(url: &Url, base: &Url) -> bool {
    let bare = |u: &Url| {
        u.host_str()
            .map(|h| h.trim_start_matches("www.").to_ascii_lowercase())
    };
    bare(url).is_some() && bare(url) == bare(base)
}
