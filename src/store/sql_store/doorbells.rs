//! Doorbell bookkeeping and reaping: which queued jobs need a ring, which are being rung,
//! which were rung; taking back expired leases. The leader's changes are fenced by its term.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::SqlStore;
use super::render::{Target, fence, queued, ring_to, update};
use crate::job::event_detail::DispatchedDetail;
use crate::job::transition::EventRecord;
use crate::job::{Doorbell, EventDetail, JobState, RingState};
use crate::store::Job;
use crate::store::driver::{Cells, Column, Driver};
use crate::store::row::priority_of;
use crate::store::sql::Sql;
use crate::store::{LostPage, QueuePosition, StoreError, Term, Unring};

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
        sql.push(" WHERE ").id_among(ids);
        queued(&mut sql);
        let mut conn = match term {
            Some(term) => {
                fence(&mut sql, term);
                self.driver.leader().await?
            }
            None => self.driver.writer().await?,
        };
        conn.execute(sql).await.map(drop)
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
        sql.push(" WHERE ").id_in(|pick| {
            pick.push("SELECT id FROM jobs WHERE ").id_among(ids);
            queued(pick)
                .push(" AND doorbell = ")
                .bind(RingState::Ringing.as_str())
                .skip_locked();
        });
        self.driver.writer().await?.execute(sql).await
    }

    /// Marks up to `limit` due jobs that need a doorbell as `ringing`, oldest due first, each
    /// with a `dispatched` event naming the term. The jobs are picked once, in the order of
    /// the index of jobs needing a doorbell, then changed by id: a plan that stays linear
    /// whatever the statistics say.
    pub(super) async fn due(&self, term: Term, limit: u32) -> Result<Vec<Doorbell>, StoreError> {
        let mut sql = self.ring_update(RingState::Ringing);
        sql.push(" WHERE ").id_in(|pick| {
            pick.push("SELECT id FROM jobs WHERE state = ")
                .bind(JobState::Queued.as_str())
                .push(" AND doorbell = ")
                .bind(RingState::Needed.as_str())
                .push(" AND run_at <= ")
                .now()
                .push(" ORDER BY run_at LIMIT ")
                .bind(limit)
                .skip_locked();
        });
        queued(&mut sql)
            .push(" AND doorbell = ")
            .bind(RingState::Needed.as_str());
        fence(&mut sql, term);
        let event = EventRecord::of(EventDetail::Dispatched(DispatchedDetail {
            term: term.0,
            queue_lost: false,
        }));
        let mut leader = self.driver.leader().await?;
        let rows = leader.apply(sql, Some(&event), true).await?.into_rows();
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
        // Whole rows, read as every job is read (reaping is rare: the bytes are no matter).
        sql.push("SELECT * FROM jobs WHERE state = ")
            .bind(JobState::Running.as_str());
        if term.is_some() {
            sql.push(" AND lease_until < ").now();
        }
        sql.push(" ORDER BY lease_until LIMIT ").bind(limit);
        // The leader's connection (a restart's recovery has no leader: the writer).
        let mut conn = match term {
            Some(_) => self.driver.leader().await?,
            None => self.driver.writer().await?,
        };
        let candidates = conn.jobs(sql).await?;
        let mut reaped = Vec::new();
        for row in candidates {
            let job = Job::try_from(row)?;
            let (id, seen) = (job.id, job.snapshot());
            let mut transition = seen.reap(term.map(|t| t.0));
            transition.guard.lease_expired = term.is_some();
            let change = update(self.driver.dialect(), Target::Id(id), &transition, term);
            let applied = conn.apply(change, transition.event.as_ref(), false).await?;
            if applied.count() == 1 {
                reaped.push(id);
            }
        }
        Ok(reaped)
    }

    /// Marks up to `limit` queued jobs whose doorbell was lost as needing one (for
    /// `LostBefore`, the jobs of one page of the queue).
    pub(super) async fn lost(
        &self,
        term: Term,
        which: &Unring,
        limit: u32,
    ) -> Result<u64, StoreError> {
        match which {
            Unring::Unconfirmed(older_than) => self.unconfirmed(term, *older_than, limit).await,
            Unring::Stale(older_than, levels) => self.stale(term, *older_than, levels, limit).await,
        }
    }

    /// Marks up to `limit` queued jobs whose ring began longer than `older_than` ago and was
    /// never confirmed (their ringer died between marking and ringing), oldest first.
    async fn unconfirmed(
        &self,
        term: Term,
        older_than: std::time::Duration,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut sql = self.ring_update(RingState::Needed);
        sql.push(" WHERE ").id_in(|pick| {
            pick.push("SELECT id FROM jobs WHERE state = ")
                .bind(JobState::Queued.as_str())
                .push(" AND doorbell = ")
                .bind(RingState::Ringing.as_str())
                .push(" AND rung_at <= ")
                .now_offset(older_than, true)
                .push(" ORDER BY rung_at LIMIT ")
                .bind(limit);
        });
        sql.push(" AND doorbell = ")
            .bind(RingState::Ringing.as_str());
        queued(&mut sql);
        fence(&mut sql, term);
        self.driver.leader().await?.execute(sql).await
    }

    /// Marks up to `limit` due queued jobs of each of `levels` rung longer than `older_than`
    /// ago: those levels have nothing waiting, so those doorbells were lost. Each level is
    /// read on its own, in queue order.
    async fn stale(
        &self,
        term: Term,
        older_than: std::time::Duration,
        levels: &[crate::job::Priority],
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut marked = 0;
        for level in levels {
            let mut sql = self.ring_update(RingState::Needed);
            sql.push(" WHERE ").id_in(|pick| {
                pick.push("SELECT id FROM jobs WHERE state = ")
                    .bind(JobState::Queued.as_str())
                    .push(" AND priority = ")
                    .bind(i64::from(*level))
                    .push(" AND run_at <= ")
                    .now()
                    .push(" AND doorbell = ")
                    .bind(RingState::Rung.as_str())
                    .push(" AND rung_at <= ")
                    .now_offset(older_than, true)
                    .push(" ORDER BY run_at LIMIT ")
                    .bind(limit);
            });
            sql.push(" AND doorbell = ").bind(RingState::Rung.as_str());
            queued(&mut sql);
            fence(&mut sql, term);
            marked += self.driver.leader().await?.execute(sql).await?;
        }
        Ok(marked)
    }

    /// One page of the queue after a loss: the next `limit` due queued jobs of a level from
    /// `from` in queue order (`run_at`, id), and those of them rung before `lost_before`.
    /// Pages are read by position within a level (the index of queued jobs by level, due
    /// time and id), so a backlog of any size is gone through once, a bounded statement at
    /// a time; a level's last page hands on to the next level.
    pub(super) async fn page_after_loss(
        &self,
        lost_before: DateTime<Utc>,
        from: QueuePosition,
        limit: u32,
    ) -> Result<LostPage, StoreError> {
        let mut page = self.sql();
        page.push("SELECT run_at, id, domain, doorbell, rung_at FROM jobs WHERE state = ")
            .bind(JobState::Queued.as_str())
            .push(" AND priority = ")
            .bind(i64::from(from.priority))
            .push(" AND run_at <= ")
            .now();
        if let Some((run_at, id)) = from.last {
            page.push(" AND (run_at, id) > (")
                .bind(run_at)
                .push(", ")
                .bind(id)
                .push(")");
        }
        page.push(" ORDER BY run_at, id LIMIT ").bind(limit);
        let columns = [
            Column::Time,
            Column::Uuid,
            Column::Text,
            Column::Text,
            Column::OptTime,
        ];
        let rows = self.driver.leader().await?.rows(page, &columns).await?;
        let (count, mut last, mut lost) = (rows.len(), None, Vec::new());
        for row in rows {
            let mut cells = Cells::of(row);
            let (run_at, id, domain) = (cells.time()?, cells.uuid()?, cells.text()?);
            let (doorbell, rung_at) = (cells.text()?, cells.opt_time()?);
            last = Some((run_at, id));
            if doorbell != RingState::Needed.as_str() && rung_at.is_some_and(|at| at < lost_before)
            {
                lost.push(Doorbell {
                    job_id: id,
                    priority: from.priority,
                    host: Some(domain),
                });
            }
        }
        let next = match last {
            Some(last) if count >= limit as usize => Some(QueuePosition {
                priority: from.priority,
                last: Some(last),
            }),
            _ => from.priority.less_urgent().map(|priority| QueuePosition {
                priority,
                last: None,
            }),
        };
        Ok(LostPage { lost, next })
    }

    /// Marks jobs just rung again after a loss as rung, with a `dispatched` event each.
    pub(super) async fn rerung(
        &self,
        term: Term,
        ids: &[Uuid],
        lost_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut sql = self.ring_update(RingState::Rung);
        sql.push(" WHERE ").id_among(ids);
        queued(&mut sql)
            .push(" AND doorbell <> ")
            .bind(RingState::Needed.as_str())
            .push(" AND rung_at < ")
            .bind(lost_before);
        fence(&mut sql, term);
        let event = EventRecord::of(EventDetail::Dispatched(DispatchedDetail {
            term: term.0,
            queue_lost: true,
        }));
        let mut leader = self.driver.leader().await?;
        Ok(leader.apply(sql, Some(&event), false).await?.count())
    }
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
