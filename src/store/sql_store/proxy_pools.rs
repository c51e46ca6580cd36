//! Proxy pools made through the API, kept sealed (see [`crate::proxy::StoredPool`]).

use async_trait::async_trait;
use chrono::Utc;

use super::SqlStore;
use crate::proxy::{PoolIndex, StoredPool};
use crate::store::StoreError;
use crate::store::driver::{Cells, Column, Driver, Row};

const POOL_COLUMNS: &str = "name, tier, rotation, max_per_proxy, sealed, revision";
const POOL_TYPES: [Column; 6] = [
    Column::Text,
    Column::Text,
    Column::Text,
    Column::Int,
    Column::Text,
    Column::Text,
];

fn stored_pool(row: Row) -> Result<StoredPool, StoreError> {
    let mut cells = Cells::of(row);
    let name = cells.text()?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("proxy pool {name}: {what}").into());
    let tier = cells.text()?;
    let rotation = cells.text()?.parse().map_err(|_| corrupt("rotation"))?;
    let max_per_proxy = u32::try_from(cells.int()?).map_err(|_| corrupt("max_per_proxy"))?;
    Ok(StoredPool {
        tier,
        rotation,
        max_per_proxy,
        sealed: cells.text()?,
        revision: cells.text()?,
        name,
    })
}

#[async_trait]
impl<D: Driver> PoolIndex for SqlStore<D> {
    async fn pool_revisions(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT name, revision FROM proxy_pools ORDER BY name");
        let rows = self
            .driver
            .reader()
            .await?
            .rows(sql, &[Column::Text, Column::Text])
            .await?;
        rows.into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                Ok((cells.text()?, cells.text()?))
            })
            .collect()
    }

    async fn stored_pools(&self, names: &[String]) -> Result<Vec<StoredPool>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(POOL_COLUMNS)
            .push(" FROM proxy_pools WHERE name IN (");
        for (at, name) in names.iter().enumerate() {
            if at > 0 {
                sql.push(", ");
            }
            sql.bind(name.as_str());
        }
        sql.push(") ORDER BY name");
        let rows = self.driver.reader().await?.rows(sql, &POOL_TYPES).await?;
        rows.into_iter().map(stored_pool).collect()
    }

    async fn put_pool(&self, pool: &StoredPool) -> Result<(), StoreError> {
        let mut sql = self.sql();
        sql.push("INSERT INTO proxy_pools (")
            .push(POOL_COLUMNS)
            .push(", updated_at) VALUES (")
            .bind(pool.name.as_str())
            .push(", ")
            .bind(pool.tier.as_str())
            .push(", ")
            .bind(pool.rotation.as_str())
            .push(", ")
            .bind(pool.max_per_proxy)
            .push(", ")
            .bind(pool.sealed.as_str())
            .push(", ")
            .bind(pool.revision.as_str())
            .push(", ")
            .bind(Utc::now())
            .push(
                ") ON CONFLICT (name) DO UPDATE SET tier = excluded.tier,
                   rotation = excluded.rotation, max_per_proxy = excluded.max_per_proxy,
                   sealed = excluded.sealed, revision = excluded.revision,
                   updated_at = excluded.updated_at",
            );
        self.driver.writer().await?.execute(sql).await.map(drop)
    }

    async fn delete_pool(&self, name: &str) -> Result<bool, StoreError> {
        let mut sql = self.sql();
        sql.push("DELETE FROM proxy_pools WHERE name = ").bind(name);
        Ok(self.driver.writer().await?.execute(sql).await? > 0)
    }

    async fn reseal_pool(&self, name: &str, was: &str, sealed: &str) -> Result<bool, StoreError> {
        let mut sql = self.sql();
        sql.push("UPDATE proxy_pools SET sealed = ")
            .bind(sealed)
            .push(" WHERE name = ")
            .bind(name)
            .push(" AND sealed = ")
            .bind(was);
        Ok(self.driver.writer().await?.execute(sql).await? > 0)
    }
}
