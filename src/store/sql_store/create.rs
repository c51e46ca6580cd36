//! Creating jobs: the row and its `created` event in one change, and idempotency keys that
//! make a submission safe to retry.

use uuid::Uuid;

use super::SqlStore;
use crate::auth::Scope;
use crate::job::{JobState, RingState, lifecycle};
use crate::spec::JobSpec;
use crate::store::driver::{Cells, Column, Driver, Exec};
use crate::store::sql::{Sql, millis};
use crate::store::{Created, IDEMPOTENCY_TTL, IdempotencyKey, Job, StoreError};

impl<D: Driver> SqlStore<D> {
    /// Records a new queued job and its `created` event.
    pub(super) async fn insert(&self, tenant: &str, spec: &JobSpec) -> Result<Job, StoreError> {
        let mut writer = self.driver.writer().await?;
        insert_job(writer.as_mut(), self.sql(), tenant, spec).await
    }

    /// Records a new job under an idempotency key, or answers with the key's earlier job. A
    /// concurrent request with the same key waits for the first one's transaction.
    pub(super) async fn insert_once(
        &self,
        tenant: &str,
        spec: &JobSpec,
        key: &IdempotencyKey,
    ) -> Result<Created, StoreError> {
        let mut tx = self.driver.begin().await?;
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
        let job = insert_job(tx.as_mut(), self.sql(), tenant, spec).await?;
        let mut bind = self.sql();
        bind.push("UPDATE idempotency_keys SET job_id = ")
            .bind(job.id)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND key = ")
            .bind(key.key.as_str());
        tx.execute(bind).await?;
        tx.commit().await?;
        Ok(Created::New(Box::new(job)))
    }

    /// The request hash and job an existing key recorded.
    async fn earlier(
        &self,
        tx: &mut dyn Exec,
        tenant: &str,
        key: &IdempotencyKey,
    ) -> Result<(String, Option<Uuid>), StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT request_hash, job_id FROM idempotency_keys WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND key = ")
            .bind(key.key.as_str());
        let row = tx
            .rows(sql, &[Column::Text, Column::OptUuid])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Database("an idempotency key vanished".into()))?;
        let mut cells = Cells::of(row);
        Ok((cells.text()?, cells.opt_uuid()?))
    }

    /// A replay of the key's job, or a mismatch when the request differs.
    async fn answer_for(
        &self,
        tenant: &str,
        key: &IdempotencyKey,
        (hash, job): (String, Option<Uuid>),
    ) -> Result<Created, StoreError> {
        if hash != key.request_hash {
            return Ok(Created::KeyMismatch);
        }
        let job = match job {
            Some(id) => self.job(Scope::Tenant(tenant), id).await?,
            None => None,
        };
        job.map(|job| Created::Replayed(Box::new(job)))
            .ok_or_else(|| StoreError::Database("an idempotency key lost its job".into()))
    }
}

/// Inserts a queued job and its `created` event. A job due now is `ringing` (its creator
/// rings it next); a scheduled one `needed` (the scheduler rings it when due).
async fn insert_job(
    exec: &mut dyn Exec,
    mut sql: Sql,
    tenant: &str,
    spec: &JobSpec,
) -> Result<Job, StoreError> {
    sql.push(
        "INSERT INTO jobs (id, tenant_id, domain, url, job_type, strategy, priority, payload,
                           max_attempts, timeout_ms, callback_url, state, run_at, doorbell,
                           rung_at, created_at, updated_at) VALUES (",
    )
    .bind(Uuid::now_v7())
    .push(", ")
    .bind(tenant)
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
    let event = lifecycle::created(spec.priority, spec.run_at);
    let row = exec
        .apply(sql, Some(&event), true)
        .await?
        .into_rows()
        .pop()
        .ok_or_else(|| StoreError::Database("the new job was not returned".into()))?;
    Job::try_from(row)
}
