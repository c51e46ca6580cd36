//! JavaScript expressions in payloads (`navigate_extract`'s `evaluate`, a script's `evaluate`
//! step): how long they may be, and how big a value they may return.

use serde_json::Value;

use crate::engine::browser::Session;
use crate::job::fields::as_text;
use crate::job::{ErrorKind, JobError};

/// The longest JavaScript expression a job may carry, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 100 * 1024;
/// The largest `evaluate` result kept, in bytes of JSON.
pub const MAX_EVALUATE_BYTES: usize = 1024 * 1024;

/// A non-empty expression of at most [`MAX_EXPRESSION_BYTES`].
pub fn expression(value: &Value) -> Result<String, (&'static str, String)> {
    let expression = as_text(value)?;
    if expression.trim().is_empty() {
        Err(("invalid", "the expression is empty".to_owned()))
    } else if expression.len() > MAX_EXPRESSION_BYTES {
        Err(("too_large", format!("at most {MAX_EXPRESSION_BYTES} bytes")))
    } else {
        Ok(expression.to_owned())
    }
}

/// Evaluates `expression` in the page; a value over [`MAX_EVALUATE_BYTES`] of JSON fails.
///
/// The page measures the value before it leaves: only its JSON text crosses the DevTools
/// connection, and only when it is under the cap, so a page cannot make the worker hold a
/// huge value. The expression stands alone on its lines, so a trailing comment is harmless.
pub async fn evaluate_capped(session: &Session, expression: &str) -> Result<Value, JobError> {
    let measured = format!(
        "(async () => {{\nconst value = await (\n{expression}\n);\nconst json = JSON.stringify(value);\nif (json === undefined) return {{json: 'null'}};\nreturn json.length > {MAX_EVALUATE_BYTES} ? {{over: json.length}} : {{json}};\n}})()"
    );
    let answer = session.evaluate(&measured).await?;
    if let Some(over) = answer.get("over").and_then(Value::as_u64) {
        return Err(too_large(over));
    }
    let json = answer.get("json").and_then(Value::as_str).unwrap_or("null");
    if json.len() > MAX_EVALUATE_BYTES {
        return Err(too_large(json.len() as u64));
    }
    serde_json::from_str(json).map_err(|e| {
        JobError::new(
            ErrorKind::Script,
            format!("the evaluate result is not JSON: {e}"),
        )
    })
}

fn too_large(size: u64) -> JobError {
    JobError::new(
        ErrorKind::TooLarge,
        format!(
            "the evaluate result is {size} characters of JSON; the limit is {MAX_EVALUATE_BYTES}"
        ),
    )
}
