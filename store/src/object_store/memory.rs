//! [`ObjectStore`] in memory, for unit tests: versioned like an S3 bucket with versioning on
//! (every PUT a new version, delete markers, `ListObjectVersions`), a store clock that the
//! test sets ([`MemoryStore::set_now`]), optional Object Lock, SHA-256 checked on PUT like
//! `x-amz-checksum-sha256`, and multipart uploads. Clones share the same objects.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

use sealcast_reader::Recording;

use super::{Fetched, FileRange, ListedPart, Lock, ObjHead, ObjectStore, PartRef};
use crate::error::{Error, IoContext, Result};
use crate::object::ObjVersion;

#[derive(Debug, Clone)]
struct Version {
    id: String,
    /// `None`: a delete marker.
    data: Option<Vec<u8>>,
    modified: i64,
    retention: Option<(String, i64)>,
}

#[derive(Debug, Default)]
struct Upload {
    rel: String,
    lock: Option<Lock>,
    parts: BTreeMap<i32, (Vec<u8>, String, String)>,
}

#[derive(Debug, Default)]
struct Inner {
    objects: BTreeMap<String, Vec<Version>>,
    uploads: BTreeMap<String, Upload>,
    next_id: u64,
    now_secs: i64,
    object_lock: bool,
}

/// A versioned bucket in memory (clones share it).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store; `object_lock`: whether it reports Object Lock on.
    pub fn new(object_lock: bool) -> MemoryStore {
        let s = MemoryStore::default();
        s.lock().object_lock = object_lock;
        s
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set the store's clock (the `LastModified` of versions stored from now on), Unix
    /// seconds.
    pub fn set_now(&self, secs: i64) {
        self.lock().now_secs = secs;
    }

    /// Store `data` at `rel` as a new version, unconditionally (a test's own write, like an
    /// attacker's overwrite); its version id.
    pub fn insert(&self, rel: &str, data: Vec<u8>) -> String {
        let mut g = self.lock();
        Self::push(&mut g, rel, Some(data), None)
    }

    /// Hide `rel` behind a delete marker; the marker's version id.
    pub fn delete(&self, rel: &str) -> String {
        let mut g = self.lock();
        Self::push(&mut g, rel, None, None)
    }

    /// The current bytes of `rel` (None when absent or hidden).
    pub fn current(&self, rel: &str) -> Option<Vec<u8>> {
        let g = self.lock();
        g.objects.get(rel)?.last()?.data.clone()
    }

    /// Keys with a current (not deleted) version, sorted.
    pub fn keys(&self) -> Vec<String> {
        let g = self.lock();
        g.objects
            .iter()
            .filter(|(_, v)| v.last().is_some_and(|v| v.data.is_some()))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn push(g: &mut Inner, rel: &str, data: Option<Vec<u8>>, lock: Option<Lock>) -> String {
        g.next_id += 1;
        let id = format!("v{:06}", g.next_id);
        let modified = g.now_secs;
        g.objects.entry(rel.to_string()).or_default().push(Version {
            id: id.clone(),
            data,
            modified,
            retention: lock.map(|l| (l.mode.as_str().to_string(), l.until_secs)),
        });
        id
    }

    fn version(&self, rel: &str, version: Option<&str>) -> Result<Version> {
        let g = self.lock();
        let vs = g.objects.get(rel);
        let v = match version {
            Some(id) => vs.and_then(|vs| vs.iter().find(|v| v.id == id)),
            None => vs.and_then(|vs| vs.last()),
        };
        match v {
            Some(v) if v.data.is_some() => Ok(v.clone()),
            _ => Err(self.not_found(rel)),
        }
    }

    fn not_found(&self, rel: &str) -> Error {
        Error::S3 {
            status: Some(404),
            code: Some("NoSuchKey".into()),
            message: format!("{rel}: no such key"),
        }
        .context(format!("GET {rel}"))
    }
}

fn listed(rel: &str, v: &Version, latest: bool) -> ObjVersion {
    ObjVersion {
        key: rel.to_string(),
        version_id: Some(v.id.clone()),
        latest,
        delete_marker: v.data.is_none(),
        last_modified: Some(v.modified),
    }
}

impl ObjectStore for MemoryStore {
    fn describe(&self) -> String {
        "memory://".into()
    }

    fn bucket(&self) -> Option<&str> {
        Some("memory")
    }

    fn prefix(&self) -> Option<&str> {
        Some("")
    }

    fn versioned(&self) -> bool {
        true
    }

    fn has_store_clock(&self) -> bool {
        true
    }

    async fn object_lock_enabled(&self) -> Result<bool> {
        Ok(self.lock().object_lock)
    }

    async fn put(
        &self,
        rel: &str,
        body: FileRange<'_>,
        sha256: &[u8; 32],
        lock: Option<Lock>,
    ) -> Result<Option<Option<String>>> {
        let mut f = crate::recording::open(body.path)?;
        f.seek(SeekFrom::Start(body.offset)).at("seek", body.path)?;
        let mut data = Vec::new();
        f.take(body.len)
            .read_to_end(&mut data)
            .at("read", body.path)?;
        if Sha256::digest(&data)[..] != sha256[..] {
            return Err(Error::S3 {
                status: Some(400),
                code: Some("BadDigest".into()),
                message: format!("{rel}: the body does not match x-amz-checksum-sha256"),
            }
            .context(format!("PUT {rel}")));
        }
        let mut g = self.lock();
        if g.objects
            .get(rel)
            .and_then(|v| v.last())
            .is_some_and(|v| v.data.is_some())
        {
            return Ok(None);
        }
        Ok(Some(Some(Self::push(&mut g, rel, Some(data), lock))))
    }

    async fn head(&self, rel: &str, version: Option<&str>) -> Result<ObjHead> {
        let v = self.version(rel, version)?;
        let data = v.data.unwrap_or_default();
        Ok(ObjHead {
            version_id: Some(v.id),
            size: data.len() as u64,
            sha256: Some(Sha256::digest(&data).into()),
            retention: v.retention,
        })
    }

    async fn get(&self, rel: &str, version: Option<&str>, limit: u64) -> Result<Vec<u8>> {
        let data = self.version(rel, version)?.data.unwrap_or_default();
        if data.len() as u64 > limit {
            return Err(Error::TooBig {
                key: rel.to_string(),
                size: data.len() as u64,
                max: limit,
            });
        }
        Ok(data)
    }

    async fn fetch(&self, rel: &str, version: Option<&str>, limit: u64) -> Result<Fetched> {
        let data = self.version(rel, version)?.data.unwrap_or_default();
        let size = data.len() as u64;
        if size > limit {
            return Ok(Fetched {
                rec: None,
                size,
                sha256: None,
            });
        }
        let sha256 = Some(hex::encode(Sha256::digest(&data)));
        Ok(Fetched {
            rec: Some(Recording::from_bytes(data)),
            size,
            sha256,
        })
    }

    async fn sha256(&self, rel: &str, version: Option<&str>) -> Result<([u8; 32], u64)> {
        let data = self.version(rel, version)?.data.unwrap_or_default();
        Ok((Sha256::digest(&data).into(), data.len() as u64))
    }

    async fn list(&self, rel: &str) -> Result<Vec<ObjVersion>> {
        let g = self.lock();
        let mut out = Vec::new();
        for (k, vs) in g.objects.range(rel.to_string()..) {
            if !k.starts_with(rel) {
                break;
            }
            for (i, v) in vs.iter().enumerate() {
                out.push(listed(k, v, i + 1 == vs.len()));
            }
        }
        Ok(out)
    }

    async fn list_current(&self, rel: &str) -> Result<Vec<ObjVersion>> {
        let all = self.list(rel).await?;
        Ok(all
            .into_iter()
            .filter(|v| v.latest && !v.delete_marker)
            .map(|v| ObjVersion {
                version_id: None,
                ..v
            })
            .collect())
    }

    async fn create_multipart(&self, rel: &str, lock: Option<Lock>) -> Result<String> {
        let mut g = self.lock();
        g.next_id += 1;
        let id = format!("u{:06}", g.next_id);
        g.uploads.insert(
            id.clone(),
            Upload {
                rel: rel.to_string(),
                lock,
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    async fn upload_part(
        &self,
        rel: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
        sha256_b64: &str,
    ) -> Result<String> {
        if B64.encode(Sha256::digest(&body)) != sha256_b64 {
            return Err(Error::S3 {
                status: Some(400),
                code: Some("BadDigest".into()),
                message: format!("{rel} part {number}: checksum mismatch"),
            });
        }
        let mut g = self.lock();
        let Some(u) = g.uploads.get_mut(upload_id) else {
            return Err(Error::S3 {
                status: Some(404),
                code: Some("NoSuchUpload".into()),
                message: upload_id.to_string(),
            });
        };
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..8]));
        u.parts
            .insert(number, (body, etag.clone(), sha256_b64.to_string()));
        Ok(etag)
    }

    async fn list_parts(
        &self,
        _rel: &str,
        upload_id: &str,
    ) -> Result<Option<BTreeMap<i32, ListedPart>>> {
        let g = self.lock();
        Ok(g.uploads.get(upload_id).map(|u| {
            u.parts
                .iter()
                .map(|(n, (b, e, s))| (*n, (b.len() as u64, e.clone(), Some(s.clone()))))
                .collect()
        }))
    }

    async fn complete_multipart(
        &self,
        rel: &str,
        upload_id: &str,
        parts: &[PartRef],
    ) -> Result<Option<Option<String>>> {
        let mut g = self.lock();
        let taken = g
            .objects
            .get(rel)
            .and_then(|v| v.last())
            .is_some_and(|v| v.data.is_some());
        if taken {
            return Ok(None);
        }
        let Some(u) = g.uploads.remove(upload_id) else {
            return Err(Error::S3 {
                status: Some(404),
                code: Some("NoSuchUpload".into()),
                message: upload_id.to_string(),
            });
        };
        let mut data = Vec::new();
        for p in parts {
            match u.parts.get(&p.number) {
                Some((b, etag, _)) if *etag == p.etag => data.extend_from_slice(b),
                _ => {
                    return Err(Error::S3 {
                        status: Some(400),
                        code: Some("InvalidPart".into()),
                        message: format!("{} part {}", u.rel, p.number),
                    })
                }
            }
        }
        Ok(Some(Some(Self::push(&mut g, rel, Some(data), u.lock))))
    }

    async fn abort_multipart(&self, _rel: &str, upload_id: &str) {
        self.lock().uploads.remove(upload_id);
    }

    async fn set_retention(&self, rel: &str, version: Option<&str>, lock: Lock) -> Result<()> {
        let mut g = self.lock();
        let v = g.objects.get_mut(rel).and_then(|vs| match version {
            Some(id) => vs.iter_mut().find(|v| v.id == id),
            None => vs.last_mut(),
        });
        match v {
            Some(v) => {
                v.retention = Some((lock.mode.as_str().to_string(), lock.until_secs));
                Ok(())
            }
            None => Err(self.not_found(rel)),
        }
    }
}
