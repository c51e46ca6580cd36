//! The one place that judges what a target answered, for the http engine and the browser
//! alike: anti-bot answers (401/403, challenge pages, captchas, empty or script-only pages
//! where content was expected) are `blocked`, other error statuses are `http_status` (429 and
//! 5xx retryable).
//!
//! Markers are looked for in what a visitor sees, not in the page's scripts and styles: a
//! page whose script merely mentions "Just a moment..." or a captcha widget's class name,
//! while showing its content, got through.

use chrono::{DateTime, Utc};

use crate::job::{ErrorKind, JobError};

/// How much of a page is searched for markers.
const SCAN_BYTES: usize = 256 * 1024;

/// Markers of a captcha widget or captcha service.
const CAPTCHA_MARKERS: &[&str] = &[
    "g-recaptcha",
    "recaptcha/api",
    "h-captcha",
    "hcaptcha.com",
    "cf-turnstile",
    "captcha-delivery.com",
    "px-captcha",
    "id=\"captcha",
    "class=\"captcha",
];

/// Markers of an anti-bot interstitial or challenge page.
const CHALLENGE_MARKERS: &[&str] = &[
    "cf-chl",
    "challenge-platform",
    "just a moment...",
    "attention required!",
    "checking your browser",
    "verify you are human",
    "are you a robot",
    "unusual traffic from your computer",
    "_incapsula_resource",
    "ddos protection by",
    "access to this page has been denied",
];

/// What a response showed, for judging.
#[derive(Debug, Clone, Copy)]
pub struct Signals<'a> {
    /// The url that answered (after redirects).
    pub url: &'a str,
    /// The HTTP status of the main document.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<&'a str>,
    /// The `cf-mitigated` header, if any.
    pub cf_mitigated: Option<&'a str>,
    /// The document (HTML or text), possibly partial.
    pub body: &'a str,
    /// Whether the document is HTML.
    pub html: bool,
    /// Whether the page showed no visible text and no links (content was expected).
    pub empty: bool,
}

/// Parses `Retry-After` (seconds or an HTTP date) into milliseconds from now.
pub fn retry_after_ms(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let ms = (at.with_timezone(&Utc) - Utc::now()).num_milliseconds();
    Some(ms.max(0) as u64)
}

fn find_marker(haystack: &str, markers: &[&'static str]) -> Option<&'static str> {
    markers.iter().copied().find(|m| haystack.contains(m))
}

/// Fails on anti-bot answers and on error statuses; passes everything else.
pub fn judge(signals: &Signals<'_>) -> Result<(), JobError> {
    if let Some(blocked) = classify(signals) {
        return Err(blocked);
    }
    if (300..400).contains(&signals.status) {
        // A redirect that was not followed: to a scheme other than http(s) (file:, data:,
        // javascript:), or without a usable Location. The page it names was never fetched.
        let mut error = JobError::new(
            ErrorKind::Navigation,
            format!(
                "{} answered {} with a redirect that cannot be followed (not to an http or https url)",
                signals.url, signals.status
            ),
        )
        .retryable(false);
        error.status_code = Some(signals.status);
        return Err(error);
    }
    if signals.status >= 400 {
        let retryable = signals.status == 429 || signals.status >= 500;
        let mut error = JobError::new(
            ErrorKind::HttpStatus,
            format!("{} answered {}", signals.url, signals.status),
        )
        .retryable(retryable);
        error.status_code = Some(signals.status);
        error.retry_after_ms = signals.retry_after.and_then(retry_after_ms);
        return Err(error);
    }
    Ok(())
}

/// The part of an HTML document a visitor can see: without `<script>`, `<style>`,
/// `<template>` and `<noscript>` elements (a browser that runs scripts does not show
/// `<noscript>`; a page that shows its challenge there shows it to no one who matters), and
/// without comments. `html` is lower-cased.
fn visible_markup(html: &str) -> String {
    const HIDDEN: &[&str] = &["script", "style", "template", "noscript"];
    let mut visible = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        visible.push_str(&rest[..open]);
        let tag = &rest[open + 1..];
        if let Some(comment) = tag.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let hidden = HIDDEN.iter().find(|name| {
            tag.starts_with(**name)
                && tag[name.len()..]
                    .starts_with(|c: char| c == '>' || c == '/' || c.is_whitespace())
        });
        match hidden {
            Some(name) => {
                let close = format!("</{name}");
                rest = tag.find(&close).map_or("", |end| {
                    let after = &tag[end..];
                    after.find('>').map_or("", |gt| &after[gt + 1..])
                });
            }
            None => {
                visible.push('<');
                rest = tag;
            }
        }
    }
    visible.push_str(rest);
    visible
}

/// Returns a `blocked` error when the response looks like an anti-bot answer.
pub fn classify(signals: &Signals<'_>) -> Option<JobError> {
    let mut end = signals.body.len().min(SCAN_BYTES);
    while !signals.body.is_char_boundary(end) {
        end -= 1;
    }
    let lowered = signals.body[..end].to_ascii_lowercase();
    let body = if signals.html {
        visible_markup(&lowered)
    } else {
        lowered
    };
    let captcha = find_marker(&body, CAPTCHA_MARKERS);
    let challenge = find_marker(&body, CHALLENGE_MARKERS);
    let refused = matches!(signals.status, 403 | 429 | 503);
    let blocked = |reason: &str, why: String| {
        let mut error = JobError::new(ErrorKind::Blocked, why);
        error.reason = Some(reason.to_owned());
        error.status_code = Some(signals.status);
        error.retry_after_ms = signals.retry_after.and_then(retry_after_ms);
        error
    };
    if signals
        .cf_mitigated
        .is_some_and(|v| v.eq_ignore_ascii_case("challenge"))
    {
        return Some(blocked(
            "challenge",
            format!(
                "the site answered {} with a challenge (cf-mitigated: challenge)",
                signals.status
            ),
        ));
    }
    if let Some(marker) = captcha {
        return Some(blocked(
            "captcha",
            format!(
                "the site answered {} with a captcha page (found {marker:?})",
                signals.status
            ),
        ));
    }
    if let Some(marker) = challenge
        && (refused || body.len() < 64 * 1024)
    {
        return Some(blocked(
            "challenge",
            format!(
                "the site answered {} with a challenge page (found {marker:?})",
                signals.status
            ),
        ));
    }
    if matches!(signals.status, 401 | 403) {
        return Some(blocked(
            "refused",
            format!(
                "the site refused the request with {} (it may not serve automated clients)",
                signals.status
            ),
        ));
    }
    if (200..300).contains(&signals.status) && signals.html && signals.empty {
        return Some(blocked(
            "empty_body",
            format!(
                "the site answered {} with an empty page where content was expected",
                signals.status
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(status: u16, body: &str) -> Signals<'_> {
        Signals {
            url: "https://site.test/",
            status,
            retry_after: Some("7"),
            cf_mitigated: None,
            body,
            html: true,
            empty: false,
        }
    }

    #[test]
    fn challenge_and_captcha_pages_are_blocked_with_a_reason() {
        let error = classify(&signals(429, "<title>Just a moment...</title>")).expect("blocked");
        assert_eq!(error.kind, ErrorKind::Blocked);
        assert_eq!(error.reason.as_deref(), Some("challenge"));
        assert_eq!(error.retry_after_ms, Some(7000));
        assert!(error.retryable);
        let error = classify(&signals(200, r#"<div class="g-recaptcha"></div>"#)).expect("blocked");
        assert_eq!(error.reason.as_deref(), Some("captcha"));
    }

    #[test]
    fn ordinary_pages_and_plain_errors_are_not_blocked() {
        assert!(classify(&signals(200, "<h1>Welcome</h1>")).is_none());
        assert!(classify(&signals(429, "slow down")).is_none());
        assert!(classify(&signals(404, "<h1>Not found</h1>")).is_none());
    }

    #[test]
    fn markers_in_scripts_styles_and_comments_are_not_seen() {
        let page = r#"<html><head><title>Shop</title>
            <script>var t = "Just a moment..."; var w = "g-recaptcha";</script>
            <style>.cf-turnstile { display: none }</style><!-- checking your browser -->
            </head><body><h1>Products</h1></body></html>"#;
        assert!(classify(&signals(200, page)).is_none());
        let shown = r#"<html><body><div class="cf-turnstile"></div></body></html>"#;
        assert!(classify(&signals(200, shown)).is_some());
        assert_eq!(
            visible_markup("<p>a</p><script type=x>b</script><scripted>c"),
            "<p>a</p><scripted>c"
        );
        assert_eq!(visible_markup("a<script>never closed"), "a");
    }

    #[test]
    fn refusals_are_blocks() {
        for status in [401, 403] {
            let error = classify(&signals(status, "<h1>Forbidden</h1>")).expect("blocked");
            assert_eq!(error.reason.as_deref(), Some("refused"));
        }
    }

    #[test]
    fn an_empty_html_page_is_blocked() {
        let mut empty = signals(200, "<html><body></body></html>");
        empty.empty = true;
        assert_eq!(
            classify(&empty).and_then(|e| e.reason).as_deref(),
            Some("empty_body")
        );
    }

    #[test]
    fn error_statuses_are_typed_and_only_429_and_5xx_retry() {
        let not_found = judge(&signals(404, "<h1>Not found</h1>")).expect_err("404");
        assert_eq!(not_found.kind, ErrorKind::HttpStatus);
        assert!(!not_found.retryable);
        let busy = judge(&signals(503, "<h1>Down</h1>")).expect_err("503");
        assert!(busy.retryable);
        assert_eq!(busy.retry_after_ms, Some(7000));
        assert!(judge(&signals(200, "<h1>Fine</h1>")).is_ok());
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(retry_after_ms("120"), Some(120_000));
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), Some(0));
        assert_eq!(retry_after_ms("soon"), None);
    }
}
