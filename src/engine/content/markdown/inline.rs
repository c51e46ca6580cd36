//! Inline content: text with its whitespace collapsed and escaped, links, images,
//! emphasis, code spans and line breaks, written into the paragraph being built.

use dom_query::NodeRef;

use super::element::{Role, role};
use super::{MAX_DEPTH, Renderer, element_starts_spaced, escape, one_line, plain_text};
use crate::engine::extract::collapse_whitespace;

impl Renderer {
    /// Appends page text to a paragraph: whitespace collapsed, escaped for Markdown.
    pub(super) fn text(&mut self, text: &str, paragraph: &mut String) {
        if text.is_empty() {
            return;
        }
        let starts_space = text.starts_with(char::is_whitespace);
        if starts_space && !paragraph.is_empty() && !paragraph.ends_with([' ', '\n']) {
            paragraph.push(' ');
        }
        let before = paragraph.len();
        let mut words = text.split_whitespace().peekable();
        let had_words = words.peek().is_some();
        while let Some(word) = words.next() {
            if self.markdown() {
                escape::push_word(paragraph, word);
            } else {
                paragraph.push_str(word);
            }
            if words.peek().is_some() {
                paragraph.push(' ');
            }
        }
        if had_words && text.ends_with(char::is_whitespace) {
            paragraph.push(' ');
        }
        self.written += paragraph.len() - before;
    }

    pub(super) fn inline_children(
        &mut self,
        element: &NodeRef<'_>,
        out: &mut String,
        depth: usize,
    ) {
        let mut child = element.first_child();
        while let Some(current) = child {
            if self.spent() {
                return;
            }
            if current.is_text() {
                self.text(&current.text(), out);
            } else if current.is_element() {
                self.inline(&current, out, depth + 1);
            }
            child = current.next_sibling();
        }
    }

    /// Renders an element inside a paragraph.
    pub(super) fn inline(&mut self, element: &NodeRef<'_>, out: &mut String, depth: usize) {
        if depth >= MAX_DEPTH {
            let text = plain_text(element);
            self.text(&text, out);
            return;
        }
        let name = element.node_name().unwrap_or_default();
        match &*name {
            "br" => self.line_break(out),
            "a" => self.link(element, out, depth),
            "img" => self.image(element, out),
            "strong" | "b" => self.emphasis(element, out, depth, "**"),
            "em" | "i" | "cite" | "dfn" | "var" => self.emphasis(element, out, depth, "*"),
            "del" | "s" | "strike" => self.emphasis(element, out, depth, "~~"),
            "code" | "kbd" | "samp" | "tt" => self.code_span(element, out),
            _ => match role(&name) {
                Role::Hidden => {}
                Role::Inline => self.inline_children(element, out, depth),
                // A block inside a paragraph (a card inside a link, say) is a run of words.
                _ => {
                    self.text(" ", out);
                    self.inline_children(element, out, depth);
                    self.text(" ", out);
                }
            },
        }
    }

    pub(super) fn line_break(&mut self, out: &mut String) {
        let kept = out.trim_end_matches(' ').len();
        out.truncate(kept);
        if out.is_empty() || out.ends_with('\n') {
            return;
        }
        // A hard break once the paragraph is done (`flush`), where a trailing one is dropped.
        out.push('\n');
    }

    /// Wraps the element's content in `mark` (Markdown only), spaces kept outside.
    pub(super) fn emphasis(
        &mut self,
        element: &NodeRef<'_>,
        out: &mut String,
        depth: usize,
        mark: &str,
    ) {
        let mut inner = String::new();
        self.inline_children(element, &mut inner, depth);
        let trimmed = inner.trim_matches(|c: char| c == ' ' || c == '\n');
        if trimmed.is_empty() {
            if !inner.is_empty() {
                self.text(" ", out);
            }
            return;
        }
        if inner.starts_with(' ') && !out.is_empty() && !out.ends_with([' ', '\n']) {
            out.push(' ');
        }
        if self.markdown() && !trimmed.contains('\n') {
            out.push_str(mark);
            out.push_str(trimmed);
            out.push_str(mark);
        } else {
            out.push_str(trimmed);
        }
        if inner.ends_with(' ') {
            out.push(' ');
        }
    }

    pub(super) fn code_span(&mut self, element: &NodeRef<'_>, out: &mut String) {
        let text = plain_text(element);
        let text = collapse_whitespace(&text);
        if text.is_empty() {
            return;
        }
        if !out.is_empty() && !out.ends_with([' ', '\n']) && element_starts_spaced(element) {
            out.push(' ');
        }
        self.written += text.len();
        if self.markdown() {
            out.push_str(&escape::code_span(&text));
        } else {
            out.push_str(&text);
        }
    }

    pub(super) fn link(&mut self, element: &NodeRef<'_>, out: &mut String, depth: usize) {
        let mut inner = String::new();
        self.inline_children(element, &mut inner, depth);
        let text = one_line(&inner);
        if inner.starts_with(' ') && !out.is_empty() && !out.ends_with([' ', '\n']) {
            out.push(' ');
        }
        let href = element.attr("href").filter(|h| !h.is_empty());
        match href {
            Some(href) if self.markdown() && !text.is_empty() => {
                out.push('[');
                out.push_str(&text);
                out.push_str("](");
                out.push_str(&escape::destination(&href));
                out.push(')');
                self.written += href.len() + 4;
            }
            _ => out.push_str(&text),
        }
        if inner.ends_with(' ') {
            out.push(' ');
        }
    }

    pub(super) fn image(&mut self, element: &NodeRef<'_>, out: &mut String) {
        if !self.markdown() {
            return;
        }
        let Some(src) = element
            .attr("src")
            .filter(|s| !s.is_empty() && !s.starts_with("data:"))
        else {
            return;
        };
        let alt = element.attr("alt").unwrap_or_default();
        let mut escaped = String::new();
        for (i, word) in alt.split_whitespace().enumerate() {
            if i > 0 {
                escaped.push(' ');
            }
            escape::push_word(&mut escaped, word);
        }
        out.push_str("![");
        out.push_str(&escaped);
        out.push_str("](");
        out.push_str(&escape::destination(&src));
        out.push(')');
        self.written += src.len() + escaped.len() + 5;
    }
}
