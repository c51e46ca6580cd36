//! The scheduler's leadership: a lease row with a term. A process leads while its lease is
//! unexpired; another takes over only once it has expired, and the term rises each time, so
//! every leader-only change (fenced by the term) from a process that lost its lease — frozen,
//! cut off — changes nothing.

use std::time::Duration;

use super::SqlStore;
use super::render::SCHEDULER;
use crate::store::driver::{Cells, Column, Driver};
use crate::store::{StoreError, Term};

impl<D: Driver> SqlStore<D> {
    /// Takes the leadership if nobody holds an unexpired lease: a new term.
    pub(super) async fn take_lead(
        &self,
        holder: &str,
        lease: Duration,
    ) -> Result<Option<Term>, StoreError> {
        let mut sql = self.sql();
        sql.push("INSERT INTO leaders (name, holder, term, lease_until) VALUES (")
            .bind(SCHEDULER)
            .push(", ")
            .bind(holder)
            .push(", 1, ")
            .now_offset(lease, false)
            .push(
                ") ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                   term = leaders.term + 1, lease_until = excluded.lease_until
                 WHERE leaders.lease_until <= ",
            )
            .now()
            .push(" RETURNING term");
        let rows = self
            .driver
            .leader()
            .await?
            .rows(sql, &[Column::Int])
            .await?;
        match rows.into_iter().next() {
            Some(row) => Ok(Some(Term(Cells::of(row).int()?))),
            None => Ok(None),
        }
    }

    /// Extends `term`'s lease, if it is still held and unexpired.
    pub(super) async fn renew_lead(
        &self,
        holder: &str,
        lease: Duration,
        term: Term,
    ) -> Result<Option<Term>, StoreError> {
        let mut sql = self.sql();
        sql.push("UPDATE leaders SET lease_until = ")
            .now_offset(lease, false)
            .push(" WHERE name = ")
            .bind(SCHEDULER)
            .push(" AND holder = ")
            .bind(holder)
            .push(" AND term = ")
            .bind(term.0)
            .push(" AND lease_until > ")
            .now();
        let renewed = self.driver.leader().await?.execute(sql).await?;
        Ok((renewed == 1).then_some(term))
    }

    /// Ends `term`'s lease now, so another process takes over without waiting for it.
    pub(super) async fn give_up_lead(&self, holder: &str, term: Term) -> Result<(), StoreError> {
        let mut sql = self.sql();
        sql.push("UPDATE leaders SET lease_until = ")
            .now()
            .push(" WHERE name = ")
            .bind(SCHEDULER)
            .push(" AND holder = ")
            .bind(holder)
            .push(" AND term = ")
            .bind(term.0);
        self.driver.leader().await?.execute(sql).await.map(drop)
    }
}
