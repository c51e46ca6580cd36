//! Following a job as it changes: `GET /api/v1/jobs/{id}?wait=30s` answers when the job
//! finishes (or the wait ends), and `GET /api/v1/jobs/{id}/events` with
//! `Accept: text/event-stream` streams its timeline. Both sleep on the process's
//! [`Watchers`](super::watch::Watchers) and read the store only when the job changed.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::AppState;
use super::holds::Hold;
use super::jobs::no_such_job;
use super::problem::Problem;
use crate::auth::{Caller, Scope};
use crate::store::Job;

/// The longest `?wait=` a request may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How long one event stream stays open; a client reconnects with `Last-Event-ID`.
pub const MAX_STREAM: Duration = Duration::from_secs(3600);

/// Parses the query of `GET /api/v1/jobs/{id}`: nothing, or `wait` as a duration (`30s`,
/// `500ms`, or a number of seconds) of at most [`MAX_WAIT`].
pub fn parse_wait(raw: Option<&str>) -> Result<Option<Duration>, Problem> {
    let mut wait = None;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key != "wait" {
            return Err(Problem::bad_parameter(
                &key,
                "unknown_parameter",
                "unknown parameter; expected wait",
            ));
        }
        let parsed = match value.parse::<u64>() {
            Ok(seconds) => Ok(Duration::from_secs(seconds)),
            Err(_) => humantime::parse_duration(value.trim()),
        };
        let bad = || {
            Problem::bad_parameter(
                "wait",
                "out_of_range",
                format!(
                    "must be a duration such as 30s or 500ms, at most {} s, not {value:?}",
                    MAX_WAIT.as_secs()
                ),
            )
        };
        match parsed {
            Ok(duration) if duration <= MAX_WAIT => wait = Some(duration),
            _ => return Err(bad()),
        }
    }
    Ok(wait)
}

/// Reads the job, then, until it is finished or `wait` has passed, reads it again each time
/// it changes. The job as it is when either happens.
pub async fn wait_for(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    wait: Duration,
) -> Result<Job, Problem> {
    // Watch before the first read, so a change between the read and the wait is not missed.
    let mut watch = state.watchers.watch(id);
    let deadline = Instant::now() + wait;
    loop {
        // One read per change, however many requests wait on the job; the caller's scope is
        // checked on the job read.
        let read = watch
            .read(|| async {
                let store = state.dispatcher.store();
                store.get(Scope::All, id).await.map_err(Problem::from)
            })
            .await?;
        let job = read
            .filter(|job| caller.scope().includes(&job.tenant_id))
            .ok_or_else(|| no_such_job(id))?;
        if job.state.is_terminal() || Instant::now() >= deadline {
            return Ok(job);
        }
        tokio::select! {
            () = watch.changed() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// The event id a reconnecting client saw last (`Last-Event-ID`), 0 for none; a value that
/// is not an event id is a 400 naming the header.
pub fn last_event_id(headers: &HeaderMap) -> Result<i64, Problem> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(0);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            Problem::bad_parameter(
                "Last-Event-ID",
                "invalid",
                "must be the id of an event (a non-negative integer)",
            )
        })
}

/// Whether the client asked for an event stream.
pub fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// The job's timeline as Server-Sent Events: the events after `after` first, then new ones
/// as they are recorded; an `end` event (with the job's state) once the job is finished,
/// then the stream closes.
pub fn stream(
    state: AppState,
    caller: Caller,
    id: Uuid,
    after: i64,
    hold: Hold,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (sender, mut receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        follow(state, caller, id, after, sender).await;
        // The stream's place is given back once it ends, however it ends.
        drop(hold);
    });
    let events = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    Sse::new(futures::StreamExt::map(events, Ok)).keep_alive(KeepAlive::default())
}

/// Sends the job's events after `after` to `sender` as they come, until the job is finished,
/// the client leaves, or [`MAX_STREAM`] has passed.
async fn follow(
    state: AppState,
    caller: Caller,
    id: Uuid,
    after: i64,
    sender: mpsc::Sender<Event>,
) {
    let mut watch = state.watchers.watch(id);
    let deadline = Instant::now() + MAX_STREAM;
    let mut after = after;
    loop {
        // The state first: when it is terminal, the events read next include its event.
        let job = match state.dispatcher.store().get(caller.scope(), id).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => {
                let _ = sender.send(error_event(&e.to_string())).await;
                return;
            }
        };
        let events = match state.dispatcher.store().events(id).await {
            Ok(events) => events,
            Err(e) => {
                let _ = sender.send(error_event(&e.to_string())).await;
                return;
            }
        };
        let seen = after;
        for event in events.into_iter().filter(|e| e.id > seen) {
            after = event.id;
            let message = Event::default()
                .id(event.id.to_string())
                .event(event.kind.as_str())
                .json_data(&event)
                .unwrap_or_default();
            if sender.send(message).await.is_err() {
                return;
            }
        }
        if job.state.is_terminal() {
            let end = Event::default()
                .event("end")
                .data(json!({"state": job.state}).to_string());
            let _ = sender.send(end).await;
            return;
        }
        tokio::select! {
            () = watch.changed() => {}
            () = sender.closed() => return,
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

fn error_event(message: &str) -> Event {
    Event::default()
        .event("error")
        .data(json!({"detail": message}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_bounded_and_named() {
        assert_eq!(parse_wait(None).ok(), Some(None));
        assert_eq!(
            parse_wait(Some("wait=30s")).ok(),
            Some(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            parse_wait(Some("wait=5")).ok(),
            Some(Some(Duration::from_secs(5)))
        );
        for bad in ["wait=61s", "wait=soon", "wait=-1", "colour=red"] {
            assert!(parse_wait(Some(bad)).is_err(), "{bad} is refused");
        }
    }
}
