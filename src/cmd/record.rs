//! `sealcast record`: run a command (default: the login shell) in a new PTY and write the
//! session as a sealed recording (SPEC §1–§5), then its seal receipt.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sealcast_config::MAX_CHECKPOINT_BYTES;
use sealcast_format::{names, Header, SealMeta, SessionInfo, TermInfo};
use sealcast_recorder::pty::{PtySession, SessionSpec};
use sealcast_recorder::{
    archive, sys, CheckpointPolicy, Clock, SealedWriter, SyncedFile, SystemClock,
};
use sealcast_signer::{PublicKey, SigningKey, TrustStore, RECORDING_NAMESPACE};

use super::{keygen, UsageError};
use crate::{paths, RecordArgs};

/// Record one session. Returns the child's exit status (0–255; `128 + N` when killed by
/// signal N) as the process exit code.
///
/// # Errors
/// Usage errors (bad flags, existing `--out`), key errors, and I/O errors naming the path.
pub fn run(args: RecordArgs) -> Result<u8> {
    let policy = checkpoint_policy(&args)?;
    let host = match &args.host_id {
        Some(h) => {
            let h = sealcast_format::host_id::sanitize(h);
            if h.is_empty() {
                return Err(UsageError("--host-id must not be empty".into()).into());
            }
            h
        }
        None => sys::default_host_id(),
    };
    let key = match &args.key {
        Some(p) => load_key(p)?,
        None => dev_key(&host)?,
    };
    let session = sealcast_signer::new_session_id().context("generating a session id")?;
    let path = output_path(&args, &session)?;

    // The local terminal (or whatever stdin/stdout are), unbuffered: the relay polls stdin's
    // descriptor and writes each output chunk with one write.
    let stdin = File::from(
        io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stdin")?,
    );
    let stdout = File::from(
        io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stdout")?,
    );
    let (cols, rows) = sys::initial_size(stdin.as_fd());
    let term = sys::default_term();
    let shell = sys::login_shell();

    let file = match archive::create_recording(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(UsageError(format!(
                "{} already exists; refusing to overwrite a recording",
                path.display()
            ))
            .into())
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    };

    let mut spec = SessionSpec::new(args.command.clone());
    spec.term = term.clone();
    spec.cols = cols;
    spec.rows = rows;
    spec.capture_input = args.capture_input;
    spec.session_id = session.clone();

    let clock = SystemClock::new();
    let start_us = clock.wall_us();
    let meta = SealMeta {
        capture_input: args.capture_input,
        ..SealMeta::new(
            session,
            host,
            sys::user_name(),
            start_us,
            format!("sealcast {}", env!("CARGO_PKG_VERSION")),
            key.id().to_string(),
        )
    };
    let header = Header {
        term: TermInfo {
            cols,
            rows,
            term_type: Some(term.clone()),
        },
        timestamp: Some((start_us / 1_000_000) as i64),
        command: (!args.command.is_empty()).then(|| shell_join(&args.command)),
        env: Some(BTreeMap::from([
            ("SHELL".to_string(), shell.to_string_lossy().into_owned()),
            ("TERM".to_string(), term),
        ])),
        ..Header::sealed(meta)
    };
    // The kernel audit ids join the recording to `ausearch --session` (SPEC §2.4.4).
    let audit = SessionInfo {
        audit_session: sys::audit_session_id(),
        loginuid: sys::login_uid(),
        ..SessionInfo::default()
    };
    let key_id = key.id();

    let pty = match PtySession::spawn(&spec) {
        Ok(p) => p,
        Err(e) => {
            // Nothing was recorded: do not leave an empty file behind.
            drop(file);
            let _ = fs::remove_file(&path);
            let what = if args.command.is_empty() {
                format!("login shell {}", shell.display())
            } else {
                format!("`{}`", shell_join(&args.command))
            };
            return Err(e).with_context(|| format!("starting {what}"));
        }
    };
    // The syncer thread starts only now: the child was forked before any thread existed.
    let writer = match SyncedFile::new(file)
        .and_then(|file| SealedWriter::with_session(file, key, &header, &audit, clock, policy))
    {
        Ok(w) => w,
        Err(e) => {
            drop(pty); // hangs up the child
            let _ = fs::remove_file(&path);
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
    };
    let outcome = pty
        .run(writer, stdin, stdout)
        .with_context(|| format!("recording to {}", path.display()))?;
    archive::write_receipt(&path, &outcome.receipt).with_context(|| {
        format!(
            "writing the seal receipt {}",
            names::receipt_path(&path).display()
        )
    })?;
    // A closed stdout (`sealcast record -- cmd | head`) ends the session quietly, as SIGPIPE
    // would; anything else is worth a word.
    if let Some(e) = outcome
        .stdout_error
        .as_ref()
        .filter(|e| e.kind() != io::ErrorKind::BrokenPipe)
    {
        eprintln!("sealcast: stdout failed, session hung up: {e}");
    }
    if !args.quiet {
        eprintln!(
            "sealcast: recording saved to {} ({} lines, sealed by key {})",
            path.display(),
            outcome.lines,
            key_id
        );
    }
    Ok(outcome.exit_code())
}

fn checkpoint_policy(args: &RecordArgs) -> Result<CheckpointPolicy> {
    let secs = args.checkpoint_secs;
    if !secs.is_finite() || secs <= 0.0 || secs > 1.0e6 {
        return Err(UsageError(format!(
            "--checkpoint-secs must be a positive number of seconds (at most 1000000), got {secs}"
        ))
        .into());
    }
    if args.checkpoint_bytes == 0 || args.checkpoint_bytes > MAX_CHECKPOINT_BYTES {
        return Err(UsageError(format!(
            "--checkpoint-bytes must be 1 to {MAX_CHECKPOINT_BYTES} (a data frame holds the \
             events between two checkpoints, and readers refuse frames over 16 MiB, SPEC §8)"
        ))
        .into());
    }
    Ok(CheckpointPolicy {
        interval_us: ((secs * 1e6).round() as u64).max(1),
        max_bytes: args.checkpoint_bytes,
        zstd_level: args.zstd_level,
    })
}

/// `argv` as one shell-style string: arguments made of safe characters as they are, others
/// single-quoted.
fn shell_join(argv: &[String]) -> String {
    fn quote(a: &str) -> Cow<'_, str> {
        let safe = |b: u8| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b);
        if !a.is_empty() && a.bytes().all(safe) {
            Cow::Borrowed(a)
        } else {
            Cow::Owned(format!("'{}'", a.replace('\'', r"'\''")))
        }
    }
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

fn load_key(path: &Path) -> Result<SigningKey> {
    let bytes =
        fs::read(path).with_context(|| format!("reading signing key {}", path.display()))?;
    SigningKey::from_file_bytes(&bytes)
        .with_context(|| format!("loading signing key {}", path.display()))
}

/// The dev key under the XDG data dir, created on first use, with the dev trust file made to
/// trust it for `host`, the host id this recording gets (SPEC §6: a key signs only for the
/// hosts its principals name).
fn dev_key(host: &str) -> Result<SigningKey> {
    let path = paths::dev_key()?;
    let key = if path.exists() {
        load_key(&path)?
    } else {
        let dir = path.parent().context("dev key path has no parent")?;
        match keygen::write_key_pair(dir, &keygen::default_comment()) {
            Ok(k) => {
                eprintln!("sealcast: created dev key at {}", k.key_path.display());
                k.key
            }
            // Another recorder created it meanwhile.
            Err(_) if path.exists() => load_key(&path)?,
            Err(e) => return Err(e),
        }
    };
    let trust = paths::dev_trust()?;
    if add_dev_trust(&trust, &key.public(), host)? {
        eprintln!(
            "sealcast: trust file {} lets the dev key sign for host {host}",
            trust.display()
        );
    }
    Ok(key)
}

/// Make the dev trust file let `key` sign recordings for host id `host` now, appending
/// `<host> namespaces="sealcast" <key>` when no line does yet (also when a file from before
/// keys were bound to hosts names the dev key for principal `sealcast-dev` only). Returns
/// whether it appended. A host id that cannot be written as a principal (it holds `,`, starts
/// with `!` or `#`) is left out with a warning: `verify` then reports `WRONG_SIGNER`.
fn add_dev_trust(trust: &Path, key: &PublicKey, host: &str) -> Result<bool> {
    let existing = match fs::read_to_string(trust) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", trust.display())),
    };
    let now = SystemClock::new().wall_us();
    let allows = |text: &str| {
        TrustStore::parse(text)
            .is_ok_and(|t| t.lookup(&key.id(), RECORDING_NAMESPACE, host, now).is_ok())
    };
    if allows(&existing) {
        return Ok(false);
    }
    let entry = format!(
        "{host} namespaces=\"{RECORDING_NAMESPACE}\" {}\n",
        key.to_openssh("")
    );
    if !allows(&entry) {
        eprintln!(
            "sealcast: warning: host id {host:?} cannot be an allowed_signers principal; \
             {} does not trust the dev key for it",
            trust.display()
        );
        return Ok(false);
    }
    if let Some(dir) = trust.parent() {
        keygen::create_private_dir(dir)?;
    }
    let mut line = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        line.push('\n');
    }
    line.push_str(&entry);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(trust)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .with_context(|| format!("writing {}", trust.display()))?;
    Ok(true)
}

/// Where the recording goes: `--out FILE`, else `DIR/<session>.cast.zst` for `--dir DIR` or
/// the archive directory (created 0700 when missing).
fn output_path(args: &RecordArgs, session: &str) -> Result<PathBuf> {
    if let Some(out) = &args.out {
        return Ok(out.clone());
    }
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => paths::archive()?,
    };
    keygen::create_private_dir(&dir)?;
    Ok(dir.join(names::recording_name(session)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_quotes_only_what_needs_it() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(shell_join(&v(&["ls", "-l", "/tmp"])), "ls -l /tmp");
        assert_eq!(shell_join(&v(&["sh", "-c", "exit 7"])), "sh -c 'exit 7'");
        assert_eq!(shell_join(&v(&["echo", "it's", ""])), r"echo 'it'\''s' ''");
    }

    /// A larger value made frames readers refuse (FORMAT) out of a real session.
    #[test]
    fn checkpoint_bytes_keep_frames_under_the_limit() {
        use clap::Parser;
        let policy = |n: u64| {
            let cli = crate::Cli::try_parse_from([
                "sealcast",
                "record",
                "--checkpoint-bytes",
                &n.to_string(),
            ])
            .unwrap();
            match cli.command {
                crate::Command::Record(a) => checkpoint_policy(&a).map(|p| p.max_bytes),
                _ => unreachable!(),
            }
        };
        assert_eq!(policy(MAX_CHECKPOINT_BYTES).unwrap(), 8 << 20);
        for bad in [0, MAX_CHECKPOINT_BYTES + 1, 32 << 20] {
            let e = policy(bad).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_some(), "{bad}: {e}");
        }
        assert!(MAX_CHECKPOINT_BYTES + (1 << 20) < sealcast_format::MAX_FRAME_CONTENT as u64);
    }

    #[test]
    fn dev_trust_follows_the_host_id() {
        let dir = tempfile::tempdir().unwrap();
        let trust = dir.path().join("allowed_signers");
        let key = SigningKey::generate().unwrap().public();
        // A trust file from before host binding: principal sealcast-dev.
        fs::write(
            &trust,
            format!(
                "sealcast-dev namespaces=\"sealcast\" {}",
                key.to_openssh("")
            ),
        )
        .unwrap();
        assert!(add_dev_trust(&trust, &key, "laptop").unwrap());
        assert!(!add_dev_trust(&trust, &key, "laptop").unwrap(), "once");
        assert!(add_dev_trust(&trust, &key, "other-host").unwrap());
        assert!(!add_dev_trust(&trust, &key, "a,b").unwrap());
        let text = fs::read_to_string(&trust).unwrap();
        let t = TrustStore::parse(&text).unwrap();
        for host in ["laptop", "other-host"] {
            assert!(
                t.lookup(&key.id(), RECORDING_NAMESPACE, host, 0).is_ok(),
                "{text}"
            );
        }
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.ends_with('\n'));
    }
}
