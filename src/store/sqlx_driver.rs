//! The sqlx plumbing both databases share: pools, binding a statement's arguments, reading
//! rows, transactions. What differs between PostgreSQL and SQLite is their [`Flavor`].

use std::future::Future;
use std::ops::DerefMut;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::{
    Arguments, AssertSqlSafe, ColumnIndex, Connection, Database, Decode, Encode, Executor,
    IntoArguments, Pool, Row as _, Type,
};
use uuid::Uuid;

use super::StoreError;
use super::driver::{Applied, Cell, Column, DatabaseUse, Driver, Exec, Row, Transaction};
use super::row::JobRow;
use super::sql::{Arg, Dialect, Sql};
use crate::job::transition::EventRecord;

/// What is particular to one database.
pub trait Flavor: Native {
    /// Its SQL dialect.
    const DIALECT: Dialect;
    /// How a write transaction begins.
    const BEGIN: &'static str;

    /// How a write transaction begins whose statements end within `ms` milliseconds.
    fn begin_within(ms: u64) -> String;
    /// Whether applying a change with its event needs a transaction around it (SQLite), or
    /// is one statement already (PostgreSQL's data-modifying CTE).
    const APPLY_IN_TRANSACTION: bool;
    /// How it stores a point in time.
    type Time: for<'t> Encode<'t, Self> + for<'r> Decode<'r, Self> + Type<Self> + Send + 'static;

    /// A point in time as stored.
    fn store_time(at: DateTime<Utc>) -> Self::Time;

    /// A stored point in time.
    fn read_time(stored: Self::Time) -> Result<DateTime<Utc>, StoreError>;

    /// An integer column, of whatever width it has.
    fn int(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error>;

    /// A whole `jobs` row.
    fn job(row: &Self::Row) -> Result<JobRow, StoreError>;

    /// What an error means for callers: unavailable (retry later) or not.
    fn classify(error: sqlx::Error) -> StoreError;

    /// Rows a statement affected.
    fn affected(done: &Self::QueryResult) -> u64;

    /// Runs `change` and appends `event` for every row it changed, atomically.
    fn apply(
        conn: &mut Self::Connection,
        change: Sql,
        event: Option<&EventRecord>,
        rows: bool,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;
}

/// The types both databases bind and read the same way.
pub trait Native: Database {
    /// Adds an argument that is not a time.
    fn add(arguments: &mut Self::Arguments, arg: Arg) -> Result<(), BoxDynError>;

    /// Reads a cell that is neither an integer nor a time.
    fn cell(row: &Self::Row, index: usize, column: Column) -> Result<Cell, sqlx::Error>;
}

impl<DB: Database> Native for DB
where
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Decode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Decode<'t, DB> + Type<DB>,
    for<'t> Uuid: Encode<'t, DB> + Decode<'t, DB> + Type<DB>,
    for<'t> Option<Uuid>: Decode<'t, DB> + Type<DB>,
    for<'t> Value: Encode<'t, DB> + Decode<'t, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn add(arguments: &mut DB::Arguments, arg: Arg) -> Result<(), BoxDynError> {
        match arg {
            Arg::Int(n) => arguments.add(n),
            Arg::Text(text) => arguments.add(text),
            Arg::OptText(text) => arguments.add(text),
            Arg::Uuid(id) => arguments.add(id),
            Arg::Json(value) => arguments.add(value),
            Arg::Time(_) => Err("a time is bound by the flavor".into()),
        }
    }

    fn cell(row: &DB::Row, index: usize, column: Column) -> Result<Cell, sqlx::Error> {
        Ok(match column {
            Column::Text => Cell::Text(row.try_get(index)?),
            Column::OptText => Cell::OptText(row.try_get(index)?),
            Column::Uuid => Cell::Uuid(row.try_get(index)?),
            Column::OptUuid => Cell::OptUuid(row.try_get(index)?),
            Column::Json => Cell::Json(row.try_get(index)?),
            Column::Int | Column::Time | Column::OptTime => {
                return Err(sqlx::Error::Decode("read by the flavor".into()));
            }
        })
    }
}

/// A statement's arguments as sqlx takes them.
struct Bound<DB: Database>(DB::Arguments);

impl<DB: Database> IntoArguments<DB> for Bound<DB> {
    fn into_arguments(self) -> DB::Arguments {
        self.0
    }
}

/// The arguments of a statement, bound natively.
fn arguments<DB: Flavor>(sql: Sql) -> Result<(String, Bound<DB>), StoreError> {
    let text = sql.text().to_owned();
    let mut arguments = DB::Arguments::default();
    for (n, arg) in sql.into_args().into_iter().enumerate() {
        let added = match arg {
            Arg::Time(at) => arguments.add(DB::store_time(at)),
            other => DB::add(&mut arguments, other),
        };
        added.map_err(|e| StoreError::Database(format!("argument ${}: {e}", n + 1).into()))?;
    }
    Ok((text, Bound(arguments)))
}

/// One row read as `columns`.
fn decode<DB: Flavor>(row: &DB::Row, columns: &[Column]) -> Result<Row, StoreError>
where
    usize: ColumnIndex<DB::Row>,
{
    let time = |index: usize| -> Result<Option<DateTime<Utc>>, StoreError> {
        let stored: Option<DB::Time> = row.try_get(index).map_err(DB::classify)?;
        stored.map(DB::read_time).transpose()
    };
    columns
        .iter()
        .enumerate()
        .map(|(index, column)| match column {
            Column::Int => DB::int(row, index).map(Cell::Int).map_err(DB::classify),
            Column::Time => time(index)?
                .map(Cell::Time)
                .ok_or_else(|| StoreError::Corrupt(format!("column {index} is NULL").into())),
            Column::OptTime => time(index).map(Cell::OptTime),
            other => DB::cell(row, index, *other).map_err(DB::classify),
        })
        .collect()
}

/// A connection of a flavor: one from a pool, or a transaction's.
pub struct Conn<DB: Flavor, C> {
    conn: C,
    /// Whether `conn` is already inside a transaction (`apply` then needs no other).
    in_transaction: bool,
    /// Counts the statements run, for a connection the driver handed out.
    queries: Option<Arc<AtomicU64>>,
    flavor: std::marker::PhantomData<DB>,
}

impl<DB: Flavor, C> Conn<DB, C> {
    /// `conn`, inside a transaction or not.
    pub fn new(conn: C, in_transaction: bool) -> Conn<DB, C> {
        Conn {
            conn,
            in_transaction,
            queries: None,
            flavor: std::marker::PhantomData,
        }
    }

    /// `conn`, counting each statement in `queries`.
    fn counted(conn: C, in_transaction: bool, queries: &Arc<AtomicU64>) -> Conn<DB, C> {
        Conn {
            queries: Some(queries.clone()),
            ..Conn::new(conn, in_transaction)
        }
    }

    fn count(&self) {
        if let Some(queries) = &self.queries {
            queries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<DB, C> Conn<DB, C>
where
    DB: Flavor,
    C: DerefMut<Target = DB::Connection> + Send,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn fetch(&mut self, sql: Sql) -> Result<Vec<DB::Row>, StoreError> {
        let (text, arguments) = arguments::<DB>(sql)?;
        sqlx::query_with(AssertSqlSafe(text), arguments)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(DB::classify)
    }
}

#[async_trait]
impl<DB, C> Exec for Conn<DB, C>
where
    DB: Flavor,
    C: DerefMut<Target = DB::Connection> + Send,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        self.count();
        let (text, arguments) = arguments::<DB>(sql)?;
        let done = sqlx::query_with(AssertSqlSafe(text), arguments)
            .execute(&mut *self.conn)
            .await
            .map_err(DB::classify)?;
        Ok(DB::affected(&done))
    }

    async fn rows(&mut self, sql: Sql, columns: &[Column]) -> Result<Vec<Row>, StoreError> {
        self.count();
        let rows = self.fetch(sql).await?;
        rows.iter().map(|row| decode::<DB>(row, columns)).collect()
    }

    async fn jobs(&mut self, sql: Sql) -> Result<Vec<JobRow>, StoreError> {
        self.count();
        let rows = self.fetch(sql).await?;
        rows.iter().map(DB::job).collect()
    }

    async fn apply(
        &mut self,
        change: Sql,
        event: Option<&EventRecord>,
        rows: bool,
    ) -> Result<Applied, StoreError> {
        self.count();
        if self.in_transaction || !DB::APPLY_IN_TRANSACTION {
            return DB::apply(&mut self.conn, change, event, rows).await;
        }
        let mut tx = Connection::begin_with(&mut *self.conn, DB::BEGIN)
            .await
            .map_err(DB::classify)?;
        let applied = DB::apply(&mut tx, change, event, rows).await?;
        tx.commit().await.map_err(DB::classify)?;
        Ok(applied)
    }
}

#[async_trait]
impl<DB> Transaction for Conn<DB, sqlx::Transaction<'static, DB>>
where
    DB: Flavor,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.conn.commit().await.map_err(DB::classify)
    }
}

/// A database of a flavor: a pool for writes and one for reads (the same pool for
/// PostgreSQL; SQLite's one writer and its read-only readers).
#[derive(Debug, Clone)]
pub struct SqlxDriver<DB: Database> {
    /// Writes.
    pub writer: Pool<DB>,
    /// Reads.
    pub reader: Pool<DB>,
    /// The scheduler leader's statements (PostgreSQL: a pool whose statements time out;
    /// SQLite: the writer).
    pub leader: Pool<DB>,
    /// The database's file, when it is one.
    pub file: Option<std::path::PathBuf>,
    /// Statements run so far.
    pub queries: Arc<AtomicU64>,
}

#[async_trait]
impl<DB> Driver for SqlxDriver<DB>
where
    DB: Flavor,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn dialect(&self) -> Dialect {
        DB::DIALECT
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.reader.acquire().await.map_err(DB::classify)?;
        conn.ping().await.map_err(DB::classify)
    }

    async fn writer(&self) -> Result<Box<dyn Exec>, StoreError> {
        let conn = self.writer.acquire().await.map_err(DB::classify)?;
        Ok(Box::new(Conn::<DB, _>::counted(conn, false, &self.queries)))
    }

    async fn reader(&self) -> Result<Box<dyn Exec>, StoreError> {
        let conn = self.reader.acquire().await.map_err(DB::classify)?;
        Ok(Box::new(Conn::<DB, _>::counted(conn, false, &self.queries)))
    }

    async fn leader(&self) -> Result<Box<dyn Exec>, StoreError> {
        let conn = self.leader.acquire().await.map_err(DB::classify)?;
        Ok(Box::new(Conn::<DB, _>::counted(conn, false, &self.queries)))
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        let tx = self
            .writer
            .begin_with(DB::BEGIN)
            .await
            .map_err(DB::classify)?;
        Ok(Box::new(Conn::<DB, _>::counted(tx, true, &self.queries)))
    }

    async fn begin_within(&self, within: Duration) -> Result<Box<dyn Transaction>, StoreError> {
        let ms = u64::try_from(within.as_millis()).unwrap_or(u64::MAX).max(1);
        let tx = self
            .writer
            .begin_with(AssertSqlSafe(DB::begin_within(ms)))
            .await
            .map_err(DB::classify)?;
        Ok(Box::new(Conn::<DB, _>::counted(tx, true, &self.queries)))
    }

    fn usage(&self) -> DatabaseUse {
        // PostgreSQL reads and writes share one pool, beside the leader's; SQLite has two
        // (its leader uses the writer).
        let pools: &[&Pool<DB>] = match DB::DIALECT {
            Dialect::Postgres => &[&self.writer, &self.leader],
            Dialect::Sqlite => &[&self.writer, &self.reader],
        };
        let open: u64 = pools.iter().map(|p| u64::from(p.size())).sum();
        let idle: u64 = pools.iter().map(|p| p.num_idle() as u64).sum();
        DatabaseUse {
            in_use: open.saturating_sub(idle),
            idle,
            queries: self.queries.load(Ordering::Relaxed),
        }
    }
}
