//! The contract's jobs by kind and events by kind: each job type's payload and result with
//! its own schema, and `Job` as their union, discriminated by `job_type`; each event kind's
//! detail with its own schema, and `JobEvent` as their union, discriminated by `kind`; the
//! event stream's messages. The schemas come from the types that write them (the kinds'
//! payloads and outputs, the events' details); nothing here names a kind.

use serde_json::{Map, Value, json};
use utoipa::openapi::Components;

use crate::job::{EventDetail, EventKind, event_detail};
use crate::kinds::JobType;

/// Adds every kind's payload and output schemas (and the schemas they use) to `components`.
pub fn register(components: &mut Components) {
    for (name, schema) in JobType::schemas()
        .into_iter()
        .chain(event_detail::schemas())
    {
        components.schemas.entry(name).or_insert(schema);
    }
}

/// Replaces the served document's `JobEvent` with one schema per kind (`<Kind>Event`, its
/// detail typed) and their union, discriminated by `kind`; and gives the event stream the
/// schema of its messages' data.
pub fn type_events(document: &mut Value) {
    let Some(schemas) = document["components"]["schemas"].as_object_mut() else {
        return;
    };
    let Some(base) = schemas.get("JobEvent").cloned() else {
        return;
    };
    let mut variants = Vec::new();
    let mut mapping = Map::new();
    for &kind in EventKind::ALL {
        let mut event = base.clone();
        event["description"] = json!(format!("A `{kind}` event."));
        event["properties"]["kind"] = json!({"type": "string", "enum": [kind.as_str()]});
        event["properties"]["detail"] = json!({
            "$ref": format!("#/components/schemas/{}", EventDetail::schema_name(kind))
        });
        let name = format!("{}Event", pascal(kind.as_str()));
        schemas.insert(name.clone(), event);
        let reference = format!("#/components/schemas/{name}");
        variants.push(json!({"$ref": reference}));
        mapping.insert(kind.as_str().to_owned(), Value::String(reference));
    }
    schemas.insert(
        "JobEvent".to_owned(),
        json!({
            "description": "One entry of a job's timeline; its detail typed by its `kind`.",
            "oneOf": variants,
            "discriminator": {"propertyName": "kind", "mapping": mapping},
        }),
    );
    // Each event schema names its own kind now; the set of all kinds is referenced nowhere
    // else, and a component nothing uses is noise to a generator.
    schemas.remove("EventKind");
    schemas.insert("StreamMessage".to_owned(), stream_message());
    let stream = &mut document["paths"]["/api/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"];
    if stream.is_object() {
        stream["schema"] = json!({"$ref": "#/components/schemas/StreamMessage"});
    }
}

/// The data of one message of a job's event stream, by the message's `event` field: the
/// event itself (its kind), then `end` with the job's final state, or `error`.
fn stream_message() -> Value {
    json!({
        "description": "The `data` of one Server-Sent Event of a job's stream: a `JobEvent` \
                        (SSE `event` = its kind, `id` = its id), then `{\"state\"}` under \
                        `event: end` once the job is finished, or `{\"detail\"}` under \
                        `event: error`.",
        "oneOf": [
            {"$ref": "#/components/schemas/JobEvent"},
            {
                "type": "object",
                "title": "StreamEnd",
                "required": ["state"],
                "properties": {"state": {"$ref": "#/components/schemas/JobState"}},
                "additionalProperties": false
            },
            {
                "type": "object",
                "title": "StreamError",
                "required": ["detail"],
                "properties": {"detail": {"type": "string"}},
                "additionalProperties": false
            }
        ]
    })
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

/// Replaces the served document's `JobRequest` with one schema per kind (`<Kind>Request`,
/// its `job_type` fixed and its payload typed) and their union. Exactly one matches any
/// request: each names its own `job_type`, and only the default kind's may leave it out.
pub fn type_requests(document: &mut Value) {
    let Some(schemas) = document["components"]["schemas"].as_object_mut() else {
        return;
    };
    let Some(base) = schemas.get("JobRequest").cloned() else {
        return;
    };
    let mut variants = Vec::new();
    for &job_type in JobType::ALL {
        let (payload, _) = job_type.schema_names();
        let name = format!("{}Request", pascal(job_type.as_str()));
        schemas.insert(name.clone(), request_schema(&base, job_type, &payload));
        variants.push(json!({"$ref": format!("#/components/schemas/{name}")}));
    }
    schemas.insert(
        "JobRequest".to_owned(),
        json!({
            "description": "`POST /api/v1/jobs`: a job of one kind, its payload typed by its \
                            `job_type`. Optional fields may also be `null` (the same as absent).",
            "oneOf": variants,
        }),
    );
}

/// `JobRequest` for one kind: its `job_type` (required unless it is the default) and its
/// payload's schema.
fn request_schema(base: &Value, job_type: JobType, payload: &str) -> Value {
    let mut request = base.clone();
    request["description"] = json!(format!("A `{job_type}` job request."));
    let default = job_type == JobType::DEFAULT;
    request["properties"]["job_type"] = if default {
        json!({
            "oneOf": [{"type": "string", "enum": [job_type.as_str()]}, {"type": "null"}],
            "description": "What the job does (the default: may be left out)."
        })
    } else {
        json!({"type": "string", "enum": [job_type.as_str()], "description": "What the job does."})
    };
    if !default && let Some(required) = request["required"].as_array_mut() {
        required.push(json!("job_type"));
    }
    request["properties"]["payload"] = json!({
        "oneOf": [
            {"$ref": format!("#/components/schemas/{payload}")},
            {"type": "null"}
        ],
        "description": "The job type's options (at most 256 KiB)."
    });
    request
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
            },
            "dialogs": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/JavaScriptDialog"},
                "maxItems": crate::engine::tally::MAX_DIALOGS,
                "description": "The JavaScript dialogs the attempt's pages opened, each \
                                answered at once so the page went on (absent when none)."
            },
            "spent": {
                "$ref": "#/components/schemas/Spent",
                "description": "What the attempt spent: browser time and requests by route \
                                (absent on results stored before it was kept)."
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
