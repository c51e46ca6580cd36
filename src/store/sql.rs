//! SQL text with its arguments, written once for both databases. The few places where
//! PostgreSQL and SQLite differ (the clock, time arithmetic, row locks) are methods here, so
//! the statements that use them are not written twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// Which database a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: timestamps are `timestamptz` and the clock is the server's `now()`.
    Postgres,
    /// SQLite: timestamps are Unix milliseconds and the clock is this process's.
    Sqlite,
}

/// One argument of a statement, typed so each driver binds it natively.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    /// A UUID.
    Uuid(Uuid),
    /// A JSON document.
    Json(Value),
    /// A point in time (`timestamptz` in PostgreSQL, milliseconds in SQLite).
    Time(DateTime<Utc>),
}

/// The lengths id lists are padded to (longer lists are written as they are).
const ID_LIST_LENGTHS: [usize; 6] = [1, 4, 16, 64, 256, 1024];

/// A statement under construction: text with `$n` placeholders, and their arguments.
#[derive(Debug, Clone)]
pub struct Sql {
    dialect: Dialect,
    text: String,
    args: Vec<Arg>,
    /// SQLite's "now", bound once so every use in one statement agrees.
    now: Option<usize>,
}

impl Sql {
    /// An empty statement for `dialect`.
    pub fn new(dialect: Dialect) -> Sql {
        Sql {
            dialect,
            text: String::new(),
            args: Vec::new(),
            now: None,
        }
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The arguments, in placeholder order.
    pub fn into_args(self) -> Vec<Arg> {
        self.args
    }

    /// Appends text.
    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Puts text before everything written so far (it must hold no placeholders, so the
    /// numbering of those after it is kept).
    pub fn prepend(&mut self, text: &str) -> &mut Sql {
        self.text.insert_str(0, text);
        self
    }

    /// Appends a placeholder for `arg`.
    pub fn bind(&mut self, arg: impl Into<Arg>) -> &mut Sql {
        self.args.push(arg.into());
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// Appends the database's clock now.
    pub fn now(&mut self) -> &mut Sql {
        match self.dialect {
            Dialect::Postgres => self.push("now()"),
            Dialect::Sqlite => {
                let n = match self.now {
                    Some(n) => n,
                    None => {
                        self.args.push(Arg::Time(Utc::now()));
                        self.now = Some(self.args.len());
                        self.args.len()
                    }
                };
                self.push(&format!("${n}"))
            }
        }
    }

    /// Appends now plus `offset` (`minus` for now minus it).
    pub fn now_offset(&mut self, offset: Duration, minus: bool) -> &mut Sql {
        let ms = i64::try_from(offset.as_millis()).unwrap_or(i64::MAX);
        let sign = if minus { " - " } else { " + " };
        self.push("(").now().push(sign);
        match self.dialect {
            Dialect::Postgres => self.bind(ms).push(" * interval '1 millisecond')"),
            Dialect::Sqlite => self.bind(ms).push(")"),
        }
    }

    /// Appends `(a, b, …)` of ids. The list is padded (by repeating its last id) to one of
    /// a few lengths, so that batches of any size share a handful of statement texts and the
    /// databases' prepared-statement caches keep serving them.
    fn ids(&mut self, ids: &[Uuid]) -> &mut Sql {
        self.push("(").padded_ids(ids).push(")")
    }

    /// `a, b, …`: `ids` padded by repeating the last to one of [`ID_LIST_LENGTHS`].
    fn padded_ids(&mut self, ids: &[Uuid]) -> &mut Sql {
        let padded = ID_LIST_LENGTHS
            .iter()
            .copied()
            .find(|&n| n >= ids.len())
            .unwrap_or(ids.len());
        let last = ids.last().copied().unwrap_or_default();
        for i in 0..padded {
            if i > 0 {
                self.push(", ");
            }
            self.bind(ids.get(i).copied().unwrap_or(last));
        }
        self
    }

    /// Appends `id` among `ids` (padded like [`Sql::ids`]), found through the primary key
    /// whatever the planner thinks of the table: PostgreSQL gets `id = ANY(ARRAY(SELECT
    /// unnest(ARRAY[…])))`, an array the planner cannot see into, so it never trades the
    /// index for a scan of a table it believes small (a new or never-analysed one; a cached
    /// plan made then would scan the whole table for every batch after it grew). SQLite
    /// gets `id IN (…)`.
    pub fn id_among(&mut self, ids: &[Uuid]) -> &mut Sql {
        self.column_among("id", ids)
    }

    /// [`Sql::id_among`] for another column of ids (`job_id`).
    pub fn column_among(&mut self, column: &str, ids: &[Uuid]) -> &mut Sql {
        match self.dialect {
            Dialect::Postgres => self
                .push(column)
                .push(" = ANY(ARRAY(SELECT unnest(ARRAY[")
                .padded_ids(ids)
                .push("]::uuid[])))"),
            Dialect::Sqlite => self.push(column).push(" IN ").ids(ids),
        }
    }

    /// Appends `column` not among `texts` (always true for none).
    pub fn not_among(&mut self, column: &str, texts: &[String]) -> &mut Sql {
        if texts.is_empty() {
            return self.push("1 = 1");
        }
        self.push(column).push(" NOT IN (");
        for (i, text) in texts.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(text.as_str());
        }
        self.push(")")
    }

    /// Appends `id` in the ids the subquery `pick` writes, so that the subquery runs once
    /// whatever the planner thinks of the table: PostgreSQL gets `id = ANY(ARRAY(…))` (an
    /// init plan, then an index scan of the primary key), never a semi-join that could run a
    /// locking subquery again for each row; SQLite gets `id IN (…)`.
    pub fn id_in(&mut self, pick: impl FnOnce(&mut Sql)) -> &mut Sql {
        match self.dialect {
            Dialect::Postgres => self.push("id = ANY(ARRAY("),
            Dialect::Sqlite => self.push("id IN ("),
        };
        pick(self);
        match self.dialect {
            Dialect::Postgres => self.push("))"),
            Dialect::Sqlite => self.push(")"),
        }
    }

    /// Appends a row lock held to the end of the transaction (SQLite has one writer and
    /// needs none).
    pub fn for_update(&mut self) -> &mut Sql {
        match self.dialect {
            Dialect::Postgres => self.push(" FOR UPDATE"),
            Dialect::Sqlite => self,
        }
    }

    /// Appends the row lock that lets concurrent schedulers skip each other's rows
    /// (SQLite has one writer and needs none).
    pub fn skip_locked(&mut self) -> &mut Sql {
        match self.dialect {
            Dialect::Postgres => self.push(" FOR UPDATE SKIP LOCKED"),
            Dialect::Sqlite => self,
        }
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Arg {
        Arg::Int(n)
    }
}

impl From<u32> for Arg {
    fn from(n: u32) -> Arg {
        Arg::Int(i64::from(n))
    }
}

impl From<&str> for Arg {
    fn from(text: &str) -> Arg {
        Arg::Text(text.to_owned())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Arg {
        Arg::Text(text)
    }
}

impl From<Option<String>> for Arg {
    fn from(text: Option<String>) -> Arg {
        Arg::OptText(text)
    }
}

impl From<Uuid> for Arg {
    fn from(id: Uuid) -> Arg {
        Arg::Uuid(id)
    }
}

impl From<Value> for Arg {
    fn from(value: Value) -> Arg {
        Arg::Json(value)
    }
}

impl From<DateTime<Utc>> for Arg {
    fn from(at: DateTime<Utc>) -> Arg {
        Arg::Time(at)
    }
}

pub use crate::persist::millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_their_arguments_and_sqlite_binds_now_once() {
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.push("SELECT ")
            .bind("a")
            .push(", ")
            .now()
            .push(", ")
            .now_offset(Duration::from_secs(1), false);
        assert_eq!(sql.text(), "SELECT $1, $2, ($2 + $3)");
        assert_eq!(sql.clone().into_args().len(), 3);
        let mut ids = Sql::new(Dialect::Postgres);
        ids.ids(&[Uuid::nil(), Uuid::max()]);
        assert_eq!(ids.text(), "($1, $2, $3, $4)", "padded to a shared length");
        let mut among = Sql::new(Dialect::Postgres);
        among.id_among(&[Uuid::nil()]);
        assert_eq!(
            among.text(),
            "id = ANY(ARRAY(SELECT unnest(ARRAY[$1]::uuid[])))"
        );
        let mut among = Sql::new(Dialect::Sqlite);
        among.id_among(&[Uuid::nil()]);
        assert_eq!(among.text(), "id IN ($1)");
        let mut pg = Sql::new(Dialect::Postgres);
        pg.push("SELECT ")
            .now_offset(Duration::from_millis(5), true);
        assert_eq!(pg.text(), "SELECT (now() - $1 * interval '1 millisecond')");
        let mut picked = Sql::new(Dialect::Postgres);
        picked.push("UPDATE jobs SET x = 1 WHERE ").id_in(|sql| {
            sql.push("SELECT id FROM jobs LIMIT ").bind(5_i64);
        });
        assert_eq!(
            picked.text(),
            "UPDATE jobs SET x = 1 WHERE id = ANY(ARRAY(SELECT id FROM jobs LIMIT $1))"
        );
    }
}
