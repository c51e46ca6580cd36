//! JavaScript dialogs (`alert`, `confirm`, `prompt`, `beforeunload`): a page that opens one
//! stops until it is answered, so every dialog is accepted at once (a prompt with an empty
//! answer) and recorded in the attempt's tally, which the result lists.

use std::sync::Arc;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::{
    EventJavascriptDialogOpening, HandleJavaScriptDialogParams,
};
use futures::StreamExt;
use tracing::debug;

use super::session::{Session, cdp_error};
use crate::engine::tally::Tally;
use crate::job::JobError;

impl Session {
    /// Starts answering the page's dialogs; returns the answering task.
    pub(super) async fn answer_dialogs(&self) -> Result<tokio::task::JoinHandle<()>, JobError> {
        let opened = self
            .page()
            .event_listener::<EventJavascriptDialogOpening>()
            .await
            .map_err(|e| cdp_error("listening for dialogs", e))?;
        let page = self.page().clone();
        let tally = self.attempt.tally.clone();
        Ok(tokio::spawn(answer(page, tally, opened)))
    }
}

async fn answer(
    page: Page,
    tally: Tally,
    mut opened: impl futures::Stream<Item = Arc<EventJavascriptDialogOpening>> + Unpin,
) {
    while let Some(dialog) = opened.next().await {
        let kind = dialog.r#type.as_ref().to_owned();
        let mut answer = HandleJavaScriptDialogParams::new(true);
        answer.prompt_text = Some(String::new());
        let answered = page.execute(answer).await.is_ok();
        debug!(kind, answered, "answered a JavaScript dialog");
        tally.dialog(&kind, &dialog.message, answered);
    }
}
