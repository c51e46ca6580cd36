//! [`Signals`] on Redis: reports as keys with a TTL, cancel and change notices on pub/sub
//! channels (changes batched: one message carries every id announced meanwhile).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisError};
use serde_json::Value;
use uuid::Uuid;

use super::changes::{self, Change, MAX_IDS_PER_NOTICE, NOTICE_BUFFER};
use super::redis_streams::classify;
use super::{QueueError, Signals};

/// The most report keys read at once.
const MAX_REPORTS: usize = 10_000;

/// [`Signals`] on Redis.
#[derive(Clone)]
pub struct RedisSignals {
    client: redis::Client,
    conn: ConnectionManager,
    reports: String,
    cancel_channel: String,
    cancels: tokio::sync::broadcast::Sender<Uuid>,
    subscribed: Arc<std::sync::Once>,
    change_channel: String,
    changes: tokio::sync::broadcast::Sender<Change>,
    changes_subscribed: Arc<std::sync::Once>,
    outbox: Arc<std::sync::OnceLock<Outbox>>,
}

/// Announced changes on their way to Redis.
struct Outbox {
    ids: tokio::sync::mpsc::Sender<Uuid>,
    /// Set when an id did not fit: the next message says "anything may have changed".
    overflowed: Arc<AtomicBool>,
}

impl RedisSignals {
    /// Signals on the Redis of `client`, keys under `prefix`.
    pub fn new(client: redis::Client, conn: ConnectionManager, prefix: &str) -> RedisSignals {
        RedisSignals {
            client,
            conn,
            reports: format!("{{{prefix}}}:worker:"),
            cancel_channel: format!("{{{prefix}}}:cancel"),
            cancels: tokio::sync::broadcast::channel(1024).0,
            subscribed: Arc::new(std::sync::Once::new()),
            change_channel: format!("{{{prefix}}}:changes"),
            changes: tokio::sync::broadcast::channel(NOTICE_BUFFER).0,
            changes_subscribed: Arc::new(std::sync::Once::new()),
            outbox: Arc::new(std::sync::OnceLock::new()),
        }
    }

    async fn report_keys(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", self.reports);
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(classify)?;
            keys.extend(batch);
            if next == 0 || keys.len() > MAX_REPORTS {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl Signals for RedisSignals {
    async fn report(&self, worker: &str, report: &Value, ttl: Duration) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let key = format!("{}{worker}", self.reports);
        let () = conn
            .set_ex(key, report.to_string(), ttl.as_secs().max(1))
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn reports(&self) -> Result<Vec<Value>, QueueError> {
        let keys = self.report_keys().await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = conn.mget(&keys).await.map_err(classify)?;
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|v| serde_json::from_str(&v).ok())
            .collect())
    }

    async fn announce_cancel(&self, job: Uuid) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .publish(&self.cancel_channel, job.to_string())
            .await
            .map_err(classify)?;
        Ok(())
    }

    fn cancel_notices(&self) -> tokio::sync::broadcast::Receiver<Uuid> {
        let receiver = self.cancels.subscribe();
        self.subscribed.call_once(|| {
            let sender = self.cancels.clone();
            tokio::spawn(listen(
                self.client.clone(),
                self.cancel_channel.clone(),
                move |message| match message {
                    // A cancel missed while resubscribing is caught by the lease renewal.
                    Heard::Subscribed => true,
                    Heard::Message(text) => match text.parse::<Uuid>() {
                        Ok(job) => sender.send(job).is_ok(),
                        Err(_) => true,
                    },
                },
            ));
        });
        receiver
    }

    fn announce_changes(&self, jobs: &[Uuid]) {
        let outbox = self.outbox.get_or_init(|| {
            let (ids, receiver) = tokio::sync::mpsc::channel(NOTICE_BUFFER);
            let overflowed = Arc::new(AtomicBool::new(false));
            tokio::spawn(publish_changes(
                self.conn.clone(),
                self.change_channel.clone(),
                receiver,
                overflowed.clone(),
            ));
            Outbox { ids, overflowed }
        });
        for job in jobs {
            if outbox.ids.try_send(*job).is_err() {
                outbox.overflowed.store(true, Ordering::Relaxed);
            }
        }
    }

    fn change_notices(&self) -> tokio::sync::broadcast::Receiver<Change> {
        let receiver = self.changes.subscribe();
        self.changes_subscribed.call_once(|| {
            let sender = self.changes.clone();
            tokio::spawn(listen(
                self.client.clone(),
                self.change_channel.clone(),
                move |message| match message {
                    // Whatever was published while not subscribed is unknown.
                    Heard::Subscribed => sender.send(Change::Unknown).is_ok(),
                    Heard::Message(text) => changes::decode(&text)
                        .into_iter()
                        .all(|change| sender.send(change).is_ok()),
                },
            ));
        });
        receiver
    }
}

/// Publishes announced ids in batches: one message carries every id that arrived while the
/// previous one was being sent. A failed or overflowed batch is sent as "anything changed".
async fn publish_changes(
    mut conn: ConnectionManager,
    channel: String,
    mut ids: tokio::sync::mpsc::Receiver<Uuid>,
    overflowed: Arc<AtomicBool>,
) {
    let mut batch = Vec::with_capacity(MAX_IDS_PER_NOTICE);
    let mut lost = false;
    while let Some(first) = ids.recv().await {
        batch.push(first);
        while batch.len() < MAX_IDS_PER_NOTICE
            && let Ok(id) = ids.try_recv()
        {
            batch.push(id);
        }
        lost |= overflowed.swap(false, Ordering::Relaxed);
        let text = if lost {
            "*".to_owned()
        } else {
            changes::encode(&batch)
        };
        batch.clear();
        let sent: Result<i64, RedisError> = conn.publish(&channel, text).await;
        lost = sent.is_err();
    }
}

/// What a subscription heard.
enum Heard {
    /// It (re)subscribed: messages published before may have been missed.
    Subscribed,
    /// A message.
    Message(String),
}

/// Subscribes to `channel` and hands what it hears to `heard`, resubscribing after errors,
/// until `heard` returns `false` (nobody listens any more).
async fn listen(client: redis::Client, channel: String, mut heard: impl FnMut(Heard) -> bool) {
    use futures::StreamExt;
    let mut failures = 0u32;
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, RedisError>(pubsub)
        };
        match subscribed.await {
            Ok(mut pubsub) => {
                failures = 0;
                if !heard(Heard::Subscribed) {
                    return;
                }
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let text = message.get_payload::<String>().unwrap_or_default();
                    if !heard(Heard::Message(text)) {
                        return;
                    }
                }
                tracing::warn!(%channel, "subscription ended; resubscribing");
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(%channel, error = %e, "cannot subscribe; retrying");
            }
        }
        let pause = Duration::from_millis(100u64 << failures.min(5));
        tokio::time::sleep(pause).await;
    }
}
