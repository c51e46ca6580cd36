//! `pdf`: the page printed to PDF, stored as an artifact.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{JobKind, Run, page};
use crate::engine::browser::{ArtifactRef, Paper, PdfOptions};
use crate::engine::options::PageOptions;
use crate::job::fields::{Fields, Parsed, as_text};
use crate::job::{JobError, Strategy};

/// The `pdf` kind.
pub struct Pdf;

/// How to load the page and print it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PdfPayload {
    /// Page options.
    #[serde(flatten)]
    pub page: PageOptions,
    /// Print options.
    #[serde(flatten)]
    pub pdf: PdfOptions,
}

/// What a `pdf` job produced.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Printed {
    /// The main document's status.
    pub status_code: u16,
    /// The url the page showed.
    pub final_url: String,
    /// The document.
    pub pdf: ArtifactRef,
    /// Every file the job kept.
    pub artifacts: Vec<ArtifactRef>,
}

/// `A4` or `Letter`, in any case.
fn paper(value: &Value) -> Result<Paper, (&'static str, String)> {
    let unknown = || ("unknown_value", format!("unknown paper {value}; expected A4 or Letter"));
    match as_text(value).map_err(|_| unknown())?.to_ascii_lowercase().as_str() {
        "a4" => Ok(Paper::A4),
        "letter" => Ok(Paper::Letter),
        _ => Err(unknown()),
    }
}

impl JobKind for Pdf {
    fn page(payload: &PdfPayload) -> Option<&PageOptions> {
        Some(&payload.page)
    }

    fn page_mut(payload: &mut PdfPayload) -> Option<&mut PageOptions> {
        Some(&mut payload.page)
    }

    const NAME: &'static str = "pdf";
    const NEEDS_BROWSER: bool = true;
    type Payload = PdfPayload;
    type Output = Printed;

    fn parse(f: &mut Fields<'_>, _strategy: Option<Strategy>) -> Parsed<PdfPayload> {
        let paper = f.with("paper", paper);
        let landscape = f.flag("landscape");
        let print_background = f.flag("print_background");
        let page = page::parse(f);
        Some(PdfPayload {
            page: page?,
            pdf: PdfOptions {
                paper: paper?.unwrap_or_default(),
                landscape: landscape?,
                print_background: print_background?,
            },
        })
    }

    async fn run(payload: &PdfPayload, run: &Run<'_>) -> Result<Printed, JobError> {
        let (browser, strategy) = run.require_browser()?;
        browser
            .run(&run.attempt(), strategy, &payload.page, async |s| {
                let document = s.open().await?;
                s.check(&document).await?;
                let data = s.pdf(&payload.pdf).await?;
                let pdf = s.keep("page.pdf", "application/pdf", data).await?;
                Ok(Printed {
                    status_code: document.status,
                    final_url: document.url,
                    pdf,
                    artifacts: s.artifacts(),
                })
            })
            .await
    }
}
