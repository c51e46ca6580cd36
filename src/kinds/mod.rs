//! Job kinds: what a job does. Each kind is one module implementing [`JobKind`]: its typed
//! payload (parsed once, at the API, and stored in its serde form), its typed output (the
//! job's result), and how it runs with the engine's services.
//!
//! Adding a kind is one new module and one line in the `job_kinds!` list below; `noop` shows
//! how small a kind can be.

pub mod content_options;
mod evaluate;
pub mod page;
mod reading;
mod registry;
mod running;
pub mod selectors;

use std::fmt::Debug;
use std::future::Future;

use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::options::PageOptions;
use crate::job::fields::{Fields, Parsed};
use crate::job::{JobError, Strategy};

pub use running::{Run, RunningJob, unavailable};

registry::job_kinds! {
    navigate_extract::NavigateExtract,
    screenshot::Screenshot,
    pdf::Pdf,
    script::Script,
    noop::Noop,
}

impl JobType {
    /// The job type of a request that names none.
    pub const DEFAULT: JobType = JobType::NavigateExtract;
}

/// One kind of job.
pub trait JobKind {
    /// The kind's name, as `job_type` says it.
    const NAME: &'static str;
    /// Whether the kind needs a browser whatever the strategy (`http` is refused for it).
    const NEEDS_BROWSER: bool = false;
    /// Whether the kind reaches the target site: its outcomes teach the domain memory and
    /// `auto` chooses its rung.
    const REACHES_WEB: bool = true;
    /// What the kind's payload holds, parsed. Its serde form is how it is stored.
    type Payload: Serialize
        + DeserializeOwned
        + utoipa::ToSchema
        + Debug
        + Clone
        + PartialEq
        + Send
        + Sync
        + 'static;
    /// What one successful attempt returns: the job's result.
    type Output: Serialize + utoipa::ToSchema + Debug + Send;

    /// Whether this job needs a browser: the kind always does, or its payload asks for
    /// what only a browser can do (`auto` then never starts it on `http`).
    fn needs_browser(_payload: &Self::Payload) -> bool {
        Self::NEEDS_BROWSER
    }

    /// The page options of this job, for kinds that load a page (where its `proxy` is).
    fn page(_payload: &Self::Payload) -> Option<&PageOptions> {
        None
    }

    /// The same, to change (a tenant's default proxy is written into it at submission).
    fn page_mut(_payload: &mut Self::Payload) -> Option<&mut PageOptions> {
        None
    }

    /// Parses the payload object, naming every bad field. `strategy` is the job's (when it
    /// parsed), for fields that only some strategies can apply.
    fn parse(fields: &mut Fields<'_>, strategy: Option<Strategy>) -> Parsed<Self::Payload>;

    /// Runs one attempt.
    fn run(
        payload: &Self::Payload,
        run: &Run<'_>,
    ) -> impl Future<Output = Result<Self::Output, JobError>> + Send;
}
