//! Request parsing: a cursor over a JSON object that names every bad field, with its path,
//! instead of stopping at the first. Objects go through the cursor (so every error of a body
//! is reported at once); enum names go through serde (their `Deserialize` derive says what
//! is accepted); everything else is a small typed getter.

use std::cell::RefCell;
use std::ops::RangeInclusive;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as a dotted path (`payload.selectors.title`).
    pub field: String,
    /// A stable machine-readable code (`unknown_field`, `wrong_type`, `out_of_range`, …).
    #[schema(value_type = String)]
    pub code: &'static str,
    /// What is wrong, for humans.
    pub detail: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, code: &'static str, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code,
            detail: detail.into(),
        }
    }
}

/// Where the problems of one request are collected.
#[derive(Debug, Default)]
pub struct Problems(RefCell<Vec<FieldError>>);

impl Problems {
    /// No problems yet.
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Records a problem with `field`.
    pub fn push(&self, field: impl Into<String>, code: &'static str, detail: impl Into<String>) {
        self.0
            .borrow_mut()
            .push(FieldError::new(field, code, detail));
    }

    /// Whether nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// The fields named so far, in order.
    #[cfg(test)]
    pub fn fields(&self) -> Vec<String> {
        self.0.borrow().iter().map(|e| e.field.clone()).collect()
    }

    /// The parsed value when nothing was wrong, else every problem.
    pub fn verdict<T>(self, parsed: Option<T>) -> Result<T, Vec<FieldError>> {
        let problems = self.0.into_inner();
        match parsed {
            Some(value) if problems.is_empty() => Ok(value),
            _ => Err(problems),
        }
    }
}

/// A getter's answer: `None` when the field was bad (the problem is recorded).
pub type Parsed<T> = Option<T>;

/// A cursor over one JSON object at a path. Every key a getter asks for counts as known;
/// [`Fields::finish`] reports the others as unknown, so each parser lists its fields once.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    path: String,
    known: Vec<&'static str>,
    problems: &'a Problems,
}

impl<'a> Fields<'a> {
    /// The object `value` at `path` (`""` for a request body), or `None` with a problem
    /// when it is not an object.
    pub fn of(value: &'a Value, path: &str, problems: &'a Problems) -> Option<Fields<'a>> {
        match value {
            Value::Object(object) => Some(Fields {
                object,
                path: path.to_owned(),
                known: Vec::new(),
                problems,
            }),
            other => {
                let what = if path.is_empty() { "the body" } else { path };
                problems.push(
                    path,
                    "wrong_type",
                    format!("{what} must be a JSON object, not {}", type_name(other)),
                );
                None
            }
        }
    }

    /// The path of `key` inside this object.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Where problems go.
    pub fn problems(&self) -> &'a Problems {
        self.problems
    }

    /// Records a problem with `key`.
    pub fn report(&self, key: &str, code: &'static str, detail: impl Into<String>) {
        self.problems.push(self.path_of(key), code, detail);
    }

    /// The value at `key`, JSON `null` counting as absent; `key` becomes known.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.object.get(key).filter(|v| !v.is_null())
    }

    /// A value read by `read`, absent as `None`; a bad one is reported at `key`.
    pub fn with<T>(
        &mut self,
        key: &'static str,
        read: impl FnOnce(&'a Value) -> Result<T, (&'static str, String)>,
    ) -> Parsed<Option<T>> {
        let Some(value) = self.get(key) else {
            return Some(None);
        };
        match read(value) {
            Ok(parsed) => Some(Some(parsed)),
            Err((code, detail)) => {
                self.report(key, code, detail);
                None
            }
        }
    }

    /// A string.
    pub fn text(&mut self, key: &'static str) -> Parsed<Option<&'a str>> {
        self.with(key, as_text)
    }

    /// A boolean, `false` when absent.
    pub fn flag(&mut self, key: &'static str) -> Parsed<bool> {
        self.with(key, |value| match value {
            Value::Bool(b) => Ok(*b),
            other => Err(wrong_type("a boolean", other)),
        })
        .map(|b| b.unwrap_or(false))
    }

    /// An integer within `range`.
    pub fn int(&mut self, key: &'static str, range: RangeInclusive<i64>) -> Parsed<Option<i64>> {
        self.with(key, |value| int_in(value, &range))
    }

    /// One of the names an enum's `Deserialize` accepts.
    pub fn choice<T: DeserializeOwned>(&mut self, key: &'static str) -> Parsed<Option<T>> {
        self.with(key, |value| {
            let Value::String(_) = value else {
                return Err(wrong_type("a string", value));
            };
            T::deserialize(value).map_err(|e| ("unknown_value", e.to_string()))
        })
    }

    /// An array.
    pub fn array(&mut self, key: &'static str) -> Parsed<Option<&'a Vec<Value>>> {
        self.with(key, |value| match value {
            Value::Array(items) => Ok(items),
            other => Err(wrong_type("an array", other)),
        })
    }

    /// A nested object read by `parse` with its own cursor (its unknown keys are reported).
    pub fn object<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&mut Fields<'a>) -> Parsed<T>,
    ) -> Parsed<Option<T>> {
        let Some(value) = self.get(key) else {
            return Some(None);
        };
        let mut nested = Fields::of(value, &self.path_of(key), self.problems)?;
        let parsed = parse(&mut nested);
        nested.finish();
        parsed.map(Some)
    }

    /// The keys of this object, for objects keyed by the client's own names.
    pub fn entries(&self) -> &'a Map<String, Value> {
        self.object
    }

    /// Reports every key no getter asked for as unknown.
    pub fn finish(self) {
        for key in self.object.keys() {
            if !self.known.iter().any(|known| known == key) {
                self.report(
                    key,
                    "unknown_field",
                    format!("unknown field; expected one of: {}", self.known.join(", ")),
                );
            }
        }
    }
}

/// A string value, or a `wrong_type` problem.
pub fn as_text(value: &Value) -> Result<&str, (&'static str, String)> {
    value.as_str().ok_or_else(|| wrong_type("a string", value))
}

/// An integer within `range`: `wrong_type` for other values, `out_of_range` outside it.
pub fn int_in(value: &Value, range: &RangeInclusive<i64>) -> Result<i64, (&'static str, String)> {
    let Value::Number(number) = value else {
        return Err(wrong_type("an integer", value));
    };
    let out_of_range = || {
        (
            "out_of_range",
            format!(
                "must be between {} and {}, not {number}",
                range.start(),
                range.end()
            ),
        )
    };
    // JSON has one number type: 3.0 is the integer 3 (as JSON Schema says), 2.5 is not one.
    let whole = number
        .as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
        .map(|f| f as i64);
    match number.as_i64().or(whole) {
        Some(n) if range.contains(&n) => Ok(n),
        Some(_) => Err(out_of_range()),
        None if number.is_u64() || number.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            Err(out_of_range())
        }
        None => Err(("wrong_type", format!("expected an integer, not {number}"))),
    }
}

/// A `wrong_type` problem: what was expected and what came.
pub fn wrong_type(expected: &str, value: &Value) -> (&'static str, String) {
    (
        "wrong_type",
        format!("expected {expected}, not {}", type_name(value)),
    )
}

/// The JSON type of a value, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Colour {
        Red,
        Blue,
    }

    fn fields_of(body: &Value) -> Vec<(String, &'static str)> {
        let problems = Problems::new();
        if let Some(mut f) = Fields::of(body, "", &problems) {
            let _ = f.int("n", 1..=5);
            let _ = f.choice::<Colour>("colour");
            let _ = f.flag("on");
            let _ = f.object("inner", |inner| inner.text("name").map(|_| ()));
            f.finish();
        }
        let mut named: Vec<(String, &'static str)> = problems
            .0
            .into_inner()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect();
        named.sort();
        named
    }

    #[test]
    fn every_bad_field_is_named_with_its_path_and_code() {
        let body = json!({"n": 9, "colour": "green", "on": "yes", "inner": {"name": 1, "x": 2}, "y": null, "z": 0});
        assert_eq!(
            fields_of(&body),
            [
                ("colour".to_owned(), "unknown_value"),
                ("inner.name".to_owned(), "wrong_type"),
                ("inner.x".to_owned(), "unknown_field"),
                ("n".to_owned(), "out_of_range"),
                ("on".to_owned(), "wrong_type"),
                ("y".to_owned(), "unknown_field"),
                ("z".to_owned(), "unknown_field"),
            ]
        );
        assert!(fields_of(&json!({"n": 2, "colour": "blue", "inner": {"name": "a"}})).is_empty());
        assert_eq!(fields_of(&json!([1])), [(String::new(), "wrong_type")]);
        assert_eq!(fields_of(&json!({"n": 2.5}))[0].1, "wrong_type");
    }
}
