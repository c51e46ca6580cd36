//! Reaching an S3-compatible bucket: the usual AWS variables, read into settings (not from the
//! process's environment at use, so one process can hold several stores, as tests do), and
//! time limits short enough that a store that does not answer is an error at start, not a
//! job that hangs.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use super::location::Bucket;

/// How an S3-compatible store is reached (`AWS_ENDPOINT_URL`, `AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). Without keys the
/// store's own chain applies (an instance or task role).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Access {
    /// The store's URL (`http://garage:3900`); AWS's own when unset.
    pub endpoint: Option<String>,
    /// The region (`us-east-1` when unset; S3-compatible stores often ignore it).
    pub region: Option<String>,
    /// The access key's id.
    pub access_key_id: Option<String>,
    /// The access key's secret.
    pub secret_access_key: Option<String>,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Access {
    /// Names the endpoint and the key's id, never the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Access")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One request's connect and whole-request limits: an artifact is at most a few tens of MB.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Retries of a failed request, and the most time they may take together.
const RETRIES: usize = 3;
const RETRY_WITHIN: Duration = Duration::from_secs(15);

impl S3Access {
    /// Where the store is, for messages (`AWS_ENDPOINT_URL` or AWS).
    pub fn endpoint_name(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("AWS_ENDPOINT_URL={endpoint}"),
            None => "AWS S3".to_owned(),
        }
    }

    /// The bucket's store, its keys under the bucket's prefix.
    pub fn open(&self, bucket: &Bucket) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&bucket.name)
            .with_region(self.region.as_deref().unwrap_or("us-east-1"))
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: RETRIES,
                retry_timeout: RETRY_WITHIN,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(CONNECT_TIMEOUT)
                    .with_timeout(REQUEST_TIMEOUT),
            );
        if let Some(endpoint) = &self.endpoint {
            // A store on a private network is often plain HTTP; AWS itself never is.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(id) = &self.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &self.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &self.session_token {
            builder = builder.with_token(token);
        }
        let store = builder.build()?;
        Ok(if bucket.prefix.is_empty() {
            Arc::new(store)
        } else {
            Arc::new(PrefixStore::new(store, bucket.prefix.as_str()))
        })
    }
}
