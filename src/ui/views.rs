//! What the dashboard's pages show, prepared as text: every value that comes from a job is a
//! plain string here, and the templates escape it (askama escapes HTML in `.html` templates).

use askama::Template;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::artifact::ArtifactRecord;
use crate::engine::options::ProfileUse;
use crate::job::JobEvent;
use crate::store::Job;

/// A time as the pages show it.
pub fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// One job in a list or at the top of its page.
pub struct JobLine {
    pub id: String,
    pub short_id: String,
    pub state: String,
    pub job_type: String,
    pub strategy: String,
    pub url: String,
    pub attempts: String,
    pub created: String,
}

impl From<&Job> for JobLine {
    fn from(job: &Job) -> JobLine {
        let id = job.id.to_string();
        JobLine {
            short_id: id[id.len().saturating_sub(12)..].to_owned(),
            id,
            state: job.state.to_string(),
            job_type: job.job_type.to_string(),
            strategy: job.strategy.to_string(),
            url: job.url.clone(),
            attempts: format!("{} of {}", job.attempt, job.max_attempts),
            created: when(Some(job.created_at)),
        }
    }
}

/// An option of a filter.
pub struct Choice {
    pub value: String,
    pub selected: bool,
}

/// Options named `values`, with `chosen` selected.
pub fn choices<'a>(values: impl Iterator<Item = &'a str>, chosen: &str) -> Vec<Choice> {
    values
        .map(|value| Choice {
            selected: value == chosen,
            value: value.to_owned(),
        })
        .collect()
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "ui/login.html")]
pub struct LoginPage {
    pub signed_in: bool,
    pub problem: Option<String>,
}

/// The jobs list.
#[derive(Template)]
#[template(path = "ui/jobs.html")]
pub struct JobsPage {
    pub signed_in: bool,
    pub jobs: Vec<JobLine>,
    pub states: Vec<Choice>,
    pub types: Vec<Choice>,
    pub domain: String,
    pub next: Option<String>,
    pub problem: Option<String>,
}

/// An error shown on a job's page.
pub struct ErrorView {
    pub kind: String,
    pub message: String,
    pub details: String,
}

/// An artifact on a job's page.
pub struct ArtifactView {
    pub name: String,
    pub href: String,
    pub content_type: String,
    pub size: String,
    /// Shown inline (PNG, JPEG, WebP); anything else is linked.
    pub image: bool,
}

impl From<&ArtifactRecord> for ArtifactView {
    fn from(record: &ArtifactRecord) -> ArtifactView {
        ArtifactView {
            name: record.name.clone(),
            href: record.url(),
            content_type: record.content_type.clone(),
            size: format!("{:.1} KiB", record.bytes as f64 / 1024.0),
            image: matches!(
                record.content_type.as_str(),
                "image/png" | "image/jpeg" | "image/webp"
            ),
        }
    }
}

/// A timeline row.
pub struct EventView {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub attempt: u32,
    pub worker: String,
    pub detail: String,
}

impl From<&JobEvent> for EventView {
    fn from(event: &JobEvent) -> EventView {
        EventView {
            id: event.id,
            at: when(Some(event.at)),
            kind: event.kind.to_string(),
            attempt: event.attempt,
            worker: event.worker_id.clone().unwrap_or_default(),
            detail: event.detail.to_string(),
        }
    }
}

/// A job's page.
#[derive(Template)]
#[template(path = "ui/job.html")]
pub struct JobPage {
    pub signed_in: bool,
    pub job: JobLine,
    pub priority: u8,
    pub finished: String,
    pub worker: String,
    pub payload: String,
    pub result: Option<String>,
    pub error: Option<ErrorView>,
    pub artifacts: Vec<ArtifactView>,
    pub events: Vec<EventView>,
    pub last_event: i64,
    pub finished_now: bool,
    pub can_cancel: bool,
    pub can_retry: bool,
    /// The profile the job names.
    pub profile: Option<ProfileUse>,
}

impl JobPage {
    /// The page of `job` with its `events` and `artifacts`; with `may_change`, its cancel or
    /// retry button.
    pub fn new(
        job: &Job,
        events: &[JobEvent],
        artifacts: &[ArtifactRecord],
        signed_in: bool,
        may_change: bool,
    ) -> JobPage {
        use crate::job::JobState;
        JobPage {
            signed_in,
            job: JobLine::from(job),
            priority: job.priority.get(),
            finished: when(job.finished_at),
            worker: job.worker_id.clone().unwrap_or_else(|| "—".to_owned()),
            payload: pretty(&job.payload),
            result: job.result.as_ref().map(pretty),
            error: job.error.as_ref().map(|e| ErrorView {
                kind: e.kind.to_string(),
                message: e.message.clone(),
                details: serde_json::to_value(e)
                    .map(|v| pretty(&v))
                    .unwrap_or_default(),
            }),
            artifacts: artifacts.iter().map(ArtifactView::from).collect(),
            events: events.iter().map(EventView::from).collect(),
            last_event: events.last().map_or(0, |e| e.id),
            finished_now: job.state.is_terminal(),
            can_cancel: may_change && matches!(job.state, JobState::Queued | JobState::Running),
            can_retry: may_change && matches!(job.state, JobState::Failed | JobState::Cancelled),
            profile: job
                .payload
                .get("profile")
                .and_then(|p| serde_json::from_value(p.clone()).ok()),
        }
    }
}

/// A queue level's line.
pub struct LevelView {
    pub priority: u8,
    pub due: i64,
    pub oldest: String,
    pub depth: String,
    pub pending: String,
}

/// A worker's line, from its report.
pub struct WorkerView {
    pub id: String,
    pub running: String,
    pub free: String,
    pub browser: String,
    pub browsers: String,
    pub contexts: String,
    pub pages: String,
    pub restarts: String,
}

impl From<&Value> for WorkerView {
    fn from(report: &Value) -> WorkerView {
        let number = |v: &Value| v.as_u64().map_or_else(|| "—".to_owned(), |n| n.to_string());
        let pool = &report["browser"]["pool"];
        WorkerView {
            id: report["worker"].as_str().unwrap_or("?").to_owned(),
            running: number(&report["slots"]["running"]),
            free: number(&report["slots"]["free"]),
            browser: report["browser"]["status"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
            browsers: number(&pool["browsers"]),
            contexts: format!(
                "{} of {}",
                number(&pool["contexts"]),
                number(&pool["capacity"])
            ),
            pages: number(&pool["pages_served"]),
            restarts: number(&pool["restarts"]),
        }
    }
}

/// The queue and workers page.
#[derive(Template)]
#[template(path = "ui/queue.html")]
pub struct QueuePage {
    pub signed_in: bool,
    pub levels: Vec<LevelView>,
    pub counts: Vec<(String, i64)>,
    pub workers: Vec<WorkerView>,
    pub problem: Option<String>,
    /// The upstream proxy pools and their health (never a credential).
    pub pools: Vec<crate::proxy::PoolView>,
}
