//! Lists: one item per element child, continuation lines indented under the marker.

use dom_query::NodeRef;

use super::element::{Role, role};
use super::{Block, Kind, MAX_NESTING, Renderer};

/// The most an ordered list's `start` may say.
const MAX_START: i64 = 999_999_999;

impl Renderer {
    /// A `ul` or `ol`; `None` when no item shows anything.
    pub(super) fn list(
        &mut self,
        element: &NodeRef<'_>,
        ordered: bool,
        depth: usize,
    ) -> Option<Block> {
        if self.nesting >= MAX_NESTING {
            let blocks = self.blocks(element, depth);
            return (!blocks.is_empty()).then(|| Block::other(super::join(&blocks)));
        }
        self.nesting += 1;
        let items: Vec<Vec<Block>> = element
            .element_children()
            .iter()
            .filter(|child| role(&child.node_name().unwrap_or_default()) != Role::Hidden)
            .map(|item| self.blocks(item, depth + 1))
            .filter(|blocks| !blocks.is_empty())
            .collect();
        self.nesting -= 1;
        if items.is_empty() {
            return None;
        }
        // Tight when each item is at most one paragraph (and lists below it).
        let tight = items.iter().all(|blocks| {
            blocks.iter().filter(|b| b.kind != Kind::List).count() <= 1
                && blocks.iter().all(|b| b.kind != Kind::Other)
        });
        let start = element
            .attr("start")
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(1)
            .clamp(0, MAX_START);
        let mut text = String::new();
        for (index, blocks) in items.iter().enumerate() {
            if index > 0 {
                text.push_str(if tight { "\n" } else { "\n\n" });
            }
            let marker = if ordered {
                format!("{}. ", start + index as i64)
            } else {
                "- ".to_owned()
            };
            push_item(&mut text, &marker, blocks);
        }
        Some(Block {
            kind: Kind::List,
            text,
        })
    }
}

/// One item: the marker, then its blocks, each line after the first indented to the
/// marker's width (a list below a paragraph follows it on the next line).
fn push_item(out: &mut String, marker: &str, blocks: &[Block]) {
    let indent = " ".repeat(marker.len());
    let mut body = String::new();
    for (index, block) in blocks.iter().enumerate() {
        if index > 0 {
            body.push_str(if block.kind == Kind::List {
                "\n"
            } else {
                "\n\n"
            });
        }
        body.push_str(&block.text);
    }
    out.push_str(marker);
    for (index, line) in body.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&indent);
            }
        }
        out.push_str(line);
    }
}
