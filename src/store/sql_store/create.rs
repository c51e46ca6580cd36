//! Creating jobs: the row and its `created` event in one change, and idempotency keys that
//! make a submission safe to retry.

use std::collections::HashMap;
use std::time::Duration;

use uuid::Uuid;

use super::SqlStore;
use crate::job::transition::EventRecord;
use crate::job::{JobState, RingState, lifecycle};
use crate::persist::Cause;
use crate::spec::JobSpec;
use crate::store::driver::{Cells, Column, Driver, Exec};
use crate::store::sql::{Dialect, Sql, millis};
use crate::store::{Created, IDEMPOTENCY_TTL, IdempotencyKey, Job, NewJob, StoreError};

impl<D: Driver> SqlStore<D> {
    /// Records new jobs of several tenants in one commit, each statement ending `within`.
    pub(super) async fn insert_many(
        &self,
        jobs: &[NewJob<'_>],
        within: Option<Duration>,
    ) -> Result<Vec<Job>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin(within).await?;
        let made = insert_jobs(tx.as_mut(), self.driver.dialect(), jobs).await?;
        tx.commit().await?;
        Ok(made)
    }

    /// Records new jobs under an idempotency key, or answers with the key's earlier jobs. A
    /// concurrent request with the same key waits for the first one's transaction. The key
    /// keeps the first job (`job_id`, removed with it) and, for more than one, every id in
    /// order (`job_ids`).
    pub(super) async fn insert_once(
        &self,
        tenant: &str,
        specs: &[JobSpec],
        key: &IdempotencyKey,
        within: Option<Duration>,
    ) -> Result<Created<Vec<Job>>, StoreError> {
        let mut tx = self.begin(within).await?;
        let mut forget = self.sql();
        forget
            .push("DELETE FROM idempotency_keys WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND key = ")
            .bind(key.key.as_str())
            .push(" AND created_at < ")
            .now_offset(IDEMPOTENCY_TTL, true);
        tx.execute(forget).await?;
        let mut claim = self.sql();
        claim
            .push(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at) VALUES (",
            )
            .bind(tenant)
            .push(", ")
            .bind(key.key.as_str())
            .push(", ")
            .bind(key.request_hash.as_str())
            .push(", ")
            .now()
            .push(") ON CONFLICT (tenant_id, key) DO NOTHING");
        if tx.execute(claim).await? == 0 {
            let earlier = self.earlier(tx.as_mut(), tenant, key).await?;
            tx.commit().await?;
            return self.answer_for(tenant, key, earlier).await;
        }
        let batch: Vec<NewJob<'_>> = specs.iter().map(|spec| NewJob { tenant, spec }).collect();
        let jobs = insert_jobs(tx.as_mut(), self.driver.dialect(), &batch).await?;
        let ids: Vec<Uuid> = jobs.iter().map(|job| job.id).collect();
        let first = *ids
            .first()
            .ok_or_else(|| StoreError::Database("a submission of no jobs".into()))?;
        let list = (ids.len() > 1).then(|| serde_json::json!(ids).to_string());
        let mut bind = self.sql();
        bind.push("UPDATE idempotency_keys SET job_id = ")
            .bind(first)
            .push(", job_ids = ")
            .bind(list)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND key = ")
            .bind(key.key.as_str());
        tx.execute(bind).await?;
        tx.commit().await?;
        Ok(Created::New(jobs))
    }

    /// A write transaction, its statements ending `within` when given.
    async fn begin(
        &self,
        within: Option<Duration>,
    ) -> Result<Box<dyn crate::store::driver::Transaction>, StoreError> {
        match within {
            Some(within) => self.driver.begin_within(within).await,
            None => self.driver.begin().await,
        }
    }

    /// The request hash and job an existing key recorded.
    async fn earlier(
        &self,
        tx: &mut dyn Exec,
        tenant: &str,
        key: &IdempotencyKey,
    ) -> Result<Earlier, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT request_hash, job_id, job_ids FROM idempotency_keys WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND key = ")
            .bind(key.key.as_str());
        let row = tx
            .rows(sql, &[Column::Text, Column::OptUuid, Column::OptText])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Database("an idempotency key vanished".into()))?;
        let mut cells = Cells::of(row);
        let (hash, first, list) = (cells.text()?, cells.opt_uuid()?, cells.opt_text()?);
        let jobs = match list {
            Some(list) => serde_json::from_str(&list)
                .map_err(|e| StoreError::Corrupt(Cause::of("an idempotency key's jobs", e)))?,
            None => first.into_iter().collect(),
        };
        Ok(Earlier { hash, jobs })
    }

    /// A replay of the key's jobs, or a mismatch when the request differs.
    async fn answer_for(
        &self,
        tenant: &str,
        key: &IdempotencyKey,
        earlier: Earlier,
    ) -> Result<Created<Vec<Job>>, StoreError> {
        if earlier.hash != key.request_hash {
            return Ok(Created::KeyMismatch);
        }
        let lost = || StoreError::Database("an idempotency key lost its job".into());
        if earlier.jobs.is_empty() {
            return Err(lost());
        }
        let mut sql = self.sql();
        sql.push("SELECT * FROM jobs WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND ")
            .id_among(&earlier.jobs);
        let rows = self.driver.reader().await?.jobs(sql).await?;
        let mut found: HashMap<Uuid, Job> = HashMap::with_capacity(rows.len());
        for row in rows {
            let job = Job::try_from(row)?;
            found.insert(job.id, job);
        }
        let jobs = earlier
            .jobs
            .iter()
            .map(|id| found.remove(id).ok_or_else(lost))
            .collect::<Result<Vec<Job>, StoreError>>()?;
        Ok(Created::Replayed(jobs))
    }
}

/// What an idempotency key recorded: its request's hash and its jobs, in order.
struct Earlier {
    hash: String,
    jobs: Vec<Uuid>,
}

/// The most jobs one `INSERT` carries (PostgreSQL allows 65,535 parameters a statement; a
/// job binds 15).
const ROWS_PER_INSERT: usize = 1_000;

/// Inserts queued jobs and their `created` events, in as few statements as their events
/// allow (one per priority and start time, a thousand rows at most); returns them in the
/// order given. A job due now is `ringing` (its creator rings it next); a scheduled one
/// `needed` (the scheduler rings it when due).
pub(super) async fn insert_jobs(
    exec: &mut dyn Exec,
    dialect: Dialect,
    jobs: &[NewJob<'_>],
) -> Result<Vec<Job>, StoreError> {
    let ids: Vec<Uuid> = jobs.iter().map(|_| Uuid::now_v7()).collect();
    let mut groups: Vec<(EventRecord, Vec<usize>)> = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        let event = lifecycle::created(job.spec.priority, job.spec.run_at);
        match groups.iter_mut().find(|(seen, _)| *seen == event) {
            Some((_, members)) => members.push(index),
            None => groups.push((event, vec![index])),
        }
    }
    let mut made: HashMap<Uuid, Job> = HashMap::with_capacity(jobs.len());
    for (event, members) in &groups {
        for chunk in members.chunks(ROWS_PER_INSERT) {
            let mut sql = Sql::new(dialect);
            sql.push(
                "INSERT INTO jobs (id, tenant_id, domain, url, job_type, strategy, priority,
                                   payload, max_attempts, timeout_ms, callback_url, state, run_at,
                                   doorbell, rung_at, created_at, updated_at) VALUES ",
            );
            for (n, &index) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                push_row(&mut sql, ids[index], &jobs[index]);
            }
            for row in exec.apply(sql, Some(event), true).await?.into_rows() {
                let job = Job::try_from(row)?;
                made.insert(job.id, job);
            }
        }
    }
    ids.iter()
        .map(|id| {
            made.remove(id)
                .ok_or_else(|| StoreError::Database("a new job was not returned".into()))
        })
        .collect()
}

/// One job's `VALUES` tuple.
fn push_row(sql: &mut Sql, id: Uuid, job: &NewJob<'_>) {
    let spec = job.spec;
    sql.push("(")
        .bind(id)
        .push(", ")
        .bind(job.tenant)
        .push(", ")
        .bind(spec.domain.as_str())
        .push(", ")
        .bind(spec.url.as_str())
        .push(", ")
        .bind(spec.job_type().as_str())
        .push(", ")
        .bind(spec.strategy.as_str())
        .push(", ")
        .bind(i64::from(spec.priority))
        .push(", ")
        .bind(spec.payload.to_stored())
        .push(", ")
        .bind(spec.max_attempts)
        .push(", ")
        .bind(millis(spec.timeout))
        .push(", ")
        .bind(spec.callback.as_ref().map(|url| url.as_str().to_owned()))
        .push(", ")
        .bind(JobState::Queued.as_str())
        .push(", ");
    match spec.run_at {
        None => {
            sql.now()
                .push(", ")
                .bind(RingState::Ringing.as_str())
                .push(", ")
                .now();
        }
        Some(at) => {
            sql.bind(at)
                .push(", CASE WHEN ")
                .bind(at)
                .push(" <= ")
                .now()
                .push(" THEN ")
                .bind(RingState::Ringing.as_str())
                .push(" ELSE ")
                .bind(RingState::Needed.as_str())
                .push(" END, CASE WHEN ")
                .bind(at)
                .push(" <= ")
                .now()
                .push(" THEN ")
                .now()
                .push(" END");
        }
    }
    sql.push(", ").now().push(", ").now().push(")");
}
