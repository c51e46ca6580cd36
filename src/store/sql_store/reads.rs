//! Reading jobs, timelines, counts and artifact metadata (and keeping the latter).

use uuid::Uuid;

use super::SqlStore;
use crate::auth::Scope;
use crate::job::{JobEvent, JobState};
use crate::persist::Cause;
use crate::store::driver::{Cells, Column, Driver};
use crate::store::row::count;
use crate::store::{Job, JobStats, ListQuery, StoreError};

impl<D: Driver> SqlStore<D> {
    /// One job in scope.
    pub(super) async fn job(&self, scope: Scope<'_>, id: Uuid) -> Result<Option<Job>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT * FROM jobs WHERE id = ").bind(id);
        if let Scope::Tenant(tenant) = scope {
            sql.push(" AND tenant_id = ").bind(tenant);
        }
        let rows = self.driver.reader().await?.jobs(sql).await?;
        rows.into_iter().next().map(Job::try_from).transpose()
    }

    /// The jobs in scope, newest first (ids are time-ordered).
    pub(super) async fn jobs(
        &self,
        scope: Scope<'_>,
        query: &ListQuery,
    ) -> Result<Vec<Job>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT * FROM jobs WHERE ");
        match scope {
            Scope::Tenant(tenant) => sql.push("tenant_id = ").bind(tenant),
            Scope::All => sql.push("1 = 1"),
        };
        if let Some(state) = query.state {
            sql.push(" AND state = ").bind(state.as_str());
        }
        if let Some(domain) = &query.domain {
            sql.push(" AND domain = ").bind(domain.as_str());
        }
        if let Some(job_type) = query.job_type {
            sql.push(" AND job_type = ").bind(job_type.as_str());
        }
        if let Some(before) = query.before {
            sql.push(" AND id < ").bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(query.limit));
        let rows = self.driver.reader().await?.jobs(sql).await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    /// A job's timeline, oldest first.
    pub(super) async fn timeline(&self, id: Uuid) -> Result<Vec<JobEvent>, StoreError> {
        let mut sql = self.sql();
        sql.push(
            "SELECT id, job_id, at, kind, attempt, worker_id, detail FROM job_events
             WHERE job_id = ",
        )
        .bind(id)
        .push(" ORDER BY id");
        let columns = [
            Column::Int,
            Column::Uuid,
            Column::Time,
            Column::Text,
            Column::Int,
            Column::OptText,
            Column::Json,
        ];
        let rows = self.driver.reader().await?.rows(sql, &columns).await?;
        rows.into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                let (event, job_id, at) = (cells.int()?, cells.uuid()?, cells.time()?);
                let kind = cells.text()?;
                Ok(JobEvent {
                    id: event,
                    job_id,
                    at,
                    kind: kind.parse().map_err(|e| {
                        StoreError::Corrupt(Cause::of(format!("event {event}: {kind}"), e))
                    })?,
                    attempt: count(job_id, cells.int()?)?,
                    worker_id: cells.opt_text()?,
                    detail: cells.json()?,
                })
            })
            .collect()
    }

    /// Jobs by state, and the oldest due queued job.
    pub(super) async fn counts(&self) -> Result<JobStats, StoreError> {
        let mut reader = self.driver.reader().await?;
        let mut sql = self.sql();
        sql.push("SELECT state, count(*) FROM jobs GROUP BY state");
        let counts = reader
            .rows(sql, &[Column::Text, Column::Int])
            .await?
            .into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                Ok((cells.text()?, cells.int()?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut sql = self.sql();
        sql.push("SELECT priority, count(*), min(run_at) FROM jobs WHERE state = ")
            .bind(JobState::Queued.as_str())
            .push(" AND run_at <= ")
            .now()
            .push(" GROUP BY priority ORDER BY priority");
        let due = reader
            .rows(sql, &[Column::Int, Column::Int, Column::OptTime])
            .await?;
        let mut stats = JobStats::with_counts(counts)?;
        for row in due {
            let mut cells = Cells::of(row);
            let level = u8::try_from(cells.int()?)
                .map_err(|_| StoreError::Corrupt("a priority out of range".to_owned().into()))?;
            stats
                .due_by_priority
                .push((level, cells.int()?, cells.opt_time()?));
        }
        Ok(stats)
    }
}
