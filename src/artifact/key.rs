//! Where an artifact's bytes are in the store. Each attempt writes under a key of its own:
//! an attempt that lost its job (its worker cut off, then back) may still finish an upload,
//! and it must never land on the bytes of the attempt that took the job over.

use object_store::path::Path as ObjectPath;
use uuid::Uuid;

use super::{ArtifactError, valid_artifact_name};

/// The object holding one artifact's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    /// The job.
    pub job: Uuid,
    /// The attempt that wrote it; 0 for artifacts written before attempts had keys of their
    /// own (they stay where they were).
    pub attempt: u32,
    /// The artifact's name.
    pub name: String,
}

impl ObjectKey {
    /// The key's path: `<job>/<attempt>/<name>` (`<job>/<name>` for attempt 0). Names hold
    /// no `/`, so the two shapes never meet.
    pub fn path(&self) -> Result<ObjectPath, ArtifactError> {
        if !valid_artifact_name(&self.name) {
            return Err(ArtifactError::Name(self.name.clone()));
        }
        Ok(ObjectPath::from(match self.attempt {
            0 => format!("{}/{}", self.job, self.name),
            attempt => format!("{}/{attempt}/{}", self.job, self.name),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_write_apart_and_old_keys_stay_put() {
        let job = Uuid::nil();
        let key = |attempt| ObjectKey {
            job,
            attempt,
            name: "screenshot.png".to_owned(),
        };
        let path = |attempt| key(attempt).path().expect("a valid name").to_string();
        assert_eq!(path(0), format!("{job}/screenshot.png"));
        assert_eq!(path(2), format!("{job}/2/screenshot.png"));
        assert_ne!(path(1), path(2));
    }

    #[test]
    fn a_name_that_could_climb_out_is_refused() {
        let key = ObjectKey {
            job: Uuid::nil(),
            attempt: 1,
            name: "../x".to_owned(),
        };
        assert!(key.path().is_err());
    }
}
