//! Profiles and their kept versions (see [`crate::profile`]); a job's save is written only
//! while its attempt still holds the job, which stays locked until the version is in.

use async_trait::async_trait;
use uuid::Uuid;

use super::SqlStore;
use crate::profile::{
    ProfileIndex, ProfileView, Saved, Saver, SealedVersion, Summary, VersionView,
};
use crate::store::StoreError;
use crate::store::driver::{Cells, Column, Driver, Exec, Row};
use crate::store::sql::{Dialect, Sql};

/// The columns of a profile with its current version's summary.
const PROFILE_COLUMNS: &str = "p.name, p.current_version, v.origins, v.cookies, v.bytes,
     p.created_at, p.updated_at, p.last_used_at";
const PROFILE_TYPES: [Column; 8] = [
    Column::Text,
    Column::Int,
    Column::Text,
    Column::Int,
    Column::Int,
    Column::Time,
    Column::Time,
    Column::OptTime,
];
const VERSION_COLUMNS: &str =
    "version, origins, cookies, bytes, saved_by, restored_from, created_at";
const VERSION_TYPES: [Column; 7] = [
    Column::Int,
    Column::Text,
    Column::Int,
    Column::Int,
    Column::OptText,
    Column::Int,
    Column::Time,
];

fn corrupt(name: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("profile {name}: {what}").into())
}

fn number(name: &str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(name, "a count out of range"))
}

fn summary(name: &str, cells: &mut Cells) -> Result<Summary, StoreError> {
    let origins = serde_json::from_str(&cells.text()?).map_err(|_| corrupt(name, "origins"))?;
    Ok(Summary {
        origins,
        cookies: number(name, cells.int()?)?,
        bytes: u64::try_from(cells.int()?).map_err(|_| corrupt(name, "bytes"))?,
    })
}

fn profile_view(row: Row) -> Result<ProfileView, StoreError> {
    let mut cells = Cells::of(row);
    let name = cells.text()?;
    let current_version = number(&name, cells.int()?)?;
    Ok(ProfileView {
        current_version,
        summary: summary(&name, &mut cells)?,
        created_at: cells.time()?,
        updated_at: cells.time()?,
        last_used_at: cells.opt_time()?,
        versions: None,
        name,
    })
}

fn version_view(name: &str, row: Row) -> Result<VersionView, StoreError> {
    let mut cells = Cells::of(row);
    let version = number(name, cells.int()?)?;
    let summary = summary(name, &mut cells)?;
    let saved_by = match cells.opt_text()? {
        Some(id) => Some(Uuid::parse_str(&id).map_err(|_| corrupt(name, "saved_by"))?),
        None => None,
    };
    let restored_from = Some(number(name, cells.int()?)?).filter(|v| *v > 0);
    Ok(VersionView {
        version,
        summary,
        saved_by,
        restored_from,
        created_at: cells.time()?,
    })
}

impl<D: Driver> SqlStore<D> {
    /// `WHERE tenant_id = … AND name = …` of `table` (aliased or not).
    fn of_profile(&self, sql: &mut Sql, column: &str, tenant: &str, name: &str) {
        sql.push(" WHERE ")
            .push(column)
            .push("tenant_id = ")
            .bind(tenant)
            .push(" AND ")
            .push(column)
            .push("name = ")
            .bind(name);
    }

    /// The profile's next version number, made when a job that loaded none saves; none
    /// when the profile is gone.
    async fn next_version(
        &self,
        tx: &mut dyn Exec,
        tenant: &str,
        name: &str,
        creates: bool,
    ) -> Result<Option<u32>, StoreError> {
        let mut bump = self.sql();
        bump.push("UPDATE profiles SET current_version = current_version + 1, updated_at = ")
            .now();
        self.of_profile(&mut bump, "", tenant, name);
        bump.push(" RETURNING current_version");
        if let Some(row) = tx.rows(bump, &[Column::Int]).await?.pop() {
            return Ok(Some(number(name, Cells::of(row).int()?)?));
        }
        if !creates {
            return Ok(None);
        }
        let mut make = self.sql();
        make.push(
            "INSERT INTO profiles (tenant_id, name, current_version, created_at, updated_at)
             VALUES (",
        )
        .bind(tenant)
        .push(", ")
        .bind(name)
        .push(", 1, ")
        .now()
        .push(", ")
        .now()
        .push(")");
        tx.execute(make).await?;
        Ok(Some(1))
    }
}

#[async_trait]
impl<D: Driver> ProfileIndex for SqlStore<D> {
    async fn load_profile(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<SealedVersion>, StoreError> {
        let mut used = self.sql();
        used.push("UPDATE profiles SET last_used_at = ").now();
        self.of_profile(&mut used, "", tenant, name);
        used.push(" RETURNING current_version");
        let mut writer = self.driver.writer().await?;
        let Some(row) = writer.rows(used, &[Column::Int]).await?.pop() else {
            return Ok(None);
        };
        let version = number(name, Cells::of(row).int()?)?;
        drop(writer);
        self.profile_version(tenant, name, version).await
    }

    async fn save_profile(
        &self,
        tenant: &str,
        name: &str,
        sealed: &str,
        summary: &Summary,
        saver: Saver<'_>,
        keep: u32,
    ) -> Result<Saved, StoreError> {
        let mut tx = self.driver.begin().await?;
        let (saved_by, restored_from, creates) = match saver {
            Saver::Job { id, hold, loaded } => {
                if !self.still_held(tx.as_mut(), id, hold).await? {
                    return Ok(Saved::NotHeld);
                }
                (Some(id.to_string()), 0, loaded.is_none())
            }
            Saver::Restore(version) => (None, version, false),
        };
        let Some(version) = self
            .next_version(tx.as_mut(), tenant, name, creates)
            .await?
        else {
            return Ok(Saved::Gone);
        };
        let origins = serde_json::to_string(&summary.origins).unwrap_or_else(|_| "[]".into());
        let mut insert = self.sql();
        insert
            .push("INSERT INTO profile_versions (tenant_id, name, ")
            .push(VERSION_COLUMNS)
            .push(", sealed) VALUES (")
            .bind(tenant)
            .push(", ")
            .bind(name)
            .push(", ")
            .bind(version)
            .push(", ")
            .bind(origins)
            .push(", ")
            .bind(summary.cookies)
            .push(", ")
            .bind(i64::try_from(summary.bytes).unwrap_or(i64::MAX))
            .push(", ")
            .bind(saved_by)
            .push(", ")
            .bind(restored_from)
            .push(", ")
            .now()
            .push(", ")
            .bind(sealed)
            .push(")");
        tx.execute(insert).await?;
        let mut prune = self.sql();
        prune.push("DELETE FROM profile_versions");
        self.of_profile(&mut prune, "", tenant, name);
        prune
            .push(" AND version <= ")
            .bind(i64::from(version) - i64::from(keep));
        tx.execute(prune).await?;
        tx.commit().await?;
        Ok(Saved::Stored(version))
    }

    async fn list_profiles(&self, tenant: &str) -> Result<Vec<ProfileView>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(PROFILE_COLUMNS)
            .push(
                " FROM profiles p JOIN profile_versions v ON v.tenant_id = p.tenant_id
                  AND v.name = p.name AND v.version = p.current_version WHERE p.tenant_id = ",
            )
            .bind(tenant)
            .push(" ORDER BY p.name");
        let rows = self
            .driver
            .reader()
            .await?
            .rows(sql, &PROFILE_TYPES)
            .await?;
        rows.into_iter().map(profile_view).collect()
    }

    async fn profile(&self, tenant: &str, name: &str) -> Result<Option<ProfileView>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT ").push(PROFILE_COLUMNS).push(
            " FROM profiles p JOIN profile_versions v ON v.tenant_id = p.tenant_id
              AND v.name = p.name AND v.version = p.current_version",
        );
        self.of_profile(&mut sql, "p.", tenant, name);
        let mut reader = self.driver.reader().await?;
        let Some(row) = reader.rows(sql, &PROFILE_TYPES).await?.pop() else {
            return Ok(None);
        };
        let mut view = profile_view(row)?;
        let mut versions = self.sql();
        versions
            .push("SELECT ")
            .push(VERSION_COLUMNS)
            .push(" FROM profile_versions");
        self.of_profile(&mut versions, "", tenant, name);
        versions.push(" ORDER BY version DESC");
        let rows = reader.rows(versions, &VERSION_TYPES).await?;
        view.versions = Some(
            rows.into_iter()
                .map(|row| version_view(name, row))
                .collect::<Result<_, _>>()?,
        );
        Ok(Some(view))
    }

    async fn profile_version(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<Option<SealedVersion>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT sealed FROM profile_versions");
        self.of_profile(&mut sql, "", tenant, name);
        sql.push(" AND version = ").bind(version);
        let row = self
            .driver
            .reader()
            .await?
            .rows(sql, &[Column::Text])
            .await?
            .pop();
        match row {
            Some(row) => Ok(Some(SealedVersion {
                version,
                sealed: Cells::of(row).text()?,
            })),
            None => Ok(None),
        }
    }

    async fn delete_profile(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.driver.begin().await?;
        let mut versions = self.sql();
        versions.push("DELETE FROM profile_versions");
        self.of_profile(&mut versions, "", tenant, name);
        tx.execute(versions).await?;
        let mut profile = self.sql();
        profile.push("DELETE FROM profiles");
        self.of_profile(&mut profile, "", tenant, name);
        let deleted = tx.execute(profile).await? > 0;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn profile_jobs(
        &self,
        tenant: &str,
        name: &str,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        let named = match self.driver.dialect() {
            Dialect::Postgres => "payload ? 'profile' AND (payload -> 'profile' ->> 'name') = ",
            Dialect::Sqlite => "json_extract(payload, '$.profile.name') = ",
        };
        let mut sql = self.sql();
        sql.push("SELECT id FROM jobs WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND ")
            .push(named)
            .bind(name)
            .push(" ORDER BY created_at DESC LIMIT ")
            .bind(limit);
        let rows = self
            .driver
            .reader()
            .await?
            .rows(sql, &[Column::Uuid])
            .await?;
        rows.into_iter().map(|row| Cells::of(row).uuid()).collect()
    }
}
