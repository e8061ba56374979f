//! Where a lake lives: a local directory or an S3-compatible bucket, named by a path or URL.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use crate::LakeError;

/// The S3 region used when none is configured (MinIO and most S3-compatible servers accept it).
const DEFAULT_REGION: &str = "us-east-1";

/// The S3 client's own retries under the lake's ([`crate::RetryPolicy`], 6 attempts): a few
/// quick ones, so that a lost answer or a 503 is settled inside the client and a store that
/// stays down fails each attempt in seconds. With object_store's default (10 retries within 3
/// minutes) under the lake's attempts, a stopped store surfaced as a stalled partition only
/// after minutes, and held up a graceful stop as long (tests/store_faults.rs).
fn client_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
    }
}

/// Configures an `AmazonS3Builder` from [`S3Options`]. A macro because the lake writes through
/// object_store 0.14 and DataFusion reads through 0.13, whose builders share this API.
macro_rules! configure_s3 {
    ($builder:expr, $bucket:expr, $options:expr) => {{
        let options: &$crate::location::S3Options = $options;
        let mut builder = $builder
            .with_bucket_name($bucket)
            .with_region(options.region())
            .with_allow_http(options.http_allowed());
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &options.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &options.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &options.session_token {
            builder = builder.with_token(token);
        }
        builder
    }};
}
pub(crate) use configure_s3;

/// How to reach an S3-compatible store. Its `Debug` never shows the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// The endpoint URL for S3-compatible servers (`http://127.0.0.1:9000`); AWS when `None`.
    pub endpoint: Option<String>,
    /// The region; `us-east-1` when `None`.
    pub region: Option<String>,
    /// The access key id; from the instance's credentials chain when `None`.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
    /// A session token for temporary credentials.
    pub session_token: Option<String>,
    /// Allows a plain-HTTP endpoint that is not on the loopback interface (loopback endpoints
    /// are always allowed, for tests).
    pub allow_http: bool,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl S3Options {
    /// Reads the usual AWS variables: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`), `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// and `AWS_ALLOW_HTTP=true`.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Self {
            endpoint: var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            allow_http: var("AWS_ALLOW_HTTP").is_some_and(|value| value.eq_ignore_ascii_case("true")),
        }
    }

    pub(crate) fn region(&self) -> &str {
        self.region.as_deref().unwrap_or(DEFAULT_REGION)
    }

    /// Whether a plain-HTTP endpoint may be used: when allowed explicitly, or on loopback.
    pub(crate) fn http_allowed(&self) -> bool {
        let Some(endpoint) = &self.endpoint else { return self.allow_http };
        let Some(rest) = endpoint.strip_prefix("http://") else { return self.allow_http };
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        let loopback = host == "localhost"
            || host.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback());
        self.allow_http || loopback
    }
}

/// A lake's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeLocation {
    /// A local directory (fsync on every write).
    Local(PathBuf),
    /// A bucket of an S3-compatible store, and a prefix in it (may be empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing slashes.
        prefix: String,
        /// How to reach the store.
        options: S3Options,
    },
}

impl LakeLocation {
    /// Reads `s3://bucket/prefix`, `file:///dir`, or a plain path.
    pub fn parse(text: &str, options: S3Options) -> Result<Self, LakeError> {
        let invalid =
            |reason: &str| LakeError::Location { location: text.to_owned(), reason: reason.to_owned() };
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("no bucket name"));
            }
            let prefix = prefix.trim_matches('/').to_owned();
            return Ok(Self::S3 { bucket: bucket.to_owned(), prefix, options });
        }
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(Self::Local(PathBuf::from(path)));
        }
        if text.contains("://") {
            return Err(invalid("unsupported scheme (use a path, file:// or s3://)"));
        }
        if text.is_empty() {
            return Err(invalid("empty path"));
        }
        Ok(Self::Local(PathBuf::from(text)))
    }

    /// The object store for writes and verification.
    pub(crate) fn build_store(&self) -> Result<Arc<dyn ObjectStore>, LakeError> {
        match self {
            Self::Local(path) => {
                std::fs::create_dir_all(path)
                    .map_err(|source| LakeError::Open { location: path.display().to_string(), source })?;
                Ok(Arc::new(LocalFileSystem::new_with_prefix(path)?.with_fsync(true)))
            }
            Self::S3 { bucket, prefix, options } => {
                let builder = configure_s3!(AmazonS3Builder::new(), bucket, options)
                    // Object Lock buckets refuse puts without a checksum (RELIABILITY.md 2.1).
                    .with_checksum_algorithm(Checksum::SHA256)
                    .with_retry(client_retry());
                let store = builder.build().map_err(|error| LakeError::Location {
                    location: self.to_string(),
                    reason: error.to_string(),
                })?;
                if prefix.is_empty() {
                    return Ok(Arc::new(store));
                }
                Ok(Arc::new(PrefixStore::new(store, prefix.as_str())))
            }
        }
    }
}

impl fmt::Display for LakeLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(formatter, "{}", path.display()),
            Self::S3 { bucket, prefix, .. } if prefix.is_empty() => write!(formatter, "s3://{bucket}"),
            Self::S3 { bucket, prefix, .. } => write!(formatter, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let options = S3Options::default();
        assert_eq!(
            LakeLocation::parse("s3://audit/lake/", options.clone()).unwrap(),
            LakeLocation::S3 { bucket: "audit".into(), prefix: "lake".into(), options: options.clone() }
        );
        assert_eq!(
            LakeLocation::parse("file:///var/lake", options.clone()).unwrap(),
            LakeLocation::Local("/var/lake".into())
        );
        assert_eq!(
            LakeLocation::parse("./lake", options.clone()).unwrap(),
            LakeLocation::Local("./lake".into())
        );
        assert!(LakeLocation::parse("s3://", options.clone()).is_err());
        assert!(LakeLocation::parse("gs://x", options.clone()).is_err());
        assert_eq!(LakeLocation::parse("s3://a/b/c", options).unwrap().to_string(), "s3://a/b/c");
    }

    #[test]
    fn http_is_allowed_on_loopback_only_unless_asked_for() {
        let with = |endpoint: &str| S3Options { endpoint: Some(endpoint.into()), ..S3Options::default() };
        assert!(with("http://127.0.0.1:9000").http_allowed());
        assert!(with("http://localhost:9000").http_allowed());
        assert!(!with("http://10.1.2.3:9000").http_allowed());
        assert!(with("http://[::1]:9000/").http_allowed());
        assert!(!with("http://127.0.0.1.example.com").http_allowed());
        assert!(S3Options { allow_http: true, ..with("http://10.1.2.3:9000") }.http_allowed());
        let options = S3Options { secret_access_key: Some("CANARY_S3".into()), ..with("http://10.1.2.3") };
        assert!(!format!("{options:?}").contains("CANARY"));
    }
}
