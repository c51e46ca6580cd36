//! The services job kinds run with: the http engine, the browser toolkit, extraction, and the
//! one judge of what a target answered. It knows nothing of job kinds.

pub mod body;
pub mod browser;
pub mod content;
pub mod egress;
pub mod extract;
pub mod http;
pub mod judge;
pub mod options;
pub mod own_ports;
pub mod parse_cost;
pub mod profile;
pub mod tally;
mod tls;

use std::time::Duration;

use uuid::Uuid;

use crate::job::Hold;
use crate::job::target::TargetPolicy;

pub use browser::Browser;
pub use http::HttpClient;

/// The attempt a service works for: what it needs to know of the job.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The job (artifacts are kept under it).
    pub id: Uuid,
    /// The job's url.
    pub url: String,
    /// How long the attempt may run.
    pub timeout: Duration,
    /// The attempt and worker holding the job: what the artifacts it writes are fenced by.
    pub hold: Hold,
    /// How its connections leave the worker.
    pub route: egress::Route,
    /// What it met and spent so far.
    pub tally: tally::Tally,
    /// The profile its pages start from (and capture, for a saving job).
    pub profile: Option<std::sync::Arc<crate::engine::profile::Carried>>,
}

/// The services of one worker: a plain HTTP client, and Chromium when there is one.
#[derive(Debug, Clone)]
pub struct Engine {
    http: HttpClient,
    browser: Option<Browser>,
}

impl Engine {
    /// An engine whose network access obeys `policy`; browser work runs in `browser` when
    /// there is one.
    pub fn new(policy: TargetPolicy, browser: Option<Browser>) -> Engine {
        Engine {
            http: HttpClient::new(policy),
            browser,
        }
    }

    /// The http client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The browser toolkit, when Chromium is available.
    pub fn browser(&self) -> Option<&Browser> {
        self.browser.as_ref()
    }
}
