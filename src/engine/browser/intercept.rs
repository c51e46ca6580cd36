//! Request interception: refusing resource types a job blocks and, under a strict target
//! policy, every request whose host the policy refuses.

use std::sync::Arc;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
use futures::StreamExt;
use tracing::debug;
use url::Url;

use super::session::{Session, cdp_error};
use crate::engine::options::BlockedResource;
use crate::job::JobError;
use crate::job::target::TargetPolicy;

fn resource_type(kind: BlockedResource) -> ResourceType {
    match kind {
        BlockedResource::Image => ResourceType::Image,
        BlockedResource::Font => ResourceType::Font,
        BlockedResource::Media => ResourceType::Media,
        BlockedResource::Stylesheet => ResourceType::Stylesheet,
    }
}

impl Session {
    /// Starts intercepting when the job blocks resource types or the policy is strict;
    /// returns the interceptor's task.
    pub(super) async fn intercept(&self) -> Result<Option<tokio::task::JoinHandle<()>>, JobError> {
        let policy = self.browser.policy;
        let check_policy = !policy.allows_private();
        let block = &self.options.block;
        if block.is_empty() && !check_policy {
            return Ok(None);
        }
        let patterns = patterns(block, check_policy);
        let paused = self
            .page()
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(|e| cdp_error("listening for requests", e))?;
        self.page()
            .execute(fetch::EnableParams::builder().patterns(patterns).build())
            .await
            .map_err(|e| cdp_error("enabling request interception", e))?;
        let interceptor = Interceptor {
            page: self.page().clone(),
            policy: check_policy.then_some(policy),
            blocked: block.iter().map(|k| resource_type(*k)).collect(),
            refusals: Arc::clone(&self.refusals),
        };
        Ok(Some(tokio::spawn(interceptor.run(paused))))
    }
}

/// Which requests pause: every one under a strict policy, else only blocked types.
fn patterns(block: &[BlockedResource], every: bool) -> Vec<RequestPattern> {
    if every {
        return vec![
            RequestPattern::builder()
                .url_pattern("*")
                .request_stage(RequestStage::Request)
                .build(),
        ];
    }
    block
        .iter()
        .map(|kind| {
            RequestPattern::builder()
                .url_pattern("*")
                .resource_type(resource_type(*kind))
                .request_stage(RequestStage::Request)
                .build()
        })
        .collect()
}

/// Answers paused requests: fails refused ones, continues the rest.
struct Interceptor {
    page: Page,
    /// The policy to check every request against, when it is strict.
    policy: Option<TargetPolicy>,
    blocked: Vec<ResourceType>,
    refusals: Arc<std::sync::Mutex<super::session::Refusals>>,
}

impl Interceptor {
    async fn run(self, mut paused: impl futures::Stream<Item = Arc<EventRequestPaused>> + Unpin) {
        while let Some(event) = paused.next().await {
            let refuse_type = self.blocked.contains(&event.resource_type);
            let refuse_target = match (&self.policy, refuse_type) {
                (Some(policy), false) => refused_target(*policy, &event.request.url).await,
                _ => None,
            };
            let request_id = event.request_id.clone();
            let answered = if refuse_type || refuse_target.is_some() {
                if let Some(why) = refuse_target
                    && let Ok(mut refusals) = self.refusals.lock()
                {
                    refusals.policy.push(why);
                }
                self.page
                    .execute(FailRequestParams::new(
                        request_id,
                        ErrorReason::BlockedByClient,
                    ))
                    .await
                    .map(drop)
            } else {
                self.page
                    .execute(ContinueRequestParams::new(request_id))
                    .await
                    .map(drop)
            };
            if let Err(e) = answered {
                debug!(error = %e, "answering an intercepted request failed");
            }
        }
    }
}

/// Why the policy refuses an http(s) url, if it does.
async fn refused_target(policy: TargetPolicy, url: &str) -> Option<String> {
    match Url::parse(url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            policy.check_url(&url).await.err().map(|e| e.to_string())
        }
        _ => None,
    }
}
