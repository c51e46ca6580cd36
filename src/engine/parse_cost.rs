//! What parsing a page will cost, read off its markup before it is parsed.
//!
//! html5ever (behind both extraction paths) looks through its stack of open elements at
//! each start tag, so a page nested thousands deep costs time quadratic in its size: 50,000
//! nested elements (half a megabyte) took it 10 s here, and the http engine reads up to
//! 10 MiB. A worker's extraction runs on a blocking thread the job's timeout cannot stop,
//! so such a page is refused before parsing rather than left to stall a worker.

use crate::job::{ErrorKind, JobError};

/// The most parse work a page may take: the sum over its start tags of how many elements
/// are open when each starts. The 91 real pages of the extraction benchmark need at most
/// about 31,000; the bound is about 0.4 s of parsing here.
pub const MAX_PARSE_WORK: u64 = 30_000_000;

/// Elements with no content (never open).
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "frame", "basefont", "bgsound",
];
/// Elements the parser closes by itself when a sibling starts: they do not deepen a page
/// however rarely their end tags are written.
const SELF_CLOSING: &[&str] = &[
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "rb",
    "rt", "rp", "rtc", "colgroup", "caption",
];
/// Elements whose content is text up to their end tag.
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
];

/// Refuses a page whose parse would cost more than [`MAX_PARSE_WORK`].
pub fn check(html: &str) -> Result<(), JobError> {
    let work = parse_work(html);
    if work > MAX_PARSE_WORK {
        return Err(JobError::new(
            ErrorKind::TooLarge,
            format!(
                "the page nests its elements too deeply to be read safely (parse work {work}, at most {MAX_PARSE_WORK}: the sum over its start tags of the elements open at each)"
            ),
        ));
    }
    Ok(())
}

/// The sum over `html`'s start tags of how many elements are open when each starts, as a
/// tolerant scan of its tags reads it (an estimate from above: the parser closes some
/// misnested elements earlier). Stops counting once past [`MAX_PARSE_WORK`].
pub fn parse_work(html: &str) -> u64 {
    let bytes = html.as_bytes();
    let (mut at, mut depth, mut work) = (0usize, 0u64, 0u64);
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        at += offset + 1;
        if bytes[at..].starts_with(b"!--") {
            at = find(bytes, at, b"-->").map_or(bytes.len(), |end| end + 3);
            continue;
        }
        let closing = bytes.get(at) == Some(&b'/');
        let name_at = at + usize::from(closing);
        let name = tag_name(&bytes[name_at..]);
        if name.is_empty() {
            continue;
        }
        let (end, self_closed) = tag_end(bytes, name_at + name.len());
        at = end;
        let name = name.to_ascii_lowercase();
        let name = String::from_utf8_lossy(&name);
        if closing {
            if !SELF_CLOSING.contains(&&*name) && !VOID.contains(&&*name) {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        work += depth;
        if work > MAX_PARSE_WORK {
            return work;
        }
        if self_closed || VOID.contains(&&*name) || SELF_CLOSING.contains(&&*name) {
            continue;
        }
        if RAW_TEXT.contains(&&*name) {
            let close = format!("</{name}");
            at = find_ignoring_case(bytes, at, close.as_bytes()).unwrap_or(bytes.len());
            continue;
        }
        depth += 1;
    }
    work
}

/// The tag name at the start of `rest` (letters, digits, `-`, `:`), empty when none.
fn tag_name(rest: &[u8]) -> &[u8] {
    if !rest.first().is_some_and(u8::is_ascii_alphabetic) {
        return &[];
    }
    let len = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b':'))
        .unwrap_or(rest.len());
    &rest[..len]
}

/// Where the tag ends (after its `>`, quoted attribute values skipped), and whether it
/// ended with `/>`.
fn tag_end(bytes: &[u8], mut at: usize) -> (usize, bool) {
    let mut quote = None;
    while at < bytes.len() {
        let b = bytes[at];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return (at + 1, at > 0 && bytes[at - 1] == b'/'),
            None => {}
        }
        at += 1;
    }
    (bytes.len(), false)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes[from.min(bytes.len())..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

fn find_ignoring_case(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes[from.min(bytes.len())..]
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_pages_cost_little_and_deep_ones_are_refused() {
        let flat = "<p>para".repeat(100_000);
        assert_eq!(parse_work(&flat), 0);
        let list = format!("<ul>{}</ul>", "<li>item".repeat(100_000));
        assert_eq!(parse_work(&list), 100_000);
        let script = "<script>if (a <div> b) {}</script><div>x</div>";
        assert_eq!(parse_work(script), 0);
        let quoted = r#"<div title="a > b"><span>x</span></div>"#;
        assert_eq!(parse_work(quoted), 1);
        check(&list).expect("a long list is fine");

        let nested = |n: usize| format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
        assert_eq!(parse_work(&nested(1_000)), 1_000 * 999 / 2);
        // Counting stops once past the bound.
        let deep = nested(10_000);
        assert!(parse_work(&deep) > MAX_PARSE_WORK);
        let error = check(&deep).expect_err("too deep");
        assert_eq!(error.kind, ErrorKind::TooLarge);
        assert!(error.message.contains("too deeply"), "{}", error.message);
    }
}
