//! What a database must do for the job store: run statements written once in [`Sql`], read
//! rows back, and apply a transition with its timeline event atomically. PostgreSQL and
//! SQLite each implement this; everything else in the store is shared.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::StoreError;
use super::row::JobRow;
use super::sql::{Dialect, Sql};
use crate::job::transition::EventRecord;

/// What a column of a result holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// An integer of any width.
    Int,
    /// Text.
    Text,
    /// Text or NULL.
    OptText,
    /// A UUID.
    Uuid,
    /// A UUID or NULL.
    OptUuid,
    /// JSON.
    Json,
    /// A point in time.
    Time,
    /// A point in time or NULL.
    OptTime,
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    /// A UUID.
    Uuid(Uuid),
    /// A UUID or NULL.
    OptUuid(Option<Uuid>),
    /// JSON.
    Json(Value),
    /// A point in time.
    Time(DateTime<Utc>),
    /// A point in time or NULL.
    OptTime(Option<DateTime<Utc>>),
}

/// A result row, one cell per requested column.
pub type Row = Vec<Cell>;

/// Reads a row's cells in order, each as the type it was asked for.
pub struct Cells(std::vec::IntoIter<Cell>);

impl Cells {
    /// The cells of `row`.
    pub fn of(row: Row) -> Cells {
        Cells(row.into_iter())
    }

    fn next(&mut self, expected: &str) -> Result<Cell, StoreError> {
        self.0
            .next()
            .ok_or_else(|| StoreError::Corrupt(format!("a row ended before {expected}").into()))
    }

    fn mismatch(expected: &str, cell: &Cell) -> StoreError {
        StoreError::Corrupt(format!("expected {expected}, read {cell:?}").into())
    }
}

/// Defines `Cells::$name`, which reads the next cell as `$variant`.
macro_rules! cell_readers {
    ($($name:ident: $variant:ident($ty:ty), $what:literal;)+) => {
        impl Cells {
            $(
                #[doc = concat!("The next cell, ", $what, ".")]
                pub fn $name(&mut self) -> Result<$ty, StoreError> {
                    match self.next($what)? {
                        Cell::$variant(value) => Ok(value),
                        other => Err(Cells::mismatch($what, &other)),
                    }
                }
            )+
        }
    };
}

cell_readers! {
    int: Int(i64), "an integer";
    text: Text(String), "text";
    opt_text: OptText(Option<String>), "text or NULL";
    uuid: Uuid(Uuid), "a UUID";
    opt_uuid: OptUuid(Option<Uuid>), "a UUID or NULL";
    json: Json(Value), "JSON";
    time: Time(DateTime<Utc>), "a time";
    opt_time: OptTime(Option<DateTime<Utc>>), "a time or NULL";
}

/// Statements a connection (a pool's, or a transaction's) runs.
#[async_trait]
pub trait Exec: Send {
    /// Runs a statement; returns the rows it affected.
    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError>;

    /// Runs a statement and reads its rows as `columns`.
    async fn rows(&mut self, sql: Sql, columns: &[Column]) -> Result<Vec<Row>, StoreError>;

    /// Runs a statement that returns whole job rows (`SELECT *`, `… RETURNING *`).
    async fn jobs(&mut self, sql: Sql) -> Result<Vec<JobRow>, StoreError>;

    /// Runs `change` (an `UPDATE` or `INSERT` on `jobs`, without `RETURNING`) and, in the
    /// same transaction, appends `event` to the timeline of every row it changed (attempt
    /// and worker taken from the changed row). Returns the changed rows when `rows` is set,
    /// else only how many there were.
    async fn apply(
        &mut self,
        change: Sql,
        event: Option<&EventRecord>,
        rows: bool,
    ) -> Result<Applied, StoreError>;
}

/// What an applied change returned.
#[derive(Debug)]
pub enum Applied {
    /// How many rows changed.
    Count(u64),
    /// The changed rows.
    Rows(Vec<JobRow>),
}

impl Applied {
    /// How many rows changed.
    pub fn count(&self) -> u64 {
        match self {
            Applied::Count(n) => *n,
            Applied::Rows(rows) => rows.len() as u64,
        }
    }

    /// The changed rows (none when only counted).
    pub fn into_rows(self) -> Vec<JobRow> {
        match self {
            Applied::Count(_) => Vec::new(),
            Applied::Rows(rows) => rows,
        }
    }
}

/// An open write transaction.
#[async_trait]
pub trait Transaction: Exec {
    /// Makes its changes durable.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// A database the job store runs on.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Its dialect.
    fn dialect(&self) -> Dialect;

    /// Checks that it answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A connection for writes (SQLite: the one writer).
    async fn writer(&self) -> Result<Box<dyn Exec>, StoreError>;

    /// A connection for reads (SQLite: a read-only one that never blocks the writer).
    async fn reader(&self) -> Result<Box<dyn Exec>, StoreError>;

    /// A connection for the scheduler's leader, whose statements end within a share of its
    /// lease (PostgreSQL: a pool of its own with a statement timeout; SQLite: the writer).
    async fn leader(&self) -> Result<Box<dyn Exec>, StoreError>;

    /// Begins a write transaction.
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError>;

    /// Begins a write transaction whose statements the database ends once they have run for
    /// `within` (PostgreSQL's `statement_timeout`; SQLite's one writer waits for nobody).
    async fn begin_within(&self, within: Duration) -> Result<Box<dyn Transaction>, StoreError>;

    /// Its connections now, and the statements run so far.
    fn usage(&self) -> DatabaseUse;
}

/// A database's connections now, and the statements run so far, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatabaseUse {
    /// Connections lent out.
    pub in_use: u64,
    /// Connections open and idle.
    pub idle: u64,
    /// Statements run since start (a transaction's each count).
    pub queries: u64,
}
