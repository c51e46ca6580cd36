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
pub async fn evaluate_capped(session: &Session, expression: &str) -> Result<Value, JobError> {
    let value = session.evaluate(expression).await?;
    let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
    if size > MAX_EVALUATE_BYTES {
        return Err(JobError::new(
            ErrorKind::Script,
            format!(
                "the evaluate result is {size} bytes of JSON; the limit is {MAX_EVALUATE_BYTES}"
            ),
        ));
    }
    Ok(value)
}
