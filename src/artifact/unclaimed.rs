//! An object written for an artifact whose row was not recorded: no row may ever name it
//! (the attempt lost the job), or one may (the index took the row but its answer was lost).
//! It is settled in the background: once the index answers, an object that no row of its
//! attempt names is deleted; a delete the store refuses for now is tried again.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tracing::{debug, warn};

use super::{ArtifactIndex, ArtifactRecord};

/// How long an unclaimed object is watched before it is left for an operator.
const SETTLE_FOR: Duration = Duration::from_secs(600);
/// Pause between two tries.
const SETTLE_PAUSE: Duration = Duration::from_secs(1);

/// Settles `path`, written for `record`, in the background. `known_unclaimed` says the index
/// refused the row outright (no row names it), so it is only to be deleted.
pub(super) fn settle(
    objects: Arc<dyn ObjectStore>,
    index: Arc<dyn ArtifactIndex>,
    record: ArtifactRecord,
    path: ObjectPath,
    known_unclaimed: bool,
) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + SETTLE_FOR;
        let mut unclaimed = known_unclaimed;
        while tokio::time::Instant::now() < deadline {
            if !unclaimed {
                match index.artifacts(record.job_id).await {
                    Ok(rows) if rows.iter().any(|row| names(row, &record)) => return,
                    Ok(_) => unclaimed = true,
                    Err(e) => {
                        debug!(error = %e, "cannot ask the index about an unclaimed object yet")
                    }
                }
            }
            if unclaimed {
                match objects.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => return,
                    Err(e) => debug!(error = %e, "cannot delete an unclaimed object yet"),
                }
            }
            tokio::time::sleep(SETTLE_PAUSE).await;
        }
        warn!(%path, "an artifact object no row names is left in the store");
    });
}

/// Whether `row` is the record of this very write.
fn names(row: &ArtifactRecord, record: &ArtifactRecord) -> bool {
    row.name == record.name && row.attempt == record.attempt && row.sha256 == record.sha256
}
