//! The S3 client: `s3://BUCKET/PREFIX` URLs, client construction (standard AWS credential and
//! region chain, endpoint from `--endpoint-url` or `AWS_ENDPOINT_URL`, path-style addressing
//! whenever an endpoint is given), error classification and capped exponential backoff.

use std::future::Future;
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;

use crate::error::{Error, Result};
use crate::object::ObjVersion;

/// A bucket and a key prefix (`s3://BUCKET/PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix: empty, or ending with `/`.
    pub prefix: String,
}

impl S3Url {
    /// Parse `s3://BUCKET[/PREFIX]`; the prefix gets a trailing `/` when not empty.
    ///
    /// # Errors
    /// Anything else ([`Error::BadUrl`]).
    pub fn parse(s: &str) -> Result<S3Url> {
        let bad = |reason: String| Error::BadUrl {
            url: s.to_string(),
            reason,
        };
        let Some(rest) = s.strip_prefix("s3://") else {
            return Err(bad(" is not an s3://BUCKET/PREFIX URL".into()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(bad(format!(": bad bucket name {bucket:?}")));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(bad(": prefix must not contain . or .. segments".into()));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The endpoint in force: `explicit`, else `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`.
pub fn endpoint(explicit: Option<&str>) -> Option<String> {
    explicit
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|s| !s.is_empty())
}

/// A single-threaded tokio runtime for the blocking CLI entry points.
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Build a client: credentials and region from the standard AWS chain (region defaults to
/// `us-east-1` when none is configured), the endpoint of [`endpoint`], path-style addressing
/// when an endpoint is given (S3-compatible servers rarely serve virtual-host buckets).
pub async fn client(explicit_endpoint: Option<&str>) -> Client {
    let ep = endpoint(explicit_endpoint);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::default_provider().or_else("us-east-1"))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(e) = &ep {
        loader = loader.endpoint_url(e);
    }
    let conf = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&conf);
    if ep.is_some() {
        b = b.force_path_style(true);
    }
    Client::from_conf(b.build())
}

/// HTTP status of a failed call, when the server answered.
pub fn http_status<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HttpStatus,
{
    e.raw_response().map(HttpStatus::status_u16)
}

/// Access to the status code of a raw response type.
pub trait HttpStatus {
    /// The status code.
    fn status_u16(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_u16(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Service error code (`NoSuchKey`, `PreconditionFailed`, …), when the server sent one.
pub fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    match e {
        SdkError::ServiceError(s) => s.err().code().map(str::to_string),
        _ => None,
    }
}

/// Whether a failed call is worth retrying: no answer (connection refused or cut, timeout),
/// a 5xx other than 501 (Not Implemented never changes), 408, 409 (conditional-write race)
/// or 429. Other 4xx are final.
pub fn is_transient<E, R: HttpStatus>(e: &SdkError<E, R>) -> bool {
    match e {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            matches!(http_status(e), Some(s) if (s >= 500 && s != 501) || s == 408 || s == 409 || s == 429)
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    }
}

/// Backoff policy: `base · 2^attempt`, capped, for at most `attempts` tries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay before the second try.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Tries in all (at least 1).
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            attempts: 8,
        }
    }
}

impl Backoff {
    /// Delay after the `n`-th failed try (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let f = 1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(f).min(self.cap)
    }
}

/// Outcome of one try inside [`retry`].
pub enum Try<T> {
    /// Done.
    Done(T),
    /// Failed; retry later.
    Transient(Error),
    /// Failed for good.
    Fatal(Error),
}

/// Run `op` until it is done, fails for good, or the tries run out (the last error is
/// returned). Sleeps with capped exponential backoff between tries.
///
/// # Errors
/// The fatal error inside [`Error::Context`], or the last transient one inside
/// [`Error::GaveUp`].
pub async fn retry<T, F, Fut>(what: &str, policy: Backoff, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Try<T>>,
{
    let mut n = 0;
    loop {
        match op().await {
            Try::Done(v) => return Ok(v),
            Try::Fatal(e) => return Err(e.context(what)),
            Try::Transient(e) => {
                n += 1;
                if n >= policy.attempts.max(1) {
                    return Err(Error::GaveUp {
                        what: what.to_string(),
                        tries: n,
                        err: Box::new(e),
                    });
                }
                let d = policy.delay(n - 1);
                eprintln!("sealcast: {what}: {e}; retrying in {d:?}");
                tokio::time::sleep(d).await;
            }
        }
    }
}

/// Classify an SDK error for [`retry`].
pub fn classify<T, E, R>(e: SdkError<E, R>) -> Try<T>
where
    E: std::error::Error + Send + Sync + ProvideErrorMetadata + 'static,
    R: HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    if is_transient(&e) {
        Try::Transient(sdk_error(e))
    } else {
        Try::Fatal(sdk_error(e))
    }
}

/// An SDK error as [`Error::S3`] (status, code, the SDK's whole message).
pub fn sdk_error<E, R>(e: SdkError<E, R>) -> Error
where
    E: std::error::Error + Send + Sync + ProvideErrorMetadata + 'static,
    R: HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    Error::S3 {
        status: http_status(&e),
        code: error_code(&e),
        message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
    }
}

/// GetObject of `key` in `bucket` (version `version`, or the current one): the bare call, for
/// use inside [`retry`] with [`classify`] (the body is the caller's to read).
///
/// # Errors
/// The SDK's error, unclassified.
pub async fn get_object(
    client: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> std::result::Result<
    aws_sdk_s3::operation::get_object::GetObjectOutput,
    SdkError<
        aws_sdk_s3::operation::get_object::GetObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
}

/// The current objects under `rel` (ListObjectsV2, all pages), as unversioned entries with
/// keys relative to the URL's prefix.
///
/// # Errors
/// Listing failures after retries.
pub async fn list_current(
    client: &Client,
    url: &S3Url,
    rel: &str,
    backoff: Backoff,
) -> Result<Vec<ObjVersion>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = retry("ListObjectsV2", backoff, || async {
            match client
                .list_objects_v2()
                .bucket(&url.bucket)
                .prefix(format!("{}{rel}", url.prefix))
                .set_continuation_token(token.clone())
                .send()
                .await
            {
                Ok(o) => Try::Done(o),
                Err(e) => classify(e),
            }
        })
        .await?;
        for o in page.contents() {
            let k = o.key().unwrap_or_default();
            out.push(ObjVersion {
                key: k.strip_prefix(&url.prefix).unwrap_or(k).to_string(),
                version_id: None,
                latest: true,
                delete_marker: false,
                last_modified: o.last_modified().map(|d| d.secs()),
            });
        }
        token = page.next_continuation_token().map(str::to_string);
        if page.is_truncated() != Some(true) || token.is_none() {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            S3Url::parse("s3://b/x/y/").unwrap(),
            S3Url {
                bucket: "b".into(),
                prefix: "x/y/".into()
            }
        );
        assert_eq!(S3Url::parse("s3://b").unwrap().prefix, "");
        assert!(S3Url::parse("b/x").is_err());
        assert!(S3Url::parse("s3://B/x").is_err());
        assert!(S3Url::parse("s3://b/../x").is_err());
        let b = Backoff::default();
        assert_eq!(b.delay(0), Duration::from_millis(250));
        assert_eq!(b.delay(2), Duration::from_secs(1));
        assert_eq!(b.delay(30), Duration::from_secs(30));
    }
}
