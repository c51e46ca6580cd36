//! What a result must be before it is stored: within `RESULT_MAX_BYTES` of JSON, and free of
//! NUL characters (PostgreSQL cannot store them in JSON; a page's text may hold them).

use serde_json::Value;

use crate::job::{ErrorKind, JobError};

/// The default `RESULT_MAX_BYTES`.
pub const DEFAULT_RESULT_MAX_BYTES: usize = 4 * 1024 * 1024;

/// `value` with every NUL replaced by U+FFFD, or a `too_large` error when its JSON is over
/// `cap` bytes.
pub fn bounded(mut value: Value, cap: usize) -> Result<Value, JobError> {
    scrub_nuls(&mut value);
    let size = serde_json::to_vec(&value).map_or(usize::MAX, |json| json.len());
    if size > cap {
        return Err(JobError::new(
            ErrorKind::TooLarge,
            format!("the result is {size} bytes of JSON; RESULT_MAX_BYTES is {cap}"),
        ));
    }
    Ok(value)
}

fn scrub_nuls(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('\0') => *text = text.replace('\0', "\u{fffd}"),
        Value::Array(items) => items.iter_mut().for_each(scrub_nuls),
        Value::Object(map) => {
            if map.keys().any(|key| key.contains('\0')) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, value)| (key.replace('\0', "\u{fffd}"), value))
                    .collect();
            }
            map.values_mut().for_each(scrub_nuls);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nuls_are_replaced_and_big_results_refused() {
        let value = bounded(json!({"text": "a\u{0}b", "k\u{0}": ["\u{0}"]}), 1024).expect("fits");
        assert_eq!(
            value,
            json!({"text": "a\u{fffd}b", "k\u{fffd}": ["\u{fffd}"]})
        );
        let error = bounded(json!({"text": "x".repeat(2000)}), 1024).expect_err("too big");
        assert_eq!(error.kind, ErrorKind::TooLarge);
        assert!(!error.retryable);
    }
}
