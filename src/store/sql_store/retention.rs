//! Deleting finished jobs with everything of theirs: the leader's fenced purge of expired
//! jobs, one erased job, idempotency records past their day, and the queue of artifact
//! objects whose rows are gone.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use super::SqlStore;
use super::render::fence;
use crate::artifact::ObjectKey;
use crate::job::JobState;
use crate::retention::{
    DoomedObject, EraseRefused, Erased, Expiry, RetainFor, RetentionIndex, RetentionOverride,
    Tenants,
};
use crate::store::driver::{Cells, Column, Driver, Transaction};
use crate::store::{IDEMPOTENCY_TTL, StoreError, Term};

/// How a stored age reads: NULL (here -2) follows the settings, -1 is forever.
const UNSET: i64 = -2;
const FOREVER: i64 = -1;

fn stored(retain: Option<RetainFor>) -> Option<i64> {
    retain.map(|r| match r {
        RetainFor::Forever => FOREVER,
        RetainFor::Age(age) => i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
    })
}

fn read(seconds: i64) -> Option<RetainFor> {
    match seconds {
        UNSET => None,
        FOREVER => Some(RetainFor::Forever),
        s => Some(RetainFor::Age(Duration::from_secs(
            u64::try_from(s).unwrap_or(0),
        ))),
    }
}

impl<D: Driver> SqlStore<D> {
    /// Deletes `ids` (locked by this transaction) with their events, artifacts' rows
    /// (queuing their objects) and idempotency records. `None` when the fence no longer
    /// holds: the caller drops the transaction and nothing is deleted.
    async fn erase_locked(
        &self,
        tx: &mut Box<dyn Transaction>,
        ids: &[Uuid],
        term: Option<Term>,
    ) -> Result<Option<Erased>, StoreError> {
        let mut doom = self.sql();
        doom.push(
            "INSERT INTO artifact_purges (job_id, attempt, name, bytes, queued_at)
             SELECT job_id, attempt, name, bytes, ",
        )
        .now()
        .push(" FROM job_artifacts WHERE ")
        .column_among("job_id", ids)
        .push(" ON CONFLICT (job_id, attempt, name) DO NOTHING");
        tx.execute(doom).await?;
        let mut erased = Erased::default();
        for (table, count) in [
            ("job_artifacts", &mut erased.artifacts),
            ("job_events", &mut erased.events),
            ("idempotency_keys", &mut erased.idempotency_keys),
        ] {
            let mut sql = self.sql();
            sql.push("DELETE FROM ")
                .push(table)
                .push(" WHERE ")
                .column_among("job_id", ids);
            *count = tx.execute(sql).await?;
        }
        let mut jobs = self.sql();
        jobs.push("DELETE FROM jobs WHERE ").id_among(ids);
        if let Some(term) = term {
            fence(&mut jobs, term);
        }
        erased.jobs = tx.execute(jobs).await?;
        Ok((erased.jobs == ids.len() as u64).then_some(erased))
    }
}

impl<D: Driver> SqlStore<D> {
    /// Tenants' own ages: every tenant's, or `only` one's.
    async fn read_retention(
        &self,
        only: Option<&str>,
    ) -> Result<Vec<(String, RetentionOverride)>, StoreError> {
        let mut sql = self.sql();
        sql.push(
            "SELECT tenant_id, COALESCE(succeeded_s, -2), COALESCE(failed_s, -2),
                    COALESCE(cancelled_s, -2)
             FROM tenant_retention",
        );
        if let Some(tenant) = only {
            sql.push(" WHERE tenant_id = ").bind(tenant);
        }
        sql.push(" ORDER BY tenant_id");
        let rows = self
            .driver
            .reader()
            .await?
            .rows(sql, &[Column::Text, Column::Int, Column::Int, Column::Int])
            .await?;
        rows.into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                Ok((
                    cells.text()?,
                    RetentionOverride {
                        succeeded: read(cells.int()?),
                        failed: read(cells.int()?),
                        cancelled: read(cells.int()?),
                    },
                ))
            })
            .collect()
    }
}

#[async_trait]
impl<D: Driver> RetentionIndex for SqlStore<D> {
    async fn retention_overrides(&self) -> Result<Vec<(String, RetentionOverride)>, StoreError> {
        self.read_retention(None).await
    }

    async fn retention_of(&self, tenant: &str) -> Result<Option<RetentionOverride>, StoreError> {
        Ok(self
            .read_retention(Some(tenant))
            .await?
            .into_iter()
            .next()
            .map(|(_, own)| own))
    }

    async fn set_retention(&self, tenant: &str, own: &RetentionOverride) -> Result<(), StoreError> {
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO tenant_retention (tenant_id, succeeded_s, failed_s, cancelled_s, updated_at)
             VALUES (",
        )
        .bind(tenant);
        for seconds in [own.succeeded, own.failed, own.cancelled] {
            match stored(seconds) {
                Some(s) => sql.push(", ").bind(s),
                None => sql.push(", NULL"),
            };
        }
        sql.push(", ").bind(Utc::now()).push(
            ") ON CONFLICT (tenant_id) DO UPDATE SET succeeded_s = excluded.succeeded_s,
                 failed_s = excluded.failed_s, cancelled_s = excluded.cancelled_s,
                 updated_at = excluded.updated_at",
        );
        self.driver.writer().await?.execute(sql).await.map(drop)
    }

    async fn clear_retention(&self, tenant: &str) -> Result<bool, StoreError> {
        let mut sql = self.sql();
        sql.push("DELETE FROM tenant_retention WHERE tenant_id = ")
            .bind(tenant);
        Ok(self.driver.writer().await?.execute(sql).await? > 0)
    }

    async fn purge_expired(
        &self,
        term: Term,
        expiry: &Expiry,
        limit: u32,
        within: Duration,
    ) -> Result<Erased, StoreError> {
        let mut tx = self.driver.begin_within(within).await?;
        let mut pick = self.sql();
        pick.push("SELECT id FROM jobs WHERE state = ")
            .bind(expiry.state.as_str())
            .push(" AND finished_at < ")
            .now_offset(expiry.age, true)
            .push(" AND ");
        match &expiry.tenants {
            Tenants::Only(tenant) => pick.push("tenant_id = ").bind(tenant.as_str()),
            Tenants::AllBut(tenants) => pick.not_among("tenant_id", tenants),
        };
        fence(&mut pick, term);
        pick.push(" ORDER BY finished_at LIMIT ")
            .bind(limit)
            .skip_locked();
        let ids: Vec<Uuid> = tx
            .rows(pick, &[Column::Uuid])
            .await?
            .into_iter()
            .map(|row| Cells::of(row).uuid())
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(Erased::default());
        }
        match self.erase_locked(&mut tx, &ids, Some(term)).await? {
            Some(erased) => {
                tx.commit().await?;
                Ok(erased)
            }
            None => Ok(Erased::default()),
        }
    }

    async fn purge_idempotency(&self, term: Term, limit: u32) -> Result<u64, StoreError> {
        let mut sql = self.sql();
        sql.push(
            "DELETE FROM idempotency_keys WHERE (tenant_id, key) IN
               (SELECT tenant_id, key FROM idempotency_keys WHERE created_at < ",
        )
        .now_offset(IDEMPOTENCY_TTL, true)
        .push(" ORDER BY created_at LIMIT ")
        .bind(limit)
        .push(")");
        fence(&mut sql, term);
        self.driver.leader().await?.execute(sql).await
    }

    async fn erase_job(
        &self,
        job: Uuid,
        tenant: Option<&str>,
    ) -> Result<Result<Erased, EraseRefused>, StoreError> {
        let mut tx = self.driver.begin().await?;
        let mut pick = self.sql();
        pick.push("SELECT state FROM jobs WHERE id = ").bind(job);
        if let Some(tenant) = tenant {
            pick.push(" AND tenant_id = ").bind(tenant);
        }
        pick.for_update();
        let Some(row) = tx.rows(pick, &[Column::Text]).await?.into_iter().next() else {
            return Ok(Err(EraseRefused::Missing));
        };
        let state: JobState = Cells::of(row)
            .text()?
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("job {job} has an unknown state").into()))?;
        if !state.is_terminal() {
            return Ok(Err(EraseRefused::Unfinished(state)));
        }
        match self.erase_locked(&mut tx, &[job], None).await? {
            Some(erased) => {
                tx.commit().await?;
                Ok(Ok(erased))
            }
            None => Ok(Err(EraseRefused::Missing)),
        }
    }

    async fn doomed_objects(
        &self,
        job: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DoomedObject>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT job_id, attempt, name, bytes FROM artifact_purges");
        if let Some(job) = job {
            sql.push(" WHERE job_id = ").bind(job);
        }
        sql.push(" ORDER BY queued_at LIMIT ").bind(limit);
        let rows = self
            .driver
            .reader()
            .await?
            .rows(sql, &[Column::Uuid, Column::Int, Column::Text, Column::Int])
            .await?;
        rows.into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                Ok(DoomedObject {
                    key: ObjectKey {
                        job: cells.uuid()?,
                        attempt: u32::try_from(cells.int()?).unwrap_or(0),
                        name: cells.text()?,
                    },
                    bytes: u64::try_from(cells.int()?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn forget_objects(&self, objects: &[DoomedObject]) -> Result<(), StoreError> {
        if objects.is_empty() {
            return Ok(());
        }
        let mut sql = self.sql();
        sql.push("DELETE FROM artifact_purges WHERE (job_id, attempt, name) IN (VALUES ");
        for (i, object) in objects.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(object.key.job)
                .push(", ")
                .bind(object.key.attempt)
                .push(", ")
                .bind(object.key.name.as_str())
                .push(")");
        }
        sql.push(")");
        self.driver.writer().await?.execute(sql).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_ages_read_back() {
        for retain in [
            None,
            Some(RetainFor::Forever),
            Some(RetainFor::Age(Duration::from_secs(86_400))),
        ] {
            assert_eq!(read(stored(retain).unwrap_or(UNSET)), retain);
        }
    }
}
