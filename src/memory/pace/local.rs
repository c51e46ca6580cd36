//! The pacer of `dev`: the same rule, in process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::Pacer;
use super::rule::{Admission, Limits, PaceView, State, Throttle};
use crate::persist::millis;
use crate::queue::QueueError;

/// Pacing for the workers of one process.
#[derive(Debug, Default)]
pub struct LocalPacer {
    domains: Mutex<HashMap<String, State>>,
}

impl LocalPacer {
    /// An empty pacer.
    pub fn new() -> LocalPacer {
        LocalPacer::default()
    }

    fn with<T>(&self, domain: &str, limits: Option<&Limits>, f: impl FnOnce(&mut State) -> T) -> T {
        let mut domains = self
            .domains
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = domains
            .entry(domain.to_owned())
            .or_insert_with(|| limits.map(|l| State::seeded(l.seed)).unwrap_or_default());
        f(state)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl Pacer for LocalPacer {
    async fn admit(
        &self,
        domain: &str,
        job: Uuid,
        lease: Duration,
        limits: &Limits,
    ) -> Result<Admission, QueueError> {
        Ok(self.with(domain, Some(limits), |state| {
            state.admit(now_ms(), job, millis(lease), limits)
        }))
    }

    async fn renew(&self, domain: &str, job: Uuid, lease: Duration) -> Result<(), QueueError> {
        let until = now_ms() + millis(lease);
        self.with(domain, None, |state| state.renew(job, until));
        Ok(())
    }

    async fn release(&self, domain: &str, job: Uuid) -> Result<(), QueueError> {
        self.with(domain, None, |state| state.release(job));
        Ok(())
    }

    async fn throttled(
        &self,
        domain: &str,
        throttle: &Throttle,
        limits: &Limits,
    ) -> Result<PaceView, QueueError> {
        let now = now_ms();
        Ok(self.with(domain, Some(limits), |state| {
            state.throttled(now, throttle, limits);
            state.view(now)
        }))
    }

    async fn view(&self, domain: &str) -> Result<PaceView, QueueError> {
        let now = now_ms();
        Ok(self.with(domain, None, |state| state.view(now)))
    }
}
