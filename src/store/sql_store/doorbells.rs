//! Doorbell bookkeeping and reaping: which queued jobs need a ring, which are being rung,
//! which were rung; taking back expired leases. The leader's changes are fenced by its term.

use uuid::Uuid;

use super::SqlStore;
use super::render::{Target, fence, queued, ring_to, update};
use crate::job::transition::EventRecord;
use crate::job::{Doorbell, EventKind, JobState, RingState, Snapshot};
use crate::store::driver::{Cells, Column, Driver, Row};
use crate::store::row::{count, priority_of};
use crate::store::sql::Sql;
use crate::store::{StoreError, Term, Unring};

impl<D: Driver> SqlStore<D> {
    /// `UPDATE jobs SET doorbell = …`: doorbell bookkeeping, which is not a change of the
    /// job (its `updated_at` stays).
    fn ring_update(&self, ring: RingState) -> Sql {
        let mut sql = self.sql();
        sql.push("UPDATE jobs SET updated_at = updated_at");
        ring_to(&mut sql, ring);
        sql
    }

    /// Marks queued jobs as needing a doorbell.
    pub(super) async fn needed(&self, ids: &[Uuid], term: Option<Term>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut sql = self.ring_update(RingState::Needed);
        sql.push(" WHERE id IN ").ids(ids);
        queued(&mut sql);
        if let Some(term) = term {
            fence(&mut sql, term);
        }
        self.driver.writer().await?.execute(sql).await.map(drop)
    }

    /// Confirms rings of jobs still queued and `ringing`: their doorbells are in the queue.
    /// (A job claimed meanwhile needs no confirmation: the doorbell state of a job that is
    /// not queued means nothing.)
    pub(super) async fn rung(&self, ids: &[Uuid]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        // Rows locked meanwhile are being claimed (or cancelled): they are skipped, never
        // waited for, so confirming a thousand rows cannot deadlock with a worker claiming a
        // few of them in another order. A skipped job still queued stays `ringing` and is
        // rung again after the grace: a duplicate doorbell at worst.
        let mut sql = self.ring_update(RingState::Rung);
        sql.push(" WHERE id IN (SELECT id FROM jobs WHERE id IN ")
            .ids(ids);
        queued(&mut sql)
            .push(" AND doorbell = ")
            .bind(RingState::Ringing.as_str())
            .skip_locked()
            .push(")");
        self.driver.writer().await?.execute(sql).await
    }

    /// Marks up to `limit` due jobs that need a doorbell as `ringing`, oldest due first, each
    /// with a `dispatched` event naming the term.
    pub(super) async fn due(&self, term: Term, limit: u32) -> Result<Vec<Doorbell>, StoreError> {
        let mut sql = self.ring_update(RingState::Ringing);
        sql.push(" WHERE id IN (SELECT id FROM jobs WHERE state = ")
            .bind(JobState::Queued.as_str())
            .push(" AND doorbell = ")
            .bind(RingState::Needed.as_str())
            .push(" AND run_at <= ")
            .now()
            .push(" ORDER BY run_at LIMIT ")
            .bind(limit)
            .skip_locked()
            .push(")");
        queued(&mut sql)
            .push(" AND doorbell = ")
            .bind(RingState::Needed.as_str());
        fence(&mut sql, term);
        let event = EventRecord::new(EventKind::Dispatched, serde_json::json!({"term": term.0}));
        let mut writer = self.driver.writer().await?;
        let rows = writer.apply(sql, Some(&event), true).await?.into_rows();
        rows.into_iter()
            .map(|row| {
                Ok(Doorbell {
                    job_id: row.id,
                    priority: priority_of(row.id, i64::from(row.priority))?,
                    host: Some(row.domain),
                })
            })
            .collect()
    }

    /// Takes back up to `limit` running jobs whose lease expired (every running job when
    /// `term` is `None`: a restart of the only process, which held them all).
    pub(super) async fn reap(
        &self,
        term: Option<Term>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut sql = self.sql();
        sql.push(
            "SELECT id, attempt, max_attempts, worker_id, strategy, priority FROM jobs
             WHERE state = ",
        )
        .bind(JobState::Running.as_str());
        if term.is_some() {
            sql.push(" AND lease_until < ").now();
        }
        sql.push(" ORDER BY lease_until LIMIT ").bind(limit);
        let columns = [
            Column::Uuid,
            Column::Int,
            Column::Int,
            Column::OptText,
            Column::Text,
            Column::Int,
        ];
        let candidates = self.driver.writer().await?.rows(sql, &columns).await?;
        let mut reaped = Vec::new();
        for row in candidates {
            let (id, seen) = expired(row)?;
            let mut transition = seen.reap(term.map(|t| t.0));
            transition.guard.lease_expired = term.is_some();
            let change = update(self.driver.dialect(), Target::Id(id), &transition, term);
            let mut writer = self.driver.writer().await?;
            let applied = writer
                .apply(change, transition.event.as_ref(), false)
                .await?;
            if applied.count() == 1 {
                reaped.push(id);
            }
        }
        Ok(reaped)
    }

    /// Marks queued jobs whose doorbell was lost as needing one.
    pub(super) async fn lost(&self, term: Term, which: &Unring) -> Result<u64, StoreError> {
        if matches!(which, Unring::Stale(_, levels) if levels.is_empty()) {
            return Ok(0);
        }
        let mut sql = self.ring_update(RingState::Needed);
        sql.push(" WHERE state = ").bind(JobState::Queued.as_str());
        match which {
            Unring::LostBefore(created) => {
                sql.push(" AND doorbell <> ")
                    .bind(RingState::Needed.as_str())
                    .push(" AND rung_at < ")
                    .bind(*created)
                    .push(" AND run_at <= ")
                    .now();
            }
            Unring::Unconfirmed(older_than) => {
                sql.push(" AND doorbell = ")
                    .bind(RingState::Ringing.as_str())
                    .push(" AND rung_at <= ")
                    .now_offset(*older_than, true);
            }
            Unring::Stale(older_than, levels) => {
                sql.push(" AND doorbell = ")
                    .bind(RingState::Rung.as_str())
                    .push(" AND run_at <= ")
                    .now()
                    .push(" AND rung_at <= ")
                    .now_offset(*older_than, true)
                    .push(" AND priority IN (");
                for (i, level) in levels.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.bind(i64::from(*level));
                }
                sql.push(")");
            }
        }
        fence(&mut sql, term);
        self.driver.writer().await?.execute(sql).await
    }
}

/// A reap candidate: its id and what the decision needs.
fn expired(row: Row) -> Result<(Uuid, Snapshot), StoreError> {
    let mut cells = Cells::of(row);
    let id = cells.uuid()?;
    let attempt = count(id, cells.int()?)?;
    let max_attempts = count(id, cells.int()?)?;
    let worker = cells.opt_text()?;
    let strategy = cells.text()?;
    let priority = priority_of(id, cells.int()?)?;
    Ok((
        id,
        Snapshot {
            state: JobState::Running,
            attempt,
            max_attempts,
            worker,
            strategy: strategy
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("job {id}: {e}")))?,
            priority,
        },
    ))
}

impl<D: Driver> SqlStore<D> {
    /// Recovers after the only process using the store stopped without settling: every
    /// running job goes back to the queue (or fails when out of attempts), every queued job
    /// needs a ring again, and nobody leads. Only safe while no other process uses the store.
    pub async fn recover_after_restart(&self) -> Result<(u64, u64), StoreError> {
        const BATCH: u32 = 500;
        let mut requeued = 0;
        loop {
            let n = self.reap(None, BATCH).await?.len() as u64;
            requeued += n;
            if n < u64::from(BATCH) {
                break;
            }
        }
        let mut sql = self.ring_update(RingState::Needed);
        sql.push(" WHERE state = ").bind(JobState::Queued.as_str());
        let mut writer = self.driver.writer().await?;
        let unrung = writer.execute(sql).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM leaders");
        writer.execute(sql).await?;
        Ok((requeued, unrung))
    }
}
