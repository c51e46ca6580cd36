//! The courier: takes due deliveries from the store, POSTs each finished job to its callback
//! (signed), and records every attempt as a `webhook` event with when the next is due. It
//! runs beside the worker in every worker process and never takes a job slot; deliveries are
//! rows, so a process that dies mid-delivery leaves its claim to lapse and another courier
//! (or itself, restarted) tries again.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use url::Url;

use super::schedule::next_attempt;
use super::sign::WebhookSecret;
use crate::dispatch::Dispatcher;
use crate::engine::http::{error_chain, webhook_client};
use crate::job::EventDetail;
use crate::job::event_detail::WebhookDetail;
use crate::job::target::TargetPolicy;
use crate::job::transition::EventRecord;
use crate::metrics::Metrics;
use crate::store::Job;

/// How long one delivery may take, connection to status line.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim holds a delivery: longer than a delivery may take.
const HOLD: Duration = Duration::from_secs(30);
/// Deliveries claimed (and sent concurrently) per round.
const BATCH: u32 = 16;
/// How often the courier looks for due deliveries when it found none.
const POLL: Duration = Duration::from_millis(500);

/// Delivers finished jobs to their callbacks.
pub struct Courier {
    dispatcher: Dispatcher,
    policy: TargetPolicy,
    secret: Option<WebhookSecret>,
    retry_base: Duration,
    metrics: Metrics,
}

/// How one attempt went.
enum Attempt {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// It answered something else.
    Refused(u16),
    /// It could not be reached (or no secret to sign with).
    Unreachable(String),
}

impl Courier {
    /// A courier over `dispatcher`'s store, sending where `policy` allows (each delivery
    /// through an egress of its own), signing with `secret`, retrying from `retry_base`.
    pub fn new(
        dispatcher: Dispatcher,
        policy: TargetPolicy,
        secret: Option<WebhookSecret>,
        retry_base: Duration,
        metrics: Metrics,
    ) -> Courier {
        Courier {
            dispatcher,
            policy,
            secret,
            retry_base,
            metrics,
        }
    }

    /// Delivers until `shutdown` (a delivery in flight finishes first).
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let taken = match self.dispatcher.store().take_hooks(BATCH, HOLD).await {
                Ok(taken) => taken,
                Err(e) => {
                    debug!(error = %e, "cannot take webhook deliveries; will retry");
                    Vec::new()
                }
            };
            let full = taken.len() == BATCH as usize;
            futures::future::join_all(taken.iter().map(|job| self.deliver(job))).await;
            if !full {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// Sends one delivery attempt and records it.
    async fn deliver(&self, job: &Job) {
        let attempt_no = job.hook_attempt;
        let url = job.callback.as_ref().map_or("", |c| c.url.as_str());
        let attempt = self.send(job, url).await;
        let now = Utc::now();
        let finished = job.finished_at.unwrap_or(now);
        let (next, outcome) = match attempt {
            Attempt::Delivered(_) => (None, "delivered"),
            _ => match next_attempt(self.retry_base, attempt_no, finished, now) {
                Some(at) => (Some(at), "failed"),
                None => (None, "gave_up"),
            },
        };
        let (status, error) = match &attempt {
            Attempt::Delivered(status) | Attempt::Refused(status) => (Some(*status), None),
            Attempt::Unreachable(error) => (None, Some(error.clone())),
        };
        let event = EventRecord::of(EventDetail::Webhook(WebhookDetail {
            attempt: attempt_no,
            outcome,
            url: url.to_owned(),
            status,
            error,
            next_attempt_at: next,
        }));
        let store = self.dispatcher.store();
        match store.settle_hook(job.id, attempt_no, next, &event).await {
            Ok(true) => {
                self.dispatcher.signals().announce_changes(&[job.id]);
                let families = self.metrics.families();
                families
                    .webhook_deliveries
                    .with_label_values(&[outcome])
                    .inc();
            }
            Ok(false) => debug!(job_id = %job.id, "webhook claim lapsed; another courier has it"),
            // The claim lapses and the delivery is tried again.
            Err(e) => warn!(job_id = %job.id, error = %e, "cannot record a webhook delivery"),
        }
    }

    async fn send(&self, job: &Job, url: &str) -> Attempt {
        let Some(secret) = &self.secret else {
            return Attempt::Unreachable(
                "WEBHOOK_SECRET is not set on this worker: deliveries cannot be signed".into(),
            );
        };
        let target = match Url::parse(url) {
            Ok(target) => target,
            Err(e) => return Attempt::Unreachable(format!("bad callback url: {e}")),
        };
        // Said early and plainly; the egress checks names and addresses when it connects.
        if let Err(refused) = self.policy.check_literal(&target) {
            return Attempt::Unreachable(refused.to_string());
        }
        let outbound = match webhook_client(self.policy).await {
            Ok(outbound) => outbound,
            Err(e) => return Attempt::Unreachable(e.message),
        };
        let (id, timestamp, body) = envelope(job);
        let signature = secret.sign(&id, timestamp, &body);
        let sent = outbound
            .client
            .post(target)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .timeout(DELIVERY_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                Attempt::Delivered(response.status().as_u16())
            }
            Ok(response) => Attempt::Refused(response.status().as_u16()),
            Err(e) => Attempt::Unreachable(match outbound.egress.first_refusal() {
                Some(why) => why,
                None => error_chain(&e),
            }),
        }
    }
}

/// A delivery's id (the same for every attempt of one finish, so a receiver can drop
/// duplicates), its timestamp and its body: `{type, timestamp, data: the job}`.
fn envelope(job: &Job) -> (String, i64, Vec<u8>) {
    let now = Utc::now();
    let finished = job.finished_at.map_or(0, |t| t.timestamp_millis());
    let id = format!("msg_{}_{finished}", job.id.simple());
    let body: Value = json!({
        "type": format!("job.{}", job.state),
        "timestamp": now,
        "data": job,
    });
    (
        id,
        now.timestamp(),
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}
