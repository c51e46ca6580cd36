//! The dashboard's profile pages: the tenant's profiles, and one profile's versions and the
//! jobs that named it. They show what the API shows (metadata), never the state.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::views::{JobLine, when};
use super::{Viewer, render};
use crate::api::AppState;
use crate::engine::options::is_profile_name;
use crate::profile::{ProfileView, Summary, VersionView};

/// How many of a profile's jobs its page lists (the newest).
const JOBS_SHOWN: u32 = 25;

/// A profile's line.
pub struct ProfileLine {
    pub name: String,
    pub version: u32,
    pub cookies: u32,
    pub origins: String,
    pub size: String,
    pub updated: String,
    pub last_used: String,
}

fn origins(summary: &Summary) -> String {
    if summary.origins.is_empty() {
        "—".to_owned()
    } else {
        summary.origins.join(", ")
    }
}

fn size(summary: &Summary) -> String {
    format!("{:.1} KiB", summary.bytes as f64 / 1024.0)
}

impl From<&ProfileView> for ProfileLine {
    fn from(view: &ProfileView) -> ProfileLine {
        ProfileLine {
            name: view.name.clone(),
            version: view.current_version,
            cookies: view.summary.cookies,
            origins: origins(&view.summary),
            size: size(&view.summary),
            updated: when(Some(view.updated_at)),
            last_used: when(view.last_used_at),
        }
    }
}

/// A version's line.
pub struct VersionLine {
    pub version: u32,
    pub cookies: u32,
    pub origins: String,
    pub size: String,
    /// The job that saved it.
    pub job: Option<String>,
    /// Where it came from when no job saved it.
    pub origin_note: String,
    pub created: String,
}

impl From<&VersionView> for VersionLine {
    fn from(view: &VersionView) -> VersionLine {
        VersionLine {
            version: view.version,
            cookies: view.summary.cookies,
            origins: origins(&view.summary),
            size: size(&view.summary),
            job: view.saved_by.map(|id| id.to_string()),
            origin_note: view
                .restored_from
                .map_or_else(String::new, |v| format!("restored from version {v}")),
            created: when(Some(view.created_at)),
        }
    }
}

/// The profiles list.
#[derive(Template)]
#[template(path = "ui/profiles.html")]
pub struct ProfilesPage {
    pub signed_in: bool,
    pub profiles: Vec<ProfileLine>,
    pub problem: Option<String>,
}

/// One profile's page.
#[derive(Template)]
#[template(path = "ui/profile.html")]
pub struct ProfilePage {
    pub signed_in: bool,
    pub profile: ProfileLine,
    pub versions: Vec<VersionLine>,
    pub jobs: Vec<JobLine>,
}

/// `GET /ui/profiles`.
pub async fn list(viewer: Viewer, State(state): State<AppState>) -> Response {
    let tenant = &viewer.caller.tenant;
    let mut page = ProfilesPage {
        signed_in: viewer.signed_in,
        profiles: Vec::new(),
        problem: None,
    };
    match state.profiles.index().list_profiles(tenant).await {
        Ok(profiles) => {
            page.profiles = profiles.iter().map(ProfileLine::from).collect();
            render(StatusCode::OK, &page)
        }
        Err(e) => {
            page.problem = Some(format!("the store did not answer: {e}"));
            render(StatusCode::SERVICE_UNAVAILABLE, &page)
        }
    }
}

/// `GET /ui/profiles/{name}`.
pub async fn one(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Response {
    let gone = || (StatusCode::NOT_FOUND, "no such profile").into_response();
    if !is_profile_name(&name) {
        return gone();
    }
    let tenant = &viewer.caller.tenant;
    let index = state.profiles.index();
    let (view, ids) = tokio::join!(
        index.profile(tenant, &name),
        index.profile_jobs(tenant, &name, JOBS_SHOWN)
    );
    let view = match view {
        Ok(Some(view)) => view,
        Ok(None) => return gone(),
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let store = state.dispatcher.store();
    let scope = viewer.caller.scope();
    let jobs = futures::future::join_all(
        ids.unwrap_or_default()
            .into_iter()
            .map(|id| store.get(scope, id)),
    )
    .await;
    let page = ProfilePage {
        signed_in: viewer.signed_in,
        profile: ProfileLine::from(&view),
        versions: (view.versions.iter().flatten())
            .map(VersionLine::from)
            .collect(),
        jobs: (jobs.into_iter().flatten().flatten())
            .map(|job| JobLine::from(&job))
            .collect(),
    };
    render(StatusCode::OK, &page)
}
