//! Artifacts: files jobs produce (screenshots, PDFs, page snapshots), kept in an object store
//! (a directory, or an S3-compatible bucket) with a metadata row per file in an index (the
//! job store implements it).

mod key;
mod location;
mod s3;
mod unclaimed;

use std::path::Path;
use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::DateTime;
use chrono::Utc;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::job::Hold;

pub use key::ObjectKey;
pub use location::{ArtifactLocation, Bucket};
pub use s3::S3Access;

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
    /// The attempt that wrote it (which object holds its bytes; not part of the API).
    #[serde(skip)]
    pub attempt: u32,
}

impl ArtifactRecord {
    /// The object holding its bytes.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            job: self.job_id,
            attempt: self.attempt,
            name: self.name.clone(),
        }
    }

    /// Where the API serves it.
    pub fn url(&self) -> String {
        format!("/api/v1/jobs/{}/artifacts/{}", self.job_id, self.name)
    }
}

/// Where artifacts' metadata is kept.
#[async_trait]
pub trait ArtifactIndex: Send + Sync + 'static {
    /// Records (or replaces) the metadata of a job's artifact while `hold` still holds the
    /// job; refused (not `unavailable`) once it does not. A replaced artifact of another
    /// attempt has its object queued for deletion.
    async fn put_artifact(&self, artifact: &ArtifactRecord, hold: &Hold) -> Result<(), IndexError>;

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
    /// The store cannot be used as configured (unreachable, refused credentials, no bucket).
    #[error("artifact store {store}: cannot {doing}: {detail}")]
    Unusable {
        /// The store and how it is reached (never a secret).
        store: String,
        /// What was tried.
        doing: &'static str,
        /// What the store answered.
        detail: String,
        /// Whether asking again may succeed (no answer, or a server error), unlike a refusal.
        transient: bool,
    },
}

impl ArtifactError {
    /// Whether the store may answer if asked again (it did not answer, or failed inside).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ArtifactError::Unusable {
                transient: true,
                ..
            }
        )
    }
}

/// Where the store's own checks write; outside every job's keys (those are `<uuid>/<name>`).
const PROBE_DIR: &str = "_control-plane-probe";
/// Objects deleted at once.
const DELETES_IN_FLIGHT: usize = 16;

/// A download: the artifact's metadata and its bytes as they arrive from the store.
pub type Download = (
    ArtifactRecord,
    BoxStream<'static, Result<Bytes, ArtifactError>>,
);

/// Stores artifacts' bytes in an object store and their metadata in the job store.
#[derive(Clone)]
pub struct ArtifactStore {
    objects: Arc<dyn ObjectStore>,
    index: Arc<dyn ArtifactIndex>,
    /// Where the bytes are, for messages (a directory, or a bucket and its endpoint).
    name: Arc<str>,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArtifactStore({})", self.name)
    }
}

impl ArtifactStore {
    /// Artifacts kept at `location`; a bucket is reached with `access`. Nothing is asked of
    /// the store yet: [`ArtifactStore::check_writable`] does.
    pub fn open(
        location: &ArtifactLocation,
        access: &S3Access,
        index: Arc<dyn ArtifactIndex>,
    ) -> Result<ArtifactStore, ArtifactError> {
        match location {
            ArtifactLocation::Dir(dir) => ArtifactStore::local(dir, index),
            ArtifactLocation::Bucket(bucket) => {
                let name = format!("{location} ({})", access.endpoint_name());
                let objects = access.open(bucket).map_err(|e| ArtifactError::Unusable {
                    store: name.clone(),
                    doing: "configure it",
                    detail: e.to_string(),
                    transient: false,
                })?;
                Ok(ArtifactStore {
                    objects,
                    index,
                    name: name.into(),
                })
            }
        }
    }

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
            name: dir.display().to_string().into(),
        })
    }

    /// Where the bytes are kept (never a secret).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn unusable(&self, doing: &'static str, error: &object_store::Error) -> ArtifactError {
        // Refusals (credentials, permissions, a missing bucket) are the store's answer;
        // the rest (no connection, a 5xx after retries) may pass.
        let refused = matches!(
            error,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
                | object_store::Error::NotFound { .. }
                | object_store::Error::Precondition { .. }
        );
        ArtifactError::Unusable {
            store: self.name.to_string(),
            doing,
            detail: error.to_string(),
            transient: !refused,
        }
    }

    /// Writes, reads back and deletes a small object: what a worker (writing) and the
    /// scheduler (deleting) need, asked once at start so that wrong credentials, a missing
    /// bucket or an unreachable store stop the process with a message naming them.
    pub async fn check_writable(&self) -> Result<(), ArtifactError> {
        let probe = ObjectPath::from(format!("{PROBE_DIR}/{}", Uuid::now_v7()));
        self.objects
            .put(&probe, PutPayload::from_static(b"ok"))
            .await
            .map_err(|e| self.unusable("write", &e))?;
        self.objects
            .head(&probe)
            .await
            .map_err(|e| self.unusable("read", &e))?;
        self.objects
            .delete(&probe)
            .await
            .map_err(|e| self.unusable("delete", &e))
    }

    /// Asks the store for an object that does not exist: "not found" means it answers and
    /// takes the credentials (what `/ready` reports).
    pub async fn check_reachable(&self) -> Result<(), ArtifactError> {
        let probe = ObjectPath::from(format!("{PROBE_DIR}/ready"));
        match self.objects.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.unusable("read", &e)),
        }
    }

    /// Stores `data` as the job's artifact `name` for the attempt `hold`, replacing an
    /// earlier one of that name; refused once `hold` no longer holds the job.
    pub async fn put(
        &self,
        job: Uuid,
        hold: &Hold,
        name: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<ArtifactRecord, ArtifactError> {
        let record = ArtifactRecord {
            job_id: job,
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            bytes: data.len() as u64,
            sha256: sha256_hex(&data),
            created_at: Utc::now(),
            attempt: hold.attempt,
        };
        let path = record.key().path()?;
        self.objects
            .put(&path, PutPayload::from(Bytes::from(data)))
            .await?;
        if let Err(e) = self.index.put_artifact(&record, hold).await {
            // The attempt lost the job (or the job is gone): leave no object that no row
            // names; being its own, it is nobody else's. An index that is only unreachable
            // may have taken the row: asked again once it answers.
            unclaimed::settle(
                self.objects.clone(),
                self.index.clone(),
                record,
                path,
                !e.unavailable,
            );
            return Err(e.into());
        }
        Ok(record)
    }

    /// The job's artifacts.
    pub async fn list(&self, job: Uuid) -> Result<Vec<ArtifactRecord>, ArtifactError> {
        Ok(self.index.artifacts(job).await?)
    }

    /// One artifact's metadata and its bytes as a stream (never whole in memory), if it
    /// exists.
    pub async fn download(&self, job: Uuid, name: &str) -> Result<Option<Download>, ArtifactError> {
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
        match self.objects.get(&record.key().path()?).await {
            Ok(found) => Ok(Some((
                record,
                found.into_stream().map_err(ArtifactError::from).boxed(),
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One artifact's metadata and bytes, whole, if it exists (small files and tests).
    pub async fn get(
        &self,
        job: Uuid,
        name: &str,
    ) -> Result<Option<(ArtifactRecord, Bytes)>, ArtifactError> {
        let Some((record, stream)) = self.download(job, name).await? else {
            return Ok(None);
        };
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        Ok(Some((record, Bytes::from(chunks.concat()))))
    }

    /// Deletes the objects `keys`; one already gone is not an error.
    pub async fn delete_objects(&self, keys: &[ObjectKey]) -> Result<(), ArtifactError> {
        // Owned paths and store: futures that borrow nothing, so the stream is `Send` for
        // any caller.
        let deletes = keys
            .iter()
            .map(ObjectKey::path)
            .collect::<Result<Vec<ObjectPath>, ArtifactError>>()?
            .into_iter()
            .map(|path| {
                let objects = self.objects.clone();
                async move {
                    match objects.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(ArtifactError::from(e)),
                    }
                }
            });
        futures::stream::iter(deletes)
            .buffer_unordered(DELETES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
