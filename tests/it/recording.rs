//! A client of a process started with `AUTH=off` that keeps every answer it read, so a test
//! can look for a secret in all of them at the end.

use serde_json::Value;

pub struct Recording {
    pub client: reqwest::Client,
    pub base: String,
    /// Every answer read.
    pub seen: String,
}

impl Recording {
    pub fn new(base: &str) -> Recording {
        Recording {
            client: reqwest::Client::new(),
            base: base.to_owned(),
            seen: String::new(),
        }
    }

    /// Sends `request`; its status and JSON body (null when it is not JSON).
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        self.seen.push_str(&text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&mut self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        self.send(self.client.get(url)).await
    }

    /// Submits a job.
    pub async fn submit(&mut self, body: &Value) -> (u16, Value) {
        let url = format!("{}/api/v1/jobs", self.base);
        self.send(self.client.post(url).json(body)).await
    }

    /// A page (a dashboard page, `/metrics`), which must answer 200.
    pub async fn page(&mut self, path: &str) -> String {
        let url = format!("{}{path}", self.base);
        let response = self.client.get(url).send().await.expect("a page");
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.expect("a body");
        self.seen.push_str(&text);
        text
    }
}
