//! What can go wrong talking to the store.

use crate::artifact::IndexError;

/// What can go wrong talking to the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now; the caller may retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A statement ran out of its time (a write past its request's deadline, a scheduler
    /// statement past its share of the leadership): the database rolled it back.
    #[error("{0}")]
    TimedOut(String),
    /// The store is configured wrongly (a malformed URL); retrying cannot help.
    #[error("{0}")]
    Config(String),
    /// The database answers but its schema is older than this build (migrations not applied).
    #[error("the database is not migrated; run `control-plane migrate` (or start `serve`)")]
    NotMigrated,
    /// A stored row cannot be read back as a job.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// Whether waiting may make the error go away (the database starting, being created or
    /// migrated by another process).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::TimedOut(_)
                | StoreError::NotMigrated
                | StoreError::Database(_)
        )
    }

    /// Whether the database is out of reach or out of time: writing the same jobs one by
    /// one would fail the same way.
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::TimedOut(_))
    }
}

impl From<StoreError> for IndexError {
    fn from(error: StoreError) -> IndexError {
        IndexError {
            unavailable: error.is_outage(),
            message: error.to_string(),
        }
    }
}
