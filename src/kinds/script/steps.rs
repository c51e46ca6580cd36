//! A script's steps: what each one-key object means, and how it is parsed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::evaluate::expression;
use super::super::selectors::{css, selector_map};
use crate::artifact::valid_artifact_name;
use crate::engine::options::Selectors;
use crate::job::TargetUrl;
use crate::job::fields::{Parsed, Problems, as_text, int_in, type_name};

/// The most steps one script may have.
pub const MAX_STEPS: usize = 100;
/// The longest a `wait_for` step may wait, in milliseconds.
pub const MAX_WAIT_MS: i64 = 60_000;

const STEP_KINDS: &str = "goto, click, type, wait_for, scroll, extract, evaluate, screenshot";

/// One step of a script, written as a one-key object (`{"click": "#go"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Navigate to a url (under the target policy).
    Goto(String),
    /// Click the first element matching a selector.
    Click(String),
    /// Type text into the first element matching a selector.
    Type(TypeText),
    /// Wait for a selector or a number of milliseconds.
    WaitFor(WaitFor),
    /// Scroll to the bottom, or by a number of pixels.
    Scroll(Scroll),
    /// Extract named selectors into `data`.
    Extract(Selectors),
    /// Evaluate a JavaScript expression.
    Evaluate(String),
    /// Take a viewport screenshot stored as `<name>.png`.
    Screenshot(String),
}

/// What a `type` step types, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TypeText {
    /// The field: the first element matching this CSS selector.
    pub selector: String,
    /// What to type.
    pub text: String,
}

/// What a `wait_for` step waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum WaitFor {
    /// A number of milliseconds.
    Ms(u64),
    /// An element matching a selector.
    Selector(String),
}

/// Where a `scroll` step scrolls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Scroll {
    /// To the bottom of the page (`"bottom"`).
    To(Bottom),
    /// By a number of pixels (negative: up).
    By(i64),
}

/// The bottom of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Bottom {
    /// `"bottom"`.
    #[serde(rename = "bottom")]
    Bottom,
}

impl Step {
    /// The step's kind, as written in the payload.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Goto(_) => "goto",
            Step::Click(_) => "click",
            Step::Type(_) => "type",
            Step::WaitFor(_) => "wait_for",
            Step::Scroll(_) => "scroll",
            Step::Extract(_) => "extract",
            Step::Evaluate(_) => "evaluate",
            Step::Screenshot(_) => "screenshot",
        }
    }
}

/// Parses `payload.steps`: 1 to [`MAX_STEPS`] one-key objects, each step named on its own.
pub fn parse_steps(value: Option<&Value>, path: &str, problems: &Problems) -> Parsed<Vec<Step>> {
    let Some(value) = value else {
        problems.push(
            path,
            "missing",
            "a script job needs steps: an array of one-key objects",
        );
        return None;
    };
    let Value::Array(items) = value else {
        problems.push(
            path,
            "wrong_type",
            format!("expected an array of one-key objects, not {}", type_name(value)),
        );
        return None;
    };
    if items.is_empty() || items.len() > MAX_STEPS {
        problems.push(path, "out_of_range", format!("between 1 and {MAX_STEPS} steps"));
        return None;
    }
    let steps: Vec<Parsed<Step>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| step(item, &format!("{path}.{index}"), problems))
        .collect();
    steps.into_iter().collect()
}

/// One step at `path`: a one-key object whose key says what it does.
fn step(item: &Value, path: &str, problems: &Problems) -> Parsed<Step> {
    let single = item.as_object().filter(|o| o.len() == 1);
    let Some((kind, arg)) = single.and_then(|o| o.iter().next()) else {
        problems.push(
            path,
            "wrong_type",
            format!("each step is an object with exactly one key: {STEP_KINDS}"),
        );
        return None;
    };
    let field = format!("{path}.{kind}");
    let parsed = match kind.as_str() {
        "goto" => as_text(arg).and_then(|url| {
            TargetUrl::parse(url)
                .map(|u| Step::Goto(u.as_str().to_owned()))
                .map_err(|e| ("invalid", e.to_string()))
        }),
        "click" => css(arg).map(Step::Click),
        "type" => return type_step(arg, &field, problems),
        "wait_for" => match arg {
            Value::Number(_) => int_in(arg, &(0..=MAX_WAIT_MS)).map(|ms| Step::WaitFor(WaitFor::Ms(ms as u64))),
            _ => css(arg).map(|css| Step::WaitFor(WaitFor::Selector(css))),
        },
        "scroll" => match arg {
            Value::String(s) if s == "bottom" => Ok(Step::Scroll(Scroll::To(Bottom::Bottom))),
            Value::Number(_) => int_in(arg, &(-1_000_000..=1_000_000)).map(|px| Step::Scroll(Scroll::By(px))),
            other => Err((
                "wrong_type",
                format!("expected \"bottom\" or a number of pixels, not {other}"),
            )),
        },
        "extract" => return selector_map(arg, &field, problems).map(Step::Extract),
        "evaluate" => expression(arg).map(Step::Evaluate),
        "screenshot" => match arg.as_str() {
            Some(name) if valid_artifact_name(name) => Ok(Step::Screenshot(name.to_owned())),
            _ => Err((
                "invalid",
                "expected a name of letters, digits, '.', '_' or '-' (at most 100)".to_owned(),
            )),
        },
        _ => Err((
            "unknown_value",
            format!("unknown step; expected one of: {STEP_KINDS}"),
        )),
    };
    parsed
        .map_err(|(code, detail)| problems.push(field, code, detail))
        .ok()
}

/// `{"type": {"selector", "text"}}`.
fn type_step(arg: &Value, path: &str, problems: &Problems) -> Parsed<Step> {
    let mut f = crate::job::Fields::of(arg, path, problems)?;
    let selector = f.with("selector", css);
    let text = f.text("text");
    f.finish();
    match (selector?, text?) {
        (Some(selector), Some(text)) => Some(Step::Type(TypeText {
            selector,
            text: text.to_owned(),
        })),
        _ => {
            problems.push(path, "missing", "type needs {\"selector\", \"text\"}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_parse_to_what_they_mean_and_are_stored_as_written() {
        let written = json!([{"wait_for": 10}, {"wait_for": "#x"}, {"scroll": -5},
                             {"scroll": "bottom"}, {"type": {"selector": "#q", "text": "hi"}}]);
        let problems = Problems::new();
        let steps = parse_steps(Some(&written), "payload.steps", &problems).expect("valid");
        assert_eq!(
            steps[..3],
            [
                Step::WaitFor(WaitFor::Ms(10)),
                Step::WaitFor(WaitFor::Selector("#x".into())),
                Step::Scroll(Scroll::By(-5)),
            ]
        );
        assert_eq!(serde_json::to_value(&steps).ok(), Some(written));
    }

    #[test]
    fn every_bad_step_is_named() {
        let problems = Problems::new();
        let bad = json!([{"dance": 1}, {"click": "[["}, {"a": 1, "b": 2}, {"type": {"text": "x"}}]);
        assert!(parse_steps(Some(&bad), "payload.steps", &problems).is_none());
        let fields = problems.fields();
        assert_eq!(
            fields,
            [
                "payload.steps.0.dance",
                "payload.steps.1.click",
                "payload.steps.2",
                "payload.steps.3.type"
            ]
        );
    }
}
