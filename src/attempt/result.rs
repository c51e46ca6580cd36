//! A job's result as stored and shown: its kind's output and what the attempt ran with,
//! typed, serialized once (then held to `RESULT_MAX_BYTES`).

use serde::Serialize;

use crate::engine::tally::{Dialog, Spent};
use crate::job::{Strategy, StrategyDecision};
use crate::kinds::Output;

/// A succeeded job's result: the kind's output with the attempt's own fields beside it.
#[derive(Debug, Serialize)]
pub struct JobResult {
    /// What the kind produced (its fields, flattened into the result).
    #[serde(flatten)]
    pub output: Output,
    /// The strategy that really ran the job (absent for kinds that never reach the web).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed_with: Option<Strategy>,
    /// For `auto` jobs: where the attempt started, what it tried and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy_decision: Option<StrategyDecision>,
    /// How long the attempt ran, every rung and probe included, in milliseconds.
    pub took_ms: u64,
    /// The JavaScript dialogs its pages opened, each answered so the page went on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dialogs: Vec<Dialog>,
    /// What it spent: browser time, and requests by route.
    pub spent: Spent,
}
