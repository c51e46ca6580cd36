//! What can go wrong talking to the store, with the library error beneath it kept.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// What can go wrong talking to the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now; the caller may retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// A statement ran out of its time (a write past its request's deadline, a scheduler
    /// statement past its share of the leadership): the database rolled it back.
    #[error("{0}")]
    TimedOut(#[source] Cause),
    /// The store is configured wrongly (a malformed URL); retrying cannot help.
    #[error("{0}")]
    Config(#[source] Cause),
    /// The database answers but its schema is older than this build (migrations not applied).
    #[error("the database is not migrated; run `control-plane migrate` (or start `serve`)")]
    NotMigrated,
    /// A stored row cannot be read back as a job.
    #[error("corrupt row: {0}")]
    Corrupt(#[source] Cause),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] Cause),
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

/// What a store error says, and the error it came from when a library raised it (sqlx's,
/// a migration's): kept whole so that a caller can walk `source()` down to it. Shared,
/// because one failed group commit answers every submission in it with the same error.
#[derive(Debug, Clone)]
pub struct Cause {
    context: String,
    source: Option<Arc<dyn Error + Send + Sync>>,
}

impl Cause {
    /// A cause raised here, with nothing beneath it.
    pub fn new(context: impl Into<String>) -> Cause {
        Cause {
            context: context.into(),
            source: None,
        }
    }

    /// A cause raised by a library: `context` says what was being done (it may be empty).
    pub fn of(context: impl Into<String>, error: impl Error + Send + Sync + 'static) -> Cause {
        Cause {
            context: context.into(),
            source: Some(Arc::new(error)),
        }
    }
}

impl Cause {
    /// What was being done, in this program's words, without the library's error: what a
    /// caller outside may be told.
    pub fn context(&self) -> &str {
        &self.context
    }
}

// The display names the library's error too: logs and problem details print errors with
// `Display` alone, and a cause they did not print would be lost to whoever reads them.
impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.context.is_empty()) {
            (Some(source), true) => write!(f, "{source}"),
            (Some(source), false) => write!(f, "{}: {source}", self.context),
            (None, _) => f.write_str(&self.context),
        }
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn Error + 'static))
    }
}

impl From<String> for Cause {
    fn from(context: String) -> Cause {
        Cause::new(context)
    }
}

impl From<&str> for Cause {
    fn from(context: &str) -> Cause {
        Cause::new(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_error_stays_reachable_through_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = StoreError::Unavailable(Cause::of("connecting", io));
        assert_eq!(
            error.to_string(),
            "database unavailable: connecting: refused"
        );
        let cause = error.source().expect("the cause");
        let beneath = cause.source().expect("the library's error");
        let io = beneath
            .downcast_ref::<std::io::Error>()
            .expect("the io error itself");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
