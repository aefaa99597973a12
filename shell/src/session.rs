//! One run of sealcast-shell, from `argv` to the exit code.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sealcast_config::{Config, Source, TransferPolicy};
use sealcast_format::{names, Header, SealMeta, SessionInfo, TermInfo};
use sealcast_recorder::cmdmeta::hooks::ShellMode;
use sealcast_recorder::cmdmeta::observe::{self, CommandObserver, Prepared};
use sealcast_recorder::pipes::{ByteCounts, Payload, PipeOptions, PipeSession};
use sealcast_recorder::pty::PtySession;
use sealcast_recorder::relay::{NoObserver, Observer};
use sealcast_recorder::spawn::{ForkHook, GroupSignaller};
use sealcast_recorder::{
    archive, sys, CheckpointPolicy, ChildCommand, Clock, Durable, FailOpen, SealedWriter,
    SyncedFile, SystemClock, WriteEvent,
};
use sealcast_signer::SigningKey;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tracing::{error, info, warn};

use crate::classify::{classify, ssh_endpoints, Context, Invocation, Shape, TransferPrograms};
use crate::db::{DbError, DbSessions, ProxyObserver};
use crate::env::{child_env, lossy, printable, shell_arg0, transfer_env, User};
use crate::log::AUDIT;
use crate::nested::recorder_ancestor;
use crate::privs::Privileges;

/// Exit code of every refusal and failure of sealcast-shell itself (bad configuration,
/// recording unavailable under `fail_closed`, transfer denied, recording failed
/// mid-session, command could not be started). Otherwise the exit code is the session's:
/// the command's exit status, `128 + N` when it was killed by signal N.
pub const EXIT_FAILURE: u8 = 1;

/// Where the recording goes.
enum Spool {
    /// `fail_closed`: errors reach the writer, which ends the session.
    Closed(SyncedFile),
    /// `fail_open`: errors are logged once, then the session goes on unrecorded.
    Open(FailOpen<SyncedFile>),
    /// No recording could be created and `fail_closed` is off.
    Off(io::Sink),
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Spool::Closed(f) => f.write(buf),
            Spool::Open(f) => f.write(buf),
            Spool::Off(s) => s.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Spool::Closed(f) => f.write_all(buf),
            Spool::Open(f) => f.write_all(buf),
            Spool::Off(s) => s.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Spool::Closed(f) => f.flush(),
            Spool::Open(f) => f.flush(),
            Spool::Off(s) => s.flush(),
        }
    }
}

impl Durable for Spool {
    fn sync(&mut self) -> io::Result<()> {
        match self {
            Spool::Closed(f) => f.sync(),
            Spool::Open(f) => f.sync(),
            Spool::Off(s) => s.sync(),
        }
    }
    fn sync_final(&mut self) -> io::Result<()> {
        match self {
            Spool::Closed(f) => f.sync_final(),
            Spool::Open(f) => f.sync_final(),
            Spool::Off(s) => s.sync_final(),
        }
    }
}

type Writer = SealedWriter<Spool, SystemClock>;

/// A message for the user on stderr, one line (CR LF when stderr is a terminal that may be
/// in raw mode).
fn say(msg: &str) {
    let stderr = io::stderr();
    let eol = if sys::is_tty(stderr.as_fd()) {
        "\r\n"
    } else {
        "\n"
    };
    let _ = stderr.lock().write_all(format!("{msg}{eol}").as_bytes());
}

/// Run sealcast-shell with this `argv` and environment; returns the process exit code.
pub fn run(argv: Vec<OsString>, env_list: Vec<(OsString, OsString)>) -> u8 {
    // Until a session runner takes over, hangups and terminations are held (and replayed to
    // the runner), so a client that disconnects at once still leaves a closed recording.
    let early_signals = signal_hook::iterator::Signals::new([SIGHUP, SIGTERM, SIGINT]).ok();
    let privs = match Privileges::detect() {
        Ok(p) => p,
        Err(e) => {
            say(&format!("sealcast: {e}"));
            return EXIT_FAILURE;
        }
    };
    crate::log::init();
    let inv = match Invocation::parse(&argv) {
        Ok(i) => i,
        Err(e) => {
            say(&format!("sealcast: {e}"));
            error!(target: AUDIT, "bad command line: {e}");
            return EXIT_FAILURE;
        }
    };
    let source = Source::from_flag(inv.config.clone());
    let (cfg, cfg_path) = match source.load_trusted(&privs.trusted_owners()) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("sealcast: {e}"));
            error!(target: AUDIT, "{e}");
            return EXIT_FAILURE;
        }
    };
    if inv.check_config {
        return check_config(&cfg, cfg_path.as_deref(), &privs.trusted_owners());
    }
    if !privs.setuid() {
        info!("not installed set-uid: running unprivileged (no user switch)");
    }
    let env: HashMap<OsString, OsString> = env_list.iter().cloned().collect();
    let Some(pw) = sys::current_user() else {
        say(&format!(
            "sealcast: uid {} has no passwd entry; session refused",
            privs.user
        ));
        error!(target: AUDIT, uid = privs.user, "no passwd entry; session refused");
        return EXIT_FAILURE;
    };
    if !login_shell_is_this_binary(&pw.shell) {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "sealcast-shell".into());
        let shell = printable(pw.shell.as_os_str());
        if cfg.allow_foreign_login_shell {
            warn!(target: AUDIT, user = %pw.name, login_shell = %shell,
                  "login shell {shell} is not this sealcast-shell ({exe}); session allowed by \
                   allow_foreign_login_shell (UNSAFE: the login shell may have run the user's \
                   files unrecorded before sealcast-shell started)");
        } else {
            say(&format!(
                "sealcast: session refused: the login shell of {} is {shell}, not sealcast-shell \
                 ({exe}); this setup cannot be recorded",
                pw.name
            ));
            error!(target: AUDIT, user = %pw.name, login_shell = %shell,
                   "session refused: login shell {shell} is not this sealcast-shell ({exe}): \
                    with ForceCommand alone sshd runs `{shell} -c <ForceCommand>`, which may run \
                    the user's files (~/.bashrc, ~/.zshenv) unrecorded before sealcast-shell \
                    starts; make it the login shell (usermod -s {exe} {}) or set \
                    allow_foreign_login_shell", pw.name);
            return EXIT_FAILURE;
        }
    }
    let user = User {
        name: pw.name,
        home: pw.home,
    };
    let stdin_tty = sys::is_tty(io::stdin().as_fd());
    let ctx = Context {
        stdin_tty,
        programs: TransferPrograms::from_config(&cfg),
    };
    let shape = classify(&inv, &env, &ctx);

    if let Some(pid) = recorder_ancestor(&env, &privs) {
        let id = env
            .get(OsStr::new("SEALCAST_SESSION"))
            .map(|s| lossy(s))
            .unwrap_or_default();
        info!(
            session = %id,
            user = %user.name,
            shape = shape.name(),
            recorder = pid,
            "nested session: running without a second recording"
        );
        if let Shape::Db { .. } | Shape::DbRefused { .. } = &shape {
            // Inside a session the proxies already run: `psql service=<target>`.
            say(
                "sealcast: db session refused: already inside a recorded session; use \
                 `psql service=<target>` or `mariadb --defaults-group-suffix=_<target>`",
            );
            return EXIT_FAILURE;
        }
        // The same command as a recorded session would run, under the outer session's id.
        let cmd = child_command(&cfg, &shape, &user, &env_list, &privs, &id);
        drop(early_signals);
        let err = cmd.exec();
        say(&format!(
            "sealcast: cannot start {}: {err}",
            cmd.program.display()
        ));
        return EXIT_FAILURE;
    }

    Session {
        cfg,
        privs,
        user,
        env,
        env_list,
        shape,
        stdin_tty,
        early_signals,
        db: None,
    }
    .run()
}

/// `--check-config`: the configuration parsed; the key loads; the spool directory is a
/// directory this process can write to; each transfer program (`scp_path`, `rsync_path`,
/// `sftp_server`) passes the trusted-path check that sessions apply before running one
/// (SPEC §10.1) — one that is not installed is only a warning (its transfers fail), since
/// only `owners` could create it where every directory on the way is theirs. Each `[db.*]`
/// target: its `client` is an executable file, its CA file loads and an injected credentials
/// file is owned by the service user (or root), mode 0600 and parses (SPEC §10.3).
fn check_config(cfg: &Config, path: Option<&Path>, owners: &[u32]) -> u8 {
    let from = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| format!("{} absent, defaults", sealcast_config::DEFAULT_CONFIG));
    let key = match load_key(cfg.key()) {
        Ok(k) => k,
        Err(e) => {
            say(&format!("sealcast: configuration error: {e}"));
            return EXIT_FAILURE;
        }
    };
    if let Err(e) = writable_dir(cfg.spool_dir()) {
        say(&format!(
            "sealcast: configuration error: spool_dir {}: {e}",
            cfg.spool_dir().display()
        ));
        return EXIT_FAILURE;
    }
    for (key, program) in [
        ("scp_path", &cfg.scp_path),
        ("rsync_path", &cfg.rsync_path),
        ("sftp_server", &cfg.sftp_server),
    ] {
        match sealcast_config::check_trusted_path(program, owners) {
            Ok(_) => {}
            Err(e) if e.is_not_found() => say(&format!(
                "sealcast-shell: warning: {key} {}: not installed ({e}); these transfers will fail",
                program.display()
            )),
            Err(e) => {
                say(&format!(
                    "sealcast: configuration error: {key} {}: not a trusted program: {e}",
                    program.display()
                ));
                return EXIT_FAILURE;
            }
        }
    }
    for (name, t) in &cfg.db {
        // The client a `db <name>` session runs must exist as an executable file.
        let client = t.client();
        let usable = fs::metadata(client)
            .map(|m| m.is_file() && m.mode() & 0o111 != 0)
            .unwrap_or(false);
        if !usable {
            say(&format!(
                "sealcast: configuration error: [db.{name}] client {}: not an executable file",
                client.display()
            ));
            return EXIT_FAILURE;
        }
        // As a session would: the CA file, and the injected credentials file read as the
        // service user (owner and mode checked).
        if let Err(e) = sealcast_dbproxy::relay::Proxy::new(name, t.clone(), 0) {
            say(&format!("sealcast: configuration error: [db.{name}]: {e}"));
            return EXIT_FAILURE;
        }
    }
    println!(
        "sealcast-shell: configuration OK ({from}); key {}; spool {}",
        key.id(),
        cfg.spool_dir().display()
    );
    0
}

/// Whether `shell` (the user's passwd login shell) is the file this process runs: the same
/// device and inode as `/proc/self/exe`, symbolic links followed. When it is, sshd started
/// sealcast-shell itself (directly, or with `-c <ForceCommand>`), so nothing of the user's
/// ran first; when it is not — ForceCommand through another login shell — the login shell
/// may already have run files the user controls, unrecorded (SPEC §10.2). Anything that
/// cannot be checked (an empty or missing shell) counts as not this binary.
fn login_shell_is_this_binary(shell: &Path) -> bool {
    match (fs::metadata("/proc/self/exe"), fs::metadata(shell)) {
        (Ok(me), Ok(s)) => {
            !shell.as_os_str().is_empty() && me.dev() == s.dev() && me.ino() == s.ino()
        }
        _ => false,
    }
}

fn writable_dir(dir: &Path) -> io::Result<()> {
    if !fs::metadata(dir)?.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("path contains NUL"))?;
    // SAFETY: valid NUL-terminated path; checks with the effective ids (AT_EACCESS).
    if unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn load_key(path: &Path) -> Result<SigningKey, String> {
    let bytes =
        fs::read(path).map_err(|e| format!("reading signing key {}: {e}", path.display()))?;
    SigningKey::from_file_bytes(&bytes)
        .map_err(|e| format!("loading signing key {}: {e}", path.display()))
}

/// The command for the session: the configured shell — as a login shell (`-bash`) without a
/// command, as `bash -c CMD` with one — or, for a transfer, its configured program with the
/// de-quoted arguments, executed directly (no shell, so nothing in the command but those
/// arguments reaches anything; SPEC §10.1) with the reduced environment of
/// [`transfer_env`]. Runs as the user (when set-uid) in their home directory with the rebuilt
/// environment.
fn child_command(
    cfg: &Config,
    shape: &Shape,
    user: &User,
    env_list: &[(OsString, OsString)],
    privs: &Privileges,
    session_id: &str,
) -> ChildCommand {
    let term = shape.uses_pty().then(|| pty_term(env_list));
    let mut cmd = ChildCommand::new(&cfg.shell);
    let env = child_env(cfg, user, env_list, term.as_deref(), session_id);
    match shape {
        Shape::Transfer { transfer, .. } => {
            cmd.program = transfer.program.clone();
            cmd.args = transfer.args.clone();
            cmd.env = transfer_env(env);
        }
        Shape::Exec { cmd: c } | Shape::ExecPty { cmd: c } => {
            cmd.arg0 = Some(shell_arg0(&cfg.shell, false));
            cmd.args = vec!["-c".into(), c.clone()];
            cmd.env = env;
        }
        Shape::Interactive | Shape::ShellNoPty => {
            cmd.arg0 = Some(shell_arg0(&cfg.shell, true));
            cmd.env = env;
        }
        Shape::Db { target, .. } => {
            // The client by argv, no shell; its socket arguments come from the session's
            // proxy ([`DbSessions::client_args`]).
            cmd.program = cfg
                .db
                .get(target)
                .map(|t| t.client().to_path_buf())
                .unwrap_or_else(|| PathBuf::from("/nonexistent/db-client"));
            cmd.env = env;
        }
        Shape::DbRefused { .. } => {
            // Never started: the session is refused before anything runs.
            cmd.program = PathBuf::from("/nonexistent/refused");
            cmd.env = env;
        }
    }
    cmd.cwd = Some(user.home.clone());
    cmd.uid = privs.setuid().then_some(privs.user);
    cmd
}

/// `TERM` for a PTY session: sshd's (the client's), else `xterm-256color`.
fn pty_term(env_list: &[(OsString, OsString)]) -> String {
    env_list
        .iter()
        .rev()
        .find(|(k, _)| k == "TERM")
        .and_then(|(_, v)| v.to_str())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("xterm-256color")
        .to_string()
}

struct Session {
    cfg: Config,
    privs: Privileges,
    user: User,
    env: HashMap<OsString, OsString>,
    env_list: Vec<(OsString, OsString)>,
    shape: Shape,
    stdin_tty: bool,
    early_signals: Option<signal_hook::iterator::Signals>,
    /// The database proxies of the session (SPEC §10.3), started with the writer loop.
    db: Option<DbSessions>,
}

/// A recording being written (or not, when unavailable under fail-open).
struct Recording {
    path: Option<PathBuf>,
    writer: Writer,
}

impl Session {
    fn policy(&self) -> Option<TransferPolicy> {
        matches!(self.shape, Shape::Transfer { .. }).then_some(self.cfg.transfer_policy)
    }

    /// Whether the payload of this session is recorded (not a metadata-only transfer).
    fn payload(&self) -> Payload {
        match self.policy() {
            Some(TransferPolicy::Metadata) | Some(TransferPolicy::Deny) => Payload::CountOnly,
            _ => Payload::Record,
        }
    }

    fn run(mut self) -> u8 {
        let session = match sealcast_signer::new_session_id() {
            Ok(s) => s,
            Err(e) => {
                say(&format!(
                    "sealcast: recording unavailable (session id: {e}); session refused"
                ));
                error!(target: AUDIT, "session id: {e}");
                return EXIT_FAILURE;
            }
        };
        let shape_name = self.shape.name();
        let (cols, rows) = sys::initial_size(io::stdin().as_fd());

        if self.policy() == Some(TransferPolicy::Deny) {
            return self.deny(&session, cols, rows);
        }
        if let Shape::DbRefused { reason, .. } = &self.shape {
            let reason = reason.clone();
            return self.refuse_db(&session, cols, rows, &reason);
        }
        if let Err(e) = self.prepare_db(&session) {
            return self.refuse_db(&session, cols, rows, &e.to_string());
        }

        let rec = match self.open_recording(&session, cols, rows) {
            Ok(r) => r,
            Err(reason) if self.cfg.fail_closed => {
                say(&format!(
                    "sealcast: recording unavailable ({reason}); session refused"
                ));
                error!(target: AUDIT, session = %session, user = %self.user.name,
                       shape = shape_name, "recording unavailable ({reason}); session refused");
                return EXIT_FAILURE;
            }
            Err(reason) => {
                say(&format!(
                    "sealcast: warning: recording unavailable ({reason}); session NOT recorded"
                ));
                error!(target: AUDIT, session = %session, user = %self.user.name,
                       shape = shape_name,
                       "recording unavailable ({reason}); fail_closed is off: session runs UNRECORDED");
                match self.unrecorded_writer(&session, cols, rows) {
                    Ok(w) => Recording {
                        path: None,
                        writer: w,
                    },
                    Err(e) => {
                        say(&format!("sealcast: {e}"));
                        return EXIT_FAILURE;
                    }
                }
            }
        };
        let path_text = rec
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into());
        let cmd = child_command(
            &self.cfg,
            &self.shape,
            &self.user,
            &self.env_list,
            &self.privs,
            &session,
        );
        let mut cmd = cmd;
        if let Some(db) = &self.db {
            if matches!(self.shape, Shape::Db { .. }) {
                cmd.args = db.client_args();
            }
            cmd.env.extend(db.env());
        }
        let (cmd, prepared) = self.with_hooks(cmd, &session);
        info!(
            session = %session,
            user = %self.user.name,
            shape = shape_name,
            path = %path_text,
            command = %self.shape.command().map(printable).unwrap_or_default(),
            "session start"
        );
        let result = if self.shape.uses_pty() {
            self.run_pty(&cmd, rec.writer, cols, rows, prepared)
        } else {
            self.run_pipes(&cmd, rec.writer, prepared)
        };
        match result {
            Ok((code, sink, receipt)) => {
                self.store_receipt(rec.path.as_deref(), sink, &receipt);
                info!(
                    session = %session,
                    user = %self.user.name,
                    shape = shape_name,
                    path = %path_text,
                    status = code,
                    "session end"
                );
                code
            }
            Err(Failure::Start(e, closed)) => {
                if let Some((sink, receipt)) = closed {
                    self.store_receipt(rec.path.as_deref(), sink, &receipt);
                }
                say(&format!(
                    "sealcast: cannot start {}: {e}",
                    cmd.program.display()
                ));
                error!(target: AUDIT, session = %session, user = %self.user.name,
                       shape = shape_name, path = %path_text,
                       "cannot start {}: {e}", cmd.program.display());
                EXIT_FAILURE
            }
            Err(Failure::Recording(e)) => {
                say(&format!("sealcast: recording failed ({e}); session ended"));
                error!(target: AUDIT, session = %session, user = %self.user.name,
                       shape = shape_name, path = %path_text,
                       "recording failed ({e}); session ended (fail_closed)");
                EXIT_FAILURE
            }
        }
    }

    /// Command-level metadata (SPEC §2.4): an interactive login shell that is bash or zsh
    /// starts with hooks (argv and environment from the plan; the hook directory under
    /// `/tmp`, owned by this process's effective user, so the user can read but not change
    /// it). Every other shape runs `cmd` unchanged, observed by the proc source only.
    fn with_hooks(&self, mut cmd: ChildCommand, session: &str) -> (ChildCommand, Prepared) {
        if !matches!(self.shape, Shape::Interactive) {
            return (cmd, Prepared::without_hooks());
        }
        let zdotdir = cmd
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "ZDOTDIR")
            .map(|(_, v)| v.clone());
        let prepared = observe::prepare(
            &self.cfg.shell,
            ShellMode::Interactive { login: true },
            Path::new("/tmp"),
            zdotdir.as_deref(),
        );
        if let Some(e) = &prepared.hooks_error {
            warn!(target: AUDIT, session = %session, user = %self.user.name,
                  "no shell hooks for this session (processes are still observed): {e}");
        }
        if let Some(plan) = &prepared.plan {
            cmd.arg0 = Some(plan.arg0.clone());
            cmd.args.clone_from(&plan.args);
            cmd.env.extend(plan.env.iter().cloned());
        }
        (cmd, prepared)
    }

    fn header(
        &self,
        session: &str,
        cols: u16,
        rows: u16,
        key: &SigningKey,
        start_us: u64,
    ) -> (Header, SessionInfo) {
        let term = self.shape.uses_pty().then(|| pty_term(&self.env_list));
        let mut env = BTreeMap::from([("SHELL".to_string(), self.cfg.shell.display().to_string())]);
        if let Some(t) = &term {
            env.insert("TERM".into(), t.clone());
        }
        let host = self
            .cfg
            .host_id
            .clone()
            .unwrap_or_else(sys::default_host_id);
        let command = self.shape.command().map(lossy);
        let meta = SealMeta {
            capture_input: self.cfg.capture_input && self.payload() == Payload::Record,
            ..SealMeta::new(
                session,
                host,
                self.user.name.clone(),
                start_us,
                format!("sealcast-shell {}", env!("CARGO_PKG_VERSION")),
                key.id().to_string(),
            )
        };
        let header = Header {
            term: TermInfo {
                cols,
                rows,
                term_type: term,
            },
            timestamp: Some((start_us / 1_000_000) as i64),
            command: command.clone(),
            env: Some(env),
            ..Header::sealed(meta)
        };
        let endpoints = ssh_endpoints(&self.env);
        let info = SessionInfo {
            shape: Some(self.shape.name().to_string()),
            ssh_client: endpoints.as_ref().map(|e| e.0.clone()),
            ssh_server: endpoints.map(|e| e.1),
            original_command: command,
            policy: self.policy().map(|p| p.as_str().to_string()),
            audit_session: sys::audit_session_id(),
            loginuid: sys::login_uid(),
        };
        (header, info)
    }

    fn checkpoint_policy(&self) -> CheckpointPolicy {
        CheckpointPolicy {
            interval_us: self.cfg.checkpoint_secs * 1_000_000,
            max_bytes: self.cfg.checkpoint_bytes,
            ..CheckpointPolicy::default()
        }
    }

    /// Load the key, create `<spool>/<session>.cast.zst` and write its header and checkpoint
    /// 0 — all before the child exists. Returns a one-line reason on failure.
    fn open_recording(&self, session: &str, cols: u16, rows: u16) -> Result<Recording, String> {
        let key = load_key(self.cfg.key())?;
        let path = self.cfg.spool_dir().join(names::recording_name(session));
        let file = archive::create_recording(&path)
            .map_err(|e| format!("creating {}: {e}", path.display()))?;
        let clock = SystemClock::new();
        let (header, info) = self.header(session, cols, rows, &key, clock.wall_us());
        let sink = SyncedFile::new(file).map_err(|e| format!("{}: {e}", path.display()))?;
        let spool = if self.cfg.fail_closed {
            Spool::Closed(sink)
        } else {
            let shown = path.display().to_string();
            Spool::Open(FailOpen::new(
                sink,
                Box::new(move |e: &io::Error| {
                    say(&format!(
                        "sealcast: warning: recording failed ({e}); the session continues UNRECORDED"
                    ));
                    error!(target: AUDIT, path = %shown,
                           "recording failed ({e}); fail_closed is off: session continues UNRECORDED");
                }),
            ))
        };
        match SealedWriter::with_session(
            spool,
            key,
            &header,
            &info,
            clock,
            self.checkpoint_policy(),
        ) {
            Ok(writer) => Ok(Recording {
                path: Some(path),
                writer,
            }),
            Err(e) => {
                // Nothing verifiable was written: leave no empty or partial file behind.
                let _ = fs::remove_file(&path);
                Err(format!("writing {}: {e}", path.display()))
            }
        }
    }

    /// A writer into nothing, for a session that runs unrecorded (fail-open).
    fn unrecorded_writer(&self, session: &str, cols: u16, rows: u16) -> Result<Writer, String> {
        let key = SigningKey::generate().map_err(|e| format!("internal error: {e}"))?;
        let clock = SystemClock::new();
        let (header, info) = self.header(session, cols, rows, &key, clock.wall_us());
        SealedWriter::with_session(
            Spool::Off(io::sink()),
            key,
            &header,
            &info,
            clock,
            self.checkpoint_policy(),
        )
        .map_err(|e| format!("internal error: {e}"))
    }

    /// The database proxies of this session (SPEC §10.3): for `db <target>` that one target,
    /// which the user must be allowed to use and which must load; for a shell session every
    /// target the user may use (one that fails is logged and left out). Runs before the
    /// child exists, as the service user (see [`crate::db`]).
    ///
    /// # Errors
    /// Only for `db <target>`: [`DbError`] (not allowed, target unusable, setup failed).
    fn prepare_db(&mut self, session: &str) -> Result<(), DbError> {
        let is_db = matches!(self.shape, Shape::Db { .. });
        if !is_db && !self.shape.runs_shell() {
            return Ok(());
        }
        let Some(user) = sealcast_dbproxy::access::User::lookup(&self.user.name) else {
            // No groups known: no target for a shell session, a refusal for `db <target>`.
            return match &self.shape {
                Shape::Db { target, .. } => Err(DbError::NotAllowed {
                    target: target.clone(),
                    user: self.user.name.clone(),
                }),
                _ => Ok(()),
            };
        };
        let mut targets = crate::db::allowed_targets(&self.cfg, &user);
        if let Shape::Db { target, .. } = &self.shape {
            targets.retain(|(n, _)| n == target);
            if targets.is_empty() {
                return Err(DbError::NotAllowed {
                    target: target.clone(),
                    user: self.user.name.clone(),
                });
            }
        }
        if targets.is_empty() {
            return Ok(());
        }
        let db = match crate::db::prepare(&targets, session, self.privs.user, &self.privs) {
            Ok(db) => db,
            Err(e) if is_db => return Err(e),
            Err(e) => {
                warn!(target: AUDIT, session = %session, user = %self.user.name,
                      "database proxies not started: {e}");
                return Ok(());
            }
        };
        for (name, reason) in &db.failed {
            if is_db {
                return Err(DbError::Target {
                    target: name.clone(),
                    reason: reason.clone(),
                });
            }
            warn!(target: AUDIT, session = %session, user = %self.user.name,
                  "database target {name} not available in this session: {reason}");
        }
        self.db = Some(db);
        Ok(())
    }

    /// The session's observer, with the database proxies when the session has some.
    fn with_proxies(&mut self, inner: Box<dyn Observer>) -> Box<dyn Observer> {
        match self.db.take() {
            Some(db) if !db.targets.is_empty() => Box::new(ProxyObserver::new(inner, db)),
            _ => inner,
        }
    }

    /// A `db` command that is refused (SPEC §10.3): one line to the user, and the attempt
    /// recorded like a denied transfer — the header (command as received, shape `db`), the
    /// line as the client saw it (`o` with a PTY, `e` without) and `x` = 1. Nothing runs.
    fn refuse_db(&mut self, session: &str, cols: u16, rows: u16, reason: &str) -> u8 {
        let msg = format!("sealcast: db session refused: {reason}");
        say(&msg);
        // What the client saw: on the PTY (CR LF), else on stderr.
        let pty = self.shape.uses_pty();
        let line = format!("{msg}{}", if pty { "\r\n" } else { "\n" });
        let event = if pty {
            WriteEvent::Output(line.as_bytes())
        } else {
            WriteEvent::Stderr(line.as_bytes())
        };
        self.record_refusal(
            session,
            cols,
            rows,
            event,
            &format!("db session refused: {reason}"),
        )
    }

    /// Deny policy: record the attempt (header, `s` with policy deny, `x` 1), print one
    /// line, exit 1.
    fn deny(&mut self, session: &str, cols: u16, rows: u16) -> u8 {
        let kind = match &self.shape {
            Shape::Transfer { transfer, .. } => transfer.kind.name(),
            _ => "transfer",
        };
        say(&format!(
            "sealcast: file transfer ({kind}) is not allowed on this host"
        ));
        let summary = ByteCounts::default().summary_json(TransferPolicy::Deny.as_str());
        self.record_refusal(
            session,
            cols,
            rows,
            WriteEvent::Summary(&summary),
            &format!("file transfer ({kind}) denied"),
        )
    }

    /// Record a refused session: the header, `event` (what the user was told, or the
    /// summary), `x` = 1, the receipt stored; `what` is the audit log line. Returns the exit
    /// status, 1.
    fn record_refusal(
        &mut self,
        session: &str,
        cols: u16,
        rows: u16,
        event: WriteEvent<'_>,
        what: &str,
    ) -> u8 {
        let recorded = self.open_recording(session, cols, rows).and_then(|rec| {
            let mut w = rec.writer;
            w.write(event)
                .and_then(|()| w.finish(Some(i32::from(EXIT_FAILURE))))
                .map_err(|e| format!("writing the recording: {e}"))
                .map(|(sink, receipt)| (rec.path, sink, receipt))
        });
        match recorded {
            Ok((path, sink, receipt)) => {
                self.store_receipt(path.as_deref(), sink, &receipt);
                info!(target: AUDIT, session = %session, user = %self.user.name,
                      shape = self.shape.name(),
                      path = %path.map(|p| p.display().to_string()).unwrap_or_default(),
                      status = EXIT_FAILURE, "{what}");
            }
            Err(e) => {
                error!(target: AUDIT, session = %session, user = %self.user.name,
                       shape = self.shape.name(),
                       "{what}; recording the attempt failed: {e}");
            }
        }
        EXIT_FAILURE
    }

    /// Write the seal receipt of a closed recording, unless it is unrecorded or its fail-open
    /// sink lost data (the final note would claim lines that are not on disk).
    fn store_receipt(&self, path: Option<&Path>, sink: Spool, receipt: &[u8]) {
        let Some(path) = path else { return };
        if let Spool::Open(f) = &sink {
            if let Some(e) = f.error() {
                // The user was warned when it happened (fail-open hook).
                warn!(target: AUDIT, path = %path.display(),
                      "recording incomplete after an error ({e}); no seal receipt written");
                return;
            }
        }
        drop(sink);
        if let Err(e) = archive::write_receipt(path, receipt) {
            warn!(path = %path.display(), "writing the seal receipt failed: {e}");
        }
    }

    /// Replay signals that arrived before the runner installed its own handlers, so the
    /// runner ends the session as it would have.
    fn hand_over_signals(&mut self) {
        if let Some(mut s) = self.early_signals.take() {
            let pending: Vec<i32> = s.pending().collect();
            drop(s);
            for sig in pending {
                // SAFETY: raise has no memory-safety preconditions; a runner's handler is
                // installed for each of these signals.
                unsafe { libc::raise(sig) };
            }
        }
    }

    /// The step the child waits for before `exec`: give up the user's id, so that the
    /// user's code never runs while it could still signal or stop the recorder.
    fn fork_hook(&self) -> Option<ForkHook> {
        let privs = self.privs;
        privs
            .setuid()
            .then(|| Box::new(move || privs.drop_user()) as ForkHook)
    }

    /// When set-uid: start the helper that lets the recorder hang up the session's process
    /// group once it no longer shares a uid with it (see
    /// [`sealcast_recorder::spawn::GroupSignaller`]). Without it the session still ends when
    /// its terminal or pipes close.
    fn start_signaller(&self) {
        if !self.privs.setuid() {
            return;
        }
        match GroupSignaller::start(self.privs.user) {
            Ok(s) => {
                s.install();
            }
            Err(e) => warn!(target: AUDIT, "signal helper not started: {e}"),
        }
    }

    /// Confirm the drop (it happened in [`Session::fork_hook`]; idempotent).
    fn drop_privileges_after_spawn(&self) -> io::Result<()> {
        self.privs.drop_user()
    }

    fn run_pty(
        &mut self,
        cmd: &ChildCommand,
        writer: Writer,
        cols: u16,
        rows: u16,
        prepared: Prepared,
    ) -> Result<(u8, Spool, Vec<u8>), Failure> {
        let stdin = dup_stdio(0).map_err(|e| Failure::Start(e, None))?;
        let stdout = dup_stdio(1).map_err(|e| Failure::Start(e, None))?;
        // Exclusive mode on sshd's terminal: the session's processes (running as the user,
        // who owns that device) cannot open it by name to write or read past the recorder.
        // Set before the child exists: set after, the child could open it first and keep
        // the descriptor (exclusive mode only refuses later opens).
        let _excl = self.stdin_tty.then(|| ExclusiveTty::new(&stdin)).flatten();
        self.start_signaller();
        // The PTY belongs to the user, as sshd's does (programs such as gpg's pinentry
        // reopen their terminal by name).
        let mut pty = match self.privs.as_user(|| {
            PtySession::spawn_command(cmd, cols, rows, self.cfg.capture_input, self.fork_hook())
        }) {
            Ok(p) => p,
            Err(e) => return Err(Failure::start(e, writer)),
        };
        let inner: Box<dyn Observer> = match pty.pid() {
            Some(pid) => Box::new(CommandObserver::new(prepared, pid)),
            None => Box::new(NoObserver),
        };
        pty.observe(self.with_proxies(inner));
        if let Err(e) = self.drop_privileges_after_spawn() {
            drop(pty); // hangs up the child
            return Err(Failure::start(e, writer));
        }
        self.hand_over_signals();
        let outcome = pty.run(writer, stdin, stdout).map_err(Failure::Recording)?;
        Ok((outcome.exit_code(), outcome.sink, outcome.receipt))
    }

    fn run_pipes(
        &mut self,
        cmd: &ChildCommand,
        writer: Writer,
        prepared: Prepared,
    ) -> Result<(u8, Spool, Vec<u8>), Failure> {
        let stdin = dup_stdio(0).map_err(|e| Failure::Start(e, None))?;
        let stdout = dup_stdio(1).map_err(|e| Failure::Start(e, None))?;
        let stderr = dup_stdio(2).map_err(|e| Failure::Start(e, None))?;
        if let Shape::Transfer { transfer, .. } = &self.shape {
            // The program runs with no payload recorded (metadata): it must be the binary the
            // operator configured, which nobody but root or the service user can replace.
            let owners = self.privs.trusted_owners();
            if let Err(reason) = sealcast_config::check_trusted_path(&transfer.program, &owners) {
                let e = io::Error::other(format!("not a trusted program: {reason}"));
                return Err(Failure::start(e, writer));
            }
        }
        self.start_signaller();
        let mut pipes = match PipeSession::spawn(cmd, self.fork_hook()) {
            Ok(p) => p,
            Err(e) => return Err(Failure::start(e, writer)),
        };
        // Transfers record exactly their summary (SPEC §2.3); other sessions without a PTY
        // are observed through the child's process tree.
        if !matches!(self.shape, Shape::Transfer { .. }) {
            let pid = pipes.pid();
            let inner = Box::new(CommandObserver::new(prepared, pid));
            pipes.observe(self.with_proxies(inner));
        }
        if let Err(e) = self.drop_privileges_after_spawn() {
            drop(pipes);
            return Err(Failure::start(e, writer));
        }
        self.hand_over_signals();
        let opts = PipeOptions {
            payload: self.payload(),
            capture_input: self.cfg.capture_input,
            summary_policy: self.policy().map(|p| p.as_str().to_string()),
            // sshd sends no SIGHUP to a session without a PTY when the client disconnects;
            // it closes its end of our stdout, which this watches.
            watch_hangup: Some(libc::STDOUT_FILENO),
        };
        let outcome = pipes
            .run(writer, &opts, stdin, stdout, stderr)
            .map_err(Failure::Recording)?;
        Ok((outcome.exit_code(), outcome.sink, outcome.receipt))
    }
}

enum Failure {
    /// The command could not be started (nothing ran); the recording, when it could be
    /// closed, with its receipt.
    Start(io::Error, Option<(Spool, Vec<u8>)>),
    /// The recording failed mid-session (fail-closed): the session was hung up.
    Recording(io::Error),
}

impl Failure {
    /// The command could not be started: close the recording with the exit status the client
    /// gets (`x` = 1) and a final checkpoint, so the attempt is sealed like any session.
    fn start(e: io::Error, writer: Writer) -> Failure {
        Failure::Start(e, writer.finish(Some(i32::from(EXIT_FAILURE))).ok())
    }
}

/// A duplicate of standard descriptor `fd`, as an unbuffered `File`.
fn dup_stdio(fd: i32) -> io::Result<File> {
    // SAFETY: the standard descriptors stay open for the life of the process.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    Ok(File::from(b.try_clone_to_owned()?))
}

/// `TIOCEXCL` on a terminal for as long as it lives (`TIOCNXCL` on drop); holds its own
/// duplicate of the descriptor.
struct ExclusiveTty {
    tty: std::os::fd::OwnedFd,
}

impl ExclusiveTty {
    fn new(tty: &File) -> Option<ExclusiveTty> {
        let tty = tty.as_fd().try_clone_to_owned().ok()?;
        // SAFETY: ioctl without argument on a descriptor we hold.
        if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCEXCL) } != 0 {
            warn!(
                "TIOCEXCL on the session terminal failed: {}",
                io::Error::last_os_error()
            );
            return None;
        }
        Some(ExclusiveTty { tty })
    }
}

impl Drop for ExclusiveTty {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::ioctl(self.tty.as_raw_fd(), libc::TIOCNXCL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    fn user() -> User {
        User {
            name: "u".into(),
            home: "/home/u".into(),
        }
    }

    fn privs() -> Privileges {
        Privileges {
            user: 1000,
            service: 998,
        }
    }

    #[test]
    fn commands_per_shape() {
        let cfg = Config::default();
        let env = [(os("TERM"), os("screen"))];
        let c = child_command(&cfg, &Shape::Interactive, &user(), &env, &privs(), "s");
        assert_eq!(c.program, Path::new("/bin/bash"));
        assert_eq!(c.arg0, Some(os("-bash")));
        assert!(c.args.is_empty());
        assert_eq!(c.uid, Some(1000));
        assert_eq!(c.cwd.as_deref(), Some(Path::new("/home/u")));
        assert!(c.env.contains(&(os("TERM"), os("screen"))));

        let c = child_command(
            &cfg,
            &Shape::Exec { cmd: os("ls -l") },
            &user(),
            &env,
            &privs(),
            "s",
        );
        assert_eq!(c.arg0, Some(os("bash")));
        assert_eq!(c.args, [os("-c"), os("ls -l")]);

        // Transfers: the configured program by argv, no shell, a reduced environment.
        let ctx_programs = TransferPrograms::from_config(&cfg);
        for (command, program, args) in [
            (
                "internal-sftp -l INFO",
                "/usr/lib/openssh/sftp-server",
                &["-l", "INFO"][..],
            ),
            (
                "/usr/lib/openssh/sftp-server",
                "/usr/lib/openssh/sftp-server",
                &[],
            ),
            ("scp -t 'a b'", "/usr/bin/scp", &["-t", "a b"]),
            (
                "rsync --server -e.LsfxC . x\\ y",
                "/usr/bin/rsync",
                &["--server", "-e.LsfxC", ".", "x y"],
            ),
        ] {
            let transfer = crate::classify::transfer(OsStr::new(command), &ctx_programs)
                .unwrap_or_else(|| panic!("{command} is a transfer"));
            let shape = Shape::Transfer {
                cmd: os(command),
                transfer,
            };
            let env = [
                (os("TERM"), os("screen")),
                (os("SSH_ORIGINAL_COMMAND"), os(command)),
            ];
            let c = child_command(&cfg, &shape, &user(), &env, &privs(), "s");
            assert_eq!(c.program, Path::new(program), "{command}");
            assert_eq!(c.args, args, "{command}");
            assert_eq!(c.arg0, None, "{command}");
            assert_eq!(c.uid, Some(1000));
            assert_eq!(c.cwd.as_deref(), Some(Path::new("/home/u")));
            assert!(!c.env.iter().any(|(k, _)| k == "HOME"), "{command}: HOME");
            assert!(c.env.contains(&(os("SSH_ORIGINAL_COMMAND"), os(command))));
        }

        let same = Privileges {
            user: 5,
            service: 5,
        };
        let c = child_command(&cfg, &Shape::ShellNoPty, &user(), &env, &same, "s");
        assert_eq!(c.uid, None);
        assert_eq!(c.arg0, Some(os("-bash")));
    }
}
