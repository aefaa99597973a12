//! `sealcast play s3://BUCKET/KEY`: a recording object fetched for the player the way bucket
//! `verify` fetches one (store/src/verify/objects.rs): streamed into a private unlinked
//! temporary file in `$TMPDIR`, never held whole in memory, with its seal receipt, the
//! `<KEY>.seal` object beside it (MANIFEST.md §1), when there is one.
//!
//! The player then maps the temporary file through `/proc/self/fd/N` (the magic link reaches
//! the unlinked file while [`Object`] holds it open) and verifies the bytes it mapped (SPEC
//! §7.2), as `sealcast verify` would verify a file named like the key's last component with
//! that receipt (SPEC §5 "Seal receipt", §7): the badge of an object is the badge of the same bytes in a file of that
//! name, so another session's recording copied under this key is `MODIFIED`, and one cut
//! short of its receipt `TRUNCATED`.
//!
//! Only the current version of the key is fetched (a key hidden by a delete marker is no
//! such object); which versions a manifest lists is `sealcast verify s3://… --host H`'s
//! business (MANIFEST.md §5).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use sealcast_format::names;
use sealcast_reader::ReceiptFile;
use sealcast_store::object_store::{ObjectStore, S3Store};
use sealcast_store::s3::{self, Backoff, S3Url};
use sealcast_store::verify::SMALL_OBJECT_MAX;
use sealcast_store::Error;

use crate::cmd::UsageError;

/// A recording object, fetched: its bytes in an unlinked temporary file, its name and its
/// receipt. The file is deleted (its last descriptor closed) when this is dropped.
#[derive(Debug)]
pub struct Object {
    file: File,
    /// The key's last component (`<session>.cast.zst` in the bucket layout, MANIFEST.md §1),
    /// the file name `verify` checks against the header's session.
    pub name: Option<String>,
    /// The `<KEY>.seal` object: absent, read, or why it could not be read.
    pub receipt: Arc<ReceiptFile>,
}

impl Object {
    /// A path that opens the temporary file while `self` lives: `/proc/self/fd/N`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}

/// The `s3://` URL a play target is, when it is one.
pub fn url(target: &Path) -> Option<&str> {
    target.to_str().filter(|s| s.starts_with("s3://"))
}

/// The store holding `url`'s object and the object's key in it: `(store at the bucket's
/// root, key)`.
///
/// # Errors
/// [`UsageError`] when `url` is not `s3://BUCKET/KEY` with a key.
fn parse(url: &str) -> Result<(S3Url, String)> {
    let u = S3Url::parse(url).map_err(|e| UsageError(format!("{e}")))?;
    let key = u.prefix.trim_end_matches('/').to_string();
    if key.is_empty() || url.ends_with('/') {
        return Err(UsageError(format!(
            "{url}: give a recording object, s3://BUCKET/PREFIX/recordings/HOST/…/SESSION.cast.zst \
             (sealcast verify s3://BUCKET/PREFIX --host HOST checks a whole bucket)"
        ))
        .into());
    }
    Ok((
        S3Url {
            bucket: u.bucket,
            prefix: String::new(),
        },
        key,
    ))
}

/// Why a fetch failed, in one line: "no such object", "no such bucket", "access denied", or
/// the store's error.
fn why(e: &Error) -> String {
    let text = match e.root() {
        Error::S3 { code: Some(c), .. } if c == "NoSuchKey" => "no such object".to_string(),
        Error::S3 { code: Some(c), .. } if c == "NoSuchBucket" => "no such bucket".to_string(),
        Error::S3 {
            status: Some(403), ..
        } => format!("access denied ({e})"),
        _ => e.to_string(),
    };
    text.replace(['\n', '\r'], " ")
}

/// Fetch the recording object at `url` (`s3://BUCKET/KEY`) through the S3 endpoint
/// `endpoint` (else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, else AWS; credentials and
/// region from the standard AWS chain, [`s3::client`]), and its `<KEY>.seal` receipt.
/// Transient failures are retried a few times (4 tries, 0.25 s doubling): someone waits at
/// a terminal.
///
/// Returns `Ok(Err(why))` when the object cannot be fetched (no such object or bucket, no
/// access, the endpoint does not answer): `why` is one line, for `sealcast: URL: why`. A
/// receipt that cannot be fetched (other than not existing) is
/// [`ReceiptFile::Unreadable`], which makes the recording `UNREADABLE` (SPEC §5), never
/// more verified than it is.
///
/// # Errors
/// [`UsageError`] for a URL that names no object; the async runtime failing to start.
pub fn fetch(url: &str, endpoint: Option<&str>) -> Result<std::result::Result<Object, String>> {
    let (root, key) = parse(url)?;
    let rt = s3::runtime()?;
    Ok(rt.block_on(async {
        let backoff = Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(2),
            attempts: 4,
        };
        let store = S3Store::new(s3::client(endpoint).await, root, backoff);
        let spooled = store.fetch_file(&key, None).await.map_err(|e| why(&e))?;
        let receipt_key = names::receipt_key(&key);
        let receipt_url = format!("s3://{}/{receipt_key}", store.url().bucket);
        let receipt = match store.get(&receipt_key, None, SMALL_OBJECT_MAX).await {
            Ok(bytes) => ReceiptFile::Read {
                path: receipt_url,
                bytes,
            },
            Err(e) if matches!(e.root(), Error::S3 { code: Some(c), .. } if c == "NoSuchKey") => {
                ReceiptFile::Absent
            }
            Err(e) => ReceiptFile::Unreadable {
                path: receipt_url,
                error: why(&e),
            },
        };
        Ok(Object {
            file: spooled.file,
            name: key.rsplit('/').next().map(str::to_string),
            receipt: Arc::new(receipt),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_an_object() {
        let (root, key) =
            parse("s3://rec/pfx/recordings/h1/2026/01/02/abc.cast.zst").expect("an object");
        assert_eq!((root.bucket.as_str(), root.prefix.as_str()), ("rec", ""));
        assert_eq!(key, "pfx/recordings/h1/2026/01/02/abc.cast.zst");
        for bad in [
            "s3://rec",
            "s3://rec/",
            "s3://rec/pfx/",
            "s3://Bad/x",
            "/tmp/x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(url(Path::new("s3://rec/x")), Some("s3://rec/x"));
        assert_eq!(url(Path::new("./s3:/rec/x")), None);
    }
}
