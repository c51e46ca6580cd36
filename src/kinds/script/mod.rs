//! `script`: a list of browser steps run in order after the job's url has loaded.

mod steps;

use super::evaluate::evaluate_capped;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{JobKind, Run, page};
use crate::engine::browser::{ArtifactRef, ImageFormat, ScreenshotOptions, Session};
use crate::engine::options::PageOptions;
use crate::job::fields::{Fields, Parsed};
use crate::job::{JobError, Strategy};

pub use steps::{Bottom, MAX_STEPS, MAX_WAIT_MS, Scroll, Step, WaitFor};

/// The `script` kind.
pub struct Script;

/// The steps, and how to load the page they start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScriptPayload {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Page options.
    #[serde(flatten)]
    pub page: PageOptions,
}

/// How one step went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepOutcome {
    /// Its position (0-based).
    pub index: usize,
    /// Its kind.
    pub kind: &'static str,
    /// Always true: a failed step fails the job, naming the step.
    pub ok: bool,
    /// How long it took.
    pub ms: u64,
    /// What it returned, for steps that return something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// What a `script` job produced.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScriptOutput {
    /// The url the page showed at the end.
    pub final_url: Value,
    /// The page's title at the end.
    pub title: Value,
    /// Each step's outcome.
    pub steps: Vec<StepOutcome>,
    /// Every `extract` step's values, merged.
    pub data: Map<String, Value>,
    /// Every file the job kept.
    pub artifacts: Vec<ArtifactRef>,
}

impl JobKind for Script {
    fn page(payload: &ScriptPayload) -> Option<&PageOptions> {
        Some(&payload.page)
    }

    fn page_mut(payload: &mut ScriptPayload) -> Option<&mut PageOptions> {
        Some(&mut payload.page)
    }

    const NAME: &'static str = "script";
    const NEEDS_BROWSER: bool = true;
    type Payload = ScriptPayload;
    type Output = ScriptOutput;

    fn parse(f: &mut Fields<'_>, _strategy: Option<Strategy>) -> Parsed<ScriptPayload> {
        let steps = steps::parse_steps(f.get("steps"), &f.path_of("steps"), f.problems());
        let page = page::parse(f);
        Some(ScriptPayload {
            steps: steps?,
            page: page?,
        })
    }

    async fn run(payload: &ScriptPayload, run: &Run<'_>) -> Result<ScriptOutput, JobError> {
        let (browser, strategy) = run.require_browser()?;
        browser
            .run(&run.attempt(), strategy, &payload.page, async |s| {
                let document = s.open().await?;
                s.check(&document).await?;
                let mut data = Map::new();
                let mut outcomes = Vec::with_capacity(payload.steps.len());
                for (index, step) in payload.steps.iter().enumerate() {
                    let started = Instant::now();
                    let value = perform(s, step, &mut data).await.map_err(|mut error| {
                        error.message =
                            format!("step {index} ({}) failed: {}", step.kind(), error.message);
                        error
                    })?;
                    outcomes.push(StepOutcome {
                        index,
                        kind: step.kind(),
                        ok: true,
                        ms: started.elapsed().as_millis() as u64,
                        value,
                    });
                }
                Ok(ScriptOutput {
                    final_url: s.evaluate("location.href").await.unwrap_or(Value::Null),
                    title: s.evaluate("document.title").await.unwrap_or(Value::Null),
                    steps: outcomes,
                    data,
                    artifacts: s.artifacts(),
                })
            })
            .await
    }
}

/// Performs one step; returns its value, if it has one. `extract` steps also add to `data`.
async fn perform(
    s: &mut Session,
    step: &Step,
    data: &mut Map<String, Value>,
) -> Result<Option<Value>, JobError> {
    match step {
        Step::Goto(url) => {
            let document = s.visit(url).await?;
            Ok(Some(
                json!({"status_code": document.status, "final_url": document.url}),
            ))
        }
        Step::Click(css) => s.click(css).await.map(|()| None),
        Step::Type(typed) => s
            .type_into(&typed.selector, &typed.text)
            .await
            .map(|()| None),
        Step::WaitFor(WaitFor::Selector(css)) => s.wait_for_selector(css).await.map(|()| None),
        Step::WaitFor(WaitFor::Ms(ms)) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            Ok(None)
        }
        Step::Scroll(Scroll::To(Bottom::Bottom)) => s.scroll(None).await.map(Some),
        Step::Scroll(Scroll::By(pixels)) => s.scroll(Some(*pixels)).await.map(Some),
        Step::Extract(selectors) => {
            let found = s.select(selectors).await?;
            data.extend(found.clone());
            Ok(Some(Value::Object(found)))
        }
        Step::Evaluate(expression) => evaluate_capped(s, expression).await.map(Some),
        Step::Screenshot(name) => {
            let png = s.screenshot(&ScreenshotOptions::default()).await?;
            let kept = s
                .keep(&format!("{name}.png"), ImageFormat::Png.content_type(), png)
                .await?;
            Ok(Some(json!(kept)))
        }
    }
}
