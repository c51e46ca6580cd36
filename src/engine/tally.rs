//! What one attempt met and spent, kept as it runs (every rung and probe of it): the
//! JavaScript dialogs its pages opened (answered for them), the time it held a browser page,
//! and the requests it sent by route. The result states it, and the domain memory sums it.

use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use crate::job::spent::{DIRECT, Spent};

/// The most dialogs one attempt records; more are counted, not kept.
pub const MAX_DIALOGS: usize = 20;
/// The most characters of a dialog's message kept.
pub const MAX_DIALOG_MESSAGE: usize = 500;

/// A JavaScript dialog a page opened, and how it was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = JavaScriptDialog)]
pub struct Dialog {
    /// `alert`, `confirm`, `prompt` or `beforeunload`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its message (at most 500 characters).
    pub message: String,
    /// Whether it was accepted (always, so the page goes on; a prompt gets an empty answer).
    pub accepted: bool,
}

#[derive(Debug, Default)]
struct Kept {
    dialogs: Vec<Dialog>,
    spent: Spent,
}

/// One attempt's tally, shared by the services that run it.
#[derive(Debug, Clone, Default)]
pub struct Tally(Arc<Mutex<Kept>>);

impl Tally {
    /// Records a dialog (the first [`MAX_DIALOGS`]; the rest are counted).
    pub fn dialog(&self, kind: &str, message: &str, accepted: bool) {
        self.with(|kept| {
            if kept.dialogs.len() < MAX_DIALOGS {
                kept.dialogs.push(Dialog {
                    kind: kind.to_owned(),
                    message: message.chars().take(MAX_DIALOG_MESSAGE).collect(),
                    accepted,
                });
            } else {
                kept.spent.dialogs_dropped = kept.spent.dialogs_dropped.saturating_add(1);
            }
        });
    }

    /// Adds time spent holding a browser page.
    pub fn browser_ms(&self, ms: u64) {
        self.with(|kept| kept.spent.browser_ms = kept.spent.browser_ms.saturating_add(ms));
    }

    /// Counts one request (or page load) by `route`.
    pub fn request(&self, route: &str) {
        self.with(|kept| {
            let count = kept.spent.requests.entry(route.to_owned()).or_default();
            *count = count.saturating_add(1);
        });
    }

    /// The dialogs recorded and what was spent.
    pub fn taken(&self) -> (Vec<Dialog>, Spent) {
        self.0
            .lock()
            .map(|kept| (kept.dialogs.clone(), kept.spent.clone()))
            .unwrap_or_default()
    }

    fn with(&self, change: impl FnOnce(&mut Kept)) {
        if let Ok(mut kept) = self.0.lock() {
            change(&mut kept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialogs_are_capped_and_counted() {
        let tally = Tally::default();
        for n in 0..MAX_DIALOGS + 3 {
            tally.dialog("alert", &"x".repeat(n * 100), true);
        }
        tally.request(DIRECT);
        tally.request(DIRECT);
        tally.browser_ms(40);
        let (dialogs, spent) = tally.taken();
        assert_eq!(dialogs.len(), MAX_DIALOGS);
        assert!(
            dialogs
                .iter()
                .all(|d| d.message.len() <= MAX_DIALOG_MESSAGE)
        );
        assert_eq!(spent.dialogs_dropped, 3);
        assert_eq!(spent.requests[DIRECT], 2);
        assert_eq!(spent.browser_ms, 40);
    }
}
