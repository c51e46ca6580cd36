//! Several decided transitions of one shape — outcomes a worker records together, most of
//! them successes — written as one statement on PostgreSQL: the rows' own values (their
//! fencing attempt and worker, result, error, due time, event detail) in a `VALUES` list
//! joined by id, the rest of the change and the guard written once, and every event inserted
//! from the rows it changed. One statement instead of one per outcome plus `BEGIN` and
//! `COMMIT`: a worker's outcomes cost the database one round trip and one plan, however many.

use uuid::Uuid;

use super::render::{hook, in_state, ring_to, time};
use crate::job::transition::{AttemptChange, TimeChange, Transition, ValueChange};
use crate::job::{EventKind, JobState, RingState};
use crate::store::sql::{Dialect, Sql};

/// The lengths `VALUES` lists are padded to (by repeating the last row), so that groups of
/// any size share a few statement texts and the server's plan cache keeps serving them.
const ROW_COUNTS: [usize; 4] = [1, 4, 16, 64];

/// What all transitions written together must share: everything but their rows' own values.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    state: Option<JobState>,
    attempt: AttemptChange,
    run_at: Option<TimeChange>,
    lease_until: TimeChange,
    finished_at: TimeChange,
    ring: Option<RingState>,
    result: u8,
    error: u8,
    event: Option<EventKind>,
    guard_state: Option<JobState>,
}

/// The shape of `t`, when it is one this statement writes: a change of a held attempt
/// (guarded by state, attempt and worker only) that sets no worker, start, budget, strategy
/// or priority.
fn shape(t: &Transition) -> Option<Shape> {
    let g = &t.guard;
    let held = g.attempt.is_some()
        && g.worker.is_some()
        && g.tenant.is_none()
        && !g.lease_expired
        && !g.due;
    let simple = t.worker.is_none()
        && t.started_at == TimeChange::Keep
        && t.max_attempts.is_none()
        && t.strategy.is_none()
        && t.priority.is_none()
        && !matches!(t.lease_until, TimeChange::At(_) | TimeChange::After(_))
        && !matches!(t.finished_at, TimeChange::At(_) | TimeChange::After(_))
        && !matches!(t.run_at, TimeChange::After(_));
    if !held || !simple {
        return None;
    }
    Some(Shape {
        state: t.state,
        attempt: t.attempt,
        // A due time is the row's own: only whether it is set belongs to the shape.
        run_at: match t.run_at {
            TimeChange::At(_) => None,
            other => Some(other),
        },
        lease_until: t.lease_until,
        finished_at: t.finished_at,
        ring: t.ring,
        result: kind(&t.result),
        error: kind(&t.error),
        event: t.event.as_ref().map(|e| e.kind),
        guard_state: g.state,
    })
}

/// `WITH v AS (VALUES …), changed AS (UPDATE … FROM v …), event AS (INSERT … ) SELECT id
/// FROM changed`, for PostgreSQL, when every transition has one shape this statement
/// writes; `None` otherwise (the caller writes them one by one).
pub fn update_each(dialect: Dialect, rows: &[(Uuid, &Transition)]) -> Option<Sql> {
    let (_, first) = rows.first()?;
    let shape_of_first = shape(first)?;
    if dialect != Dialect::Postgres
        || rows
            .iter()
            .any(|(_, t)| shape(t).as_ref() != Some(&shape_of_first))
    {
        return None;
    }
    let padded = ROW_COUNTS
        .iter()
        .copied()
        .find(|&n| n >= rows.len())
        .unwrap_or(rows.len());
    let mut sql = Sql::new(dialect);
    sql.push(
        "WITH v (v_id, v_attempt, v_worker, v_run_at, v_result, v_error, v_detail) AS (VALUES ",
    );
    for i in 0..padded {
        let (id, t) = rows.get(i).or(rows.last())?;
        if i > 0 {
            sql.push(", ");
        }
        values(&mut sql, *id, t);
    }
    sql.push("), changed AS (UPDATE jobs SET updated_at = now()");
    set(&mut sql, first);
    // The rows are found through the primary key whatever the statistics say: a join on
    // `VALUES` alone is planned as a scan of the whole table while the table looks small (a
    // new or never-analysed one), which then costs every outcome the whole table's rows.
    sql.push(" FROM v WHERE ")
        .id_in(|pick| {
            pick.push("SELECT v_id FROM v");
        })
        .push(" AND id = v_id");
    if let Some(state) = first.guard.state {
        in_state(&mut sql, state);
    }
    sql.push(" AND attempt = v_attempt AND worker_id = v_worker RETURNING id, attempt, worker_id, v_detail)");
    if let Some(event) = &first.event {
        sql.push(", event AS (INSERT INTO job_events (job_id, kind, attempt, worker_id, detail) SELECT id, ")
            .bind(event.kind.as_str())
            .push(", attempt, worker_id, v_detail FROM changed)");
    }
    sql.push(" SELECT id FROM changed");
    Some(sql)
}

/// One row of `VALUES`: the row's own values, typed (a NULL where its shape sets none).
fn values(sql: &mut Sql, id: Uuid, t: &Transition) {
    sql.push("(")
        .bind(id)
        .push(", ")
        .bind(i64::from(t.guard.attempt.unwrap_or_default()))
        .push(", ")
        .bind(t.guard.worker.clone())
        .push(", ");
    match t.run_at {
        TimeChange::At(at) => sql.bind(at),
        _ => sql.push("NULL::timestamptz"),
    };
    sql.push(", ");
    match &t.result {
        ValueChange::Set(result) => sql.bind(result.clone()),
        _ => sql.push("NULL::jsonb"),
    };
    sql.push(", ");
    match &t.error {
        ValueChange::Set(error) => sql.bind(error.to_json()),
        _ => sql.push("NULL::jsonb"),
    };
    sql.push(", ");
    match &t.event {
        Some(event) => sql.bind(event.detail.clone()),
        None => sql.push("NULL::jsonb"),
    };
    sql.push(")");
}

/// The `SET` list: the shape's changes written once, the rows' own values from `v`.
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
    match t.run_at {
        TimeChange::At(_) => {
            sql.push(", run_at = v_run_at");
        }
        other => time(sql, "run_at", other),
    }
    time(sql, "lease_until", t.lease_until);
    time(sql, "finished_at", t.finished_at);
    hook(sql, t.finished_at);
    if let Some(ring) = t.ring {
        ring_to(sql, ring);
    }
    own(sql, "result", kind(&t.result), "v_result");
    own(sql, "error", kind(&t.error), "v_error");
}

/// 0 keep, 1 clear, 2 set.
fn kind<T>(change: &ValueChange<T>) -> u8 {
    match change {
        ValueChange::Keep => 0,
        ValueChange::Clear => 1,
        ValueChange::Set(_) => 2,
    }
}

/// `, column = NULL` or `, column = v_…` (the row's own value).
fn own(sql: &mut Sql, column: &str, kind: u8, value: &str) {
    match kind {
        1 => {
            sql.push(&format!(", {column} = NULL"));
        }
        2 => {
            sql.push(&format!(", {column} = {value}"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Hold, JobError, Settlement};
    use serde_json::json;

    #[test]
    fn outcomes_of_one_shape_are_one_statement_and_others_are_not() {
        let hold = |attempt, worker: &str| Hold {
            attempt,
            worker: worker.into(),
        };
        let ok = hold(1, "w1").settle(&Settlement::Succeeded(json!({"a": 1})));
        let other_ok = hold(2, "w1").settle(&Settlement::Succeeded(json!({"b": 2})));
        let failed = hold(1, "w1").settle(&Settlement::Failed(JobError::lease_expired()));
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let sql = update_each(Dialect::Postgres, &[(a, &ok), (b, &other_ok)]).expect("one shape");
        let text = sql.text();
        assert!(
            text.starts_with("WITH v (v_id, v_attempt, v_worker"),
            "{text}"
        );
        assert!(text.contains("result = v_result"), "{text}");
        assert!(
            text.contains("AND attempt = v_attempt AND worker_id = v_worker"),
            "{text}"
        );
        assert!(text.contains("v_detail FROM changed"), "{text}");
        // Two rows padded to four, five bound values each (the rest are typed NULLs), then
        // the new state, the guard's state and the event's kind.
        assert_eq!(sql.clone().into_args().len(), 4 * 5 + 3, "{text}");
        assert!(update_each(Dialect::Postgres, &[(a, &ok), (b, &failed)]).is_none());
        assert!(update_each(Dialect::Sqlite, &[(a, &ok), (b, &other_ok)]).is_none());
    }
}
