//! `screenshot`: an image of the page (the viewport, the whole page, or one element),
//! stored as an artifact.

use serde::{Deserialize, Serialize};

use super::selectors::css;
use super::{JobKind, Run, page};
use crate::engine::browser::{ArtifactRef, ImageFormat, ScreenshotOptions};
use crate::engine::options::PageOptions;
use crate::job::fields::{Fields, Parsed};
use crate::job::{JobError, Strategy};

/// The `screenshot` kind.
pub struct Screenshot;

/// How to load the page and what to capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreenshotPayload {
    /// Page options.
    #[serde(flatten)]
    pub page: PageOptions,
    /// Image options.
    #[serde(flatten)]
    pub shot: ScreenshotOptions,
}

/// What a `screenshot` job produced.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Shot {
    /// The main document's status.
    pub status_code: u16,
    /// The url the page showed.
    pub final_url: String,
    /// The image.
    pub screenshot: ArtifactRef,
    /// Every file the job kept.
    pub artifacts: Vec<ArtifactRef>,
}

impl JobKind for Screenshot {
    fn page(payload: &ScreenshotPayload) -> Option<&PageOptions> {
        Some(&payload.page)
    }

    fn page_mut(payload: &mut ScreenshotPayload) -> Option<&mut PageOptions> {
        Some(&mut payload.page)
    }

    const NAME: &'static str = "screenshot";
    const NEEDS_BROWSER: bool = true;
    type Payload = ScreenshotPayload;
    type Output = Shot;

    fn parse(f: &mut Fields<'_>, _strategy: Option<Strategy>) -> Parsed<ScreenshotPayload> {
        let format = f.choice::<ImageFormat>("format");
        let quality = f.int("quality", 1..=100);
        let full_page = f.flag("full_page");
        let selector = f.with("selector", css);
        let page = page::parse(f);
        let format = format?.unwrap_or_default();
        let quality = match quality? {
            Some(_) if format != ImageFormat::Jpeg => {
                f.report(
                    "quality",
                    "invalid",
                    "quality applies to jpeg only; set \"format\": \"jpeg\"",
                );
                return None;
            }
            quality => quality.map(|q| q as u8),
        };
        Some(ScreenshotPayload {
            page: page?,
            shot: ScreenshotOptions {
                format,
                quality,
                full_page: full_page?,
                selector: selector?,
            },
        })
    }

    async fn run(payload: &ScreenshotPayload, run: &Run<'_>) -> Result<Shot, JobError> {
        let (browser, strategy) = run.require_browser()?;
        browser
            .run(&run.attempt(), strategy, &payload.page, async |s| {
                let document = s.open().await?;
                s.check(&document).await?;
                let image = s.screenshot(&payload.shot).await?;
                let format = payload.shot.format;
                let name = format!("screenshot.{}", format.extension());
                let screenshot = s.keep(&name, format.content_type(), image).await?;
                Ok(Shot {
                    status_code: document.status,
                    final_url: document.url,
                    screenshot,
                    artifacts: s.artifacts(),
                })
            })
            .await
    }
}
