//! Following a job from the command line: its event stream, read as it comes, with a
//! progress line on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use super::api::{Api, ClientError};

/// One Server-Sent Event: its type and data.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// `event:` (a timeline event kind, `end` or `error`).
    pub kind: String,
    /// `data:`, as JSON.
    pub data: Value,
}

/// Splits complete events off the front of `buffer` (a stream read so far).
pub fn take_events(buffer: &mut String) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let (mut kind, mut data) = (String::new(), String::new());
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                kind = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            }
        }
        if !kind.is_empty() {
            let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
            events.push(StreamEvent { kind, data });
        }
    }
    events
}

/// Streams job `id`'s events to `seen` until the job finishes (the stream's `end`).
pub async fn follow(
    api: &Api,
    id: &str,
    mut seen: impl FnMut(&StreamEvent),
) -> Result<(), ClientError> {
    let request = api
        .request(Method::GET, &format!("/api/v1/jobs/{id}/events"))
        .header("accept", "text/event-stream");
    let mut body = api.send(request).await?.bytes_stream();
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ClientError::Transport(format!("stream broke: {e}")))?;
        buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        for event in take_events(&mut buffer) {
            seen(&event);
            if event.kind == "end" {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A progress line on standard error, redrawn in place on a terminal.
pub struct Progress {
    started: Instant,
    live: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            live: std::io::stderr().is_terminal(),
        }
    }
}

impl Progress {
    /// Shows what the event says happened.
    pub fn show(&self, event: &StreamEvent) {
        if !self.live || event.kind == "end" {
            return;
        }
        let attempt = event.data["attempt"].as_u64().unwrap_or(0);
        let line = format!(
            "\r\x1b[2K{:>6.1}s  {}  (attempt {attempt})",
            self.started.elapsed().as_secs_f64(),
            event.kind
        );
        let mut stderr = std::io::stderr();
        let _ = stderr.write_all(line.as_bytes());
        let _ = stderr.flush();
    }

    /// Clears the line.
    pub fn done(&self) {
        if self.live {
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_as_they_complete() {
        let mut buffer =
            "id: 1\nevent: created\ndata: {\"attempt\":0}\n\n: keep-alive\n\nevent: end\ndata: {\"st"
                .to_owned();
        let events = take_events(&mut buffer);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "created");
        assert_eq!(events[0].data["attempt"], 0);
        buffer.push_str("ate\":\"succeeded\"}\n\n");
        let events = take_events(&mut buffer);
        assert_eq!(events[0].kind, "end");
        assert_eq!(events[0].data["state"], "succeeded");
        assert!(buffer.is_empty());
    }
}
