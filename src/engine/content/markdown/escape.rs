//! Escaping page text so Markdown shows it as text, and no more than that: an escape a
//! reader sees in every other word is noise for the people and models who read the output.

/// Appends `word` (text without whitespace) to `out`, escaped so no character of it starts
/// Markdown syntax inside a line.
pub fn push_word(out: &mut String, word: &str) {
    let chars: Vec<char> = word.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let escape = match c {
            '\\' | '`' | '*' | '[' | ']' | '<' => true,
            // Inside a word `_` never emphasises (snake_case reads as is); at its edges it may.
            '_' => {
                i == 0 || i + 1 == chars.len() || !is_word(chars[i - 1]) || !is_word(chars[i + 1])
            }
            '~' => chars.get(i + 1) == Some(&'~'),
            '&' => looks_like_entity(&chars[i + 1..]),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// `&` followed by `name;` or `#123;` would be read as a character reference.
fn looks_like_entity(rest: &[char]) -> bool {
    let body: Vec<char> = rest.iter().take(33).copied().collect();
    let Some(end) = body.iter().position(|&c| c == ';') else {
        return false;
    };
    let name = &body[..end];
    let name = name.strip_prefix(&['#']).unwrap_or(name);
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric())
}

/// `line` with a backslash where its start would otherwise begin a block (a heading, a
/// quote, a list item, a rule, a setext underline).
pub fn escape_line_start(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let first = trimmed.chars().next();
    let starts_block = match first {
        Some('#' | '=' | '+' | '-' | '>') => true,
        Some(c) if c.is_ascii_digit() => {
            let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
            digits <= 9 && matches!(trimmed[digits..].chars().next(), Some('.' | ')'))
        }
        _ => false,
    };
    if !starts_block {
        return line.to_owned();
    }
    let mut escaped = String::with_capacity(line.len() + 1);
    escaped.push_str(&line[..indent]);
    if first.is_some_and(|c| c.is_ascii_digit()) {
        let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
        escaped.push_str(&trimmed[..digits]);
        escaped.push('\\');
        escaped.push_str(&trimmed[digits..]);
    } else {
        escaped.push('\\');
        escaped.push_str(trimmed);
    }
    escaped
}

/// A code span of `text`: fenced by one more backtick than its longest run.
pub fn code_span(text: &str) -> String {
    let fence = "`".repeat(longest_run(text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// The longest run of `c` in `text`.
pub fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// A link destination Markdown reads back whole: in angle brackets when it holds spaces
/// or parentheses.
pub fn destination(url: &str) -> String {
    if url.contains([' ', '(', ')', '<', '>']) {
        format!("<{}>", url.replace('<', "%3C").replace('>', "%3E"))
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(word: &str) -> String {
        let mut out = String::new();
        push_word(&mut out, word);
        out
    }

    #[test]
    fn words_keep_their_look_unless_they_would_become_syntax() {
        assert_eq!(escaped("snake_case"), "snake_case");
        assert_eq!(escaped("_init_"), "\\_init\\_");
        assert_eq!(escaped("*bold*"), "\\*bold\\*");
        assert_eq!(escaped("[1]"), "\\[1\\]");
        assert_eq!(escaped("AT&T"), "AT&T");
        assert_eq!(escaped("&amp;"), "\\&amp;");
        assert_eq!(escaped("a|b"), "a|b");
        assert_eq!(escaped("3.14"), "3.14");
    }

    #[test]
    fn line_starts_that_open_blocks_are_escaped() {
        assert_eq!(escape_line_start("# not a heading"), "\\# not a heading");
        assert_eq!(escape_line_start("1. not a list"), "1\\. not a list");
        assert_eq!(escape_line_start("- dash"), "\\- dash");
        assert_eq!(escape_line_start("plain"), "plain");
        assert_eq!(escape_line_start("2026 was"), "2026 was");
    }

    #[test]
    fn code_spans_and_destinations_survive_their_content() {
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("x"), "`x`");
        assert_eq!(destination("https://e.x/a b"), "<https://e.x/a b>");
        assert_eq!(destination("https://e.x/a"), "https://e.x/a");
    }
}
