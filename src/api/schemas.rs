//! The shapes of request bodies, for the OpenAPI document. Bodies are parsed by hand (so
//! every bad field is named precisely); these types describe what the parsers accept, and
//! `openapi::tests` checks that every property named here is one the parser knows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::job::target::{MAX_URL_LEN, TARGET_URL_PATTERN};
use crate::job::{Priority, Strategy};
use crate::kinds::JobType;

/// `POST /api/v1/jobs`. Optional fields may also be `null` (the same as absent).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The target: an absolute http(s) url of at most 2048 characters, without user name or
    /// password, whose host is public (unless `ALLOW_PRIVATE_TARGETS`).
    #[schema(value_type = UrlText)]
    pub url: String,
    /// What the job does [default: navigate_extract].
    pub job_type: Option<JobType>,
    /// How it reaches the web [default: auto]. Browser job types need a browser strategy.
    pub strategy: Option<Strategy>,
    /// 1 (most urgent) to 5 [default: 3].
    pub priority: Option<Priority>,
    /// Attempts allowed [default: 3].
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: Option<u32>,
    /// Per-attempt timeout in milliseconds [default: 60000].
    #[schema(minimum = 1000, maximum = 600000)]
    pub timeout_ms: Option<u32>,
    /// When the job becomes due (RFC 3339, at most 366 days ahead); not with `delay_ms`.
    pub run_at: Option<DateTime<Utc>>,
    /// Milliseconds from now until the job becomes due; not with `run_at`.
    #[schema(minimum = 0, maximum = 31622400000_i64)]
    pub delay_ms: Option<u64>,
    /// The job type's options (at most 256 KiB): see the README's "Job types".
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// Where to POST the job once it is finished, signed with the server's WEBHOOK_SECRET
    /// (refused when the server has none); the url passes the same policy as `url`.
    pub callback: Option<CallbackRequest>,
}

/// A url as the contract writes it: any http(s) url the server's parser would take (queries,
/// fragments, any port, escapes, non-ASCII), so a validating client refuses none of them.
pub struct UrlText;

impl utoipa::PartialSchema for UrlText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .min_length(Some(1))
            .max_length(Some(MAX_URL_LEN))
            .pattern(Some(TARGET_URL_PATTERN))
            .into()
    }
}

impl ToSchema for UrlText {}

/// Bytes as they are (an artifact's download): what generators read as a file.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// A batch of jobs, stored all or none.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 1,000 jobs, each as for `POST /api/v1/jobs`.
    #[schema(min_items = 1, max_items = 1000)]
    pub jobs: Vec<JobRequest>,
}

/// A job's webhook.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackRequest {
    /// An absolute http(s) url of at most 2048 characters.
    #[schema(value_type = UrlText)]
    pub url: String,
}

/// `POST /api/v1/jobs/{id}/retry`: all optional; the body itself may be empty.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Attempts allowed from now [default: 3].
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: Option<u32>,
    /// Another strategy for the replay.
    pub strategy: Option<Strategy>,
    /// Another priority for the replay.
    pub priority: Option<Priority>,
}

/// `POST /api/v1/jobs/{id}/cancel`: no fields; the body may be empty.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {}

/// One artifact of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactInfo {
    /// Its name (`screenshot.png`, `failure.html`, …).
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its size.
    pub bytes: u64,
    /// Hex SHA-256 of its content.
    pub sha256: String,
    /// When it was kept.
    pub created_at: DateTime<Utc>,
    /// Where to download it.
    pub url: String,
}

/// A job's artifacts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactList {
    /// By name.
    pub artifacts: Vec<ArtifactInfo>,
}
