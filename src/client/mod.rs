//! The command-line client in the same binary: `submit`, `jobs list|get|cancel|retry|events`
//! and `artifacts get` against a running server. Exit codes scripts can use: 0 done (a waited
//! job succeeded), 1 failed (the job failed or was cancelled, the API refused, or it could
//! not be reached), 2 usage error.

pub mod api;
pub mod args;
pub mod follow;
mod print;

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Map, Value, json};

use api::{Api, ClientError};
pub use args::{ArtifactsCommand, Connection, JobsCommand, SubmitArgs};
use follow::{Progress, follow};

/// The job succeeded, or the command did what it was asked.
pub const OK: u8 = 0;
/// The job failed or was cancelled, or the API refused or could not be reached.
pub const FAILED: u8 = 1;
/// The command was given something it cannot use.
pub const USAGE: u8 = 2;

/// What a client command came to.
enum Ending {
    /// Exit with this code.
    Code(u8),
    /// A usage error, with what was wrong.
    Usage(String),
}

/// Runs `control-plane submit`.
pub async fn submit(args: SubmitArgs) -> ExitCode {
    finish(run_submit(&args).await)
}

/// Runs `control-plane jobs …`.
pub async fn jobs(command: JobsCommand) -> ExitCode {
    finish(run_jobs(command).await)
}

/// Runs `control-plane artifacts …`.
pub async fn artifacts(command: ArtifactsCommand) -> ExitCode {
    finish(run_artifacts(command).await)
}

fn finish(ending: Result<Ending, ClientError>) -> ExitCode {
    match ending {
        Ok(Ending::Code(code)) => ExitCode::from(code),
        Ok(Ending::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(USAGE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(FAILED)
        }
    }
}

/// The request body `args` describe, or what is wrong with them.
fn body(args: &SubmitArgs) -> Result<Value, String> {
    let mut body = Map::new();
    body.insert("url".into(), json!(args.url));
    if let Some(t) = &args.job_type {
        body.insert("job_type".into(), json!(t));
    }
    if let Some(s) = &args.strategy {
        body.insert("strategy".into(), json!(s));
    }
    if let Some(p) = args.priority {
        body.insert("priority".into(), json!(p));
    }
    if let Some(payload) = &args.payload {
        let text = match payload.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("--payload: cannot read {path}: {e}"))?,
            None => payload.clone(),
        };
        let value: Value =
            serde_json::from_str(&text).map_err(|e| format!("--payload is not JSON: {e}"))?;
        body.insert("payload".into(), value);
    }
    Ok(Value::Object(body))
}

async fn run_submit(args: &SubmitArgs) -> Result<Ending, ClientError> {
    let body = match body(args) {
        Ok(body) => body,
        Err(message) => return Ok(Ending::Usage(message)),
    };
    let api = Api::new(&args.connection)?;
    let job = api
        .json(api.request(Method::POST, "/api/v1/jobs").json(&body))
        .await?;
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    if !args.wait {
        print::job(&job, args.connection.json);
        return Ok(Ending::Code(OK));
    }
    eprintln!("submitted {id}; waiting");
    let progress = Progress::default();
    let followed = follow(&api, &id, |event| progress.show(event)).await;
    progress.done();
    if let Err(e) = followed {
        eprintln!("warning: {e}; asking for the result instead");
    }
    let job = finished(&api, &id).await?;
    print::job(&job, args.connection.json);
    Ok(Ending::Code(exit_for(&job)))
}

/// The job once finished: asks with `?wait=` until it is.
async fn finished(api: &Api, id: &str) -> Result<Value, ClientError> {
    loop {
        let path = format!("/api/v1/jobs/{id}?wait=60s");
        let job = api.json(api.request(Method::GET, &path)).await?;
        if matches!(
            job["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return Ok(job);
        }
    }
}

fn exit_for(job: &Value) -> u8 {
    if job["state"] == "succeeded" {
        OK
    } else {
        FAILED
    }
}

async fn run_jobs(command: JobsCommand) -> Result<Ending, ClientError> {
    match command {
        JobsCommand::List {
            state,
            domain,
            job_type,
            limit,
            cursor,
            connection,
        } => {
            let api = Api::new(&connection)?;
            let limit = limit.map(|n| n.to_string());
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in [
                ("state", state.as_deref()),
                ("domain", domain.as_deref()),
                ("job_type", job_type.as_deref()),
                ("limit", limit.as_deref()),
                ("cursor", cursor.as_deref()),
            ] {
                if let Some(value) = value {
                    query.append_pair(key, value);
                }
            }
            let path = format!("/api/v1/jobs?{}", query.finish());
            let page = api.json(api.request(Method::GET, &path)).await?;
            print::page(&page, connection.json);
            Ok(Ending::Code(OK))
        }
        JobsCommand::Get { id, connection } => {
            let api = Api::new(&connection)?;
            let job = api
                .json(api.request(Method::GET, &format!("/api/v1/jobs/{id}")))
                .await?;
            print::job(&job, connection.json);
            Ok(Ending::Code(OK))
        }
        JobsCommand::Cancel { id, connection } => change(&id, "cancel", &connection).await,
        JobsCommand::Retry { id, connection } => change(&id, "retry", &connection).await,
        JobsCommand::Events {
            id,
            follow: live,
            connection,
        } => {
            let api = Api::new(&connection)?;
            if live {
                follow(&api, &id, |event| {
                    print::stream_event(event, connection.json)
                })
                .await?;
            } else {
                let page = api
                    .json(api.request(Method::GET, &format!("/api/v1/jobs/{id}/events")))
                    .await?;
                print::events(&page, connection.json);
            }
            Ok(Ending::Code(OK))
        }
    }
}

async fn change(id: &str, action: &str, connection: &Connection) -> Result<Ending, ClientError> {
    let api = Api::new(connection)?;
    let path = format!("/api/v1/jobs/{id}/{action}");
    let job = api
        .json(api.request(Method::POST, &path).json(&json!({})))
        .await?;
    print::job(&job, connection.json);
    Ok(Ending::Code(OK))
}

async fn run_artifacts(command: ArtifactsCommand) -> Result<Ending, ClientError> {
    let ArtifactsCommand::Get {
        job,
        name,
        output,
        connection,
    } = command;
    let api = Api::new(&connection)?;
    let path = format!("/api/v1/jobs/{job}/artifacts/{name}");
    let bytes = api
        .send(api.request(Method::GET, &path))
        .await?
        .bytes()
        .await
        .map_err(|e| ClientError::Transport(format!("download broke: {e}")))?;
    let written = match &output {
        Some(file) => std::fs::write(file, &bytes).map_err(|e| format!("{}: {e}", file.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(|e| format!("standard output: {e}"))
        }
    };
    match written {
        Ok(()) => Ok(Ending::Code(OK)),
        Err(message) => Err(ClientError::Transport(message)),
    }
}
