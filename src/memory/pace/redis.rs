//! The pacer every worker process shares: one Lua script per admission and per throttle,
//! so reaping expired slot leases, the backoff, the cap and the rate are decided atomically
//! on Redis's clock. Keys live under the queue's prefix (one hash tag, one Cluster slot).

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::Pacer;
use super::rule::{Admission, Limits, PaceView, Throttle};
use crate::persist::millis;
use crate::queue::QueueError;
use crate::queue::redis_streams::classify;

const ADMIT: &str = include_str!("admit.lua");
const THROTTLE: &str = include_str!("throttle.lua");

/// Pacing on Redis.
#[derive(Clone)]
pub struct RedisPacer {
    conn: ConnectionManager,
    prefix: String,
    admit: redis::Script,
    throttle: redis::Script,
}

impl std::fmt::Debug for RedisPacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPacer")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisPacer {
    /// A pacer on `conn`, keys under `prefix`.
    pub fn new(conn: ConnectionManager, prefix: &str) -> RedisPacer {
        RedisPacer {
            conn,
            prefix: prefix.to_owned(),
            admit: redis::Script::new(ADMIT),
            throttle: redis::Script::new(THROTTLE),
        }
    }

    /// The pacer on the queue's Redis, under the queue's prefix.
    pub fn beside(queue: &crate::queue::RedisQueue) -> RedisPacer {
        RedisPacer::new(queue.connection(), queue.prefix())
    }

    fn keys(&self, domain: &str) -> (String, String) {
        (
            format!("{{{}}}:pace:{domain}", self.prefix),
            format!("{{{}}}:slots:{domain}", self.prefix),
        )
    }

    fn reservations(&self, domain: &str) -> String {
        format!("{{{}}}:resv:{domain}", self.prefix)
    }
}

#[async_trait]
impl Pacer for RedisPacer {
    async fn admit(
        &self,
        domain: &str,
        job: Uuid,
        lease: Duration,
        limits: &Limits,
    ) -> Result<Admission, QueueError> {
        let (pace, slots) = self.keys(domain);
        let (admitted, wait_ms, reason): (i64, i64, String) = self
            .admit
            .key(pace)
            .key(slots)
            .key(self.reservations(domain))
            .arg(job.to_string())
            .arg(millis(lease))
            .arg(limits.cap)
            .arg(limits.rate_milli)
            .arg(limits.burst)
            .arg(limits.min_delay_ms)
            .arg(limits.hold_ms)
            .arg(limits.seed.learned_milli)
            .arg(limits.seed.backoff_until_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(classify)?;
        match admitted {
            1 => return Ok(Admission::Admitted),
            2 => return Ok(Admission::Holding),
            _ => {}
        }
        let reason = match reason.as_str() {
            "backoff" => "backoff",
            "cap" => "cap",
            _ => "rate",
        };
        Ok(Admission::Deferred { wait_ms, reason })
    }

    async fn renew(&self, domain: &str, job: Uuid, lease: Duration) -> Result<(), QueueError> {
        let (_, slots) = self.keys(domain);
        // XX: a slot that expired meanwhile is not taken back behind the other workers' backs.
        // The score is this process's clock; lease ends are minutes apart from any skew.
        let until = chrono::Utc::now().timestamp_millis() + millis(lease);
        redis::cmd("ZADD")
            .arg(&slots)
            .arg("XX")
            .arg(until)
            .arg(job.to_string())
            .query_async::<i64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn release(&self, domain: &str, job: Uuid) -> Result<(), QueueError> {
        let (_, slots) = self.keys(domain);
        redis::cmd("ZREM")
            .arg(&slots)
            .arg(job.to_string())
            .query_async::<i64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn throttled(
        &self,
        domain: &str,
        throttle: &Throttle,
        limits: &Limits,
    ) -> Result<PaceView, QueueError> {
        let (pace, slots) = self.keys(domain);
        let (in_flight, backoff, learned): (i64, i64, i64) = self
            .throttle
            .key(pace)
            .key(slots)
            .key(self.reservations(domain))
            .arg(throttle.retry_after_ms.unwrap_or(-1))
            .arg(limits.rate_milli)
            .arg(limits.seed.learned_milli)
            .arg(limits.seed.backoff_until_ms)
            .arg(limits.cap)
            .arg(limits.hold_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(classify)?;
        Ok(PaceView {
            in_flight: u32::try_from(in_flight).unwrap_or(0),
            backoff_until_ms: Some(backoff),
            learned_rate: (learned > 0).then(|| learned as f64 / 1000.0),
        })
    }

    async fn view(&self, domain: &str) -> Result<PaceView, QueueError> {
        let (pace, slots) = self.keys(domain);
        let now = chrono::Utc::now().timestamp_millis();
        let mut conn = self.conn.clone();
        let (backoff, learned): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(&pace)
            .arg("backoff")
            .arg("learned")
            .query_async(&mut conn)
            .await
            .map_err(classify)?;
        let in_flight: i64 = redis::cmd("ZCOUNT")
            .arg(&slots)
            .arg(now)
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(classify)?;
        Ok(PaceView {
            in_flight: u32::try_from(in_flight).unwrap_or(0),
            backoff_until_ms: backoff.filter(|b| *b > now),
            learned_rate: learned.filter(|l| *l > 0).map(|l| l as f64 / 1000.0),
        })
    }
}
