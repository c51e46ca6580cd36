//! [`Signals`] on Redis: reports as keys with a TTL, cancel notices on a pub/sub channel.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisError};
use serde_json::Value;
use uuid::Uuid;

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
            tokio::spawn(forward_cancels(
                self.client.clone(),
                self.cancel_channel.clone(),
                self.cancels.clone(),
            ));
        });
        receiver
    }
}

/// Forwards cancellations published on `channel` to `sender`, resubscribing after errors,
/// until every receiver is gone.
async fn forward_cancels(
    client: redis::Client,
    channel: String,
    sender: tokio::sync::broadcast::Sender<Uuid>,
) {
    use futures::StreamExt;
    let mut failures = 0u32;
    while sender.receiver_count() > 0 {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, RedisError>(pubsub)
        };
        match subscribed.await {
            Ok(mut pubsub) => {
                failures = 0;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let job = message
                        .get_payload::<String>()
                        .ok()
                        .and_then(|p| p.parse::<Uuid>().ok());
                    if let Some(job) = job
                        && sender.send(job).is_err()
                    {
                        return;
                    }
                }
                tracing::warn!("cancel subscription ended; resubscribing");
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, "cannot subscribe to cancellations; retrying");
            }
        }
        let pause = Duration::from_millis(100u64 << failures.min(5));
        tokio::time::sleep(pause).await;
    }
}
