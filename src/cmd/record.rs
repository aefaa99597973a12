//! `sealcast record`: run a command (default: the login shell) in a new PTY and write the
//! session as a sealed recording (SPEC §1–§5), then its seal receipt.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sealcast_format::{Header, SealMeta, SessionInfo, TermInfo};
use sealcast_recorder::pty::{PtySession, SessionSpec};
use sealcast_recorder::{
    archive, sys, CheckpointPolicy, Clock, SealedWriter, SyncedFile, SystemClock,
};
use sealcast_signer::{PublicKey, SigningKey};

use super::{keygen, UsageError};
use crate::{paths, RecordArgs};

/// Principal of the dev key in the dev trust file.
const DEV_PRINCIPAL: &str = "sealcast-dev";

/// Record one session. Returns the child's exit status (0–255; `128 + N` when killed by
/// signal N) as the process exit code.
///
/// # Errors
/// Usage errors (bad flags, existing `--out`), key errors, and I/O errors naming the path.
pub fn run(args: RecordArgs) -> Result<u8> {
    let policy = checkpoint_policy(&args)?;
    let host = match &args.host_id {
        Some(h) => {
            let h = sanitize_host(h);
            if h.is_empty() {
                return Err(UsageError("--host-id must not be empty".into()).into());
            }
            h
        }
        None => sanitize_host(&sys::hostname()),
    };
    let key = match &args.key {
        Some(p) => load_key(p)?,
        None => dev_key()?,
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
    let header = Header {
        version: 3,
        term: TermInfo {
            cols,
            rows,
            term_type: Some(term.clone()),
        },
        timestamp: Some((start_us / 1_000_000) as i64),
        idle_time_limit: None,
        command: (!args.command.is_empty()).then(|| shell_join(&args.command)),
        title: None,
        env: Some(BTreeMap::from([
            ("SHELL".to_string(), shell.to_string_lossy().into_owned()),
            ("TERM".to_string(), term),
        ])),
        sealcast: Some(SealMeta {
            format: 1,
            session,
            host,
            user: sys::user_name(),
            start_us,
            recorder: format!("sealcast {}", env!("CARGO_PKG_VERSION")),
            key_id: key.id().to_string(),
            capture_input: args.capture_input,
        }),
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
            archive::receipt_path(&path).display()
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
    if args.checkpoint_bytes == 0 {
        return Err(UsageError("--checkpoint-bytes must be positive".into()).into());
    }
    Ok(CheckpointPolicy {
        interval_us: ((secs * 1e6).round() as u64).max(1),
        max_bytes: args.checkpoint_bytes,
        zstd_level: args.zstd_level,
    })
}

/// Host ids contain no whitespace (SPEC §5): each whitespace character becomes `-`.
fn sanitize_host(h: &str) -> String {
    h.trim()
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect()
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

/// The dev key under the XDG data dir, created with its trust file on first use.
fn dev_key() -> Result<SigningKey> {
    let path = paths::dev_key()?;
    if path.exists() {
        return load_key(&path);
    }
    let dir = path.parent().context("dev key path has no parent")?;
    let created = match keygen::write_key_pair(dir, &keygen::default_comment()) {
        Ok(k) => k,
        // Another recorder created it meanwhile.
        Err(_) if path.exists() => return load_key(&path),
        Err(e) => return Err(e),
    };
    eprintln!(
        "sealcast: created dev key at {}",
        created.key_path.display()
    );
    let trust = paths::dev_trust()?;
    add_dev_trust(&trust, &created.key.public())?;
    eprintln!("sealcast: trust file at {}", trust.display());
    Ok(created.key)
}

/// Make the dev trust file list `key` for principal `sealcast-dev` (appending when the file
/// exists without it).
fn add_dev_trust(trust: &Path, key: &PublicKey) -> Result<()> {
    let key_text = key.to_openssh("");
    let existing = match fs::read_to_string(trust) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", trust.display())),
    };
    if existing.lines().any(|l| l.contains(&key_text)) {
        return Ok(());
    }
    if let Some(dir) = trust.parent() {
        keygen::create_private_dir(dir)?;
    }
    let mut line = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        line.push('\n');
    }
    line.push_str(&format!(
        "{DEV_PRINCIPAL} namespaces=\"{}\" {key_text}\n",
        sealcast_signer::RECORDING_NAMESPACE
    ));
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(trust)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .with_context(|| format!("writing {}", trust.display()))
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
    Ok(dir.join(format!("{session}.cast.zst")))
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

    #[test]
    fn host_ids_lose_whitespace() {
        assert_eq!(sanitize_host(" my host\tname "), "my-host-name");
    }
}
