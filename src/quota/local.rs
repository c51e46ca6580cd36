//! The books of one process: the rule in memory, for `dev` and for any API process while
//! Redis is unreachable.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::ledger::{Ledger, Report};
use super::rule::{Answer, Ask, Book, Snapshot};
use crate::queue::QueueError;

/// Tenants' books kept at most; the table starts over when full (every tenant is counted
/// again, which is safe).
const MAX_TENANTS: usize = 100_000;

/// Quota books in this process.
#[derive(Debug, Default)]
pub struct LocalLedger {
    books: Mutex<HashMap<String, Book>>,
}

impl LocalLedger {
    /// No books yet.
    pub fn new() -> LocalLedger {
        LocalLedger::default()
    }

    fn with<T>(&self, tenant: &str, f: impl FnOnce(&mut Book, i64) -> T) -> T {
        let now = chrono::Utc::now().timestamp_millis();
        let mut books = self
            .books
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if books.len() >= MAX_TENANTS && !books.contains_key(tenant) {
            books.clear();
        }
        let book = books
            .entry(tenant.to_owned())
            .or_insert_with(|| Book::new(now));
        f(book, now)
    }
}

#[async_trait]
impl Ledger for LocalLedger {
    async fn admit(&self, asks: &[(&str, &Ask)]) -> Result<Vec<Answer>, QueueError> {
        Ok(asks
            .iter()
            .map(|(tenant, ask)| self.with(tenant, |book, now| book.admit(now, ask)))
            .collect())
    }

    async fn settle(&self, reports: &[Report]) -> Result<(), QueueError> {
        for report in reports {
            self.with(&report.tenant, |book, _| {
                book.settle(report.admission, report.jobs, report.outcome)
            });
        }
        Ok(())
    }

    async fn rebase(
        &self,
        tenant: &str,
        snapshot: Snapshot,
        queued: u64,
    ) -> Result<bool, QueueError> {
        Ok(self.with(tenant, |book, now| book.rebase(now, snapshot, queued)))
    }
}
