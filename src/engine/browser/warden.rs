//! A second DevTools connection to one browser that stops every worker at its first line:
//! dedicated workers of the pages it watches, and every shared and service worker. A worker
//! of a browser context that was taught a script runs that script first (the `stealth`
//! persona, told to worker scopes the way the evasions tell it to frames); every worker then
//! runs on. Page setup cannot do this itself: `Page.addScriptToEvaluateOnNewDocument` never
//! reaches workers, and the page's own client resumes them before anything can be said.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_tungstenite::tokio::connect_async;
use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// How long the browser may take to answer the warden.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The kinds of worker the warden holds.
const WORKER_KINDS: [&str; 3] = ["worker", "shared_worker", "service_worker"];

/// Scripts by browser context, and the commands waiting for their answers.
#[derive(Default)]
struct Shared {
    scripts: Mutex<HashMap<String, Arc<str>>>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
}

/// The warden of one browser; it stops with the browser's connection.
pub struct Warden {
    outbox: mpsc::UnboundedSender<String>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Warden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Warden")
    }
}

impl Warden {
    /// Connects to the browser's DevTools endpoint and holds its shared and service workers.
    pub async fn connect(endpoint: &str) -> Result<Warden, String> {
        let (socket, _) = connect_async(endpoint)
            .await
            .map_err(|e| format!("the worker warden cannot connect: {e}"))?;
        let (mut sink, mut stream) = socket.split();
        let (outbox, mut outgoing) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = outgoing.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let warden = Warden {
            outbox,
            shared: Arc::new(Shared::default()),
            next_id: AtomicU64::new(1),
        };
        let (shared, outbox) = (Arc::clone(&warden.shared), warden.outbox.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message
                    && let Ok(value) = serde_json::from_str::<Value>(&text)
                {
                    heed(&shared, &outbox, value);
                }
            }
            debug!("the worker warden's connection ended");
        });
        let filter = json!([{"type": "shared_worker"}, {"type": "service_worker"}]);
        warden
            .ask(None, "Target.setAutoAttach", hold_params(filter))
            .await?;
        Ok(warden)
    }

    /// Workers of `context` run `script` before their own; forgotten when the guard drops.
    pub fn teach(self: &Arc<Self>, context: &str, script: String) -> Taught {
        if let Ok(mut scripts) = self.shared.scripts.lock() {
            scripts.insert(context.to_owned(), script.into());
        }
        Taught {
            warden: Arc::clone(self),
            context: context.to_owned(),
        }
    }

    /// Holds the dedicated workers of the page `target` at their first line.
    pub async fn watch(&self, target: &str) -> Result<(), String> {
        let attached = self
            .ask(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("the browser gave the warden no session")?
            .to_owned();
        self.ask(
            Some(&session),
            "Target.setAutoAttach",
            hold_params(json!([{"type": "worker"}])),
        )
        .await
        .map(drop)
    }

    /// Sends a command and waits for its result.
    async fn ask(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        if let Ok(mut waiting) = self.shared.waiting.lock() {
            waiting.insert(id, answer);
        }
        let _ = self.outbox.send(command(id, session, method, params));
        let Ok(reply) = tokio::time::timeout(ANSWER_WITHIN, answered).await else {
            if let Ok(mut waiting) = self.shared.waiting.lock() {
                waiting.remove(&id);
            }
            return Err(format!("the browser did not answer {method}"));
        };
        let reply = reply.map_err(|_| "the worker warden's connection ended".to_owned())?;
        match reply.get("error") {
            Some(error) => Err(format!("{method}: {error}")),
            None => Ok(reply["result"].clone()),
        }
    }
}

/// A browser context's script, taught until this is dropped.
pub struct Taught {
    warden: Arc<Warden>,
    context: String,
}

impl Drop for Taught {
    fn drop(&mut self) {
        if let Ok(mut scripts) = self.warden.shared.scripts.lock() {
            scripts.remove(&self.context);
        }
    }
}

/// Attach to new targets of these kinds, each stopped before its first line.
fn hold_params(filter: Value) -> Value {
    json!({"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true, "filter": filter})
}

fn command(id: u64, session: Option<&str>, method: &str, params: Value) -> String {
    let mut message = json!({"id": id, "method": method, "params": params});
    if let Some(session) = session {
        message["sessionId"] = json!(session);
    }
    message.to_string()
}

/// Answers a command, or lets a worker that stopped at its first line run (its context's
/// script first).
fn heed(shared: &Shared, outbox: &mpsc::UnboundedSender<String>, message: Value) {
    if let Some(id) = message["id"].as_u64() {
        let answer = shared.waiting.lock().ok().and_then(|mut w| w.remove(&id));
        if let Some(answer) = answer {
            let _ = answer.send(message);
        }
        return;
    }
    if message["method"] != "Target.attachedToTarget" {
        return;
    }
    let params = &message["params"];
    let info = &params["targetInfo"];
    let (Some(session), Some(kind)) = (params["sessionId"].as_str(), info["type"].as_str()) else {
        return;
    };
    if !WORKER_KINDS.contains(&kind) {
        return;
    }
    let context = info["browserContextId"].as_str().unwrap_or_default();
    let script = shared
        .scripts
        .lock()
        .ok()
        .and_then(|scripts| scripts.get(context).cloned());
    // Commands on one session run in order: the script before the worker's own code.
    // Their answers are not waited for (id 0, which the warden never asks with).
    if let Some(script) = script {
        let evaluate = json!({"expression": &*script, "silent": true});
        let _ = outbox.send(command(0, Some(session), "Runtime.evaluate", evaluate));
    }
    if params["waitingForDebugger"] == true {
        let resume = command(
            0,
            Some(session),
            "Runtime.runIfWaitingForDebugger",
            json!({}),
        );
        if outbox.send(resume).is_err() {
            warn!(
                kind,
                "a worker could not be resumed: the warden's connection is gone"
            );
        }
    }
}
