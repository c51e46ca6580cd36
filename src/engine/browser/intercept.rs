//! Request interception: refusing the resource types a job blocks. (Where requests may go
//! is not decided here: every request leaves through the attempt's egress proxy, which
//! checks the addresses it connects to.)

use std::sync::Arc;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
use futures::StreamExt;
use tracing::debug;

use super::session::{Session, cdp_error};
use crate::engine::options::BlockedResource;
use crate::job::JobError;

fn resource_type(kind: BlockedResource) -> ResourceType {
    match kind {
        BlockedResource::Image => ResourceType::Image,
        BlockedResource::Font => ResourceType::Font,
        BlockedResource::Media => ResourceType::Media,
        BlockedResource::Stylesheet => ResourceType::Stylesheet,
    }
}

impl Session {
    /// Starts intercepting when the job blocks resource types; returns the interceptor's task.
    pub(super) async fn intercept(&self) -> Result<Option<tokio::task::JoinHandle<()>>, JobError> {
        let block = &self.options.block;
        if block.is_empty() {
            return Ok(None);
        }
        let patterns: Vec<RequestPattern> = block
            .iter()
            .map(|kind| {
                RequestPattern::builder()
                    .url_pattern("*")
                    .resource_type(resource_type(*kind))
                    .request_stage(RequestStage::Request)
                    .build()
            })
            .collect();
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
            blocked: block.iter().map(|k| resource_type(*k)).collect(),
        };
        Ok(Some(tokio::spawn(interceptor.run(paused))))
    }
}

/// Answers paused requests: fails those of blocked types, continues the rest.
struct Interceptor {
    page: Page,
    blocked: Vec<ResourceType>,
}

impl Interceptor {
    async fn run(self, mut paused: impl futures::Stream<Item = Arc<EventRequestPaused>> + Unpin) {
        while let Some(event) = paused.next().await {
            let request_id = event.request_id.clone();
            let answered = if self.blocked.contains(&event.resource_type) {
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
