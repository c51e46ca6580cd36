//! `noop`: does nothing (optionally sleeps), touches no network; for tests and load runs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{JobKind, Run};
use crate::job::fields::{Fields, Parsed};
use crate::job::{JobError, Strategy};

/// The longest a `noop` job may sleep, in milliseconds.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// The `noop` kind.
pub struct Noop;

/// How long to sleep before succeeding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoopPayload {
    /// Milliseconds, 0 ..= [`MAX_SLEEP_MS`].
    #[serde(default)]
    pub sleep_ms: u64,
}

/// What a `noop` job reports.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoopOutput {
    /// Always `noop`.
    pub job_type: &'static str,
    /// How long it slept.
    pub slept_ms: u64,
}

impl JobKind for Noop {
    const NAME: &'static str = "noop";
    const REACHES_WEB: bool = false;
    type Payload = NoopPayload;
    type Output = NoopOutput;

    fn parse(f: &mut Fields<'_>, _strategy: Option<Strategy>) -> Parsed<NoopPayload> {
        let sleep_ms = f.int("sleep_ms", 0..=MAX_SLEEP_MS as i64)?;
        Some(NoopPayload {
            sleep_ms: sleep_ms.unwrap_or(0) as u64,
        })
    }

    async fn run(payload: &NoopPayload, _run: &Run<'_>) -> Result<NoopOutput, JobError> {
        if payload.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(payload.sleep_ms)).await;
        }
        Ok(NoopOutput {
            job_type: Self::NAME,
            slept_ms: payload.sleep_ms,
        })
    }
}
