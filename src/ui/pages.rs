//! The dashboard's pages: the jobs list, a job's page, queue and workers, and signing in.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::views::{
    JobLine, JobPage, JobsPage, LevelView, LoginPage, QueuePage, WorkerView, choices,
};
use super::{Viewer, render};
use crate::api::AppState;
use crate::api::auth::COOKIE;
use crate::api::jobs::{encode_cursor, parse_list_query};
use crate::auth::{Action, AuthMode};
use crate::job::JobState;
use crate::kinds::JobType;

/// `GET /ui`: the jobs list.
pub async fn home() -> Response {
    redirect("/ui/jobs")
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

/// `GET /ui/jobs`: newest first, filtered by state, type and domain, paged by cursor.
pub async fn jobs(
    viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Response {
    // The filter form sends empty fields for "any".
    let given: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let chosen = |key: &str| {
        given
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
            .to_owned()
    };
    let query_text = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&given)
        .finish();
    let mut page = JobsPage {
        signed_in: viewer.signed_in,
        jobs: Vec::new(),
        states: choices(JobState::ALL.iter().map(|s| s.as_str()), &chosen("state")),
        types: choices(JobType::ALL.iter().map(|t| t.as_str()), &chosen("job_type")),
        domain: chosen("domain"),
        next: None,
        problem: None,
    };
    let mut query = match parse_list_query(Some(&query_text)) {
        Ok(query) => query,
        Err(problem) => {
            let fields: Vec<String> = problem.errors.iter().map(|e| e.detail.clone()).collect();
            page.problem = Some(format!("{} {}", problem.detail, fields.join("; ")));
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let limit = query.limit as usize;
    query.limit += 1;
    match state
        .dispatcher
        .store()
        .list(viewer.caller.scope(), &query)
        .await
    {
        Ok(mut jobs) => {
            if jobs.len() > limit {
                jobs.truncate(limit);
                page.next = jobs.last().map(|last| {
                    let mut next = url::form_urlencoded::Serializer::new(String::new());
                    for (k, v) in given.iter().filter(|(k, _)| k != "cursor") {
                        next.append_pair(k, v);
                    }
                    next.append_pair("cursor", &encode_cursor(last.id));
                    format!("/ui/jobs?{}", next.finish())
                });
            }
            page.jobs = jobs.iter().map(JobLine::from).collect();
            render(StatusCode::OK, &page)
        }
        Err(e) => {
            page.problem = Some(format!("the store did not answer: {e}"));
            render(StatusCode::SERVICE_UNAVAILABLE, &page)
        }
    }
}

/// `GET /ui/jobs/{id}`: the job, its result or error, artifacts and live timeline.
pub async fn job(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return (StatusCode::NOT_FOUND, "no such job").into_response();
    };
    let store = state.dispatcher.store();
    let job = match store.get(viewer.caller.scope(), id).await {
        Ok(Some(job)) => job,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such job").into_response(),
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let (events, artifacts) = tokio::join!(store.events(id), state.artifacts.list(id));
    let events = events.unwrap_or_default();
    let artifacts = artifacts.unwrap_or_default();
    let may_change = viewer.caller.role.allows(Action::Write);
    let page = JobPage::new(&job, &events, &artifacts, viewer.signed_in, may_change);
    render(StatusCode::OK, &page)
}

/// `GET /ui/queue`: queue levels, job counts and workers (admin keys).
pub async fn queue(viewer: Viewer, State(state): State<AppState>) -> Response {
    if !viewer.caller.role.allows(Action::Administer) {
        return (StatusCode::FORBIDDEN, "the queue page needs an admin key").into_response();
    }
    let (stats, levels, reports, ()) = tokio::join!(
        state.dispatcher.store().stats(),
        state.dispatcher.queue().stats(),
        state.signals.reports(),
        state.pools.fresh()
    );
    let mut page = QueuePage {
        signed_in: viewer.signed_in,
        levels: Vec::new(),
        counts: Vec::new(),
        workers: Vec::new(),
        problem: None,
        pools: state.pools.views(),
    };
    let levels = levels.unwrap_or_else(|e| {
        page.problem = Some(format!("the queue did not answer: {e}"));
        Vec::new()
    });
    match stats {
        Ok(stats) => {
            page.counts = stats
                .by_state
                .iter()
                .map(|(s, n)| ((*s).to_owned(), *n))
                .collect();
            page.levels = crate::job::Priority::LEVELS
                .iter()
                .map(|p| {
                    let due = stats.due_by_priority.iter().find(|d| d.0 == p.get());
                    let level = levels.iter().find(|l| l.priority == *p);
                    let oldest = due.and_then(|d| d.2).map_or_else(
                        || "—".to_owned(),
                        |t| {
                            format!(
                                "{:.1} s ago",
                                (Utc::now() - t).num_milliseconds() as f64 / 1000.0
                            )
                        },
                    );
                    LevelView {
                        priority: p.get(),
                        due: due.map_or(0, |d| d.1),
                        oldest,
                        depth: level.map_or_else(|| "—".to_owned(), |l| l.length.to_string()),
                        pending: level.map_or_else(|| "—".to_owned(), |l| l.pending.to_string()),
                    }
                })
                .collect();
        }
        Err(e) => page.problem = Some(format!("the store did not answer: {e}")),
    }
    let mut reports = reports.unwrap_or_default();
    reports.sort_by(|a, b| a["worker"].as_str().cmp(&b["worker"].as_str()));
    page.workers = reports.iter().map(WorkerView::from).collect();
    render(StatusCode::OK, &page)
}

/// `GET /ui/login`.
pub async fn login_form(State(state): State<AppState>) -> Response {
    if state.auth.mode() == AuthMode::Off {
        return redirect("/ui/jobs");
    }
    render(
        StatusCode::OK,
        &LoginPage {
            signed_in: false,
            problem: None,
        },
    )
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

/// `POST /ui/login`: checks the key, then keeps it in a cookie only this site sends.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let key = form.key.trim();
    let header = format!("Bearer {key}");
    match state.auth.caller(Some(header.as_bytes())).await {
        Ok(_) => {
            let secure = super::is_https(&headers);
            let cookie = format!(
                "{COOKIE}={key}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200{}",
                if secure { "; Secure" } else { "" }
            );
            (
                StatusCode::SEE_OTHER,
                [(LOCATION, "/ui/jobs".to_owned()), (SET_COOKIE, cookie)],
            )
                .into_response()
        }
        Err(e) => render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                signed_in: false,
                problem: Some(e.to_string()),
            },
        ),
    }
}

/// `POST /ui/logout`: forgets the key.
pub async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, "/ui/login".to_owned()), (SET_COOKIE, cookie)],
    )
        .into_response()
}
