//! Artifacts' rows: written only while the attempt that made them still holds the job, read
//! by the API.

use uuid::Uuid;

use super::SqlStore;
use crate::artifact::ArtifactRecord;
use crate::job::{Hold, JobState};
use crate::store::StoreError;
use crate::store::driver::{Cells, Column, Driver, Exec};

impl<D: Driver> SqlStore<D> {
    /// Whether `hold` still holds job `id`, locking the job's row until the transaction
    /// ends, so no reaper hands the job over before what the attempt writes is in.
    pub(super) async fn still_held(
        &self,
        tx: &mut dyn Exec,
        id: Uuid,
        hold: &Hold,
    ) -> Result<bool, StoreError> {
        let mut held = self.sql();
        held.push("SELECT id FROM jobs WHERE id = ")
            .bind(id)
            .push(" AND state = ")
            .bind(JobState::Running.as_str())
            .push(" AND attempt = ")
            .bind(hold.attempt)
            .push(" AND worker_id = ")
            .bind(hold.worker.as_str())
            .for_update();
        Ok(!tx.rows(held, &[Column::Uuid]).await?.is_empty())
    }

    /// Records (or replaces) an artifact's row if `hold` still holds its job, which stays
    /// locked until the row is in: a reaper cannot hand the job over in between. `false`
    /// when the attempt lost the job (or the job is gone). A row of the same name written
    /// by another attempt is replaced, and its object queued for deletion.
    pub(super) async fn keep_artifact(
        &self,
        artifact: &ArtifactRecord,
        hold: &Hold,
    ) -> Result<bool, StoreError> {
        let mut tx = self.driver.begin().await?;
        if !self.still_held(tx.as_mut(), artifact.job_id, hold).await? {
            return Ok(false);
        }
        let mut replaced = self.sql();
        replaced
            .push(
                "INSERT INTO artifact_purges (job_id, attempt, name, bytes, queued_at)
                 SELECT job_id, attempt, name, bytes, ",
            )
            .now()
            .push(" FROM job_artifacts WHERE job_id = ")
            .bind(artifact.job_id)
            .push(" AND name = ")
            .bind(artifact.name.as_str())
            .push(" AND attempt <> ")
            .bind(artifact.attempt)
            .push(" ON CONFLICT (job_id, attempt, name) DO NOTHING");
        tx.execute(replaced).await?;
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO job_artifacts (job_id, name, content_type, bytes, sha256, created_at,
                                        attempt)
             VALUES (",
        )
        .bind(artifact.job_id)
        .push(", ")
        .bind(artifact.name.as_str())
        .push(", ")
        .bind(artifact.content_type.as_str())
        .push(", ")
        .bind(i64::try_from(artifact.bytes).unwrap_or(i64::MAX))
        .push(", ")
        .bind(artifact.sha256.as_str())
        .push(", ")
        .bind(artifact.created_at)
        .push(", ")
        .bind(artifact.attempt)
        .push(
            ") ON CONFLICT (job_id, name) DO UPDATE SET content_type = excluded.content_type,
                 bytes = excluded.bytes, sha256 = excluded.sha256, created_at = excluded.created_at,
                 attempt = excluded.attempt",
        );
        tx.execute(sql).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A job's artifacts, by name.
    pub(super) async fn job_artifacts(&self, job: Uuid) -> Result<Vec<ArtifactRecord>, StoreError> {
        let mut sql = self.sql();
        sql.push(
            "SELECT job_id, name, content_type, bytes, sha256, created_at, attempt
             FROM job_artifacts WHERE job_id = ",
        )
        .bind(job)
        .push(" ORDER BY name");
        let columns = [
            Column::Uuid,
            Column::Text,
            Column::Text,
            Column::Int,
            Column::Text,
            Column::Time,
            Column::Int,
        ];
        let rows = self.driver.reader().await?.rows(sql, &columns).await?;
        rows.into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                Ok(ArtifactRecord {
                    job_id: cells.uuid()?,
                    name: cells.text()?,
                    content_type: cells.text()?,
                    bytes: u64::try_from(cells.int()?).unwrap_or(0),
                    sha256: cells.text()?,
                    created_at: cells.time()?,
                    attempt: u32::try_from(cells.int()?).unwrap_or(0),
                })
            })
            .collect()
    }
}
