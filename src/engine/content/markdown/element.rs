//! What an HTML element is to the renderer, by its name.

/// How an element renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Never shown: scripts, styles, form controls, embedded documents.
    Hidden,
    /// Holds blocks of its own (`div`, `section`, `li` content, unknown elements with
    /// blocks inside).
    Container,
    /// One paragraph of inline content.
    Paragraph,
    /// `h1` … `h6`.
    Heading(usize),
    /// `ul`, `ol` (`true` when ordered).
    List(bool),
    /// `pre`.
    Code,
    /// `blockquote`.
    Quote,
    /// `table`.
    Table,
    /// `hr`.
    Rule,
    /// `dl`.
    Definitions,
    /// Inline content: text-level elements and anything unknown without blocks inside.
    Inline,
}

/// Elements never shown as content. (`noscript` is parsed as markup here, but a browser
/// running scripts never shows it: leaving it out keeps the two engines' output the same.)
const HIDDEN: &[&str] = &[
    "script", "style", "noscript", "template", "head", "title", "meta", "link", "svg", "iframe",
    "object", "embed", "canvas", "audio", "video", "source", "track", "map", "area", "input",
    "button", "select", "option", "optgroup", "textarea", "datalist", "dialog", "frameset",
    "frame", "param",
];

/// Elements that hold blocks.
const CONTAINERS: &[&str] = &[
    "html",
    "body",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "figure",
    "figcaption",
    "details",
    "summary",
    "center",
    "form",
    "fieldset",
    "legend",
    "address",
    "hgroup",
    "li",
    "dd",
    "dt",
    "caption",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "td",
    "th",
    "search",
    "menu",
];

/// The role of the element named `name` (lower case, as the parser gives it).
pub fn role(name: &str) -> Role {
    match name {
        "p" => Role::Paragraph,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
            Role::Heading(usize::from(name.as_bytes()[1] - b'0'))
        }
        "ul" => Role::List(false),
        "ol" => Role::List(true),
        "pre" | "listing" | "xmp" | "plaintext" => Role::Code,
        "blockquote" => Role::Quote,
        "table" => Role::Table,
        "hr" => Role::Rule,
        "dl" => Role::Definitions,
        _ if HIDDEN.contains(&name) => Role::Hidden,
        _ if CONTAINERS.contains(&name) => Role::Container,
        _ => Role::Inline,
    }
}

/// Whether an element of this role starts a block of its own.
pub fn is_block(role: Role) -> bool {
    !matches!(role, Role::Inline | Role::Hidden)
}
