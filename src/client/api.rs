//! The client's side of the HTTP API: requests with the key, problems turned into one line.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use super::args::Connection;

/// Why a request did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API could not be reached or answered something unreadable.
    #[error("{0}")]
    Transport(String),
    /// The API answered with a problem.
    #[error("{status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The problem's detail (and the fields it names).
        detail: String,
    },
}

/// A connection to the API.
pub struct Api {
    base: String,
    key: Option<String>,
    client: reqwest::Client,
}

impl Api {
    /// The API `connection` names.
    pub fn new(connection: &Connection) -> Result<Api, ClientError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(Api {
            base: connection.api_url.trim_end_matches('/').to_owned(),
            key: connection.api_key.clone(),
            client,
        })
    }

    /// A request to `path`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends `request`; a problem answer becomes [`ClientError::Refused`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request.send().await.map_err(|e| {
            ClientError::Transport(format!("cannot reach the API at {}: {e}", self.base))
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let problem: Value = response.json().await.unwrap_or(Value::Null);
        Err(ClientError::Refused {
            status,
            detail: describe(&problem),
        })
    }

    /// Sends `request` and reads its JSON answer.
    pub async fn json(&self, request: RequestBuilder) -> Result<Value, ClientError> {
        self.send(request)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Transport(format!("unreadable answer: {e}")))
    }
}

/// A problem in one line: its detail, then each field it names.
fn describe(problem: &Value) -> String {
    let mut text = problem["detail"]
        .as_str()
        .or(problem["title"].as_str())
        .unwrap_or("no detail")
        .to_owned();
    for error in problem["errors"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "; {}: {}",
            error["field"].as_str().unwrap_or("?"),
            error["detail"].as_str().unwrap_or("?")
        ));
    }
    text
}
