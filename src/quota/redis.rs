//! The books every API process shares: one Lua script per admission, per group of reports
//! and per recount, so each is decided atomically on Redis's clock. Keys live under the
//! queue's prefix (one hash tag, one Cluster slot): `{prefix}:quota:<tenant>` (the book) and
//! `{prefix}:quota:<tenant>:flight` (admissions in flight).

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::ledger::{Ledger, Report};
use super::rule::{Answer, Ask, COUNTING_LEASE_MS, Outcome, Snapshot, Verdict};
use crate::queue::QueueError;
use crate::queue::redis_streams::classify;

const ADMIT: &str = include_str!("admit.lua");
const SETTLE: &str = include_str!("settle.lua");
const REBASE: &str = include_str!("rebase.lua");

/// One admission's answer: verdict, recount, generation, since, wait (ms).
fn answer(values: &[i64]) -> Answer {
    let verdict = match values[0] {
        1 => Verdict::Admitted,
        2 => Verdict::OverQueued,
        3 => Verdict::OverRate { wait_ms: values[4] },
        _ => Verdict::Uncounted,
    };
    Answer {
        verdict,
        recount: (values[1] == 1).then_some(Snapshot {
            generation: values[2],
            since: values[3],
        }),
    }
}

/// How long an idle tenant's book is kept.
const KEEP_MS: i64 = 3_600_000;

/// Quota books on Redis.
#[derive(Clone)]
pub struct RedisLedger {
    conn: ConnectionManager,
    prefix: String,
    admit: redis::Script,
    settle: redis::Script,
    rebase: redis::Script,
}

impl std::fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLedger")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisLedger {
    /// Books on `conn`, keys under `prefix`.
    pub fn new(conn: ConnectionManager, prefix: &str) -> RedisLedger {
        RedisLedger {
            conn,
            prefix: prefix.to_owned(),
            admit: redis::Script::new(ADMIT),
            settle: redis::Script::new(SETTLE),
            rebase: redis::Script::new(REBASE),
        }
    }

    /// The books on the queue's Redis, under the queue's prefix.
    pub fn beside(queue: &crate::queue::RedisQueue) -> RedisLedger {
        RedisLedger::new(queue.connection(), queue.prefix())
    }

    fn book(&self, tenant: &str) -> String {
        format!("{{{}}}:quota:{tenant}", self.prefix)
    }

    fn flight(&self, tenant: &str) -> String {
        format!("{{{}}}:quota:{tenant}:flight", self.prefix)
    }
}

#[async_trait]
impl Ledger for RedisLedger {
    async fn admit(&self, asks: &[(&str, &Ask)]) -> Result<Vec<Answer>, QueueError> {
        if asks.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.admit.prepare_invoke();
        // The settings every admission shares (one process's, one build's).
        let first = asks[0].1;
        invocation
            .arg(first.ttl_ms)
            .arg(first.recount_ms)
            .arg(COUNTING_LEASE_MS)
            .arg(KEEP_MS);
        for (tenant, ask) in asks {
            invocation
                .key(self.book(tenant))
                .key(self.flight(tenant))
                .arg(ask.admission.to_string())
                .arg(ask.jobs)
                .arg(ask.quota.max_queued)
                .arg(ask.quota.submit_rate);
        }
        let flat: Vec<i64> = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(classify)?;
        if flat.len() != asks.len() * 5 {
            return Err(QueueError::Protocol(format!(
                "the quota ledger answered {} values for {} admissions",
                flat.len(),
                asks.len()
            )));
        }
        Ok(flat.chunks(5).map(answer).collect())
    }

    async fn settle(&self, reports: &[Report]) -> Result<(), QueueError> {
        if reports.is_empty() {
            return Ok(());
        }
        let mut invocation = self.settle.prepare_invoke();
        invocation.arg(KEEP_MS);
        for report in reports {
            invocation
                .key(self.book(&report.tenant))
                .key(self.flight(&report.tenant))
                .arg(report.admission.to_string())
                .arg(report.jobs)
                .arg(u8::from(report.outcome == Outcome::Committed));
        }
        invocation
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn rebase(
        &self,
        tenant: &str,
        snapshot: Snapshot,
        queued: u64,
    ) -> Result<bool, QueueError> {
        let installed: i64 = self
            .rebase
            .key(self.book(tenant))
            .arg(snapshot.generation)
            .arg(snapshot.since)
            .arg(queued)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(classify)?;
        Ok(installed == 1)
    }
}
