//! The spool uploader: ships finished recordings (those with a seal receipt) and their
//! receipts to the bucket, never overwriting (`If-None-Match: *`), each PUT carrying our own
//! SHA-256 and, when the bucket has Object Lock, a retention period.
//!
//! State (what was shipped, with S3 version ids) is kept in `<spool>/.sealcast-upload.json`,
//! written atomically after every object, so an uploader killed at any point resumes without
//! duplicating: a PUT that finds its key taken (412) checks that the stored object is ours
//! (same SHA-256) and records it as shipped. Spool files are never deleted here: a spool file
//! may only go once a signed manifest listing it is stored (format-spec/MANIFEST.md).
//!
//! Manifests: with a signing key, the uploader stores a signed manifest for what it shipped
//! at the end of a one-shot run, and with `--watch` once per period (also when nothing was
//! shipped: a heartbeat). A manifest is first written to the spool
//! (`.sealcast-manifest.pending.json` and `.sig`) and named in the state, then uploaded; only
//! then are the spool files it lists deleted and the chain advanced, so a crash at any point
//! resumes with the same manifest and never forks the chain.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use sealcast_format::names;
use sealcast_reader::spool::{self, Writer};
use sealcast_signer::SigningKey;

use crate::clock::Clock;
use crate::error::{Error, IoContext, Result};
use crate::layout;

use crate::multipart;

mod manifests;
use crate::object_store::{FileRange, ObjectStore, S3Store};
use crate::recording::{self, sha256_reader};
use crate::s3::{self, Backoff, S3Url};

pub use crate::object::{put_file, put_range, stored_sha256, LockMode, Occupied, Put, Retention};
pub use crate::spool_state::{
    spool_recordings, write_atomic, ChainState, OpenMark, PendingManifest, Shipped, State,
    StoredObject, PENDING_MANIFEST, STATE_FILE,
};

/// Uploader settings.
#[derive(Debug)]
pub struct Options {
    /// Spool directory (the recorder's `--dir`).
    pub spool: PathBuf,
    /// Destination bucket and prefix.
    pub dest: S3Url,
    /// Host name used in object keys (`recordings/<host>/…`).
    pub host: String,
    /// Endpoint override (`--endpoint-url`), else `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// Retention mode when the bucket has Object Lock.
    pub lock_mode: LockMode,
    /// Retention days when the bucket has Object Lock.
    pub lock_days: u32,
    /// Retries per object.
    pub backoff: Backoff,
    /// Keep running, scanning the spool every `poll`.
    pub watch: bool,
    /// Scan interval with `watch`.
    pub poll: Duration,
    /// Host key signing the manifests; without one no manifest is stored and spool files
    /// are kept.
    pub signing_key: Option<SigningKey>,
    /// Manifest period (heartbeat interval).
    pub period: Duration,
    /// Recordings of at least this many bytes go up as multipart uploads.
    pub multipart_threshold: u64,
    /// Part size of multipart uploads (S3: at least 5 MiB).
    pub part_size: u64,
    /// Parts of one multipart upload in flight at once (memory: this many parts).
    pub parallel_parts: usize,
    /// Ship the next segment of each live recording (what it recorded up to its last
    /// checkpoint since the previous segment) this often (`None`: only ship recordings once
    /// they close or their recorder died).
    pub segment_every: Option<Duration>,
    /// Idle time after which an unlocked recording without a receipt counts as abandoned by
    /// a dead recorder (SPEC §5.1; default [`spool::RECOVER_GRACE`]).
    pub recover_grace: Duration,
    /// Wall time: when segments and manifests are due, the period ends manifests sign,
    /// retain-until dates ([`crate::clock::SystemClock`] in production).
    pub clock: Arc<dyn Clock>,
}

/// What a spool recording is, for shipping (SPEC §5.1, MANIFEST.md "status").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Sealed: final checkpoint and receipt.
    Closed,
    /// Its recorder died: no receipt, lock free, idle.
    Recovered,
    /// Live: the next segment of its verifiable prefix.
    Open,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Closed => "closed",
            Kind::Recovered => "recovered",
            Kind::Open => "open",
        }
    }
}

/// Largest object one PUT may carry (S3: 5 GiB); a larger segment of a live recording is not
/// shipped (the recording ships when it closes).
const SINGLE_PUT_MAX: u64 = 5 << 30;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Recordings stored by this run.
    pub uploaded: usize,
    /// Recordings found already stored with our bytes (an earlier run died before saving state).
    pub already_stored: usize,
    /// Recordings shipped by earlier runs (skipped).
    pub previously_shipped: usize,
    /// Recordings still open (no seal receipt yet, recorder alive): shipped when they close.
    pub open: usize,
    /// Snapshots of live recordings stored by this run.
    pub segments: usize,
    /// Recordings whose recorder died, shipped whole by this run (also counted in
    /// `uploaded` or `already_stored`).
    pub recovered: usize,
    /// Recordings that failed (left in the spool; the run exits non-zero).
    pub failed: usize,
    /// Manifests stored.
    pub manifests: usize,
    /// Spool recordings deleted (listed by a stored manifest).
    pub deleted: usize,
}

/// The uploader over one object store (S3 in production: [`Uploader::new`]).
pub struct Uploader<S = S3Store> {
    store: S,
    opts: Options,
    retention: Option<Retention>,
    state: State,
}

impl Uploader<S3Store> {
    /// Connect to `opts.dest` (endpoint from `opts.endpoint`), then [`Uploader::with_store`].
    ///
    /// # Errors
    /// As [`Uploader::with_store`].
    pub async fn new(opts: Options) -> Result<Uploader<S3Store>> {
        let client = s3::client(opts.endpoint.as_deref()).await;
        let store = S3Store::new(client, opts.dest.clone(), opts.backoff);
        Uploader::with_store(opts, store).await
    }
}

impl<S: ObjectStore + Clone + 'static> Uploader<S> {
    /// Load the state (continuing the store's manifest chain when there is none), and probe
    /// the store's Object Lock once. `store` is rooted at `opts.dest`'s prefix.
    ///
    /// # Errors
    /// Bad host name, unreadable state, or a store that cannot be reached.
    pub async fn with_store(opts: Options, store: S) -> Result<Uploader<S>> {
        if !layout::is_safe_segment(&opts.host) {
            return Err(Error::Unsafe {
                what: "host name",
                value: opts.host.clone(),
                reason: "must be letters, digits, '.', '_' or '-'",
            });
        }
        let fresh = !opts.spool.join(STATE_FILE).exists();
        let mut state = State::load(&opts.spool)?;
        if let (true, Some(key)) = (fresh, &opts.signing_key) {
            // No state: continue the chain the bucket holds instead of forking it.
            let r = crate::rebuild::rebuild_chain(&store, &opts.host, key, &opts.spool).await?;
            if let Some(last) = &r.chain.last {
                eprintln!(
                    "sealcast upload: no state file: continuing the manifest chain after {} (seq {}); {} spool recordings it lists released",
                    last.key,
                    r.chain.next_seq - 1,
                    r.released.len()
                );
            }
            for f in [
                PENDING_MANIFEST.to_string(),
                format!("{PENDING_MANIFEST}.sig"),
            ] {
                let _ = fs::remove_file(opts.spool.join(f));
            }
            state.chain = r.chain;
            state.save(&opts.spool)?;
        }
        let locked = store.object_lock_enabled().await?;
        let retention = locked.then_some(Retention {
            mode: opts.lock_mode,
            days: opts.lock_days,
        });
        Ok(Uploader {
            store,
            opts,
            retention,
            state,
        })
    }

    /// Whether new objects get Object Lock retention.
    pub fn retention(&self) -> Option<Retention> {
        self.retention
    }

    /// The Object Lock of an object stored now (by the clock), when the store has it on.
    fn lock(&self) -> Option<crate::object_store::Lock> {
        self.retention.map(|r| r.lock(self.opts.clock.now_secs()))
    }

    /// The state as it stands.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// One pass over the spool: closed recordings (with a seal receipt) and recordings whose
    /// recorder died (SPEC §5.1) are shipped whole; live ones ship their next segment (up to
    /// their last checkpoint) when [`Options::segment_every`] says one is due.
    ///
    /// # Errors
    /// The spool cannot be listed or the state cannot be saved; per-recording failures are
    /// counted in the summary instead.
    pub async fn pass(&mut self) -> Result<Summary> {
        let mut sum = Summary::default();
        let spooled = spool_recordings(&self.opts.spool)?;
        self.state.open.retain(|name, _| {
            spooled
                .iter()
                .any(|p| p.file_name().and_then(|n| n.to_str()) == Some(name.as_str()))
        });
        for path in spooled {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if self.state.shipped.contains_key(&name) {
                sum.previously_shipped += 1;
                continue;
            }
            let kind = if names::receipt_path(&path).is_file() {
                Kind::Closed
            } else {
                let now = std::time::UNIX_EPOCH
                    + std::time::Duration::from_micros(self.opts.clock.now_us());
                match spool::writer_state(&path, self.opts.recover_grace, now) {
                    Ok(Writer::Gone) if !names::receipt_path(&path).is_file() => Kind::Recovered,
                    Ok(Writer::Gone) => Kind::Closed,
                    Ok(_) => {
                        sum.open += 1;
                        if !self.segment_due(&name) {
                            continue;
                        }
                        Kind::Open
                    }
                    Err(e) => {
                        eprintln!("sealcast upload: {}: {e}", path.display());
                        sum.failed += 1;
                        continue;
                    }
                }
            };
            match self.ship(&path, &name, kind).await {
                Ok(None) => {}
                Ok(Some(created)) => {
                    match kind {
                        Kind::Open => sum.segments += 1,
                        Kind::Recovered => sum.recovered += 1,
                        Kind::Closed => {}
                    }
                    if kind != Kind::Open {
                        if created {
                            sum.uploaded += 1;
                        } else {
                            sum.already_stored += 1;
                        }
                    }
                }
                Err(e) => {
                    eprintln!("sealcast upload: {}: {e}", path.display());
                    sum.failed += 1;
                }
            }
        }
        Ok(sum)
    }

    /// Whether a live recording is due for a segment: segments are on, and the last one
    /// (or the uploader's first sight of the file) is at least one interval old.
    fn segment_due(&mut self, name: &str) -> bool {
        let Some(every) = self.opts.segment_every else {
            return false;
        };
        let now = self.opts.clock.now_us();
        let mark = self.state.open.entry(name.to_string()).or_insert(OpenMark {
            lines: 0,
            at_us: now,
            end: 0,
        });
        mark.end != u64::MAX && now >= mark.at_us + every.as_micros() as u64
    }

    /// Ship one spool recording. Closed: the whole file and its receipt. Recovered: the whole
    /// file (torn tail included) without receipt. Open: the next segment, from where the last
    /// one ended to the end of its last checkpoint, under [`layout::segment_key`]. Returns
    /// whether this call stored the object, or `None` when there was nothing new to ship.
    async fn ship(&mut self, path: &Path, name: &str, kind: Kind) -> Result<Option<bool>> {
        let header = recording::read_header(path)?;
        let meta = header.sealcast.ok_or_else(|| Error::Recording {
            path: path.to_path_buf(),
            detail: "no sealcast header".into(),
        })?;
        let file_len = fs::metadata(path).at("stat", path)?.len();
        // What the entry claims: lines, head and end of the last checkpoint it covers.
        // `start`, `len`: the bytes shipped; `digest_len`: how many of them are digested
        // decompressed (the torn tail of a crashed recording does not decompress: what its
        // last checkpoint covers).
        let (claim, start, len, digest_len, receipt_path) = match kind {
            Kind::Closed => {
                let rp = names::receipt_path(path);
                let receipt = spool::read_receipt(&rp)?;
                (Some(receipt.checkpoint), 0, file_len, file_len, Some(rp))
            }
            Kind::Recovered => {
                let cp = spool::last_checkpoint(path)?;
                let end = cp.as_ref().map_or(0, |c| c.end);
                (cp.map(|c| c.checkpoint), 0, file_len, end, None)
            }
            Kind::Open => {
                let Some(cp) = spool::last_checkpoint(path)? else {
                    return Ok(None);
                };
                let from = self.state.open.get(name).map_or(0, |m| m.end);
                if cp.end <= from {
                    return Ok(None);
                }
                let len = cp.end - from;
                if len > SINGLE_PUT_MAX {
                    return Err(Error::SegmentTooLarge {
                        path: path.to_path_buf(),
                        len,
                    });
                }
                (Some(cp.checkpoint), from, len, len, None)
            }
        };
        let (sha, size) = recording::sha256_file_range(path, start, len)?;
        let (content_sha256, content_lines, _) =
            recording::content_digest_range(path, start, digest_len)?;
        let claimed_lines = claim.as_ref().map_or(0, |c| c.lines);
        let segment_first_line = self.state.open.get(name).map_or(0, |m| m.lines);
        let expected_lines = match kind {
            Kind::Open => claimed_lines.saturating_sub(segment_first_line),
            _ => claimed_lines,
        };
        if content_lines != expected_lines {
            eprintln!(
                "sealcast upload: {}: {content_lines} lines from byte {start}, its checkpoints cover {expected_lines}",
                path.display(),
            );
        }
        if !layout::is_safe_segment(&meta.session) {
            return Err(Error::Unsafe {
                what: "session id",
                value: meta.session.clone(),
                reason: "cannot be part of a key",
            });
        }
        let key = match kind {
            Kind::Open => layout::segment_key(
                &self.opts.dest.prefix,
                &self.opts.host,
                meta.start_us,
                &meta.session,
                start,
            ),
            _ => layout::recording_key(
                &self.opts.dest.prefix,
                &self.opts.host,
                meta.start_us,
                &meta.session,
            ),
        };
        let rel = self.rel(&key).to_string();
        let put = if kind != Kind::Open && size >= self.opts.multipart_threshold {
            multipart::put_multipart(
                &self.store,
                &rel,
                path,
                size,
                &sha,
                &multipart::MultipartOptions {
                    part_size: self.opts.part_size,
                    parallel_parts: self.opts.parallel_parts,
                    resume: Some(multipart::resume_record_path(&self.opts.spool, name)),
                },
                self.retention,
                &*self.opts.clock,
            )
            .await?
        } else {
            let range = FileRange {
                path,
                offset: start,
                len: size,
            };
            let put = put_range(&self.store, &rel, range, &sha, self.lock()).await;
            match put {
                Err(Error::Occupied(e)) if kind == Kind::Open => {
                    // Another run's segment with other bytes (its state was lost): no more
                    // segments for this recording; it ships whole when it closes.
                    eprintln!(
                        "sealcast upload: {}: {e}; no more segments of this live recording",
                        path.display()
                    );
                    let mark = self.state.open.entry(name.to_string()).or_default();
                    mark.end = u64::MAX;
                    self.state.save(&self.opts.spool)?;
                    return Ok(None);
                }
                other => other?,
            }
        };
        let (created, version_id) = match put {
            Put::Created(v) => (true, v),
            Put::AlreadyThere(v) => (false, v),
        };
        let receipt = match &receipt_path {
            None => None,
            Some(receipt_path) => {
                let rkey = layout::receipt_key(&key);
                let f = sealcast_reader::open_regular(receipt_path).map_err(|err| Error::Open {
                    path: receipt_path.clone(),
                    err,
                })?;
                let (rsha, rsize) = sha256_reader(f).at("read", receipt_path)?;
                let rrel = self.rel(&rkey);
                let rput =
                    put_file(&self.store, rrel, receipt_path, rsize, &rsha, self.lock()).await?;
                let rversion = match rput {
                    Put::Created(v) | Put::AlreadyThere(v) => v,
                };
                Some(StoredObject {
                    key: rkey,
                    version_id: rversion,
                    size: rsize,
                    sha256: hex::encode(rsha),
                })
            }
        };
        let entry_name = match kind {
            Kind::Open => format!("{name}#{start}"),
            _ => name.to_string(),
        };
        self.state.shipped.insert(
            entry_name,
            Shipped {
                file: name.to_string(),
                session: meta.session.clone(),
                user: meta.user.clone(),
                start_us: meta.start_us,
                recording: StoredObject {
                    key,
                    version_id,
                    size,
                    sha256: hex::encode(sha),
                },
                receipt,
                content_sha256: hex::encode(content_sha256),
                lines: claimed_lines,
                final_head: claim
                    .as_ref()
                    .map(|c| hex::encode(c.head))
                    .unwrap_or_default(),
                end_us: claim.as_ref().map(|c| c.time_us),
                status: kind.as_str().into(),
                offset: (kind == Kind::Open).then_some(start),
            },
        );
        match kind {
            Kind::Open => {
                self.state.open.insert(
                    name.to_string(),
                    OpenMark {
                        lines: claimed_lines,
                        at_us: self.opts.clock.now_us(),
                        end: start + len,
                    },
                );
            }
            _ => {
                self.state.open.remove(name);
            }
        }
        self.state.save(&self.opts.spool)?;
        Ok(Some(created))
    }
}

/// Run the uploader: one pass, or passes every `poll` forever with `watch`.
///
/// # Errors
/// Setup failures (bucket unreachable, bad state); per-recording failures are in the summary.
pub fn run(opts: Options) -> Result<Summary> {
    let rt = s3::runtime()?;
    rt.block_on(async move {
        let watch = opts.watch;
        let poll = opts.poll;
        let mut up = Uploader::new(opts).await?;
        if up.opts.signing_key.is_none() {
            eprintln!(
                "sealcast upload: no signing key: no manifests are stored and spool files are kept"
            );
        }
        up.finish_pending().await?;
        loop {
            let mut sum = up.pass().await?;
            let before = up.state.shipped.len();
            if up.manifest_due(up.opts.clock.now_us(), !watch) {
                up.emit_manifest(up.opts.clock.now_us()).await?;
                sum.manifests += 1;
                sum.deleted += before - up.state.shipped.len();
            }
            if !watch {
                return Ok(sum);
            }
            if sum.uploaded + sum.already_stored + sum.failed + sum.manifests > 0 {
                eprintln!(
                    "sealcast upload: {} uploaded, {} already stored, {} failed, {} manifests",
                    sum.uploaded, sum.already_stored, sum.failed, sum.manifests
                );
            }
            tokio::time::sleep(poll).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::object_store::MemoryStore;

    fn opts(spool: &Path, key: SigningKey, clock: Arc<ManualClock>) -> Options {
        Options {
            spool: spool.to_path_buf(),
            dest: S3Url::parse("s3://memory").unwrap(),
            host: "h1".into(),
            endpoint: None,
            lock_mode: LockMode::Compliance,
            lock_days: 1,
            backoff: Backoff::default(),
            watch: true,
            poll: Duration::from_secs(1),
            signing_key: Some(key),
            period: Duration::from_secs(300),
            multipart_threshold: u64::MAX,
            part_size: 5 << 20,
            parallel_parts: 1,
            segment_every: None,
            recover_grace: spool::RECOVER_GRACE,
            clock,
        }
    }

    /// Heartbeats follow the injected clock, not the system's: none within a period, one
    /// per period once it passed; each links to the one before and the chain verifies over
    /// the same in-memory store, with retention counted from the clock.
    #[test]
    fn heartbeats_follow_the_clock_and_the_chain_verifies() {
        let d = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let trust = sealcast_signer::TrustStore::single("h1", key.public());
        // 2026-01-01T00:00:00Z, far from the system's now: only the clock says when.
        let t0 = 1_767_225_600_000_000u64;
        let clock = Arc::new(ManualClock::new(t0));
        let store = MemoryStore::new(true);
        store.set_now((t0 / 1_000_000) as i64);
        let rt = crate::s3::runtime().unwrap();
        rt.block_on(async {
            let mut up = Uploader::with_store(opts(d.path(), key, clock.clone()), store.clone())
                .await
                .unwrap();
            // Nothing shipped and no manifest yet: with --watch, no manifest is due.
            assert!(!up.manifest_due(clock.now_us(), false));
            up.emit_manifest(clock.now_us()).await.unwrap();
            for step in [299, 1, 300] {
                clock.advance(Duration::from_secs(step));
                let due = up.manifest_due(clock.now_us(), false);
                assert_eq!(due, step != 299, "after {step} s more");
                if due {
                    up.emit_manifest(clock.now_us()).await.unwrap();
                }
            }
            assert_eq!(up.state().chain.next_seq, 3);
            let keys = store.keys();
            assert_eq!(keys.len(), 6, "3 manifests and their .sig: {keys:?}");
            let h = store.head(&keys[0], None).await.unwrap();
            assert_eq!(
                h.retention,
                Some(("COMPLIANCE".into(), (t0 / 1_000_000) as i64 + 86_400)),
                "retain-until counted from the clock"
            );
            let out = crate::verify::verify_store(
                &store,
                &trust,
                &crate::verify::Options {
                    host: "h1".into(),
                    since_us: None,
                    until_us: None,
                    max_lag: Duration::from_secs(3600),
                    state: None,
                    now_us: clock.now_us(),
                    progress: None,
                },
            )
            .await
            .unwrap();
            let bad: Vec<_> = out
                .findings
                .iter()
                .filter(|f| f.status != crate::verify::BucketStatus::Ok)
                .collect();
            assert!(bad.is_empty(), "{bad:?}");
            assert_eq!(out.head.unwrap().seq, 2);
            let m = crate::manifest::Manifest::parse(&store.current(&keys[4]).unwrap()).unwrap();
            assert_eq!(m.period_end_us, t0 + 600 * 1_000_000);
            assert_eq!(m.period_start_us, t0 + 300 * 1_000_000);
        });
    }
}
