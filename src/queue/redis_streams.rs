//! Redis Streams queue: one stream per priority level, one consumer group for all workers.
//!
//! Keys are `{prefix}:q:1` … `{prefix}:q:5`; the braces make the prefix a hash tag so every
//! level lives in one Redis Cluster slot. An entry is acknowledged and deleted once its job's
//! outcome is recorded, so a stream holds only waiting and in-flight doorbells.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamInfoGroupsReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, RedisError};
use uuid::Uuid;

use super::{
    Continuity, Delivery, Doorbell, JobQueue, LevelStats, QueueConsumer, QueueError, level_order,
};
use crate::job::Priority;

/// The consumer group every worker joins.
pub const GROUP: &str = "workers";

/// The stream field that carries the job id.
const JOB_FIELD: &str = "job";
/// The job's host, when the ringer knew it.
const HOST_FIELD: &str = "host";

/// Reads up to ARGV[3] new entries for consumer ARGV[2] of group ARGV[1] from the first of
/// KEYS (levels, in the order to try) that has any: a weighted take in one round trip.
const TAKE_SCRIPT: &str = r"
for _, key in ipairs(KEYS) do
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', key, '>')
  if reply then return reply end
end
return false
";

/// A [`JobQueue`] on Redis Streams.
#[derive(Clone)]
pub struct RedisQueue {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    keys: [String; 5],
    /// When this incarnation of the queue was created (Unix ms): set by whoever creates its
    /// consumer group, and gone with a flush or a restart.
    epoch: String,
    /// The epoch whose losses the reconciler has re-dispatched.
    marker: String,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("keys", &self.keys)
            .finish()
    }
}

/// A client for `url` whose connections send TCP keepalives, so a Redis that vanished
/// without closing them (a host gone, a network cut) is noticed in seconds, not hours.
fn client(url: &str) -> Result<redis::Client, QueueError> {
    use redis::IntoConnectionInfo;
    use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};
    let invalid = |e: RedisError| QueueError::Protocol(format!("REDIS_URL is not valid: {e}"));
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(2))
        .with_retries(3);
    let tcp = TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
        .set_user_timeout(Duration::from_secs(15));
    let info = url
        .into_connection_info()
        .map_err(invalid)?
        .set_tcp_settings(tcp);
    redis::Client::open(info).map_err(invalid)
}

pub(crate) fn classify(error: RedisError) -> QueueError {
    if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
    {
        QueueError::Unavailable(error.to_string())
    } else {
        QueueError::Protocol(error.to_string())
    }
}

fn is_no_group(error: &RedisError) -> bool {
    // Errors raised inside a script may carry the code only in their text.
    error.code() == Some("NOGROUP") || error.to_string().contains("NOGROUP")
}

impl RedisQueue {
    /// Connects to `url` and makes sure every level's stream and the consumer group exist.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisQueue, QueueError> {
        let client = client(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(classify)?;
        let keys = Priority::LEVELS.map(|level| format!("{{{prefix}}}:q:{level}"));
        let queue = RedisQueue {
            client,
            conn,
            prefix: prefix.to_owned(),
            keys,
            epoch: format!("{{{prefix}}}:epoch"),
            marker: format!("{{{prefix}}}:marker"),
        };
        queue.ensure_groups().await?;
        Ok(queue)
    }

    /// Worker reports and cancel notices on the same Redis, under the same prefix.
    pub fn signals(&self) -> super::RedisSignals {
        super::RedisSignals::new(self.client.clone(), self.conn.clone(), &self.prefix)
    }

    /// The shared connection, for the books kept beside the queue (the pacer's, the
    /// quotas') under the same prefix.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The stream key of a priority level.
    pub fn key(&self, priority: Priority) -> &str {
        &self.keys[priority.index()]
    }

    /// Creates each level's stream and the consumer group where missing, and records when
    /// this incarnation of the queue began if nobody has.
    pub async fn ensure_groups(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        for key in &self.keys {
            let created: Result<(), RedisError> =
                conn.xgroup_create_mkstream(key, GROUP, "0").await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(classify(e)),
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let _: Option<String> = redis::cmd("SET")
            .arg(&self.epoch)
            .arg(now)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Whether every level still has the consumer group.
    async fn groups_present(&self) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        for key in &self.keys {
            let groups: Result<StreamInfoGroupsReply, RedisError> = conn.xinfo_groups(key).await;
            match groups {
                Ok(reply) if reply.groups.iter().any(|g| g.name == GROUP) => {}
                Ok(_) => return Ok(false),
                Err(e)
                    if e.kind()
                        == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(true)
    }

    fn deliveries(&self, reply: StreamReadReply) -> (Vec<Delivery>, Vec<(usize, String)>) {
        let mut deliveries = Vec::new();
        let mut malformed = Vec::new();
        for stream in reply.keys {
            let Some(level) = self.keys.iter().position(|k| *k == stream.key) else {
                continue;
            };
            let priority = Priority::LEVELS[level];
            for entry in stream.ids {
                match job_id_of(&entry) {
                    Some(job_id) => deliveries.push(Delivery {
                        doorbell: Doorbell {
                            job_id,
                            priority,
                            host: text_field(&entry, HOST_FIELD),
                        },
                        receipt: entry.id,
                    }),
                    None => malformed.push((level, entry.id)),
                }
            }
        }
        (deliveries, malformed)
    }

    async fn ack_entries(&self, level: usize, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = &self.keys[level];
        let mut conn = self.conn.clone();
        redis::pipe()
            .xack(key, GROUP, ids)
            .ignore()
            .xdel(key, ids)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(classify)
    }
}

/// The consumer name stream hygiene claims stale deliveries into (they are acknowledged
/// at once, never run).
const SWEEPER: &str = "sweeper";

fn text_field(entry: &StreamId, field: &str) -> Option<String> {
    match entry.map.get(field)? {
        redis::Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().map(str::to_owned),
        redis::Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

fn job_id_of(entry: &StreamId) -> Option<Uuid> {
    text_field(entry, JOB_FIELD)?.parse().ok()
}

#[async_trait]
impl JobQueue for RedisQueue {
    async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn ring(&self, doorbells: &[Doorbell]) -> Result<(), QueueError> {
        if doorbells.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for bell in doorbells {
            let mut fields = vec![(JOB_FIELD, bell.job_id.to_string())];
            if let Some(host) = &bell.host {
                fields.push((HOST_FIELD, host.clone()));
            }
            pipe.xadd(self.key(bell.priority), "*", &fields).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(classify)
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.ack_entries(
            delivery.doorbell.priority.index(),
            std::slice::from_ref(&delivery.receipt),
        )
        .await
    }

    async fn stats(&self) -> Result<Vec<LevelStats>, QueueError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for key in &self.keys {
            pipe.xlen(key);
        }
        let lengths: Vec<u64> = pipe.query_async(&mut conn).await.map_err(classify)?;
        let mut levels = Vec::with_capacity(self.keys.len());
        for ((priority, key), length) in Priority::LEVELS.iter().zip(&self.keys).zip(lengths) {
            let groups: Result<StreamInfoGroupsReply, RedisError> = conn.xinfo_groups(key).await;
            let group = match groups {
                Ok(reply) => reply.groups.into_iter().find(|g| g.name == GROUP),
                // The stream does not exist (yet, or Redis was flushed).
                Err(e)
                    if e.kind()
                        == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
                {
                    None
                }
                Err(e) => return Err(classify(e)),
            };
            levels.push(LevelStats {
                priority: *priority,
                key: key.clone(),
                length,
                pending: group.as_ref().map_or(0, |g| g.pending as u64),
                lag: group.as_ref().and_then(|g| g.lag).map(|l| l as u64),
                consumers: group.as_ref().map_or(0, |g| g.consumers as u64),
            });
        }
        Ok(levels)
    }

    async fn consumer(&self, name: &str) -> Result<Box<dyn QueueConsumer>, QueueError> {
        // Blocking reads get their own connection with no response timeout, so they neither
        // time out early nor hold up the shared connection's other commands.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None)
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(classify)?;
        Ok(Box::new(RedisConsumer {
            queue: self.clone(),
            conn,
            name: name.to_owned(),
            rng: rand::SeedableRng::from_os_rng(),
            take_script: redis::Script::new(TAKE_SCRIPT),
        }))
    }

    async fn continuity(&self) -> Result<Continuity, QueueError> {
        let mut conn = self.conn.clone();
        let (epoch, marker): (Option<i64>, Option<i64>) = redis::pipe()
            .get(&self.epoch)
            .get(&self.marker)
            .query_async(&mut conn)
            .await
            .map_err(classify)?;
        let present = self.groups_present().await?;
        Ok(match (epoch, present) {
            (Some(epoch), true) if marker == Some(epoch) => Continuity::Intact,
            (Some(epoch), true) => Continuity::LostBefore(
                chrono::DateTime::from_timestamp_millis(epoch).unwrap_or_else(chrono::Utc::now),
            ),
            // No record of when the queue began, or a group missing: anything rung until now
            // may be gone.
            _ => Continuity::LostBefore(chrono::Utc::now()),
        })
    }

    async fn repair(&self) -> Result<(), QueueError> {
        self.ensure_groups().await?;
        let mut conn = self.conn.clone();
        let epoch: Option<i64> = conn.get(&self.epoch).await.map_err(classify)?;
        let () = conn
            .set(&self.marker, epoch.unwrap_or_default())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn sweep(&self, min_idle: Duration) -> Result<Vec<Uuid>, QueueError> {
        let mut conn = self.conn.clone();
        let idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let mut jobs = Vec::new();
        for (level, key) in self.keys.iter().enumerate() {
            let mut start = "0-0".to_owned();
            loop {
                let options = redis::streams::StreamAutoClaimOptions::default().count(500);
                let reply: Result<redis::streams::StreamAutoClaimReply, RedisError> = conn
                    .xautoclaim_options(key, GROUP, SWEEPER, idle_ms, &start, options)
                    .await;
                let reply = match reply {
                    Ok(reply) => reply,
                    Err(e) if is_no_group(&e) => break,
                    Err(e) => return Err(classify(e)),
                };
                let ids: Vec<String> = reply.claimed.iter().map(|e| e.id.clone()).collect();
                jobs.extend(reply.claimed.iter().filter_map(job_id_of));
                self.ack_entries(level, &ids).await?;
                // Entries trimmed or deleted while pending: only their acknowledgement is left.
                self.ack_entries(level, &reply.deleted_ids).await?;
                if reply.next_stream_id == "0-0" {
                    break;
                }
                start = reply.next_stream_id;
            }
            // Consumers of processes that are gone: idle that long, nothing pending.
            let consumers: Result<redis::streams::StreamInfoConsumersReply, RedisError> =
                conn.xinfo_consumers(key, GROUP).await;
            if let Ok(consumers) = consumers {
                for consumer in consumers.consumers {
                    if consumer.pending == 0 && consumer.idle as u64 >= idle_ms {
                        let _: Result<i64, RedisError> =
                            conn.xgroup_delconsumer(key, GROUP, &consumer.name).await;
                    }
                }
            }
            // Entries are deleted when acknowledged; whatever is older than a day was lost
            // by its consumer and its job re-rung by the reconciler, so it can go.
            let day_ago = chrono::Utc::now().timestamp_millis() - 24 * 3600 * 1000;
            let _: Result<i64, RedisError> = redis::cmd("XTRIM")
                .arg(key)
                .arg("MINID")
                .arg("~")
                .arg(format!("{day_ago}-0"))
                .query_async(&mut conn)
                .await;
        }
        Ok(jobs)
    }
}

/// A worker's consumer in the group.
struct RedisConsumer {
    queue: RedisQueue,
    conn: ConnectionManager,
    name: String,
    rng: rand::rngs::StdRng,
    take_script: redis::Script,
}

impl RedisConsumer {
    /// Turns a read reply into deliveries, dropping entries that carry no job id.
    async fn accept(&self, reply: Option<StreamReadReply>) -> Vec<Delivery> {
        let Some(reply) = reply else {
            return Vec::new();
        };
        let (deliveries, malformed) = self.queue.deliveries(reply);
        for (level, id) in malformed {
            tracing::warn!(entry = %id, level = level + 1, "dropping a malformed queue entry");
            if let Err(e) = self.queue.ack_entries(level, &[id]).await {
                tracing::warn!(error = %e, "could not drop a malformed queue entry");
            }
        }
        deliveries
    }

    async fn take_once(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, RedisError> {
        let order = level_order(&mut self.rng);
        let mut take = self.take_script.prepare_invoke();
        for level in order {
            take.key(self.queue.key(level));
        }
        take.arg(GROUP).arg(&self.name).arg(max);
        let reply: Option<StreamReadReply> = take.invoke_async(&mut self.conn).await?;
        let deliveries = self.accept(reply).await;
        if !deliveries.is_empty() {
            return Ok(deliveries);
        }
        // Every level is empty: wait on all of them at once for the next doorbell.
        let options = StreamReadOptions::default()
            .group(GROUP, &self.name)
            .count(1)
            .block(wait.as_millis().max(1) as usize);
        let ids = [">"; 5];
        let reply: Option<StreamReadReply> = self
            .conn
            .xread_options(&self.queue.keys, &ids, &options)
            .await?;
        let mut deliveries = self.accept(reply).await;
        deliveries.sort_by_key(|d| d.doorbell.priority);
        Ok(deliveries)
    }
}

#[async_trait]
impl QueueConsumer for RedisConsumer {
    async fn take(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        match self.take_once(max.max(1), wait).await {
            Ok(deliveries) => Ok(deliveries),
            Err(e) if is_no_group(&e) => {
                // The streams or the group vanished (Redis flushed or restarted): recreate them.
                tracing::warn!("consumer group missing; recreating the queue's streams");
                self.queue.ensure_groups().await?;
                self.take_once(max.max(1), wait).await.map_err(classify)
            }
            Err(e) => Err(classify(e)),
        }
    }
}
