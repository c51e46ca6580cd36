//! Per-tenant quota overrides and the queued count they are checked against.

use async_trait::async_trait;
use chrono::Utc;

use super::SqlStore;
use crate::job::JobState;
use crate::quota::{Quota, QuotaIndex};
use crate::store::StoreError;
use crate::store::driver::{Cells, Column, Driver};

#[async_trait]
impl<D: Driver> QuotaIndex for SqlStore<D> {
    async fn quota(&self, tenant: &str) -> Result<Option<Quota>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT max_queued, submit_rate FROM tenant_quotas WHERE tenant_id = ")
            .bind(tenant);
        let rows = self
            .driver
            .reader()
            .await?
            .rows(sql, &[Column::Int, Column::Int])
            .await?;
        rows.into_iter()
            .next()
            .map(|row| {
                let mut cells = Cells::of(row);
                let corrupt =
                    |what: &str| StoreError::Corrupt(format!("quota of {tenant}: {what}").into());
                Ok(Quota {
                    max_queued: u64::try_from(cells.int()?).map_err(|_| corrupt("max_queued"))?,
                    submit_rate: u32::try_from(cells.int()?).map_err(|_| corrupt("submit_rate"))?,
                })
            })
            .transpose()
    }

    async fn set_quota(&self, tenant: &str, quota: Quota) -> Result<(), StoreError> {
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO tenant_quotas (tenant_id, max_queued, submit_rate, updated_at) VALUES (",
        )
        .bind(tenant)
        .push(", ")
        .bind(i64::try_from(quota.max_queued).unwrap_or(i64::MAX))
        .push(", ")
        .bind(i64::from(quota.submit_rate))
        .push(", ")
        .bind(Utc::now())
        .push(
            ") ON CONFLICT (tenant_id) DO UPDATE SET max_queued = excluded.max_queued,
                 submit_rate = excluded.submit_rate, updated_at = excluded.updated_at",
        );
        self.driver.writer().await?.execute(sql).await.map(drop)
    }

    async fn clear_quota(&self, tenant: &str) -> Result<bool, StoreError> {
        let mut sql = self.sql();
        sql.push("DELETE FROM tenant_quotas WHERE tenant_id = ")
            .bind(tenant);
        Ok(self.driver.writer().await?.execute(sql).await? > 0)
    }

    async fn queued(&self, tenant: &str) -> Result<u64, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT count(*) FROM jobs WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND state = ")
            .bind(JobState::Queued.as_str());
        let rows = self
            .driver
            .reader()
            .await?
            .rows(sql, &[Column::Int])
            .await?;
        let count = match rows.into_iter().next() {
            Some(row) => Cells::of(row).int()?,
            None => 0,
        };
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
