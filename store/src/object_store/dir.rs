//! [`ObjectStore`] over a mirror directory: the objects at their keys relative to the
//! bucket's prefix (MANIFEST.md §5). Unversioned, without a store clock or Object Lock; every
//! file is opened as a regular file only ([`sealcast_reader::open_regular`]: a FIFO planted
//! at a key is refused, never blocked on). PUT writes a temporary file and links it to its
//! name (never replacing one); multipart uploads and retention are not supported.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{map_file, Fetched, FileRange, ListedPart, Lock, ObjHead, ObjectStore, PartRef};
use crate::error::{Error, IoContext, Result};
use crate::object::ObjVersion;

/// A mirror directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// The mirror at `root`.
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn open(&self, rel: &str) -> Result<(PathBuf, fs::File)> {
        let p = self.root.join(rel);
        let f = sealcast_reader::open_regular(&p).map_err(|err| Error::Open {
            path: p.clone(),
            err,
        })?;
        Ok((p, f))
    }

    fn unsupported(&self, rel: &str, what: &str) -> Error {
        Error::Unsupported {
            store: self.describe(),
            key: rel.to_string(),
            what: what.to_string(),
        }
    }
}

impl ObjectStore for DirStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn bucket(&self) -> Option<&str> {
        None
    }

    fn prefix(&self) -> Option<&str> {
        None
    }

    fn versioned(&self) -> bool {
        false
    }

    fn has_store_clock(&self) -> bool {
        false
    }

    async fn object_lock_enabled(&self) -> Result<bool> {
        Ok(false)
    }

    async fn put(
        &self,
        rel: &str,
        body: FileRange<'_>,
        _sha256: &[u8; 32],
        _lock: Option<Lock>,
    ) -> Result<Option<Option<String>>> {
        let dest = self.root.join(rel);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).at("create", &dir)?;
        let mut src = crate::recording::open(body.path)?;
        src.seek(SeekFrom::Start(body.offset))
            .at("seek", body.path)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).at("create", &dir)?;
        let n = std::io::copy(&mut src.take(body.len), &mut tmp).at("write", tmp.path())?;
        if n != body.len {
            return Err(Error::Short {
                path: body.path.to_path_buf(),
                offset: body.offset,
                detail: format!("{n} bytes, expected {}", body.len),
            });
        }
        tmp.as_file().sync_all().at("sync", tmp.path())?;
        match fs::hard_link(tmp.path(), &dest) {
            Ok(()) => Ok(Some(None)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Error::io("link", dest, e)),
        }
    }

    async fn head(&self, rel: &str, _version: Option<&str>) -> Result<ObjHead> {
        let (p, f) = self.open(rel)?;
        Ok(ObjHead {
            version_id: None,
            size: f.metadata().at("stat", &p)?.len(),
            sha256: None,
            retention: None,
        })
    }

    async fn get(&self, rel: &str, _version: Option<&str>, limit: u64) -> Result<Vec<u8>> {
        let p = self.root.join(rel);
        let b = sealcast_reader::read_regular(&p, Some(limit)).map_err(|err| Error::Open {
            path: p.clone(),
            err,
        })?;
        if b.len() as u64 > limit {
            return Err(Error::TooBig {
                key: p.display().to_string(),
                size: b.len() as u64,
                max: limit,
            });
        }
        Ok(b)
    }

    async fn fetch(&self, rel: &str, _version: Option<&str>, limit: u64) -> Result<Fetched> {
        let (p, f) = self.open(rel)?;
        let size = f.metadata().at("stat", &p)?.len();
        if size > limit {
            return Ok(Fetched {
                rec: None,
                size,
                sha256: None,
            });
        }
        let rec = map_file(&f).map_err(|err| Error::Open {
            path: p.clone(),
            err,
        })?;
        let size = rec.len() as u64;
        let sha256 = Some(hex::encode(Sha256::digest(&rec[..])));
        Ok(Fetched {
            rec: Some(rec),
            size,
            sha256,
        })
    }

    async fn sha256(&self, rel: &str, _version: Option<&str>) -> Result<([u8; 32], u64)> {
        let (p, f) = self.open(rel)?;
        crate::recording::sha256_reader(f).at("read", &p)
    }

    async fn list(&self, rel: &str) -> Result<Vec<ObjVersion>> {
        let mut out = Vec::new();
        walk(&self.root.join(rel), rel, &mut out)?;
        Ok(out)
    }

    async fn list_current(&self, rel: &str) -> Result<Vec<ObjVersion>> {
        self.list(rel).await
    }

    async fn create_multipart(&self, rel: &str, _lock: Option<Lock>) -> Result<String> {
        Err(self.unsupported(rel, "multipart uploads"))
    }

    async fn upload_part(
        &self,
        rel: &str,
        _upload_id: &str,
        _number: i32,
        _body: Vec<u8>,
        _sha256_b64: &str,
    ) -> Result<String> {
        Err(self.unsupported(rel, "multipart uploads"))
    }

    async fn list_parts(
        &self,
        _rel: &str,
        _upload_id: &str,
    ) -> Result<Option<BTreeMap<i32, ListedPart>>> {
        Ok(None)
    }

    async fn complete_multipart(
        &self,
        rel: &str,
        _upload_id: &str,
        _parts: &[PartRef],
    ) -> Result<Option<Option<String>>> {
        Err(self.unsupported(rel, "multipart uploads"))
    }

    async fn abort_multipart(&self, _rel: &str, _upload_id: &str) {}

    async fn set_retention(&self, rel: &str, _version: Option<&str>, _lock: Lock) -> Result<()> {
        Err(self.unsupported(rel, "Object Lock retention"))
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<ObjVersion>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut entries = Vec::new();
    for e in rd {
        let e = e.at("list", dir)?;
        entries.push((
            e.file_name().to_string_lossy().into_owned(),
            e.path(),
            e.file_type().at("stat", &e.path())?,
        ));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, path, ft) in entries {
        let r = format!("{rel}{name}");
        if ft.is_dir() {
            walk(&path, &format!("{r}/"), out)?;
        } else {
            let lm = std::fs::metadata(&path)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64);
            out.push(ObjVersion {
                key: r,
                version_id: None,
                latest: true,
                delete_marker: false,
                last_modified: lm,
            });
        }
    }
    Ok(())
}
