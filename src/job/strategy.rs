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

named_enum!(
    /// One concrete way to reach the web, in cost order: what an attempt actually runs with
    /// (`auto` is a choice among them, never one of them).
    Rung {
        /// Plain HTTP.
        Http => "http",
        /// Chromium as shipped.
        Vanilla => "vanilla",
        /// Chromium with evasions.
        Stealth => "stealth",
    }
);

impl PartialOrd for Rung {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rung {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

impl Rung {
    /// The strategy that names this rung.
    pub fn strategy(self) -> Strategy {
        match self {
            Rung::Http => Strategy::Http,
            Rung::Vanilla => Strategy::Vanilla,
            Rung::Stealth => Strategy::Stealth,
        }
    }

    /// Whether the rung runs in Chromium.
    pub fn in_browser(self) -> bool {
        self != Rung::Http
    }
}

impl Strategy {
    /// The rung a fixed strategy names; `None` for `auto`.
    pub fn rung(self) -> Option<Rung> {
        match self {
            Strategy::Http => Some(Rung::Http),
            Strategy::Vanilla => Some(Rung::Vanilla),
            Strategy::Stealth => Some(Rung::Stealth),
            Strategy::Auto => None,
        }
    }
}
