//! Capturing the page: screenshots and PDFs.

use base64::Engine as _;
use chromiumoxide::cdp::browser_protocol::dom::Rect;
use chromiumoxide::cdp::browser_protocol::io::{CloseParams, ReadParams, StreamHandle};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, GetLayoutMetricsParams, PrintToPdfParams,
    PrintToPdfTransferMode, Viewport,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::session::{Session, cdp_error};
use crate::engine::options::{is_default, is_false};
use crate::job::{ErrorKind, JobError};

/// The tallest full-page screenshot, in CSS pixels: a taller page is cut at this height.
pub const MAX_FULL_PAGE_HEIGHT: f64 = 16_384.0;
/// The widest screenshot, in CSS pixels: a wider page or element fails the job.
pub const MAX_SCREENSHOT_WIDTH: f64 = 16_384.0;
/// The most pixels one screenshot may hold (width × height, about 160 MB of pixels in the
/// browser): a bigger capture fails the job.
pub const MAX_SCREENSHOT_PIXELS: f64 = 40_000_000.0;
/// The most pages a PDF may have, estimated from the page's height before printing.
pub const MAX_PDF_PAGES: f64 = 500.0;
/// The largest PDF kept, in bytes; printing stops when it grows past this.
pub const MAX_PDF_BYTES: usize = 64 * 1024 * 1024;
/// CSS pixels per inch.
const CSS_PX_PER_INCH: f64 = 96.0;
/// How much of a PDF is read from the browser at a time.
const PDF_CHUNK_BYTES: i64 = 1024 * 1024;

/// Image format of a screenshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// PNG (lossless).
    #[default]
    Png,
    /// JPEG (with `quality`).
    #[serde(alias = "jpg")]
    Jpeg,
}

impl ImageFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
        }
    }
}

/// What a screenshot captures and how.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreenshotOptions {
    /// png or jpeg.
    #[serde(default, skip_serializing_if = "is_default")]
    pub format: ImageFormat,
    /// JPEG quality 1..=100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// The whole page, not only the viewport.
    #[serde(default, skip_serializing_if = "is_false")]
    pub full_page: bool,
    /// Clip to the first element matching this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// Paper sizes for PDFs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Paper {
    /// 210 × 297 mm.
    #[default]
    A4,
    /// 8.5 × 11 in.
    Letter,
}

impl Paper {
    /// Width and height in inches.
    pub fn inches(self) -> (f64, f64) {
        match self {
            Paper::A4 => (8.27, 11.69),
            Paper::Letter => (8.5, 11.0),
        }
    }
}

/// How a page is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PdfOptions {
    /// Paper size.
    #[serde(default, skip_serializing_if = "is_default")]
    pub paper: Paper,
    /// Landscape orientation.
    #[serde(default, skip_serializing_if = "is_false")]
    pub landscape: bool,
    /// Print background colours and images.
    #[serde(default, skip_serializing_if = "is_false")]
    pub print_background: bool,
}

impl Session {
    /// Captures an image of the viewport, the whole page, or one element.
    pub async fn screenshot(&self, shot: &ScreenshotOptions) -> Result<Vec<u8>, JobError> {
        let mut params = CaptureScreenshotParams::builder()
            .format(match shot.format {
                ImageFormat::Png => CaptureScreenshotFormat::Png,
                ImageFormat::Jpeg => CaptureScreenshotFormat::Jpeg,
            })
            .from_surface(true);
        if let Some(quality) = shot.quality {
            params = params.quality(i64::from(quality));
        }
        let clip = match &shot.selector {
            Some(css) => Some(self.element_box(css).await?),
            None if shot.full_page => Some(self.page_box().await?),
            None => None,
        };
        if let Some(clip) = clip {
            within_screenshot_caps(&clip)?;
            params = params.clip(clip).capture_beyond_viewport(true);
        }
        let data = self
            .page()
            .execute(params.build())
            .await
            .map_err(|e| cdp_error("capturing a screenshot", e))?
            .result
            .data;
        decode_binary(data.as_ref())
    }

    /// Prints the page to PDF: refused when the page would make more than [`MAX_PDF_PAGES`]
    /// pages, streamed from the browser and stopped past [`MAX_PDF_BYTES`].
    pub async fn pdf(&self, pdf: &PdfOptions) -> Result<Vec<u8>, JobError> {
        let (width, height) = pdf.paper.inches();
        let page_height = if pdf.landscape { width } else { height } * CSS_PX_PER_INCH;
        let content = self.content_size().await?;
        let pages = (content.height / page_height).ceil();
        if pages > MAX_PDF_PAGES {
            return Err(too_large(format!(
                "the page would print on about {pages} pages; the limit is {MAX_PDF_PAGES}"
            )));
        }
        let params = PrintToPdfParams::builder()
            .landscape(pdf.landscape)
            .print_background(pdf.print_background)
            .paper_width(width)
            .paper_height(height)
            .transfer_mode(PrintToPdfTransferMode::ReturnAsStream)
            .build();
        let printed = self
            .page()
            .execute(params)
            .await
            .map_err(|e| cdp_error("printing to PDF", e))?
            .result;
        match printed.stream {
            Some(stream) => self.read_stream(stream).await,
            None => decode_binary(printed.data.as_ref()),
        }
    }

    /// Reads a browser stream to its end, at most [`MAX_PDF_BYTES`], then closes it.
    async fn read_stream(&self, stream: StreamHandle) -> Result<Vec<u8>, JobError> {
        let mut bytes = Vec::new();
        let read = async {
            loop {
                let chunk = self
                    .page()
                    .execute(
                        ReadParams::builder()
                            .handle(stream.clone())
                            .size(PDF_CHUNK_BYTES)
                            .build()
                            .map_err(|e| cdp_error("reading the PDF", e))?,
                    )
                    .await
                    .map_err(|e| cdp_error("reading the PDF", e))?
                    .result;
                if chunk.base64_encoded == Some(true) {
                    bytes.extend(decode_binary(&chunk.data)?);
                } else {
                    bytes.extend_from_slice(chunk.data.as_bytes());
                }
                if bytes.len() > MAX_PDF_BYTES {
                    return Err(too_large(format!("the PDF is over {MAX_PDF_BYTES} bytes")));
                }
                if chunk.eof {
                    return Ok(());
                }
            }
        };
        let outcome = read.await;
        let _ = self.page().execute(CloseParams::new(stream)).await;
        outcome.map(|()| bytes)
    }

    /// The box of the first element matching `css`, scrolled into view.
    async fn element_box(&self, css: &str) -> Result<Viewport, JobError> {
        let probe = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return {{x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height}}; }})()",
            json!(css)
        );
        let rect = self.inspect(&probe).await?;
        let number = |key: &str| rect.get(key).and_then(Value::as_f64);
        let (Some(x), Some(y), Some(width), Some(height)) =
            (number("x"), number("y"), number("width"), number("height"))
        else {
            return Err(JobError::new(
                ErrorKind::Script,
                format!("payload.selector {css:?} matched no element"),
            ));
        };
        if width < 1.0 || height < 1.0 {
            return Err(JobError::new(
                ErrorKind::Script,
                format!("payload.selector {css:?} matched an element with no size"),
            ));
        }
        Ok(Viewport {
            x,
            y,
            width,
            height,
            scale: 1.0,
        })
    }

    /// The size of the page's content, in CSS pixels.
    async fn content_size(&self) -> Result<Rect, JobError> {
        Ok(self
            .page()
            .execute(GetLayoutMetricsParams::default())
            .await
            .map_err(|e| cdp_error("measuring the page", e))?
            .result
            .css_content_size)
    }

    /// The box of the whole page, at most [`MAX_FULL_PAGE_HEIGHT`] tall.
    async fn page_box(&self) -> Result<Viewport, JobError> {
        let size = self.content_size().await?;
        Ok(Viewport {
            x: 0.0,
            y: 0.0,
            width: size.width.ceil(),
            height: size.height.ceil().min(MAX_FULL_PAGE_HEIGHT),
            scale: 1.0,
        })
    }
}

/// Refuses a capture wider than [`MAX_SCREENSHOT_WIDTH`] or bigger than
/// [`MAX_SCREENSHOT_PIXELS`], before the browser paints it.
fn within_screenshot_caps(clip: &Viewport) -> Result<(), JobError> {
    let pixels = clip.width * clip.height;
    if clip.width > MAX_SCREENSHOT_WIDTH || pixels > MAX_SCREENSHOT_PIXELS {
        return Err(too_large(format!(
            "the capture would be {} × {} pixels; the limits are {MAX_SCREENSHOT_WIDTH} wide and {MAX_SCREENSHOT_PIXELS} pixels",
            clip.width, clip.height
        )));
    }
    Ok(())
}

fn too_large(detail: String) -> JobError {
    JobError::new(ErrorKind::TooLarge, detail)
}

fn decode_binary(data: &str) -> Result<Vec<u8>, JobError> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| {
            JobError::new(
                ErrorKind::Internal,
                format!("the browser sent bad base64: {e}"),
            )
        })
}
