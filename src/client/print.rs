//! What the client prints: the API's JSON with `--json`, else a few lines for people.

use serde_json::Value;

use super::follow::StreamEvent;

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A job.
pub fn job(job: &Value, json: bool) {
    if json {
        println!("{}", pretty(job));
        return;
    }
    println!("id:       {}", text(&job["id"]));
    println!("state:    {}", text(&job["state"]));
    println!(
        "type:     {}  strategy: {}",
        text(&job["job_type"]),
        text(&job["strategy"])
    );
    println!("url:      {}", text(&job["url"]));
    println!("attempts: {} of {}", job["attempt"], job["max_attempts"]);
    if !job["result"].is_null() {
        println!("result:\n{}", pretty(&job["result"]));
    }
    if !job["error"].is_null() {
        println!(
            "error:    {}: {}",
            text(&job["error"]["kind"]),
            text(&job["error"]["message"])
        );
    }
}

/// A page of jobs, one line each.
pub fn page(page: &Value, json: bool) {
    if json {
        println!("{}", pretty(page));
        return;
    }
    for job in page["jobs"].as_array().into_iter().flatten() {
        println!(
            "{}  {:<9}  {:<16}  {}",
            text(&job["id"]),
            text(&job["state"]),
            text(&job["job_type"]),
            text(&job["url"])
        );
    }
    if let Some(cursor) = page["next_cursor"].as_str() {
        println!("more: --cursor {cursor}");
    }
}

/// A timeline, one line per event.
pub fn events(page: &Value, json: bool) {
    if json {
        println!("{}", pretty(page));
        return;
    }
    for event in page["events"].as_array().into_iter().flatten() {
        println!("{}", event_line(event));
    }
}

/// An event as it streams in.
pub fn stream_event(event: &StreamEvent, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"event": event.kind, "data": event.data})
        );
    } else if event.kind == "end" {
        println!("end: {}", text(&event.data["state"]));
    } else {
        println!("{}", event_line(&event.data));
    }
}

fn event_line(event: &Value) -> String {
    format!(
        "{}  {:<14}  attempt {}  {}",
        text(&event["at"]),
        text(&event["kind"]),
        event["attempt"],
        event["detail"]
    )
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}
