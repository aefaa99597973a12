//! Manifest periods (format-spec/MANIFEST.md §2–3): when a manifest is due (something
//! shipped, or a whole period passed: a heartbeat), writing it to the spool as pending,
//! storing it and its signature, then releasing the spool files it lists and advancing the
//! chain — safe to repeat after a crash at any point.

use std::fs;
use std::path::{Path, PathBuf};

use sealcast_format::names;

use super::{Kind, Uploader};
use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::{self, Entry, LockPolicy, Manifest, ObjectRef, Prev};
use crate::object::put_file;
use crate::object_store::ObjectStore;
use crate::recording;
use crate::spool_state::{write_atomic, ChainState, PendingManifest, Shipped, PENDING_MANIFEST};

impl<S: ObjectStore + Clone + 'static> Uploader<S> {
    fn spool_file(&self, name: &str) -> PathBuf {
        self.opts.spool.join(name)
    }

    /// An object key (with the destination's prefix) relative to the store's root.
    pub(super) fn rel<'k>(&self, key: &'k str) -> &'k str {
        key.strip_prefix(self.opts.dest.prefix.as_str())
            .unwrap_or(key)
    }

    /// Whether a manifest is due at `now_us`: something shipped (`force_if_shipped`), or a
    /// whole period passed since the last manifest's period end (heartbeat), or there is no
    /// manifest yet and something shipped.
    pub fn manifest_due(&self, now_us: u64, force_if_shipped: bool) -> bool {
        if self.opts.signing_key.is_none() {
            return false;
        }
        let period = self.opts.period.as_micros() as u64;
        let shipped = !self.state.shipped.is_empty();
        match self.state.chain.last_period_end_us {
            None => shipped || force_if_shipped,
            Some(end) => {
                (force_if_shipped && shipped)
                    || now_us >= manifest::period_floor(end, period) + period
            }
        }
    }

    /// Write the manifest for everything shipped and not yet listed, with period end
    /// `now_us`, then store it ([`Uploader::finish_pending`]).
    ///
    /// # Errors
    /// No signing key; I/O; S3 failures after retries (the manifest stays pending).
    pub async fn emit_manifest(&mut self, now_us: u64) -> Result<()> {
        if self.state.pending.is_some() {
            return self.finish_pending().await;
        }
        let key = self.opts.signing_key.as_ref().ok_or(Error::NoSigningKey)?;
        let seq = self.state.chain.next_seq;
        let mkey = layout::manifest_key(&self.opts.dest.prefix, &self.opts.host, now_us, seq);
        let mut shipped: Vec<&Shipped> = self.state.shipped.values().collect();
        shipped.sort_by(|a, b| (a.start_us, &a.session).cmp(&(b.start_us, &b.session)));
        let start = self.state.chain.last_period_end_us.unwrap_or_else(|| {
            shipped
                .iter()
                .map(|s| s.start_us)
                .min()
                .unwrap_or(now_us)
                .min(now_us)
        });
        let m = Manifest {
            format: manifest::FORMAT.into(),
            host: self.opts.host.clone(),
            bucket: self.opts.dest.bucket.clone(),
            key: mkey.clone(),
            seq,
            period_start_us: start,
            period_end_us: now_us,
            period_start: layout::rfc3339(start),
            period_end: layout::rfc3339(now_us),
            prev: self.state.chain.last.clone(),
            key_id: key.id().to_string(),
            lock: self.retention.map(|r| LockPolicy {
                mode: r.mode.as_str().into(),
                days: r.days,
            }),
            recordings: shipped
                .iter()
                .map(|s| Entry {
                    key: s.recording.key.clone(),
                    version_id: s.recording.version_id.clone(),
                    size: s.recording.size,
                    sha256: s.recording.sha256.clone(),
                    content_sha256: s.content_sha256.clone(),
                    lines: s.lines,
                    final_head: s.final_head.clone(),
                    session: s.session.clone(),
                    user: s.user.clone(),
                    start: layout::rfc3339(s.start_us),
                    end: s.end_us.map(layout::rfc3339),
                    status: s.status.clone(),
                    receipt: s.receipt.as_ref().map(|r| ObjectRef {
                        key: r.key.clone(),
                        version_id: r.version_id.clone(),
                        size: r.size,
                        sha256: r.sha256.clone(),
                    }),
                    offset: s.offset,
                })
                .collect(),
        };
        let bytes = m.to_bytes();
        let sig = manifest::sign(key, &bytes);
        let files = shipped
            .iter()
            .filter(|s| s.status != Kind::Open.as_str())
            .map(|s| s.file.clone())
            .collect();
        let listed = self.state.shipped.keys().cloned().collect();
        let mpath = self.spool_file(PENDING_MANIFEST);
        write_atomic(&mpath, &bytes)?;
        write_atomic(&sig_path(&mpath), sig.as_bytes())?;
        self.state.pending = Some(PendingManifest {
            key: mkey,
            seq,
            period_end_us: now_us,
            files,
            listed,
        });
        self.state.save(&self.opts.spool)?;
        self.finish_pending().await
    }

    /// Store the pending manifest and its signature, delete the spool files it lists, and
    /// advance the chain. Safe to repeat after a crash at any point.
    ///
    /// # Errors
    /// I/O; S3 failures after retries (the manifest stays pending).
    pub async fn finish_pending(&mut self) -> Result<()> {
        let Some(p) = self.state.pending.clone() else {
            return Ok(());
        };
        let mpath = self.spool_file(PENDING_MANIFEST);
        let spath = sig_path(&mpath);
        let (msha, msize) = recording::sha256_file(&mpath)?;
        let (ssha, ssize) = recording::sha256_file(&spath)?;
        for (key, path, size, sha) in [
            (p.key.clone(), &mpath, msize, &msha),
            (format!("{}.sig", p.key), &spath, ssize, &ssha),
        ] {
            let rel = self.rel(&key);
            put_file(&self.store, rel, path, size, sha, self.lock()).await?;
        }
        for f in &p.files {
            let rec = self.spool_file(f);
            for path in [names::receipt_path(&rec), rec] {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", path, e)),
                }
            }
            self.state.shipped.remove(f);
        }
        for k in &p.listed {
            self.state.shipped.remove(k);
        }
        self.state.chain = ChainState {
            next_seq: p.seq + 1,
            last: Some(Prev {
                key: p.key.clone(),
                sha256: hex::encode(msha),
                sig_sha256: hex::encode(ssha),
            }),
            last_period_end_us: Some(p.period_end_us),
        };
        self.state.pending = None;
        self.state.save(&self.opts.spool)?;
        let _ = fs::remove_file(&spath);
        let _ = fs::remove_file(&mpath);
        Ok(())
    }
}

fn sig_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}
