//! Rendering chosen content as Markdown (CommonMark with GitHub tables) or as plain text.
//!
//! Written here rather than taken from a crate: the two measured (`htmd`, `dom_query`'s
//! own) both lost or garbled the row header cells of an ordinary Wikipedia table, escaped
//! every period, and had no bound on what a hostile page costs. Every walk is bounded: past
//! [`MAX_DEPTH`] elements a subtree is read as plain text without recursion, lists and
//! quotes indent at most [`MAX_NESTING`] levels, and rendering stops at the byte budget.

mod element;
mod escape;
mod inline;
mod list;
mod table;

use dom_query::NodeRef;

use element::{Role, is_block, role};

use crate::engine::extract::truncate_to;

/// Whether an element of this name is never shown as content.
pub fn is_hidden_element(name: &str) -> bool {
    role(name) == Role::Hidden
}

/// How deep the renderer recurses; deeper subtrees are read as plain text.
pub const MAX_DEPTH: usize = 200;
/// How many lists and quotes indent inside one another; deeper ones are not indented more.
pub const MAX_NESTING: usize = 16;

/// What the output looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// CommonMark with GitHub tables and strikethrough.
    Markdown,
    /// Plain text: the same blocks and lists, no markup, no link targets.
    Text,
}

/// A rendering, and whether it was cut at its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The output.
    pub text: String,
    /// Whether content was left out to stay within the budget.
    pub truncated: bool,
}

/// Renders the content under `root` in `flavor`, in at most `max_bytes` bytes.
pub fn render(root: &NodeRef<'_>, flavor: Flavor, max_bytes: usize) -> Rendered {
    let mut renderer = Renderer {
        flavor,
        max_bytes,
        written: 0,
        nesting: 0,
        truncated: false,
    };
    let blocks = renderer.blocks(root, 0);
    let mut text = join(&blocks);
    if truncate_to(&mut text, max_bytes) {
        renderer.truncated = true;
    }
    Rendered {
        text,
        truncated: renderer.truncated,
    }
}

/// What a block is, as far as the blocks around it care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Paragraph,
    List,
    Other,
}

/// One rendered block.
#[derive(Debug)]
struct Block {
    kind: Kind,
    text: String,
}

impl Block {
    fn other(text: String) -> Block {
        Block {
            kind: Kind::Other,
            text,
        }
    }
}

/// Blocks separated by blank lines.
fn join(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&block.text);
    }
    out
}

struct Renderer {
    flavor: Flavor,
    max_bytes: usize,
    written: usize,
    /// How many lists and quotes the current block sits in.
    nesting: usize,
    truncated: bool,
}

impl Renderer {
    fn markdown(&self) -> bool {
        self.flavor == Flavor::Markdown
    }

    /// Whether the budget is spent (then nothing more is rendered).
    fn spent(&mut self) -> bool {
        if self.written > self.max_bytes {
            self.truncated = true;
        }
        self.truncated
    }

    /// The blocks of `node`'s children.
    fn blocks(&mut self, node: &NodeRef<'_>, depth: usize) -> Vec<Block> {
        let mut out = Vec::new();
        let mut paragraph = String::new();
        let mut child = node.first_child();
        while let Some(current) = child {
            if self.spent() {
                break;
            }
            if current.is_text() {
                self.text(&current.text(), &mut paragraph);
            } else if current.is_element() {
                match self.role_of(&current, depth) {
                    Role::Hidden => {}
                    Role::Inline => self.inline(&current, &mut paragraph, depth + 1),
                    block => {
                        self.flush(&mut paragraph, &mut out);
                        self.block(&current, block, depth + 1, &mut out);
                    }
                }
            }
            child = current.next_sibling();
        }
        self.flush(&mut paragraph, &mut out);
        out
    }

    /// The role `element` plays here: past [`MAX_DEPTH`] everything is inline text, and an
    /// inline element other than a link holding blocks is a container.
    fn role_of(&self, element: &NodeRef<'_>, depth: usize) -> Role {
        let name = element.node_name().unwrap_or_default();
        let named = role(&name);
        if depth >= MAX_DEPTH && named != Role::Hidden {
            return Role::Inline;
        }
        if named == Role::Inline && &*name != "a" && has_block_child(element) {
            return Role::Container;
        }
        named
    }

    /// Renders one block element into `out`.
    fn block(&mut self, element: &NodeRef<'_>, role: Role, depth: usize, out: &mut Vec<Block>) {
        match role {
            Role::Container | Role::Inline | Role::Hidden => {
                out.extend(self.blocks(element, depth))
            }
            Role::Paragraph => {
                let mut paragraph = String::new();
                self.inline_children(element, &mut paragraph, depth);
                self.flush(&mut paragraph, out);
            }
            Role::Heading(level) => self.heading(element, level, depth, out),
            Role::List(ordered) => {
                if let Some(list) = self.list(element, ordered, depth) {
                    out.push(list);
                }
            }
            Role::Code => out.extend(self.code(element)),
            Role::Quote => self.quote(element, depth, out),
            Role::Table => out.extend(self.table(element, depth)),
            Role::Rule if self.markdown() => out.push(Block::other("---".into())),
            Role::Rule => {}
            Role::Definitions => self.definitions(element, depth, out),
        }
    }

    /// Ends the paragraph being written, if it holds anything: its line breaks become hard
    /// breaks, and a line that would start a block is escaped.
    fn flush(&mut self, paragraph: &mut String, out: &mut Vec<Block>) {
        let lines: Vec<&str> = paragraph
            .split('\n')
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        if !lines.is_empty() {
            let text = if self.markdown() {
                let escaped: Vec<String> =
                    lines.iter().map(|l| escape::escape_line_start(l)).collect();
                escaped.join("\\\n")
            } else {
                lines.join("\n")
            };
            out.push(Block {
                kind: Kind::Paragraph,
                text,
            });
        }
        paragraph.clear();
    }

    fn heading(&mut self, element: &NodeRef<'_>, level: usize, depth: usize, out: &mut Vec<Block>) {
        let mut text = String::new();
        self.inline_children(element, &mut text, depth);
        let text = one_line(&text);
        if text.is_empty() {
            return;
        }
        out.push(Block::other(if self.markdown() {
            format!("{} {text}", "#".repeat(level))
        } else {
            text
        }));
    }

    fn quote(&mut self, element: &NodeRef<'_>, depth: usize, out: &mut Vec<Block>) {
        if self.nesting >= MAX_NESTING {
            out.extend(self.blocks(element, depth));
            return;
        }
        self.nesting += 1;
        let inner = join(&self.blocks(element, depth));
        self.nesting -= 1;
        if inner.is_empty() {
            return;
        }
        if !self.markdown() {
            out.push(Block::other(inner));
            return;
        }
        let quoted = inner
            .split('\n')
            .map(|line| {
                if line.is_empty() {
                    ">".to_owned()
                } else {
                    format!("> {line}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        out.push(Block::other(quoted));
    }

    fn code(&mut self, element: &NodeRef<'_>) -> Option<Block> {
        let text = plain_text(element);
        let text = text.trim_start_matches('\n').trim_end();
        if text.is_empty() {
            return None;
        }
        self.written += text.len();
        if !self.markdown() {
            return Some(Block::other(text.to_owned()));
        }
        let fence = "`".repeat(escape::longest_run(text, '`').max(2) + 1);
        let language = code_language(element).unwrap_or_default();
        Some(Block::other(format!("{fence}{language}\n{text}\n{fence}")))
    }

    fn definitions(&mut self, element: &NodeRef<'_>, depth: usize, out: &mut Vec<Block>) {
        for child in element.element_children() {
            match child.node_name().as_deref() {
                Some("dt") => {
                    let mut term = String::new();
                    self.inline_children(&child, &mut term, depth);
                    let term = one_line(&term);
                    if !term.is_empty() {
                        out.push(Block {
                            kind: Kind::Paragraph,
                            text: if self.markdown() {
                                format!("**{term}**")
                            } else {
                                term
                            },
                        });
                    }
                }
                _ => out.extend(self.blocks(&child, depth + 1)),
            }
        }
    }
}

/// Whether any element child of `element` starts a block.
fn has_block_child(element: &NodeRef<'_>) -> bool {
    element.element_children().iter().any(|child| {
        let name = child.node_name().unwrap_or_default();
        is_block(role(&name))
    })
}

/// Whether the text before `element` in its parent ended in a space (a code span that
/// follows a word directly stays attached to it).
fn element_starts_spaced(element: &NodeRef<'_>) -> bool {
    element
        .prev_sibling()
        .is_none_or(|prev| !prev.is_text() || prev.text().ends_with(char::is_whitespace))
}

/// The text under `element`, read without recursion (a subtree may be arbitrarily deep).
pub fn plain_text(element: &NodeRef<'_>) -> String {
    let mut text = String::new();
    let mut stack = vec![*element];
    while let Some(node) = stack.pop() {
        if node.is_text() {
            text.push_str(&node.text());
            continue;
        }
        if node.is_element() {
            let name = node.node_name().unwrap_or_default();
            if role(&name) == Role::Hidden {
                continue;
            }
            if &*name == "br" {
                text.push('\n');
            }
        }
        let mut children = Vec::new();
        let mut child = node.first_child();
        while let Some(current) = child {
            child = current.next_sibling();
            children.push(current);
        }
        stack.extend(children.into_iter().rev());
    }
    text
}

/// A code block's language, from a `language-x` or `lang-x` class on it or its `code`.
fn code_language(element: &NodeRef<'_>) -> Option<String> {
    let classes = [Some(*element), element.first_element_child()]
        .into_iter()
        .flatten()
        .filter_map(|node| node.class())
        .collect::<Vec<_>>();
    classes
        .iter()
        .flat_map(|c| c.split_whitespace())
        .find_map(|class| {
            let language = class
                .strip_prefix("language-")
                .or_else(|| class.strip_prefix("lang-"))?;
            language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '#' | '.'))
                .then(|| language.to_owned())
                .filter(|l| !l.is_empty() && l.len() <= 32)
        })
}

/// `text` on one line, trimmed.
fn one_line(text: &str) -> String {
    text.split(['\n'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
