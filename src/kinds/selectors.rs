//! Parsing CSS selectors and named selector maps (`navigate_extract`'s `selectors`, a
//! script's `extract` step).

use serde_json::Value;

use crate::engine::options::{SelectorSpec, Selectors};
use crate::job::fields::{Fields, Parsed, Problems, as_text, type_name};

/// The most named selectors one job may extract.
pub const MAX_SELECTORS: usize = 200;

/// A CSS selector that parses.
pub fn css(value: &Value) -> Result<String, (&'static str, String)> {
    let text = as_text(value)?;
    scraper::Selector::parse(text)
        .map(|_| text.to_owned())
        .map_err(|e| ("invalid", format!("not a valid CSS selector: {e}")))
}

/// An object of name → CSS selector (or `{"selector", "attr", "all"}`) at `path`.
pub fn selector_map(value: &Value, path: &str, problems: &Problems) -> Parsed<Selectors> {
    let Value::Object(entries) = value else {
        problems.push(
            path,
            "wrong_type",
            format!(
                "expected an object of name → CSS selector, not {}",
                type_name(value)
            ),
        );
        return None;
    };
    if entries.len() > MAX_SELECTORS {
        problems.push(
            path,
            "too_large",
            format!("at most {MAX_SELECTORS} entries"),
        );
        return None;
    }
    let mut selectors = Selectors::new();
    let mut valid = true;
    for (name, entry) in entries {
        match selector(entry, &format!("{path}.{name}"), problems) {
            Some(spec) => {
                selectors.insert(name.clone(), spec);
            }
            None => valid = false,
        }
    }
    valid.then_some(selectors)
}

/// One selector: a CSS string, or `{"selector", "attr", "all"}`.
fn selector(entry: &Value, path: &str, problems: &Problems) -> Parsed<SelectorSpec> {
    match entry {
        Value::String(_) => match css(entry) {
            Ok(selector) => Some(SelectorSpec {
                selector,
                attr: None,
                all: false,
            }),
            Err((code, detail)) => {
                problems.push(path, code, detail);
                None
            }
        },
        Value::Object(_) => {
            let mut f = Fields::of(entry, path, problems)?;
            let selector = f.with("selector", css);
            let attr = f.text("attr");
            let all = f.flag("all");
            f.finish();
            let Some(selector) = selector? else {
                problems.push(
                    format!("{path}.selector"),
                    "missing",
                    "selector is required",
                );
                return None;
            };
            Some(SelectorSpec {
                selector,
                attr: attr?.map(str::to_owned),
                all: all?,
            })
        }
        other => {
            problems.push(
                path,
                "wrong_type",
                format!(
                    "expected a CSS selector string or {{\"selector\", \"attr\", \"all\"}}, not {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_parse_both_forms_and_name_each_bad_one() {
        let problems = Problems::new();
        let parsed = selector_map(
            &json!({"title": "h1", "links": {"selector": "a", "attr": "href", "all": true}}),
            "payload.selectors",
            &problems,
        )
        .expect("valid");
        assert!(problems.is_empty());
        assert!(parsed["links"].all && parsed["links"].attr.as_deref() == Some("href"));

        let problems = Problems::new();
        let bad = json!({"a": "h1", "b": "[[", "c": {"attr": "href"}, "d": 3});
        assert!(selector_map(&bad, "payload.selectors", &problems).is_none());
        let fields = problems.fields();
        assert_eq!(
            fields,
            [
                "payload.selectors.b",
                "payload.selectors.c.selector",
                "payload.selectors.d"
            ]
        );
    }
}
