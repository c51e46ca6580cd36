//! The toolkit's own look at a page (its HTML, whether a selector matches, where an element
//! is). Under `stealth` it runs in an isolated world of its own: the same DOM, but none of
//! the page's globals, so a page that wraps `document.querySelector` or reads the stack of
//! its callers never sees the toolkit. A job's own `evaluate` still runs in the page's world.

use std::sync::Mutex;

use chromiumoxide::cdp::browser_protocol::page::CreateIsolatedWorldParams;
use chromiumoxide::cdp::js_protocol::runtime::ExecutionContextId;
use serde_json::Value;

use super::session::{Session, cdp_error};
use crate::job::{ErrorKind, JobError, Strategy};

/// The isolated world of the page's current document, once made (a navigation ends it).
#[derive(Debug, Default)]
pub struct OwnWorld(Mutex<Option<ExecutionContextId>>);

impl Session {
    /// Evaluates `expression` for the toolkit itself: in its own world under `stealth`, in
    /// the page's otherwise.
    pub async fn inspect(&self, expression: &str) -> Result<Value, JobError> {
        if self.strategy != Strategy::Stealth {
            return self.evaluate(expression).await;
        }
        let known = self.own_world.0.lock().ok().and_then(|world| *world);
        if let Some(world) = known {
            match self.evaluate_in(expression, Some(world)).await {
                // The document changed, and its world with it.
                Err(e) if e.message.contains("Cannot find context") => {}
                answer => return answer,
            }
        }
        let world = self.make_world().await?;
        self.evaluate_in(expression, Some(world)).await
    }

    /// A new isolated world in the page's main frame, remembered for the next look.
    async fn make_world(&self) -> Result<ExecutionContextId, JobError> {
        let frame = self
            .page()
            .mainframe()
            .await
            .map_err(|e| cdp_error("finding the main frame", e))?
            .ok_or_else(|| JobError::new(ErrorKind::Script, "the page has no main frame"))?;
        let params = CreateIsolatedWorldParams::builder()
            .frame_id(frame)
            .world_name("control-plane")
            .build()
            .map_err(|e| cdp_error("an isolated world", e))?;
        let world = self
            .page()
            .execute(params)
            .await
            .map_err(|e| cdp_error("making an isolated world", e))?
            .result
            .execution_context_id;
        if let Ok(mut known) = self.own_world.0.lock() {
            *known = Some(world);
        }
        Ok(world)
    }
}
