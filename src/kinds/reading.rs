//! What a loaded document yields for a `navigate_extract` result: the fields every result
//! has had, or the formats the job asked for; read off the async threads once its parse
//! cost is known to be bounded.

use url::Url;

use super::content_options::ContentOptions;
use super::navigate_extract::NavigateExtractPayload;
use crate::engine::content::{self, Origin, PageContent};
use crate::engine::extract::{self, Data, Extracted};
use crate::engine::options::Selectors;
use crate::engine::parse_cost;
use crate::job::{ErrorKind, JobError};

/// A document to read.
pub enum Body {
    /// An HTML document.
    Html(String),
    /// A text body.
    Text(String),
}

/// What a document yields for the result: the fields every result has had, or the asked
/// formats; with whether it showed nothing (for the judge).
pub struct Read {
    pub extracted: Option<Extracted>,
    pub data: Option<Data>,
    pub content: Option<Box<PageContent>>,
    pub blank: bool,
}

/// Reads a document off the async threads: big pages take a while.
pub async fn read_off_thread(
    body: Body,
    final_url: Url,
    status: u16,
    payload: &NavigateExtractPayload,
) -> Result<Read, JobError> {
    let selectors = payload.selectors.clone();
    let options = payload.content.clone();
    tokio::task::spawn_blocking(move || read(&body, &final_url, status, &selectors, &options))
        .await
        .map_err(|e| JobError::new(ErrorKind::Internal, format!("extraction panicked: {e}")))?
}

fn read(
    body: &Body,
    final_url: &Url,
    status: u16,
    selectors: &Selectors,
    options: &ContentOptions,
) -> Result<Read, JobError> {
    if let Body::Html(html) = body {
        parse_cost::check(html)?;
    }
    let Some(request) = options.request() else {
        let (extracted, data) = match body {
            Body::Html(html) => extract::extract(html, final_url, selectors)?,
            Body::Text(text) => (extract::extract_text(text), extract::no_matches(selectors)),
        };
        return Ok(Read {
            blank: extracted.shows_nothing(),
            extracted: Some(extracted),
            data: Some(data),
            content: None,
        });
    };
    let origin = Origin {
        final_url,
        status_code: status,
    };
    let (content, data) = match body {
        Body::Html(html) => {
            let data = (!selectors.is_empty())
                .then(|| extract::select_data(html, selectors))
                .transpose()?;
            (content::of_html(html, origin, &request), data)
        }
        Body::Text(text) => (
            content::of_text(text, origin, request.formats),
            (!selectors.is_empty()).then(|| extract::no_matches(selectors)),
        ),
    };
    Ok(Read {
        blank: content.blank,
        extracted: None,
        data,
        content: Some(Box::new(content)),
    })
}
