//! API keys and tenant quota overrides.

use async_trait::async_trait;
use chrono::Utc;

use super::SqlStore;
use crate::auth::{KeyId, KeyIndex, KeyRecord};
use crate::store::StoreError;
use crate::store::driver::{Cells, Column, Driver, Row};

const KEY_COLUMNS: &str = "id, tenant_id, role, name, secret_hash, created_at, revoked_at";
const KEY_TYPES: [Column; 7] = [
    Column::Text,
    Column::Text,
    Column::Text,
    Column::Text,
    Column::Text,
    Column::Time,
    Column::OptTime,
];

fn key_record(row: Row) -> Result<KeyRecord, StoreError> {
    let mut cells = Cells::of(row);
    let id = cells.text()?;
    let corrupt = |what: String| StoreError::Corrupt(format!("api key {id}: {what}").into());
    Ok(KeyRecord {
        id: KeyId::parse(&id).ok_or_else(|| corrupt("malformed id".to_owned()))?,
        tenant: cells.text()?,
        role: cells.text()?.parse().map_err(corrupt)?,
        name: cells.text()?,
        secret_hash: cells.text()?,
        created_at: cells.time()?,
        revoked_at: cells.opt_time()?,
    })
}

#[async_trait]
impl<D: Driver> KeyIndex for SqlStore<D> {
    async fn add_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let mut sql = self.sql();
        sql.push("INSERT INTO api_keys (")
            .push(KEY_COLUMNS)
            .push(") VALUES (")
            .bind(key.id.as_str())
            .push(", ")
            .bind(key.tenant.as_str())
            .push(", ")
            .bind(key.role.as_str())
            .push(", ")
            .bind(key.name.as_str())
            .push(", ")
            .bind(key.secret_hash.as_str())
            .push(", ")
            .bind(key.created_at)
            .push(", NULL)");
        self.driver.writer().await?.execute(sql).await.map(drop)
    }

    async fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(KEY_COLUMNS)
            .push(" FROM api_keys WHERE id = ")
            .bind(id.as_str());
        let rows = self.driver.reader().await?.rows(sql, &KEY_TYPES).await?;
        rows.into_iter().next().map(key_record).transpose()
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(KEY_COLUMNS)
            .push(" FROM api_keys ORDER BY created_at, id");
        let rows = self.driver.reader().await?.rows(sql, &KEY_TYPES).await?;
        rows.into_iter().map(key_record).collect()
    }

    async fn revoke_key(&self, id: &KeyId) -> Result<bool, StoreError> {
        let mut sql = self.sql();
        sql.push("UPDATE api_keys SET revoked_at = ")
            .bind(Utc::now())
            .push(" WHERE id = ")
            .bind(id.as_str())
            .push(" AND revoked_at IS NULL");
        Ok(self.driver.writer().await?.execute(sql).await? > 0)
    }
}
