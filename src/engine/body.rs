//! Reading a response body: its charset and what kind of content it is.

/// What kind of content a body is, for extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// HTML or XML: parsed for metadata, links and text.
    Html,
    /// Other text (plain, JSON, JavaScript): kept as text.
    Text,
    /// Anything else: nothing extracted.
    Binary,
}

/// The kind of a body from its `Content-Type`, else from whether it starts like markup.
pub fn content_kind(content_type: Option<&str>, body: &str) -> ContentKind {
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some(m) if m.contains("html") || m.ends_with("xml") || m.ends_with("+xml") => {
            ContentKind::Html
        }
        Some(m) if m.starts_with("text/") || m.contains("json") || m.contains("javascript") => {
            ContentKind::Text
        }
        Some(_) => ContentKind::Binary,
        None if body.trim_start().starts_with('<') => ContentKind::Html,
        None => ContentKind::Text,
    }
}

/// Decodes a body by the charset of its content type, else a `<meta charset>`, else UTF-8.
pub fn decode(body: &[u8], content_type: Option<&str>) -> String {
    let label = content_type
        .and_then(charset_param)
        .or_else(|| sniff_meta_charset(body));
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _, _) = encoding.decode(body);
    text.into_owned()
}

fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn sniff_meta_charset(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(2048)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let rest = head[at..].trim_start_matches(['"', '\'']);
    let label: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!label.is_empty()).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_comes_from_header_then_meta() {
        let latin1 = b"<meta charset=\"iso-8859-1\"><p>caf\xe9</p>";
        assert!(decode(latin1, Some("text/html")).contains("café"));
        assert!(decode(b"caf\xc3\xa9", Some("text/plain; charset=UTF-8")).contains("café"));
        assert!(decode(b"caf\xe9", Some("text/plain; charset=\"windows-1252\"")).contains("café"));
    }

    #[test]
    fn content_kinds() {
        assert_eq!(
            content_kind(Some("text/html; charset=utf-8"), ""),
            ContentKind::Html
        );
        assert_eq!(
            content_kind(Some("application/json"), ""),
            ContentKind::Text
        );
        assert_eq!(content_kind(Some("image/png"), ""), ContentKind::Binary);
        assert_eq!(content_kind(None, "  <html>"), ContentKind::Html);
    }
}
