//! `sealcast doctor s3://…`: what the bucket really enforces, found by trying it — never
//! assumed from the store's name (MANIFEST.md §2). Probes write two small objects under
//! `<prefix>doctor/<nonce>/` (they stay when the bucket has default retention).

use crate::error::Result;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode, ObjectLockEnabled,
};
use aws_sdk_s3::Client;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::s3::{self, S3Url};

/// One capability and whether the bucket enforces it.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Capability.
    pub name: &'static str,
    /// Enforced / present (true), not (false), or could not be probed (None).
    pub ok: Option<bool>,
    /// What was seen.
    pub detail: String,
}

fn b64sha(b: &[u8]) -> String {
    B64.encode(Sha256::digest(b))
}

/// The store answered 501 NotImplemented: it has no such feature (an answer, not a failure).
fn not_implemented<E: ProvideErrorMetadata, R: s3::HttpStatus>(e: &SdkError<E, R>) -> bool {
    s3::http_status(e) == Some(501) || s3::error_code(e).as_deref() == Some("NotImplemented")
}

/// Run every probe.
///
/// # Errors
/// Never for a single probe (its `ok` is None); only when the client cannot be built.
pub async fn probe(client: &Client, url: &S3Url) -> Result<Vec<Probe>> {
    let b = &url.bucket;
    let mut out = Vec::new();
    let reach = client.head_bucket().bucket(b).send().await;
    out.push(Probe {
        name: "bucket reachable",
        ok: Some(reach.is_ok()),
        detail: match &reach {
            Ok(_) => format!("s3://{b}"),
            Err(e) => format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
        },
    });
    if reach.is_err() {
        return Ok(out);
    }
    out.push(
        match client
            .get_object_lock_configuration()
            .bucket(b)
            .send()
            .await
        {
            Ok(o) => {
                let c = o.object_lock_configuration();
                let enabled =
                    c.and_then(|c| c.object_lock_enabled()) == Some(&ObjectLockEnabled::Enabled);
                let rule = c
                    .and_then(|c| c.rule())
                    .and_then(|r| r.default_retention())
                    .map(|d| {
                        format!(
                            ", default retention {} {} days",
                            d.mode().map_or("?", |m| m.as_str()),
                            d.days().unwrap_or(0)
                        )
                    })
                    .unwrap_or_else(|| ", no default retention".into());
                Probe {
                    name: "object lock",
                    ok: Some(enabled),
                    detail: format!("{}{rule}", if enabled { "enabled" } else { "not enabled" }),
                }
            }
            Err(e)
                if s3::error_code(&e).as_deref()
                    == Some("ObjectLockConfigurationNotFoundError") =>
            {
                Probe {
                    name: "object lock",
                    ok: Some(false),
                    detail: "no Object Lock configuration".into(),
                }
            }
            Err(e) if not_implemented(&e) => Probe {
                name: "object lock",
                ok: Some(false),
                detail: "the store does not implement Object Lock (GetObjectLockConfiguration: 501 NotImplemented)".into(),
            },
            Err(e) => Probe {
                name: "object lock",
                ok: None,
                detail: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
            },
        },
    );
    let nonce = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let key = format!("{}doctor/{nonce}/if-none-match", url.prefix);
    let body = b"sealcast doctor probe\n".to_vec();
    let put = |k: String, body: Vec<u8>, sum: String| async move {
        client
            .put_object()
            .bucket(b)
            .key(k)
            .body(body.into())
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sum)
            .if_none_match("*")
            .send()
            .await
    };
    let first = put(key.clone(), body.clone(), b64sha(&body)).await;
    // Versioning: the bucket's own answer, else what the first PUT showed (some stores answer
    // GetBucketVersioning in a shape the SDK cannot parse).
    let observed = first
        .as_ref()
        .ok()
        .and_then(|o| o.version_id())
        .filter(|v| *v != "null")
        .map(str::to_string);
    out.push(
        match client.get_bucket_versioning().bucket(b).send().await {
            Ok(v) => Probe {
                name: "versioning",
                ok: Some(v.status() == Some(&BucketVersioningStatus::Enabled)),
                detail: format!("status {:?}", v.status().map(|s| s.as_str())),
            },
            Err(_) if first.is_ok() => Probe {
                name: "versioning",
                ok: Some(observed.is_some()),
                detail: match &observed {
                    Some(v) => format!("a PUT returned version id {v}"),
                    None => "a PUT returned no version id".into(),
                },
            },
            Err(e) if not_implemented(&e) => Probe {
                name: "versioning",
                ok: Some(false),
                detail: "the store does not implement versioning (GetBucketVersioning: 501 NotImplemented)".into(),
            },
            Err(e) => Probe {
                name: "versioning",
                ok: None,
                detail: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
            },
        },
    );
    out.push(match first {
        Err(e) => Probe {
            name: "conditional writes (If-None-Match)",
            ok: None,
            detail: format!(
                "first PUT failed: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ),
        },
        Ok(_) => match put(key.clone(), body.clone(), b64sha(&body)).await {
            Ok(_) => Probe {
                name: "conditional writes (If-None-Match)",
                ok: Some(false),
                detail: "a second PUT with If-None-Match: * overwrote the key".into(),
            },
            Err(e) if s3::http_status(&e) == Some(412) => Probe {
                name: "conditional writes (If-None-Match)",
                ok: Some(true),
                detail: "second PUT refused with 412".into(),
            },
            Err(e) => Probe {
                name: "conditional writes (If-None-Match)",
                ok: None,
                detail: format!("second PUT: {}", aws_sdk_s3::error::DisplayErrorContext(e)),
            },
        },
    });
    out.push(
        match client
            .head_object()
            .bucket(b)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(h) => Probe {
                name: "stores our SHA-256",
                ok: Some(h.checksum_sha256() == Some(b64sha(&body).as_str())),
                detail: format!("HEAD x-amz-checksum-sha256 {:?}", h.checksum_sha256()),
            },
            Err(e) => Probe {
                name: "stores our SHA-256",
                ok: None,
                detail: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
            },
        },
    );
    let bad_key = format!("{}doctor/{nonce}/bad-checksum", url.prefix);
    out.push(
        match put(bad_key.clone(), body.clone(), b64sha(b"other bytes")).await {
            Ok(_) => Probe {
                name: "rejects a wrong SHA-256",
                ok: Some(false),
                detail: "a PUT whose x-amz-checksum-sha256 does not match its body was stored"
                    .into(),
            },
            Err(e) if matches!(s3::http_status(&e), Some(400..=499)) => {
                let code = s3::error_code(&e).unwrap_or_else(|| "no code".into());
                // Refusing is not enough: a store that writes the body before checking it
                // (s3s-fs before 0.17) answers BadDigest and keeps the bytes at the key.
                match client.head_object().bucket(b).key(&bad_key).send().await {
                    Err(h) if s3::http_status(&h) == Some(404) => Probe {
                        name: "rejects a wrong SHA-256",
                        ok: Some(true),
                        detail: format!("refused ({code}), nothing stored"),
                    },
                    Ok(_) => Probe {
                        name: "rejects a wrong SHA-256",
                        ok: Some(false),
                        detail: format!(
                            "refused ({code}), but the body that did not match was stored at the key"
                        ),
                    },
                    Err(h) => Probe {
                        name: "rejects a wrong SHA-256",
                        ok: None,
                        detail: format!(
                            "refused ({code}); HEAD afterwards: {}",
                            aws_sdk_s3::error::DisplayErrorContext(h)
                        ),
                    },
                }
            }
            Err(e) => Probe {
                name: "rejects a wrong SHA-256",
                ok: None,
                detail: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
            },
        },
    );
    Ok(out)
}
