//! The contract's jobs by kind: each job type's payload and result with its own schema, and
//! `Job` as their union, discriminated by `job_type`. The schemas come from the kinds' own
//! types (their serde forms), registered through the kinds' list; nothing here names a kind.

use serde_json::{Map, Value, json};
use utoipa::openapi::Components;

use crate::kinds::JobType;

/// Adds every kind's payload and output schemas (and the schemas they use) to `components`.
pub fn register(components: &mut Components) {
    for (name, schema) in JobType::schemas() {
        components.schemas.entry(name).or_insert(schema);
    }
}

/// Replaces the served document's `Job` with one schema per kind (`<Kind>Job`, its payload
/// and its result typed) and their union, discriminated by `job_type`.
pub fn type_jobs(document: &mut Value) {
    let Some(schemas) = document["components"]["schemas"].as_object_mut() else {
        return;
    };
    let Some(base) = schemas.get("Job").cloned() else {
        return;
    };
    schemas.insert("AttemptFields".to_owned(), attempt_fields());
    let mut variants = Vec::new();
    let mut mapping = Map::new();
    for &job_type in JobType::ALL {
        let (payload, output) = job_type.schema_names();
        let kind = pascal(job_type.as_str());
        let result = format!("{kind}Result");
        schemas.insert(result.clone(), result_schema(job_type, &output));
        let job = format!("{kind}Job");
        schemas.insert(job.clone(), job_schema(&base, job_type, &payload, &result));
        let reference = format!("#/components/schemas/{job}");
        variants.push(json!({"$ref": reference}));
        mapping.insert(job_type.as_str().to_owned(), Value::String(reference));
    }
    schemas.insert(
        "Job".to_owned(),
        json!({
            "description": "A job as stored: its request, where it is in its lifecycle, and its \
                            outcome; its payload and result typed by its `job_type`.",
            "oneOf": variants,
            "discriminator": {"propertyName": "job_type", "mapping": mapping},
        }),
    );
}

/// What every result holds beside its kind's fields.
fn attempt_fields() -> Value {
    json!({
        "type": "object",
        "description": "What the attempt adds to every result, beside the kind's own fields.",
        "properties": {
            "executed_with": {
                "$ref": "#/components/schemas/Strategy",
                "description": "The strategy that really ran the job (absent for kinds that \
                                never reach the web)."
            },
            "strategy_decision": {
                "$ref": "#/components/schemas/StrategyDecision",
                "description": "For `auto` jobs: where the attempt started, what it tried and why."
            },
            "took_ms": {
                "type": "integer",
                "format": "int64",
                "minimum": 0,
                "description": "How long the attempt ran, every rung and probe included, in \
                                milliseconds (absent on results stored before it was kept)."
            }
        }
    })
}

fn result_schema(job_type: JobType, output: &str) -> Value {
    json!({
        "description": format!("The result of a succeeded `{job_type}` job."),
        "allOf": [
            {"$ref": format!("#/components/schemas/{output}")},
            {"$ref": "#/components/schemas/AttemptFields"}
        ]
    })
}

/// `Job` with its kind's `job_type`, payload and result.
fn job_schema(base: &Value, job_type: JobType, payload: &str, result: &str) -> Value {
    let mut job = base.clone();
    job["description"] = json!(format!("A `{job_type}` job."));
    let properties = &mut job["properties"];
    properties["job_type"] = json!({
        "type": "string",
        "enum": [job_type.as_str()],
        "description": "What the job does."
    });
    properties["payload"] = json!({
        "$ref": format!("#/components/schemas/{payload}"),
        "description": "The job type's options, as parsed."
    });
    properties["result"] = json!({
        "oneOf": [
            {"$ref": format!("#/components/schemas/{result}")},
            {"type": "null"}
        ],
        "description": "The result of the successful attempt."
    });
    job
}

/// `navigate_extract` → `NavigateExtract`.
fn pascal(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_pascal_case() {
        assert_eq!(pascal("navigate_extract"), "NavigateExtract");
        assert_eq!(pascal("noop"), "Noop");
    }
}
