//! Webhook deliveries owed by finished jobs: claiming the due ones for a while (each claim is
//! the next attempt, so a courier whose claim lapsed cannot record over another's), and
//! recording each attempt as a timeline event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::SqlStore;
use crate::job::transition::EventRecord;
use crate::store::driver::Driver;
use crate::store::{Job, StoreError};

impl<D: Driver> SqlStore<D> {
    /// Claims up to `limit` due deliveries for `hold`; returns their jobs, each at the
    /// attempt it now holds.
    pub(super) async fn claim_hooks(
        &self,
        limit: u32,
        hold: Duration,
    ) -> Result<Vec<Job>, StoreError> {
        let mut sql = self.sql();
        sql.push("UPDATE jobs SET hook_attempt = hook_attempt + 1, hook_due_at = ")
            .now_offset(hold, false)
            .push(" WHERE id IN (SELECT id FROM jobs WHERE hook_due_at <= ")
            .now()
            .push(" ORDER BY hook_due_at LIMIT ")
            .bind(limit)
            // Checked again on the row itself: of two couriers racing for a row, the one
            // that waited for the other's lock finds it no longer due.
            .push(") AND hook_due_at <= ")
            .now()
            .push(" RETURNING *");
        let rows = self.driver.writer().await?.jobs(sql).await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    /// Records delivery attempt `attempt` of `job` with `event`: the next attempt is due at
    /// `next`, or none is (delivered, or given up). `false` when the claim lapsed.
    pub(super) async fn record_hook(
        &self,
        job: Uuid,
        attempt: u32,
        next: Option<DateTime<Utc>>,
        event: &EventRecord,
    ) -> Result<bool, StoreError> {
        let mut sql = self.sql();
        sql.push("UPDATE jobs SET hook_due_at = ");
        match next {
            Some(at) => sql.bind(at),
            None => sql.push("NULL"),
        };
        sql.push(" WHERE id = ")
            .bind(job)
            .push(" AND hook_attempt = ")
            .bind(attempt)
            .push(" AND hook_due_at IS NOT NULL");
        let mut writer = self.driver.writer().await?;
        Ok(writer.apply(sql, Some(event), false).await?.count() == 1)
    }
}
