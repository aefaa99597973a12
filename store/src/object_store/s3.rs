//! [`ObjectStore`] over S3 (aws-sdk-s3): a bucket and key prefix ([`S3Url`]), each call
//! retried with capped exponential backoff ([`s3::retry`], [`s3::classify`]).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

use aws_sdk_s3::primitives::{ByteStream, DateTime, SdkBody};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, ObjectLockEnabled,
    ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
};
use aws_sdk_s3::Client;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

use sealcast_reader::OpenError;

use super::{map_file, Fetched, FileRange, ListedPart, Lock, ObjHead, ObjectStore, PartRef};
use crate::error::{Error, Result};
use crate::object::{LockMode, ObjVersion};
use crate::s3::{self, Backoff, S3Url, Try};

/// A bucket and prefix through one client.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    url: S3Url,
    backoff: Backoff,
}

impl S3Store {
    /// The store at `url` through `client`, retrying with `backoff`.
    pub fn new(client: Client, url: S3Url, backoff: Backoff) -> S3Store {
        S3Store {
            client,
            url,
            backoff,
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Bucket and prefix.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// HEAD with checksum mode, retried per `backoff`.
    async fn head_with(
        &self,
        rel: &str,
        version: Option<&str>,
        backoff: Backoff,
    ) -> Result<ObjHead> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        let h = s3::retry(&format!("HEAD {key}"), backoff, || async {
            match client
                .head_object()
                .bucket(bucket)
                .key(&key)
                .set_version_id(version.map(str::to_string))
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
            {
                Ok(o) => Try::Done(o),
                Err(e) => s3::classify(e),
            }
        })
        .await?;
        let composite = h.checksum_type() == Some(&aws_sdk_s3::types::ChecksumType::Composite)
            || h.parts_count().is_some_and(|n| n > 1);
        let sha256 = h
            .checksum_sha256()
            .filter(|c| !c.contains('-') && !composite)
            .and_then(|c| B64.decode(c).ok())
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok());
        Ok(ObjHead {
            version_id: h.version_id().map(str::to_string),
            size: h.content_length().map_or(0, |n| n.max(0) as u64),
            sha256,
            retention: match (h.object_lock_mode(), h.object_lock_retain_until_date()) {
                (Some(m), Some(d)) => Some((
                    match m {
                        ObjectLockMode::Compliance => "COMPLIANCE".into(),
                        ObjectLockMode::Governance => "GOVERNANCE".into(),
                        other => other.as_str().to_string(),
                    },
                    d.secs(),
                )),
                _ => None,
            },
        })
    }

    /// The bucket key of `rel`.
    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.url.prefix)
    }
}

fn sdk_mode(m: LockMode) -> ObjectLockMode {
    match m {
        LockMode::Compliance => ObjectLockMode::Compliance,
        LockMode::Governance => ObjectLockMode::Governance,
    }
}

impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        self.url.to_string()
    }

    fn bucket(&self) -> Option<&str> {
        Some(&self.url.bucket)
    }

    fn prefix(&self) -> Option<&str> {
        Some(&self.url.prefix)
    }

    fn versioned(&self) -> bool {
        true
    }

    fn has_store_clock(&self) -> bool {
        true
    }

    async fn object_lock_enabled(&self) -> Result<bool> {
        let (client, bucket) = (&self.client, &self.url.bucket);
        s3::retry("probe Object Lock", self.backoff, || async {
            match client
                .get_object_lock_configuration()
                .bucket(bucket)
                .send()
                .await
            {
                Ok(o) => Try::Done(
                    o.object_lock_configuration()
                        .and_then(|c| c.object_lock_enabled())
                        == Some(&ObjectLockEnabled::Enabled),
                ),
                Err(e) => {
                    let code = s3::error_code(&e);
                    // A store without the Object Lock API (501 NotImplemented) has no lock on.
                    if matches!(
                        code.as_deref(),
                        Some("ObjectLockConfigurationNotFoundError" | "NotImplemented")
                    ) {
                        Try::Done(false)
                    } else {
                        s3::classify(e)
                    }
                }
            }
        })
        .await
    }

    async fn put(
        &self,
        rel: &str,
        body: FileRange<'_>,
        sha256: &[u8; 32],
        lock: Option<Lock>,
    ) -> Result<Option<Option<String>>> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        let FileRange { path, offset, len } = body;
        let b64 = B64.encode(sha256);
        s3::retry(&format!("PUT {key}"), self.backoff, || async {
            let body = match ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(aws_sdk_s3::primitives::Length::Exact(len))
                .build()
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    return Try::Fatal(Error::Recording {
                        path: path.to_path_buf(),
                        detail: format!("read: {e}"),
                    })
                }
            };
            let mut req = client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(body)
                .content_length(len as i64)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(&b64)
                .if_none_match("*");
            if let Some(l) = lock {
                req = req
                    .object_lock_mode(sdk_mode(l.mode))
                    .object_lock_retain_until_date(DateTime::from_secs(l.until_secs));
            }
            match req.send().await {
                Ok(o) => Try::Done(Some(o.version_id().map(str::to_string))),
                Err(e) if s3::http_status(&e) == Some(412) => Try::Done(None),
                Err(e) => s3::classify(e),
            }
        })
        .await
    }

    async fn head_once(&self, rel: &str, version: Option<&str>) -> Result<ObjHead> {
        let once = Backoff {
            attempts: 1,
            ..self.backoff
        };
        self.head_with(rel, version, once).await
    }

    async fn head(&self, rel: &str, version: Option<&str>) -> Result<ObjHead> {
        self.head_with(rel, version, self.backoff).await
    }

    async fn get(&self, rel: &str, version: Option<&str>, limit: u64) -> Result<Vec<u8>> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        let too_big = |size: u64| Error::TooBig {
            key: key.clone(),
            size,
            max: limit,
        };
        s3::retry(&format!("GET {key}"), self.backoff, || async {
            let mut o = match s3::get_object(client, bucket, &key, version).await {
                Ok(o) => o,
                Err(e) => return s3::classify(e),
            };
            let len = o.content_length().map_or(0, |n| n.max(0) as u64);
            if len > limit {
                return Try::Fatal(too_big(len));
            }
            let mut b = Vec::with_capacity(len as usize);
            while let Some(chunk) = o.body.next().await {
                match chunk {
                    Ok(c) => b.extend_from_slice(&c),
                    Err(e) => return body_error(&key, e),
                }
                if b.len() as u64 > limit {
                    return Try::Fatal(too_big(b.len() as u64));
                }
            }
            Try::Done(b)
        })
        .await
    }

    async fn fetch(&self, rel: &str, version: Option<&str>, limit: u64) -> Result<Fetched> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        s3::retry(&format!("GET {key}"), self.backoff, || async {
            let o = match s3::get_object(client, bucket, &key, version).await {
                Ok(o) => o,
                Err(e) => return s3::classify(e),
            };
            match o.content_length().map(|n| n.max(0) as u64) {
                Some(n) if n > limit => Try::Done(Fetched {
                    rec: None,
                    size: n,
                    sha256: None,
                }),
                _ => spool(&key, o.body, limit).await,
            }
        })
        .await
    }

    async fn sha256(&self, rel: &str, version: Option<&str>) -> Result<([u8; 32], u64)> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        s3::retry(&format!("GET {key}"), self.backoff, || async {
            let o = match s3::get_object(client, bucket, &key, version).await {
                Ok(o) => o,
                Err(e) => return s3::classify(e),
            };
            let mut body = o.body;
            let mut h = Sha256::new();
            let mut n = 0u64;
            loop {
                match body.try_next().await {
                    Ok(Some(chunk)) => {
                        h.update(&chunk);
                        n += chunk.len() as u64;
                    }
                    Ok(None) => break,
                    Err(e) => return body_error(&key, e),
                }
            }
            Try::Done((h.finalize().into(), n))
        })
        .await
    }

    async fn list(&self, rel: &str) -> Result<Vec<ObjVersion>> {
        match list_versions(&self.client, &self.url, rel, self.backoff).await? {
            Some(v) => Ok(v),
            None => {
                eprintln!(
                    "sealcast verify: {} has no ListObjectVersions (501 Not Implemented): \
                     checking the current objects only, as for a mirror",
                    self.url
                );
                self.list_current(rel).await
            }
        }
    }

    async fn list_current(&self, rel: &str) -> Result<Vec<ObjVersion>> {
        s3::list_current(&self.client, &self.url, rel, self.backoff).await
    }

    async fn create_multipart(&self, rel: &str, lock: Option<Lock>) -> Result<String> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        s3::retry(
            &format!("CreateMultipartUpload {key}"),
            self.backoff,
            || async {
                let mut req = client
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(&key)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256);
                if let Some(l) = lock {
                    req = req
                        .object_lock_mode(sdk_mode(l.mode))
                        .object_lock_retain_until_date(DateTime::from_secs(l.until_secs));
                }
                match req.send().await {
                    Ok(o) => match o.upload_id() {
                        Some(id) => Try::Done(id.to_string()),
                        None => Try::Fatal(Error::Multipart {
                            key: key.clone(),
                            detail: "no upload id".into(),
                        }),
                    },
                    Err(e) => s3::classify(e),
                }
            },
        )
        .await
    }

    async fn upload_part(
        &self,
        rel: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
        sha256_b64: &str,
    ) -> Result<String> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        let len = body.len();
        let body = SdkBody::from(body);
        let what = format!("UploadPart {key} #{number}");
        s3::retry(&what, self.backoff, || async {
            let Some(b) = body.try_clone() else {
                return Try::Fatal(Error::Multipart {
                    key: key.clone(),
                    detail: "part body cannot be resent".into(),
                });
            };
            match client
                .upload_part()
                .bucket(bucket)
                .key(&key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(len as i64)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(sha256_b64)
                .body(ByteStream::new(b))
                .send()
                .await
            {
                Ok(o) => Try::Done(o.e_tag().unwrap_or_default().to_string()),
                Err(e) => s3::classify(e),
            }
        })
        .await
    }

    async fn list_parts(
        &self,
        rel: &str,
        upload_id: &str,
    ) -> Result<Option<BTreeMap<i32, ListedPart>>> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        let mut out = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let page = s3::retry(&format!("ListParts {key}"), self.backoff, || async {
                match client
                    .list_parts()
                    .bucket(bucket)
                    .key(&key)
                    .upload_id(upload_id)
                    .max_parts(1000)
                    .set_part_number_marker(marker.clone())
                    .send()
                    .await
                {
                    Ok(o) => Try::Done(Some(PartsPage::from_sdk(&o))),
                    Err(e)
                        if s3::error_code(&e).as_deref() == Some("NoSuchUpload")
                            || s3::http_status(&e) == Some(404) =>
                    {
                        Try::Done(None)
                    }
                    Err(e) => {
                        let fallback = (s3::http_status(&e) == Some(200))
                            .then(|| e.raw_response().and_then(|r| r.body().bytes()))
                            .flatten()
                            .and_then(|b| std::str::from_utf8(b).ok())
                            .and_then(PartsPage::from_xml);
                        match fallback {
                            Some(page) => Try::Done(Some(page)),
                            None => s3::classify(e),
                        }
                    }
                }
            })
            .await?;
            let Some(page) = page else {
                return Ok(None);
            };
            out.extend(page.parts);
            if !page.truncated || page.next_marker.is_none() || page.next_marker == marker {
                return Ok(Some(out));
            }
            marker = page.next_marker;
        }
    }

    async fn complete_multipart(
        &self,
        rel: &str,
        upload_id: &str,
        parts: &[PartRef],
    ) -> Result<Option<Option<String>>> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number)
                            .e_tag(&p.etag)
                            .checksum_sha256(&p.checksum_sha256)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let what = format!("CompleteMultipartUpload {key}");
        s3::retry(&what, self.backoff, || async {
            match client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(&key)
                .upload_id(upload_id)
                .multipart_upload(done.clone())
                .if_none_match("*")
                .send()
                .await
            {
                Ok(o) => Try::Done(Some(o.version_id().map(str::to_string))),
                Err(e) if s3::http_status(&e) == Some(412) => Try::Done(None),
                Err(e) => s3::classify(e),
            }
        })
        .await
    }

    async fn abort_multipart(&self, rel: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.url.bucket)
            .key(self.key(rel))
            .upload_id(upload_id)
            .send()
            .await;
    }

    async fn set_retention(&self, rel: &str, version: Option<&str>, lock: Lock) -> Result<()> {
        let mode = match lock.mode {
            LockMode::Compliance => ObjectLockRetentionMode::Compliance,
            LockMode::Governance => ObjectLockRetentionMode::Governance,
        };
        let ret = ObjectLockRetention::builder()
            .mode(mode)
            .retain_until_date(DateTime::from_secs(lock.until_secs))
            .build();
        self.client
            .put_object_retention()
            .bucket(&self.url.bucket)
            .key(self.key(rel))
            .set_version_id(version.map(str::to_string))
            .retention(ret)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map(|_| ())
            .map_err(s3::sdk_error)
    }
}

/// Whether a body read error is the SDK's response checksum validation failing (the
/// `aws_smithy_checksums` error somewhere in its source chain): a type test of the SDK's own
/// error, at the one place the S3 transport is read; everything above sees
/// [`Error::StoredChecksumMismatch`].
fn is_checksum_mismatch(e: &aws_sdk_s3::primitives::ByteStreamError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<aws_smithy_checksums::body::validate::Error>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A body read error: a checksum mismatch is final ([`Error::StoredChecksumMismatch`]),
/// anything else (a cut connection) is retried.
fn body_error<T>(key: &str, e: aws_sdk_s3::primitives::ByteStreamError) -> Try<T> {
    let mut chain = String::new();
    let mut cur: Option<&dyn std::error::Error> = Some(&e);
    while let Some(err) = cur {
        chain.push_str(&format!("{err}; "));
        cur = err.source();
    }
    let detail = chain.trim_end_matches("; ").to_string();
    let key = key.to_string();
    if is_checksum_mismatch(&e) {
        Try::Fatal(Error::StoredChecksumMismatch { key, detail })
    } else {
        Try::Transient(Error::Body { key, detail })
    }
}

/// An object version streamed into a private unlinked temporary file (in `$TMPDIR`), as
/// [`S3Store::fetch_file`] returns it.
#[derive(Debug)]
pub struct SpooledObject {
    /// The temporary file (created 0600 by `tempfile::tempfile`, no name left on disk),
    /// holding the object's bytes, fully written and flushed; nothing else can reach it.
    /// Its read/write position is at the end.
    pub file: std::fs::File,
    /// Size of the object in bytes.
    pub size: u64,
    /// SHA-256 of the object's bytes, hex, computed as they were read.
    pub sha256: String,
}

impl S3Store {
    /// The object version `rel` (the current one when `version` is `None`) streamed into a
    /// private unlinked temporary file, hashed on the way, never held whole in memory (as
    /// [`ObjectStore::fetch`] does for bucket verification, MANIFEST.md §5, but with no size
    /// limit and the file itself returned, for a caller that maps or reads it again, such as
    /// `sealcast play s3://…`).
    ///
    /// # Errors
    /// [`Error::S3`] inside [`Error::Context`] (`GET <key>: …`) when the store refuses, e.g.
    /// status 404 with code `NoSuchKey` for a missing object or one hidden by a delete
    /// marker, 403 `AccessDenied`; [`Error::StoredChecksumMismatch`] when the bytes do not
    /// match the store's own checksum; [`Error::TempFile`] when `$TMPDIR` fails;
    /// [`Error::GaveUp`] when transient errors outlast the backoff.
    pub async fn fetch_file(&self, rel: &str, version: Option<&str>) -> Result<SpooledObject> {
        let key = self.key(rel);
        let (client, bucket) = (&self.client, &self.url.bucket);
        s3::retry(&format!("GET {key}"), self.backoff, || async {
            let o = match s3::get_object(client, bucket, &key, version).await {
                Ok(o) => o,
                Err(e) => return s3::classify(e),
            };
            match spool_file(&key, o.body, u64::MAX).await {
                Try::Done(Ok(s)) => Try::Done(s),
                // Not reached: no object is larger than u64::MAX bytes.
                Try::Done(Err(size)) => Try::Fatal(Error::TooBig {
                    key: key.clone(),
                    size,
                    max: u64::MAX,
                }),
                Try::Transient(e) => Try::Transient(e),
                Try::Fatal(e) => Try::Fatal(e),
            }
        })
        .await
    }
}

/// Stream an object body into a private unlinked temporary file (in `$TMPDIR`), hashing it on
/// the way. Stops reading once more than `limit` bytes have come: `Err(bytes seen)`.
async fn spool_file(
    key: &str,
    mut body: ByteStream,
    limit: u64,
) -> Try<std::result::Result<SpooledObject, u64>> {
    let local = |e: std::io::Error| Try::Fatal(Error::TempFile(e));
    let file = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return local(e),
    };
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut h = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return body_error(key, e),
        };
        size += chunk.len() as u64;
        if size > limit {
            return Try::Done(Err(size));
        }
        h.update(&chunk);
        if let Err(e) = w.write_all(&chunk) {
            return local(e);
        }
    }
    match w.into_inner() {
        Ok(file) => Try::Done(Ok(SpooledObject {
            file,
            size,
            sha256: hex::encode(h.finalize()),
        })),
        Err(e) => local(e.into_error()),
    }
}

/// [`spool_file`], then map the file.
async fn spool(key: &str, body: ByteStream, limit: u64) -> Try<Fetched> {
    let local = |e: std::io::Error| Try::Fatal(Error::TempFile(e));
    let s = match spool_file(key, body, limit).await {
        Try::Done(Ok(s)) => s,
        Try::Done(Err(size)) => {
            return Try::Done(Fetched {
                rec: None,
                size,
                sha256: None,
            })
        }
        Try::Transient(e) => return Try::Transient(e),
        Try::Fatal(e) => return Try::Fatal(e),
    };
    match map_file(&s.file) {
        Ok(rec) => Try::Done(Fetched {
            rec: Some(rec),
            size: s.size,
            sha256: Some(s.sha256),
        }),
        Err(OpenError::Io(e)) => local(e),
        Err(e) => local(std::io::Error::other(e)),
    }
}

/// Every version and delete marker under `rel` (ListObjectVersions, all pages); `None` when
/// the store does not implement it (501: e.g. stores without versioning, such as s3s-fs).
async fn list_versions(
    client: &Client,
    url: &S3Url,
    rel: &str,
    backoff: Backoff,
) -> Result<Option<Vec<ObjVersion>>> {
    let mut out = Vec::new();
    let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s3::retry("ListObjectVersions", backoff, || async {
            match client
                .list_object_versions()
                .bucket(&url.bucket)
                .prefix(format!("{}{rel}", url.prefix))
                .set_key_marker(km.clone())
                .set_version_id_marker(vm.clone())
                .send()
                .await
            {
                Ok(o) => Try::Done(Some(o)),
                Err(e) if s3::http_status(&e) == Some(501) => Try::Done(None),
                Err(e) => s3::classify(e),
            }
        })
        .await?;
        let Some(page) = page else {
            return Ok(None);
        };
        let strip = |k: &str| k.strip_prefix(&url.prefix).unwrap_or(k).to_string();
        for v in page.versions() {
            out.push(ObjVersion {
                key: strip(v.key().unwrap_or_default()),
                version_id: v.version_id().filter(|v| *v != "null").map(str::to_string),
                latest: v.is_latest().unwrap_or(false),
                delete_marker: false,
                last_modified: v.last_modified().map(|d| d.secs()),
            });
        }
        for m in page.delete_markers() {
            out.push(ObjVersion {
                key: strip(m.key().unwrap_or_default()),
                version_id: m.version_id().filter(|v| *v != "null").map(str::to_string),
                latest: m.is_latest().unwrap_or(false),
                delete_marker: true,
                last_modified: m.last_modified().map(|d| d.secs()),
            });
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        km = page.next_key_marker().map(str::to_string);
        vm = page.next_version_id_marker().map(str::to_string);
        if km.is_none() {
            break;
        }
    }
    Ok(Some(out))
}

/// One page of a ListParts answer.
#[derive(Debug, Default, PartialEq, Eq)]
struct PartsPage {
    parts: Vec<(i32, ListedPart)>,
    truncated: bool,
    next_marker: Option<String>,
}

impl PartsPage {
    fn from_sdk(o: &aws_sdk_s3::operation::list_parts::ListPartsOutput) -> PartsPage {
        PartsPage {
            parts: o
                .parts()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.part_number()?,
                        (
                            u64::try_from(p.size()?).ok()?,
                            p.e_tag().unwrap_or_default().to_string(),
                            p.checksum_sha256().map(str::to_string),
                        ),
                    ))
                })
                .collect(),
            truncated: o.is_truncated() == Some(true),
            next_marker: o.next_part_number_marker().map(str::to_string),
        }
    }

    /// Read a ListParts answer the SDK refused. moto (5.2.1) names the document element
    /// `ListPartsResponse` where S3 and the SDK say `ListPartsResult`; the elements inside are
    /// S3's. `None` when `xml` does not look like a ListParts answer at all.
    fn from_xml(xml: &str) -> Option<PartsPage> {
        let root = xml.find("<ListParts")?;
        let xml = &xml[root..];
        let mut page = PartsPage {
            truncated: xml_text(xml, "IsTruncated").as_deref() == Some("true"),
            next_marker: xml_text(xml, "NextPartNumberMarker"),
            parts: Vec::new(),
        };
        for seg in xml.split("<Part>").skip(1) {
            let seg = seg.split("</Part>").next()?;
            page.parts.push((
                xml_text(seg, "PartNumber")?.parse().ok()?,
                (
                    xml_text(seg, "Size")?.parse().ok()?,
                    xml_text(seg, "ETag").unwrap_or_default(),
                    xml_text(seg, "ChecksumSHA256"),
                ),
            ));
        }
        Some(page)
    }
}

/// Text of the first `<tag>…</tag>` in `xml`, entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(
        xml[start..start + len]
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn reads_list_parts_answers_the_sdk_refuses() {
        // moto 5.2.1's answer (document element ListPartsResponse).
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<ListPartsResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>rec</Bucket><Key>k</Key><UploadId>u</UploadId><PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber><LastModified>2026-11-21T17:03:49.000Z</LastModified><ETag>"6bda69cd"</ETag><Size>5242880</Size></Part><Part><PartNumber>2</PartNumber><ETag>&quot;ebc11741&quot;</ETag><Size>1024</Size><ChecksumSHA256>c2hh</ChecksumSHA256></Part><Initiator><ID>x</ID></Initiator></ListPartsResponse>"#;
        let page = PartsPage::from_xml(xml).unwrap();
        assert_eq!(
            page,
            PartsPage {
                parts: vec![
                    (1, (5 * MIB, "\"6bda69cd\"".into(), None)),
                    (2, (1024, "\"ebc11741\"".into(), Some("c2hh".into()))),
                ],
                truncated: false,
                next_marker: Some("2".into()),
            }
        );
        assert!(PartsPage::from_xml("<Error><Code>x</Code></Error>").is_none());
        // A part without a number or size is not guessed at.
        assert!(PartsPage::from_xml("<ListPartsResult><Part><ETag>e</ETag></Part>").is_none());
    }
}
