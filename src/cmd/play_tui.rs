//! `sealcast play` on a terminal: the adapter between today's reading crate
//! (`sealcast_player::verify_bytes` and its `Report`) and the player (`sealcast-tui`), and
//! the start of the player.
//!
//! This is the only place the player touches `sealcast-player`: the player reads frames
//! itself (through `sealcast-format`) and receives verification as a
//! [`sealcast_tui::VerifySummary`]; each event's state (verified by checkpoint `seq`,
//! unsealed, failed) follows from `Report::verified_lines` (checkpoints cover whole frames,
//! SPEC §1). When the `reader` crate exists, this module is re-pointed at it.
//!
//! Exit codes: 0 after the user quits; 1 when the file is not a playable recording or
//! cannot be read (one line on stderr, the terminal untouched); 3 for bad options; 4 for a
//! library directory that cannot be listed and terminal I/O errors.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use sealcast_format::names;
use sealcast_reader::{verify_bytes, Report, Status};
use sealcast_signer::TrustStore;
use sealcast_tui::{Hooks, Library, Outcome, PlayerOptions, Recording, Start, VerifySummary};

use crate::cmd::verify::load_trust;
use crate::cmd::UsageError;
use crate::PlayArgs;

/// The player's view of a verification report.
pub fn summary(r: &Report) -> VerifySummary {
    let outcome = match r.status {
        Status::Ok => Outcome::Sealed,
        Status::UnsealedTail | Status::Unclosed => Outcome::Unsealed,
        Status::Format => Outcome::Unsigned,
        Status::Unreadable => Outcome::Unverifiable,
        _ => Outcome::Broken,
    };
    VerifySummary {
        outcome,
        status: r.status.as_str().to_string(),
        reason: r.reason.clone(),
        signer: r.signer.clone(),
        key_id: r.key_id.clone(),
        verified_lines: r.verified_lines,
    }
}

/// A summary saying the file could not be verified, and why.
fn unverifiable(why: String) -> VerifySummary {
    VerifySummary {
        outcome: Outcome::Unverifiable,
        status: "UNVERIFIED".into(),
        reason: why,
        signer: None,
        key_id: None,
        verified_lines: 0,
    }
}

/// Verify `path` (with its seal receipt when there is one) against `trust`.
pub fn verify_path(path: &Path, trust: &TrustStore) -> VerifySummary {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return summary(&Report::unreadable(e.to_string())),
    };
    let receipt_path = names::receipt_path(path);
    let receipt = match fs::read(&receipt_path) {
        Ok(r) => Some(r),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return unverifiable(format!("seal receipt {}: {e}", receipt_path.display())),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return summary(&verify_bytes(&[], receipt.as_deref(), trust));
    }
    // SAFETY: read-only private mapping of a recording (append-only while written).
    match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => summary(&verify_bytes(&m, receipt.as_deref(), trust)),
        Err(e) => summary(&Report::unreadable(e.to_string())),
    }
}

/// True while another process (the recorder) holds the file's `flock` (SPEC §5.1).
pub fn is_live(path: &Path) -> bool {
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; a shared non-blocking lock is released on close.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// The trust store for the badge: `--trusted`, else the dev trust file; `Err(why)` when
/// there is none (the player then says NOT VERIFIED, it still plays).
fn trust(explicit: Option<&Path>) -> Result<std::result::Result<TrustStore, String>> {
    match explicit {
        Some(p) => Ok(Ok(load_trust(Some(p))?.1)),
        None => Ok(match load_trust(None) {
            Ok((_, t)) => Ok(t),
            Err(e) => Err(format!("{e:#}")),
        }),
    }
}

/// Run the player (see the module docs).
///
/// # Errors
/// [`UsageError`] for bad options or an unusable `--trusted` file; I/O errors.
pub fn run(a: PlayArgs) -> Result<u8> {
    let at_us = match &a.at {
        None => None,
        Some(t) => Some(sealcast_tui::parse_time(t).ok_or_else(|| {
            UsageError(format!("--at: not a time: {t} (try 1h2m3s, 83.5, 1:02)"))
        })?),
    };
    if !(a.speed.is_finite() && a.speed > 0.0) {
        return Err(UsageError(format!(
            "--speed must be a positive number, not {}",
            a.speed
        ))
        .into());
    }
    let trust = Arc::new(trust(a.trusted.as_deref())?);
    let verify = {
        let trust = Arc::clone(&trust);
        Arc::new(move |p: &Path| match trust.as_ref() {
            Ok(t) => verify_path(p, t),
            Err(why) => unverifiable(why.clone()),
        })
    };
    let hooks = Hooks {
        verify,
        is_live: Arc::new(is_live),
    };
    let target = match a.file.clone() {
        Some(f) => f,
        None => {
            let archive = crate::paths::archive()?;
            if !archive.is_dir() {
                eprintln!(
                    "sealcast: no recordings: the archive {} does not exist (give a file or a directory)",
                    archive.display()
                );
                return Ok(1);
            }
            archive
        }
    };
    let start = if target.is_dir() {
        match Library::scan(&target) {
            Ok(l) => Start::Library(l),
            Err(e) => {
                eprintln!("sealcast: {}: {e}", target.display());
                return Ok(4);
            }
        }
    } else {
        let opened = if a.follow {
            Recording::open_live(&target)
        } else {
            Recording::open(&target)
        };
        match opened {
            Ok(r) => Start::Player(
                Box::new(r),
                PlayerOptions {
                    at_us,
                    follow: a.follow,
                    speed: Some(a.speed),
                    idle: a.idle_limit.is_some(),
                },
            ),
            Err(sealcast_tui::OpenError::Io { source, .. }) => {
                eprintln!("sealcast: {}: {source}", target.display());
                return Ok(1);
            }
            Err(e) => {
                eprintln!("sealcast: {}: {e}", target.display());
                return Ok(1);
            }
        }
    };
    sealcast_tui::run(start, hooks)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every test vector gets the badge its verification status calls for, through the real
    /// adapter (receipts included): tampering is Broken, a crash Unsealed, OK Sealed.
    #[test]
    fn vectors_map_to_badges() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors");
        let trust =
            TrustStore::parse(&fs::read_to_string(dir.join("allowed_signers")).unwrap()).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let mut n = 0;
        for (name, v) in expected.as_object().unwrap() {
            let s = verify_path(&dir.join(format!("{name}.cast.zst")), &trust);
            let status = v["status"].as_str().unwrap();
            assert_eq!(s.status, status, "{name}");
            let want = match status {
                "OK" => Outcome::Sealed,
                "UNSEALED_TAIL" | "UNCLOSED" => Outcome::Unsealed,
                "FORMAT" => Outcome::Unsigned,
                _ => Outcome::Broken,
            };
            assert_eq!(s.outcome, want, "{name}");
            n += 1;
        }
        assert!(n > 20);
    }
}
