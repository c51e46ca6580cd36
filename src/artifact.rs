//! Artifacts: files jobs produce (screenshots, PDFs, page snapshots), kept in an object store
//! with a metadata row per file in an index (the job store implements it).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::DateTime;
use chrono::Utc;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Why the index could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct IndexError {
    /// Whether the index is only unreachable for now (a retry may succeed).
    pub unavailable: bool,
    /// What went wrong.
    pub message: String,
}

/// The metadata of one file a job produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArtifactRecord {
    /// The job.
    pub job_id: Uuid,
    /// The file name, unique per job (`screenshot.png`, `failure.html`, …).
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its size.
    pub bytes: u64,
    /// Hex SHA-256 of its content.
    pub sha256: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl ArtifactRecord {
    /// Where the API serves it.
    pub fn url(&self) -> String {
        format!("/api/v1/jobs/{}/artifacts/{}", self.job_id, self.name)
    }
}

/// Where artifacts' metadata is kept.
#[async_trait]
pub trait ArtifactIndex: Send + Sync + 'static {
    /// Records (or replaces) the metadata of a job's artifact.
    async fn put_artifact(&self, artifact: &ArtifactRecord) -> Result<(), IndexError>;

    /// A job's artifacts, by name.
    async fn artifacts(&self, job: Uuid) -> Result<Vec<ArtifactRecord>, IndexError>;
}

/// Whether `name` is usable as an artifact name (letters, digits, `.`, `_`, `-`; ≤ 100).
pub fn valid_artifact_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Why an artifact could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The object store failed.
    #[error("artifact store: {0}")]
    Objects(#[from] object_store::Error),
    /// The metadata could not be written or read.
    #[error("artifact index: {0}")]
    Index(#[from] IndexError),
    /// The name is not a safe file name.
    #[error("invalid artifact name {0:?}")]
    Name(String),
    /// The directory could not be prepared.
    #[error("ARTIFACT_DIR {dir}: {detail}")]
    Dir {
        /// The directory.
        dir: String,
        /// What went wrong.
        detail: String,
    },
}

/// Stores artifacts' bytes in an object store and their metadata in the job store.
#[derive(Clone)]
pub struct ArtifactStore {
    objects: Arc<dyn ObjectStore>,
    index: Arc<dyn ArtifactIndex>,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArtifactStore({})", self.objects)
    }
}

impl ArtifactStore {
    /// Artifacts kept under the local directory `dir` (created if missing).
    pub fn local(
        dir: &Path,
        index: Arc<dyn ArtifactIndex>,
    ) -> Result<ArtifactStore, ArtifactError> {
        let dir_error = |detail: String| ArtifactError::Dir {
            dir: dir.display().to_string(),
            detail,
        };
        std::fs::create_dir_all(dir).map_err(|e| dir_error(e.to_string()))?;
        let objects =
            LocalFileSystem::new_with_prefix(dir).map_err(|e| dir_error(e.to_string()))?;
        Ok(ArtifactStore {
            objects: Arc::new(objects),
            index,
        })
    }

    fn path(job: Uuid, name: &str) -> Result<ObjectPath, ArtifactError> {
        if !valid_artifact_name(name) {
            return Err(ArtifactError::Name(name.to_owned()));
        }
        Ok(ObjectPath::from(format!("{job}/{name}")))
    }

    /// Stores `data` as the job's artifact `name`, replacing an earlier one of that name.
    pub async fn put(
        &self,
        job: Uuid,
        name: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<ArtifactRecord, ArtifactError> {
        let path = Self::path(job, name)?;
        let record = ArtifactRecord {
            job_id: job,
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            bytes: data.len() as u64,
            sha256: sha256_hex(&data),
            created_at: Utc::now(),
        };
        self.objects
            .put(&path, PutPayload::from(Bytes::from(data)))
            .await?;
        self.index.put_artifact(&record).await?;
        Ok(record)
    }

    /// The job's artifacts.
    pub async fn list(&self, job: Uuid) -> Result<Vec<ArtifactRecord>, ArtifactError> {
        Ok(self.index.artifacts(job).await?)
    }

    /// One artifact's metadata and bytes, if it exists.
    pub async fn get(
        &self,
        job: Uuid,
        name: &str,
    ) -> Result<Option<(ArtifactRecord, Bytes)>, ArtifactError> {
        if !valid_artifact_name(name) {
            return Ok(None);
        }
        let Some(record) = self
            .index
            .artifacts(job)
            .await?
            .into_iter()
            .find(|a| a.name == name)
        else {
            return Ok(None);
        };
        match self.objects.get(&Self::path(job, name)?).await {
            Ok(found) => Ok(Some((record, found.bytes().await?))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
