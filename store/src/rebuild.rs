//! Rebuilding the uploader's chain state from the bucket when its state file is gone (a new
//! disk, a restored backup without the spool's dot-files, an operator's `rm`).
//!
//! Starting again at seq 0 would fork the host's manifest chain (`verify` reports FORK or a
//! CHAIN_GAP "chain restarted"), so a spool without state first reads the newest manifest of
//! the host from the bucket, checks that its SSHSIG signature is ours and that it names the key
//! it was found at, and continues the chain after it. Spool recordings that manifest already
//! lists (same session and SHA-256) are the ones a crash left behind between storing the
//! manifest and deleting them: they are deleted now, as the lost state would have. When the
//! newest manifest does not verify with our key the uploader refuses to start rather than
//! guess (format-spec/MANIFEST.md "Uploader state").

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use sealcast_format::names;
use sealcast_signer::sshsig::{self, MANIFEST_NAMESPACE};
use sealcast_signer::SigningKey;

use crate::error::{ChainError, Error, Result};
use crate::manifest::{Manifest, Prev};
use crate::object_store::ObjectStore;
use crate::recording;
use crate::spool_state::{spool_recordings, ChainState, STATE_FILE};

/// What [`rebuild_chain`] found.
#[derive(Debug, Clone, Default)]
pub struct Rebuilt {
    /// Where the chain continues (default: no manifest in the bucket, start at seq 0).
    pub chain: ChainState,
    /// Spool recordings deleted because the newest manifest already lists them.
    pub released: Vec<String>,
}

/// Sequence number in a manifest key `…_<seq>.json`.
fn key_seq(key: &str) -> Option<u64> {
    let stem = key.strip_suffix(".json")?;
    stem.rsplit('_').next()?.parse().ok()
}

/// Current manifest keys of `host` (relative to the store's root), with their sequence
/// numbers.
async fn manifest_keys<S: ObjectStore>(store: &S, host: &str) -> Result<Vec<(u64, String)>> {
    let rel = format!("manifests/{host}/");
    let mut out: Vec<(u64, String)> = store
        .list_current(&rel)
        .await?
        .into_iter()
        .filter_map(|o| key_seq(&o.key).map(|seq| (seq, o.key)))
        .collect();
    out.sort();
    Ok(out)
}

/// Read the host's newest manifest from the store and return the chain state that continues
/// it, deleting spool recordings it already lists.
///
/// # Errors
/// Listing or reading fails after retries; the newest manifest is unsigned, signed by another
/// key than `key`, unparsable, or names another key, bucket or host (the chain cannot be
/// continued safely: restore the state file, or investigate with `sealcast verify`).
pub async fn rebuild_chain<S: ObjectStore>(
    store: &S,
    host: &str,
    key: &SigningKey,
    spool: &Path,
) -> Result<Rebuilt> {
    let keys = manifest_keys(store, host).await?;
    let Some((seq, mrel)) = keys.last().cloned() else {
        return Ok(Rebuilt::default());
    };
    let bucket = store.bucket().unwrap_or_default().to_string();
    let mkey = format!("{}{mrel}", store.prefix().unwrap_or_default());
    let bytes = store.get(&mrel, None, u64::MAX).await?;
    let murl = format!("s3://{bucket}/{mkey}");
    let sig = store
        .get(&format!("{mrel}.sig"), None, u64::MAX)
        .await
        .map_err(|err| ChainError::NoSignature {
            url: murl.clone(),
            err: Box::new(err),
        })?;
    let signer = sshsig::verify(&sig, MANIFEST_NAMESPACE, &bytes).map_err(|err| {
        ChainError::BadSignature {
            url: murl.clone(),
            err,
        }
    })?;
    let ours = key.public();
    if signer.id() != ours.id() {
        return Err(ChainError::NotOurKey {
            url: murl,
            signer: signer.id().to_string(),
            ours: ours.id().to_string(),
            state_file: STATE_FILE,
        }
        .into());
    }
    let m = Manifest::parse(&bytes).map_err(|err| ChainError::Unparsable {
        url: murl.clone(),
        err,
    })?;
    if m.key != mkey || m.bucket != bucket || m.host != host || m.seq != seq {
        return Err(ChainError::Misplaced {
            url: murl,
            key: m.key,
            bucket: m.bucket,
            host: m.host,
            seq: m.seq,
        }
        .into());
    }
    let chain = ChainState {
        next_seq: m.seq + 1,
        last: Some(Prev {
            key: mkey,
            sha256: hex::encode(Sha256::digest(&bytes)),
            sig_sha256: hex::encode(Sha256::digest(&sig)),
        }),
        last_period_end_us: Some(m.period_end_us),
    };
    // Sessions the manifest lists as shipped whole, with their object SHA-256.
    let listed: BTreeMap<&str, &str> = m
        .recordings
        .iter()
        .filter(|e| e.status != "open")
        .map(|e| (e.session.as_str(), e.sha256.as_str()))
        .collect();
    let mut released = Vec::new();
    for path in spool_recordings(spool)? {
        let Ok(h) = recording::read_header(&path) else {
            continue;
        };
        let Some(meta) = h.sealcast else { continue };
        let Some(want) = listed.get(meta.session.as_str()) else {
            continue;
        };
        let (sha, _) = recording::sha256_file(&path)?;
        if hex::encode(sha) != *want {
            continue;
        }
        for p in [names::receipt_path(&path), path.clone()] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", p, e)),
            }
        }
        released.push(path.display().to_string());
    }
    Ok(Rebuilt { chain, released })
}

#[cfg(test)]
mod tests {
    use super::key_seq;

    #[test]
    fn sequence_numbers_come_from_the_key_suffix() {
        assert_eq!(
            key_seq("p/manifests/h/2026/11/21/h_20261121T170000Z_000042.json"),
            Some(42)
        );
        assert_eq!(key_seq("manifests/h/x.json.sig"), None);
        assert_eq!(key_seq("manifests/h/h_x_notanumber.json"), None);
    }
}
