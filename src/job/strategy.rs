//! How a job reaches the web.

use super::names::named_enum;

named_enum!(
    /// How a job reaches the web.
    Strategy {
        /// Plain HTTP: fast, no JavaScript.
        Http => "http",
        /// Chromium as shipped.
        Vanilla => "vanilla",
        /// Chromium with evasions against automation detection.
        Stealth => "stealth",
        /// Let the per-domain memory choose, escalating when blocked.
        Auto => "auto",
    }
);

impl Strategy {
    /// The browser flavour one attempt uses: `auto` starts with vanilla and escalates to
    /// stealth on retries; `http` has none.
    pub fn in_browser(self, attempt: u32) -> Option<Strategy> {
        match self {
            Strategy::Http => None,
            Strategy::Auto if attempt <= 1 => Some(Strategy::Vanilla),
            Strategy::Auto => Some(Strategy::Stealth),
            other => Some(other),
        }
    }
}
