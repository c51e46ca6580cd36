//! Writing a decided [`Transition`] as one guarded `UPDATE`, for either database. This is
//! the only place the job state machine turns into SQL.

use uuid::Uuid;

use crate::job::transition::{AttemptChange, Guard, TimeChange, Transition, ValueChange};
use crate::job::{JobState, RingState};
use crate::store::Term;
use crate::store::sql::{Dialect, Sql};

/// The name of the scheduler's leadership row.
pub const SCHEDULER: &str = "scheduler";

/// The rows a change is for.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// One job.
    Id(Uuid),
    /// Several jobs.
    Ids(&'a [Uuid]),
}

/// `UPDATE jobs SET … WHERE <target> AND <guard> [AND <fence>]`, without `RETURNING`.
pub fn update(dialect: Dialect, target: Target<'_>, t: &Transition, fence: Option<Term>) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("UPDATE jobs SET updated_at = ").now();
    set(&mut sql, t);
    sql.push(" WHERE ");
    match target {
        Target::Id(id) => sql.push("id = ").bind(id),
        Target::Ids(ids) => sql.id_among(ids),
    };
    guard(&mut sql, &t.guard);
    if let Some(term) = fence {
        self::fence(&mut sql, term);
    }
    sql
}

/// ` AND` the scheduler's leadership is still held under `term` (its lease not expired).
pub fn fence(sql: &mut Sql, term: Term) {
    sql.push(" AND EXISTS (SELECT 1 FROM leaders WHERE name = ")
        .bind(SCHEDULER)
        .push(" AND term = ")
        .bind(term.0)
        .push(" AND lease_until > ")
        .now()
        .push(")");
}

fn set(sql: &mut Sql, t: &Transition) {
    if let Some(state) = t.state {
        sql.push(", state = ").bind(state.as_str());
    }
    match t.attempt {
        AttemptChange::Keep => {}
        AttemptChange::Next => {
            sql.push(", attempt = attempt + 1");
        }
        AttemptChange::Back => {
            sql.push(", attempt = attempt - 1");
        }
    }
    if let Some(worker) = &t.worker {
        sql.push(", worker_id = ").bind(worker.as_str());
    }
    time(sql, "run_at", t.run_at);
    time(sql, "lease_until", t.lease_until);
    time(sql, "started_at", t.started_at);
    time(sql, "finished_at", t.finished_at);
    hook(sql, t.finished_at);
    if let Some(ring) = t.ring {
        ring_to(sql, ring);
    }
    match &t.result {
        ValueChange::Keep => {}
        ValueChange::Clear => {
            sql.push(", result = NULL");
        }
        ValueChange::Set(result) => {
            sql.push(", result = ").bind(result.clone());
        }
    }
    match &t.error {
        ValueChange::Keep => {}
        ValueChange::Clear => {
            sql.push(", error = NULL");
        }
        ValueChange::Set(error) => {
            sql.push(", error = ").bind(error.to_json());
        }
    }
    if let Some(max_attempts) = t.max_attempts {
        sql.push(", max_attempts = ").bind(max_attempts);
    }
    if let Some(strategy) = t.strategy {
        sql.push(", strategy = ").bind(strategy.as_str());
    }
    if let Some(priority) = t.priority {
        sql.push(", priority = ").bind(i64::from(priority));
    }
}

/// A job that finishes owes its callback one delivery, due at once (and a fresh count of
/// attempts); a job that leaves its terminal state (replayed) owes nothing until it
/// finishes again. Written in the same statement as the state, so no finish is missed.
pub(super) fn hook(sql: &mut Sql, finished: TimeChange) {
    match finished {
        TimeChange::Keep => {}
        TimeChange::Clear => {
            sql.push(", hook_due_at = NULL, hook_attempt = 0");
        }
        _ => {
            sql.push(", hook_due_at = CASE WHEN callback_url IS NULL THEN NULL ELSE ")
                .now()
                .push(" END, hook_attempt = 0");
        }
    }
}

/// `, doorbell = …` (and `rung_at` when a ring starts or is confirmed).
pub fn ring_to(sql: &mut Sql, ring: RingState) {
    sql.push(", doorbell = ").bind(ring.as_str());
    if ring != RingState::Needed {
        sql.push(", rung_at = ").now();
    }
}

pub(super) fn time(sql: &mut Sql, column: &str, change: TimeChange) {
    match change {
        TimeChange::Keep => return,
        TimeChange::Clear => {
            sql.push(&format!(", {column} = NULL"));
            return;
        }
        _ => {}
    }
    sql.push(&format!(", {column} = "));
    match change {
        TimeChange::Now => sql.now(),
        TimeChange::After(duration) => sql.now_offset(duration, false),
        TimeChange::At(at) => sql.bind(at),
        TimeChange::Keep | TimeChange::Clear => sql,
    };
}

fn guard(sql: &mut Sql, guard: &Guard) {
    if let Some(state) = guard.state {
        in_state(sql, state);
    }
    if let Some(attempt) = guard.attempt {
        sql.push(" AND attempt = ").bind(attempt);
    }
    if let Some(worker) = &guard.worker {
        sql.push(" AND worker_id = ").bind(worker.as_str());
    }
    if let Some(tenant) = &guard.tenant {
        sql.push(" AND tenant_id = ").bind(tenant.as_str());
    }
    if guard.lease_expired {
        sql.push(" AND lease_until < ").now();
    }
    if guard.due {
        sql.push(" AND run_at <= ").now();
    }
}

/// ` AND state = 'queued'`, the guard of every doorbell change.
pub fn queued(sql: &mut Sql) -> &mut Sql {
    in_state(sql, JobState::Queued)
}

/// ` AND (state = …) IS TRUE`: the state as a guard of rows found by id. Written so that no
/// partial index on `state` (queued jobs by due time, running ones by lease) can be proven
/// to hold it: the planner then finds the rows by their ids, as it must. Written plainly,
/// statistics from when queued jobs were rare made it scan a whole partial index for every
/// statement instead (a claim of a few jobs read every queued one), whatever the size of
/// the backlog.
pub(super) fn in_state(sql: &mut Sql, state: JobState) -> &mut Sql {
    sql.push(" AND (state = ")
        .bind(state.as_str())
        .push(") IS TRUE")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Hold;
    use serde_json::json;

    #[test]
    fn a_settlement_is_one_guarded_update_in_both_dialects() {
        let hold = Hold {
            attempt: 2,
            worker: "w1".into(),
        };
        let settle = hold.settle(&crate::job::Settlement::Succeeded(json!({"ok": true})));
        let id = Uuid::nil();
        let pg = update(Dialect::Postgres, Target::Id(id), &settle, None);
        assert!(
            pg.text()
                .starts_with("UPDATE jobs SET updated_at = now(), state = $1")
        );
        assert!(
            pg.text().ends_with(
                "WHERE id = $3 AND (state = $4) IS TRUE AND attempt = $5 AND worker_id = $6"
            ),
            "{}",
            pg.text()
        );
        let sqlite = update(Dialect::Sqlite, Target::Id(id), &settle, Some(Term(3)));
        assert!(
            sqlite.text().contains("finished_at = $1"),
            "{}",
            sqlite.text()
        );
        assert!(sqlite.text().contains("AND term = "), "{}", sqlite.text());
    }
}
