//! What kind of SSH session this is, decided from `argv` and the environment sshd gives.
//!
//! sshd starts every session the same way (`session.c`, `do_child`): it runs the user's login
//! shell — `argv[0]` = `-<name>` for a login without a command, else `<name> -c <command>`.
//! With `ForceCommand` (sshd_config(5)) the command is the forced one and the client's
//! command, if any, is in `SSH_ORIGINAL_COMMAND`; for a subsystem request (`sftp`, and `scp`'s
//! default SFTP mode) `SSH_ORIGINAL_COMMAND` is the subsystem's command from sshd_config
//! (`internal-sftp` or the sftp-server path). sshd sets `SSH_TTY` only when a PTY was
//! requested, and `SSH_CONNECTION` = `client-ip client-port server-ip server-port`.
//!
//! So sealcast-shell sees one of:
//!
//! - **ForceCommand**: `argv = [path, (--config FILE)]`, command in `SSH_ORIGINAL_COMMAND`
//!   (unset: no command). When the login shell is a POSIX shell, sshd runs it as
//!   `shell -c "<ForceCommand>"`, and the shell runs us with these arguments.
//! - **Login shell** (`usermod -s`): `argv[0]` starting with `-` (no command), or `-c CMD`
//!   where `CMD` is the client's command — unless `CMD` invokes sealcast-shell itself, which
//!   is ForceCommand through a sealcast-shell login shell: then the command is
//!   `SSH_ORIGINAL_COMMAND` again.
//!
//! [`classify`] maps that to a [`Shape`]; it is pure (no I/O) and unit-tested exhaustively.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// This binary's file name; a `-c` command whose first word has this file name is a
/// ForceCommand invocation.
pub const BINARY_NAME: &str = "sealcast-shell";

/// The kind of file transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// Legacy scp protocol: `scp -t` (upload to this host) or `scp -f` (download).
    Scp,
    /// SFTP (`sftp`, and `scp` in its default SFTP mode): `internal-sftp` or an sftp-server.
    Sftp,
    /// `rsync --server`.
    Rsync,
}

impl TransferKind {
    /// `scp`, `sftp` or `rsync` (the shape name and the word in messages).
    pub fn name(self) -> &'static str {
        match self {
            TransferKind::Scp => "scp",
            TransferKind::Sftp => "sftp",
            TransferKind::Rsync => "rsync",
        }
    }
}

/// The transfer programs, as absolute paths from the trusted configuration (`scp_path`,
/// `rsync_path`, `sftp_server`). A transfer runs exactly one of these; `PATH` is never
/// searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferPrograms {
    /// The scp binary (`scp_path`, default `/usr/bin/scp`).
    pub scp: PathBuf,
    /// The rsync binary (`rsync_path`, default `/usr/bin/rsync`).
    pub rsync: PathBuf,
    /// The sftp server (`sftp_server`, default `/usr/lib/openssh/sftp-server`); sshd's
    /// `internal-sftp` maps to it.
    pub sftp_server: PathBuf,
}

impl TransferPrograms {
    /// The programs of the trusted configuration: `scp_path`, `rsync_path`, `sftp_server`.
    pub fn from_config(cfg: &sealcast_config::Config) -> TransferPrograms {
        TransferPrograms {
            scp: cfg.scp_path.clone(),
            rsync: cfg.rsync_path.clone(),
            sftp_server: cfg.sftp_server.clone(),
        }
    }

    /// The configured program for `kind`.
    pub fn path(&self, kind: TransferKind) -> &Path {
        match kind {
            TransferKind::Scp => &self.scp,
            TransferKind::Rsync => &self.rsync,
            TransferKind::Sftp => &self.sftp_server,
        }
    }
}

/// A command recognised as a file transfer (SPEC §10.1): the configured program
/// and the de-quoted argument vector, to be run by `execve(program, [program, args…])` —
/// never by a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Which protocol.
    pub kind: TransferKind,
    /// The absolute path of the program to execute ([`TransferPrograms::path`]).
    pub program: PathBuf,
    /// `argv[1..]`, de-quoted per the word grammar of [`command_words`].
    pub args: Vec<OsString>,
}

/// The shape of an SSH session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Login without a command, with a PTY (`ssh host`): the shell as a login shell in a PTY.
    Interactive,
    /// A command without a PTY (`ssh host cmd`): `shell -c cmd` over pipes.
    Exec {
        /// The command, exactly as received.
        cmd: OsString,
    },
    /// A command with a PTY (`ssh -t host cmd`): `shell -c cmd` in a PTY.
    ExecPty {
        /// The command, exactly as received.
        cmd: OsString,
    },
    /// A file transfer (with or without a PTY): its program run by argv over pipes, under
    /// the transfer policy.
    Transfer {
        /// The command, exactly as received (`internal-sftp` included); stored in the header.
        cmd: OsString,
        /// What runs: program and arguments.
        transfer: Transfer,
    },
    /// Login without a command and without a PTY (`ssh -T host`): the login shell reading
    /// commands from stdin, over pipes.
    ShellNoPty,
    /// `db <target>` (SPEC §10.3): the target's client run by argv (no shell) against the
    /// session's recording proxy, in a PTY when there is one, else over pipes.
    Db {
        /// The command, exactly as received.
        cmd: OsString,
        /// The target name (`[A-Za-z0-9_-]`, 1 to 64 bytes; not yet checked against the
        /// configuration or the user's rights).
        target: String,
        /// Whether the session has a PTY.
        pty: bool,
    },
    /// A command whose first word is `db` that is not exactly `db <target>` (SPEC §10.3):
    /// refused, and the refusal recorded.
    DbRefused {
        /// The command, exactly as received.
        cmd: OsString,
        /// Why it was refused (for the user and the recording).
        reason: String,
        /// Whether the session has a PTY.
        pty: bool,
    },
}

impl Shape {
    /// The name stored in the header (`sealcast.shape`): `interactive`, `exec`, `exec-pty`,
    /// `shell-no-pty`, `scp`, `sftp` or `rsync`.
    pub fn name(&self) -> &'static str {
        match self {
            Shape::Interactive => "interactive",
            Shape::Exec { .. } => "exec",
            Shape::ExecPty { .. } => "exec-pty",
            Shape::ShellNoPty => "shell-no-pty",
            Shape::Transfer { transfer, .. } => transfer.kind.name(),
            Shape::Db { .. } | Shape::DbRefused { .. } => "db",
        }
    }

    /// The command, for shapes that have one.
    pub fn command(&self) -> Option<&OsStr> {
        match self {
            Shape::Exec { cmd }
            | Shape::ExecPty { cmd }
            | Shape::Transfer { cmd, .. }
            | Shape::Db { cmd, .. }
            | Shape::DbRefused { cmd, .. } => Some(cmd),
            Shape::Interactive | Shape::ShellNoPty => None,
        }
    }

    /// Whether the session runs in a PTY.
    pub fn uses_pty(&self) -> bool {
        match self {
            Shape::Db { pty, .. } | Shape::DbRefused { pty, .. } => *pty,
            _ => matches!(self, Shape::Interactive | Shape::ExecPty { .. }),
        }
    }

    /// Whether the session runs the configured shell (and so gets the in-session database
    /// proxies, SPEC §10.3): interactive, `ssh -T`, and commands that are not transfers.
    pub fn runs_shell(&self) -> bool {
        matches!(
            self,
            Shape::Interactive | Shape::ShellNoPty | Shape::Exec { .. } | Shape::ExecPty { .. }
        )
    }
}

/// sealcast-shell's own command line, as a login shell or a ForceCommand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// Started as a login shell (`argv[0]` starts with `-`, or `-l` / `--login`).
    pub login: bool,
    /// `--config FILE` (honoured only for a trusted file, [`sealcast_config::load_trusted`]).
    pub config: Option<PathBuf>,
    /// `--check-config`: validate the configuration and key, print one line, exit.
    pub check_config: bool,
    /// The `-c` argument, unless it invokes sealcast-shell itself.
    pub command: Option<OsString>,
    /// The `-c` argument invoked sealcast-shell itself (ForceCommand through a sealcast-shell
    /// login shell): the command comes from `SSH_ORIGINAL_COMMAND`.
    pub forced_via_login_shell: bool,
}

/// A command line sealcast-shell does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Invocation {
    /// Parse `argv` (program name included). Accepted: `-l`, `-i`, `--login` (ignored but for
    /// [`Invocation::login`]), `-c CMD` (also in a cluster such as `-lc CMD`; arguments after
    /// `CMD` are ignored, as sshd never passes any), `--config FILE`, `--check-config`.
    ///
    /// # Errors
    /// Unknown options, a missing option argument, or a positional argument (a script).
    pub fn parse(argv: &[OsString]) -> Result<Invocation, UsageError> {
        let mut inv = Invocation {
            login: argv
                .first()
                .is_some_and(|a| a.as_bytes().first() == Some(&b'-')),
            ..Invocation::default()
        };
        inv.parse_options(argv.get(1..).unwrap_or(&[]), true)?;
        Ok(inv)
    }

    fn parse_options(&mut self, args: &[OsString], allow_c: bool) -> Result<(), UsageError> {
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_bytes();
            i += 1;
            match a {
                b"--login" => self.login = true,
                b"--check-config" => self.check_config = true,
                b"--config" => {
                    let Some(v) = args.get(i) else {
                        return Err(UsageError("--config needs a file".into()));
                    };
                    i += 1;
                    self.config = Some(PathBuf::from(v));
                }
                b"--" => {}
                _ if a.len() > 1 && a[0] == b'-' && a[1] != b'-' => {
                    let mut takes_command = false;
                    for &f in &a[1..] {
                        match f {
                            b'l' => self.login = true,
                            b'i' => {}
                            b'c' if allow_c => takes_command = true,
                            _ => {
                                // Escaped: the byte may be a terminal control.
                                return Err(UsageError(format!(
                                    "unknown option -{}",
                                    char::from(f).escape_default()
                                )));
                            }
                        }
                    }
                    if takes_command {
                        let Some(cmd) = args.get(i) else {
                            return Err(UsageError("-c needs a command".into()));
                        };
                        self.take_command(cmd)?;
                        return Ok(());
                    }
                }
                _ => {
                    return Err(UsageError(format!(
                        "unexpected argument {:?} (sealcast-shell runs no scripts)",
                        String::from_utf8_lossy(a)
                    )))
                }
            }
        }
        Ok(())
    }

    /// A `-c` command: the client's command, or sealcast-shell itself (ForceCommand via a
    /// sealcast-shell login shell), whose own options are then parsed from its words.
    fn take_command(&mut self, cmd: &OsStr) -> Result<(), UsageError> {
        let words = words(cmd.as_bytes());
        let is_self = words.first().is_some_and(|w| {
            Path::new(OsStr::from_bytes(w)).file_name() == Some(OsStr::new(BINARY_NAME))
        });
        if is_self {
            self.forced_via_login_shell = true;
            let rest: Vec<OsString> = words[1..]
                .iter()
                .map(|w| OsString::from_vec(w.to_vec()))
                .collect();
            self.parse_options(&rest, false)
        } else {
            self.command = Some(cmd.to_os_string());
            Ok(())
        }
    }
}

/// Facts about the process that [`classify`] needs besides `argv` and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Standard input is a terminal (a PTY session even without `SSH_TTY`, e.g. `su -`).
    pub stdin_tty: bool,
    /// The configured transfer programs.
    pub programs: TransferPrograms,
}

/// The session's command: the `-c` argument when run as the login shell, else
/// `SSH_ORIGINAL_COMMAND` (ForceCommand), else none.
pub fn session_command(inv: &Invocation, env: &HashMap<OsString, OsString>) -> Option<OsString> {
    match &inv.command {
        Some(c) => Some(c.clone()),
        None => env.get(OsStr::new("SSH_ORIGINAL_COMMAND")).cloned(),
    }
}

/// Decide the session shape (pure).
///
/// A PTY session is one where sshd set `SSH_TTY` (non-empty) or stdin is a terminal. A
/// command is a transfer when [`transfer`] recognises it, whatever the PTY; otherwise a
/// command is [`Shape::ExecPty`] with a PTY and [`Shape::Exec`] without. No command:
/// [`Shape::Interactive`] with a PTY, [`Shape::ShellNoPty`] without. An empty command
/// (`ssh host ''`) is still a command, as for sshd.
pub fn classify(inv: &Invocation, env: &HashMap<OsString, OsString>, ctx: &Context) -> Shape {
    let pty = ctx.stdin_tty
        || env
            .get(OsStr::new("SSH_TTY"))
            .is_some_and(|t| !t.is_empty());
    match session_command(inv, env) {
        None if pty => Shape::Interactive,
        None => Shape::ShellNoPty,
        Some(cmd) => match db_command(cmd.as_bytes()) {
            Some(Ok(target)) => Shape::Db { cmd, target, pty },
            Some(Err(reason)) => Shape::DbRefused { cmd, reason, pty },
            None => match transfer(&cmd, &ctx.programs) {
                Some(transfer) => Shape::Transfer { cmd, transfer },
                None if pty => Shape::ExecPty { cmd },
                None => Shape::Exec { cmd },
            },
        },
    }
}

/// The `db` session command (SPEC §10.3). `None` when `cmd` is not a `db` command: after any
/// leading SP/TAB its first two bytes are not `db`, or they are followed by a byte that may
/// continue a word (a `plain` byte of SPEC §10.1: `dbx`, `db-admin`, `db.sh`, `db/run` are
/// ordinary commands).
/// Otherwise the command is exactly `*sep "db" 1*sep name *sep` with `name` of
/// `[A-Za-z0-9_-]`, 1 to 64 bytes — `Some(Ok(name))` — or it is refused, `Some(Err(reason))`:
/// `db`, `db pg; bash`, `db pg extra`, `db ../x`, `db 'pg'`, `db $(id)`, a newline… Nothing of
/// a refused command runs.
pub fn db_command(cmd: &[u8]) -> Option<Result<String, String>> {
    let sep = |b: &u8| *b == b' ' || *b == b'\t';
    let start = cmd.iter().position(|b| !sep(b)).unwrap_or(cmd.len());
    let rest = cmd[start..].strip_prefix(b"db")?;
    if rest.first().is_some_and(|&b| is_plain(b)) {
        return None;
    }
    let usage = "usage: db <target> (one target name of A-Z a-z 0-9 _ -, nothing else)";
    let name_start = rest.iter().position(|b| !sep(b)).unwrap_or(rest.len());
    if name_start == 0 {
        return Some(Err(usage.into()));
    }
    let name_part = &rest[name_start..];
    let name_len = name_part
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-'))
        .unwrap_or(name_part.len());
    let (name, tail) = name_part.split_at(name_len);
    if name.is_empty() || name.len() > 64 || !tail.iter().all(sep) {
        return Some(Err(usage.into()));
    }
    Some(Ok(String::from_utf8_lossy(name).into_owned()))
}

#[cfg(test)]
mod db_tests {
    use super::db_command;

    #[test]
    fn db_command_accepts_exactly_one_target_name() {
        for (cmd, want) in [("db pg", "pg"), ("  db\tmain_2-x  ", "main_2-x")] {
            assert_eq!(
                db_command(cmd.as_bytes()),
                Some(Ok(want.to_string())),
                "{cmd:?}"
            );
        }
        for cmd in [
            "db",
            "db ",
            "db pg; bash",
            "db pg extra",
            "db ../x",
            "db 'pg'",
            "db pg\nbash",
            "db $(id)",
            "db pg&",
            "db;bash",
            "db|x",
            "db\\ pg",
            "db p\u{e9}",
            "db pg #",
            "db `id`",
            "db pg>x",
        ] {
            assert!(
                matches!(db_command(cmd.as_bytes()), Some(Err(_))),
                "{cmd:?} must be refused"
            );
        }
        let long = format!("db {}", "a".repeat(65));
        assert!(matches!(db_command(long.as_bytes()), Some(Err(_))));
        for cmd in [
            "dbx pg", "db-admin", "db.sh", "db/run", "./db pg", "ls db", "", "psql",
        ] {
            assert_eq!(
                db_command(cmd.as_bytes()),
                None,
                "{cmd:?} is not a db command"
            );
        }
    }
}

/// Whitespace-separated words of a command (no shell quoting): only for recognising
/// sealcast-shell's own ForceCommand line in a `-c` argument ([`Invocation::parse`]).
fn words(cmd: &[u8]) -> Vec<&[u8]> {
    cmd.split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect()
}

/// A control byte: C0 (`0x00`–`0x1f`, so NUL, TAB, LF, CR, ESC…) or DEL (`0x7f`).
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// A byte that may appear unquoted in a word (SPEC §10.1): ASCII alphanumerics, one of
/// `%+,-./:=@_`, or any byte ≥ `0x80`.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"%+,-./:=@_".contains(&b) || b >= 0x80
}

/// Split a command into de-quoted words by the transfer word grammar of SPEC §10.1, or `None`
/// when any byte falls outside it (the command is then not a transfer).
///
/// Words are separated by runs of SP and TAB. A word concatenates:
///
/// - plain bytes (ASCII alphanumerics, `%+,-./:=@_`, bytes ≥ `0x80`);
/// - `'…'`: any bytes but `'` and control bytes, taken literally;
/// - `"…"`: any bytes but `"`, `$`, `` ` ``, `\`, `!` and control bytes, taken literally;
/// - `\` followed by one byte that is not a control byte: that byte.
///
/// Within this grammar a POSIX shell (bash(1) "QUOTING", POSIX.1-2017 XCU 2.2) would produce
/// exactly these words and do nothing else: no expansion, substitution, redirection,
/// globbing, comment, assignment-only word or second command is expressible. Everything
/// else — ``; & | < > ( ) $ ` * ? [ ] { } ~ # !`` unquoted, a newline, CR, NUL or other
/// control byte anywhere, an unbalanced quote, a trailing `\` — returns `None`. An empty
/// command gives no words.
pub fn command_words(cmd: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut words = Vec::new();
    let mut i = 0;
    let is_sep = |b: u8| b == b' ' || b == b'\t';
    loop {
        while i < cmd.len() && is_sep(cmd[i]) {
            i += 1;
        }
        if i == cmd.len() {
            return Some(words);
        }
        let mut word = Vec::new();
        while i < cmd.len() && !is_sep(cmd[i]) {
            match cmd[i] {
                q @ (b'\'' | b'"') => {
                    let len = cmd[i + 1..].iter().position(|&b| b == q)?;
                    let inner = &cmd[i + 1..i + 1 + len];
                    let bad = |b: u8| is_control(b) || (q == b'"' && b"$`\\!".contains(&b));
                    if inner.iter().any(|&b| bad(b)) {
                        return None;
                    }
                    word.extend_from_slice(inner);
                    i += len + 2;
                }
                b'\\' => {
                    let b = *cmd.get(i + 1)?;
                    if is_control(b) {
                        return None;
                    }
                    word.push(b);
                    i += 2;
                }
                b if is_plain(b) => {
                    word.push(b);
                    i += 1;
                }
                _ => return None,
            }
        }
        words.push(word);
    }
}

/// Recognise a file-transfer server command (SPEC §10.1), as the clients send
/// them, and return what to execute: the configured program and the de-quoted arguments.
///
/// The command must be within the word grammar of [`command_words`]; its first word must be
/// exactly `scp`, `rsync`, `sftp-server` or `internal-sftp`, or exactly the configured path
/// of that program (never another directory, a relative path, `FOO=1 scp`, `exec scp`…); and
/// its arguments must be within that program's whitelist:
///
/// - **scp** (OpenSSH `scp.c`, server side): flag words of `d f p r t v` before an optional
///   `--`, with exactly one of the modes `-t` (sink) and `-f` (source), then at least one
///   path; a path may start with `-` only after `--`.
/// - **rsync** (`options.c` `server_options()`): `--server`, optionally `--sender`, then
///   the options the rsync client sends to a server (SPEC §10.1), then `.` and at
///   least one path, none starting with `-`. Never `--daemon`, `--config`, `-M`, `-s`
///   (arguments read from stdin), batch or log files, or anything unknown.
/// - **sftp** (sftp-server(8)): only `-d dir -e -f facility -h -l level -P list -p list
///   -Q list -R -u umask`.
///
/// Anything else is an ordinary command, run by the shell and recorded in full. Being
/// conservative costs nothing: a real transfer that is not recognised still works.
pub fn transfer(cmd: &OsStr, programs: &TransferPrograms) -> Option<Transfer> {
    let words = command_words(cmd.as_bytes())?;
    let (first, rest) = words.split_first()?;
    let is = |name: &[u8], kind| {
        first.as_slice() == name || first.as_slice() == programs.path(kind).as_os_str().as_bytes()
    };
    let kind = if is(b"scp", TransferKind::Scp) {
        TransferKind::Scp
    } else if is(b"rsync", TransferKind::Rsync) {
        TransferKind::Rsync
    } else if is(b"sftp-server", TransferKind::Sftp) || first.as_slice() == b"internal-sftp" {
        TransferKind::Sftp
    } else {
        return None;
    };
    let ok = match kind {
        TransferKind::Scp => scp_args_ok(rest),
        TransferKind::Rsync => rsync_args_ok(rest),
        TransferKind::Sftp => sftp_args_ok(rest),
    };
    ok.then(|| Transfer {
        kind,
        program: programs.path(kind).to_path_buf(),
        args: rest.iter().map(|w| OsString::from_vec(w.clone())).collect(),
    })
}

/// The arguments of `scp -t` / `scp -f` as OpenSSH's scp client sends them (`scp.c`:
/// `"scp%s%s%s%s"` with ` -v`, ` -r`, ` -p`, ` -d`, then ` -t ` or ` -f `, and `-- ` before
/// a path starting with `-`).
fn scp_args_ok(args: &[Vec<u8>]) -> bool {
    let (mut sink, mut source, mut dashdash) = (false, false, false);
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.as_slice() == b"--" {
            dashdash = true;
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        for &c in &a[1..] {
            match c {
                b't' => sink = true,
                b'f' => source = true,
                b'd' | b'p' | b'r' | b'v' => {}
                _ => return false,
            }
        }
        i += 1;
    }
    let paths = &args[i..];
    sink != source && !paths.is_empty() && (dashdash || paths.iter().all(|p| !p.starts_with(b"-")))
}

/// rsync long options a client sends to the server without a value (`options.c`,
/// `server_options()`).
const RSYNC_FLAGS: &[&str] = &[
    "append",
    "copy-devices",
    "copy-unsafe-links",
    "delay-updates",
    "delete",
    "delete-after",
    "delete-before",
    "delete-delay",
    "delete-during",
    "delete-excluded",
    "delete-missing-args",
    "existing",
    "force",
    "from0",
    "fsync",
    "ignore-errors",
    "ignore-existing",
    "ignore-missing-args",
    "inplace",
    "list-only",
    "mkpath",
    "msgs2stderr",
    "new-compress",
    "no-W",
    "no-implied-dirs",
    "no-msgs2stderr",
    "no-r",
    "no-relative",
    "no-specials",
    "numeric-ids",
    "old-compress",
    "open-noatime",
    "partial",
    "preallocate",
    "remove-sent-files",
    "remove-source-files",
    "safe-links",
    "size-only",
    "specials",
    "stats",
    "super",
    "use-qsort",
    "write-devices",
];

/// rsync long options a client sends as `--name=value`.
const RSYNC_VALUED: &[&str] = &[
    "bwlimit",
    "checksum-choice",
    "checksum-seed",
    "compress-choice",
    "compress-level",
    "debug",
    "files-from",
    "groupmap",
    "info",
    "log-format",
    "max-alloc",
    "max-delete",
    "max-size",
    "min-size",
    "modify-window",
    "skip-compress",
    "suffix",
    "timeout",
    "usermap",
];

/// rsync long options a client sends as `--name` followed by a value word.
const RSYNC_SPLIT: &[&str] = &[
    "backup-dir",
    "compare-dest",
    "copy-dest",
    "files-from",
    "link-dest",
    "partial-dir",
    "temp-dir",
];

/// Letters of the short-option word a client sends (`-vlogDtpre.iLsfxCIvu`), without `s`
/// (`--secluded-args`: the server would read further options from stdin) and without `e`,
/// which ends the word (its value is the client's protocol flags, `.iLsfxCIvu`).
const RSYNC_SHORT: &[u8] = b"vqbunldKmOJyLkWHogDtUNpEAXrcCIRxSz";

/// The arguments of `rsync --server` as an rsync client sends them (`options.c`,
/// `server_options()`, and `main.c` `do_cmd`: `.` then the paths): `--server`,
/// optionally `--sender`, then options from [`RSYNC_FLAGS`], [`RSYNC_VALUED`] (`=value`),
/// [`RSYNC_SPLIT`] (value in the next word, not starting with `-`), `-B<n>`, `-@<n>` and a
/// short-option word of [`RSYNC_SHORT`] ending in an optional `e<[A-Za-z0-9.]*>`; then `.`
/// and at least one path, none starting with `-` (popt would read it as an option).
fn rsync_args_ok(args: &[Vec<u8>]) -> bool {
    let mut i = match args {
        [s, t, ..] if s == b"--server" && t == b"--sender" => 2,
        [s, ..] if s == b"--server" => 1,
        _ => return false,
    };
    loop {
        let Some(a) = args.get(i) else { return false };
        i += 1;
        if a.as_slice() == b"." {
            break;
        }
        let name_is = |list: &[&str], n: &[u8]| list.iter().any(|x| x.as_bytes() == n);
        if let Some(long) = a.strip_prefix(b"--") {
            match long.iter().position(|&b| b == b'=') {
                Some(eq) if name_is(RSYNC_VALUED, &long[..eq]) => {}
                None if name_is(RSYNC_FLAGS, long) => {}
                None if name_is(RSYNC_SPLIT, long) => match args.get(i) {
                    Some(v) if !v.starts_with(b"-") => i += 1,
                    _ => return false,
                },
                _ => return false,
            }
            continue;
        }
        let Some(short) = a.strip_prefix(b"-") else {
            return false; // a word that is neither an option nor the `.`
        };
        let ok = match short {
            [b'B', n @ ..] => !n.is_empty() && n.iter().all(u8::is_ascii_digit),
            [b'@', b'-', n @ ..] | [b'@', n @ ..] => {
                !n.is_empty() && n.iter().all(u8::is_ascii_digit)
            }
            _ => {
                let e = short.iter().position(|&b| b == b'e').unwrap_or(short.len());
                let (flags, tail) = short.split_at(e);
                (!flags.is_empty() || !tail.is_empty())
                    && flags.iter().all(|b| RSYNC_SHORT.contains(b))
                    && tail
                        .iter()
                        .skip(1)
                        .all(|&b| b.is_ascii_alphanumeric() || b == b'.')
            }
        };
        if !ok {
            return false;
        }
    }
    let paths = &args[i..];
    !paths.is_empty() && paths.iter().all(|p| !p.starts_with(b"-"))
}

/// The arguments sftp-server(8) documents: `-e -h -R` and `-d -f -l -P -p -Q -u` with a
/// value (attached, or the next word, which must not start with `-`); flags may be grouped
/// (`-el INFO`). No other word.
fn sftp_args_ok(args: &[Vec<u8>]) -> bool {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if a.len() < 2 || a[0] != b'-' {
            return false;
        }
        for (j, &c) in a.iter().enumerate().skip(1) {
            match c {
                b'e' | b'h' | b'R' => {}
                b'd' | b'f' | b'l' | b'P' | b'p' | b'Q' | b'u' => {
                    if j + 1 == a.len() {
                        match args.get(i) {
                            Some(v) if !v.starts_with(b"-") => i += 1,
                            _ => return false,
                        }
                    }
                    break;
                }
                _ => return false,
            }
        }
    }
    true
}

/// The `SSH_CONNECTION` addresses: (`"client-ip client-port"`, `"server-ip server-port"`).
/// `None` when the variable is missing or does not have four fields.
pub fn ssh_endpoints(env: &HashMap<OsString, OsString>) -> Option<(String, String)> {
    let v = env.get(OsStr::new("SSH_CONNECTION"))?.to_str()?;
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    if f.len() != 4 {
        return None;
    }
    Some((format!("{} {}", f[0], f[1]), format!("{} {}", f[2], f[3])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<OsString, OsString> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn ctx(stdin_tty: bool) -> Context {
        Context {
            stdin_tty,
            programs: programs(),
        }
    }

    fn programs() -> TransferPrograms {
        TransferPrograms {
            scp: PathBuf::from("/usr/bin/scp"),
            rsync: PathBuf::from("/usr/bin/rsync"),
            sftp_server: PathBuf::from("/usr/lib/openssh/sftp-server"),
        }
    }

    fn xfer(kind: TransferKind, args: &[&str]) -> Transfer {
        Transfer {
            kind,
            program: programs().path(kind).to_path_buf(),
            args: args.iter().map(OsString::from).collect(),
        }
    }

    fn shape(a: &[&str], e: &[(&str, &str)], tty: bool) -> Shape {
        classify(&Invocation::parse(&argv(a)).unwrap(), &env(e), &ctx(tty))
    }

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    const SELF: &str = "/usr/local/lib/sealcast/sealcast-shell";
    const TTY: (&str, &str) = ("SSH_TTY", "/dev/pts/3");

    #[test]
    fn force_command_shapes() {
        // argv = [path]: the command (if any) is SSH_ORIGINAL_COMMAND.
        assert_eq!(shape(&[SELF], &[TTY], false), Shape::Interactive);
        assert_eq!(shape(&[SELF], &[], false), Shape::ShellNoPty);
        assert_eq!(
            shape(&[SELF], &[("SSH_ORIGINAL_COMMAND", "ls -l")], false),
            Shape::Exec { cmd: os("ls -l") }
        );
        assert_eq!(
            shape(&[SELF], &[("SSH_ORIGINAL_COMMAND", "top"), TTY], false),
            Shape::ExecPty { cmd: os("top") }
        );
        assert_eq!(
            shape(&[SELF], &[("SSH_ORIGINAL_COMMAND", "")], false),
            Shape::Exec { cmd: os("") }
        );
        // With --config.
        let inv = Invocation::parse(&argv(&[SELF, "--config", "/etc/x.toml"])).unwrap();
        assert_eq!(inv.config, Some(PathBuf::from("/etc/x.toml")));
        assert!(!inv.login);
    }

    #[test]
    fn login_shell_shapes() {
        assert_eq!(
            shape(&["-sealcast-shell"], &[TTY], false),
            Shape::Interactive
        );
        assert_eq!(shape(&["-sealcast-shell"], &[], false), Shape::ShellNoPty);
        assert_eq!(shape(&["-sealcast-shell"], &[], true), Shape::Interactive);
        assert_eq!(
            shape(&["sealcast-shell", "-c", "uname -a"], &[], false),
            Shape::Exec {
                cmd: os("uname -a")
            }
        );
        assert_eq!(
            shape(&["sealcast-shell", "-c", "vim"], &[TTY], false),
            Shape::ExecPty { cmd: os("vim") }
        );
        // su and friends: -l, -lc clusters.
        assert_eq!(
            shape(&["sealcast-shell", "-lc", "id"], &[], false),
            Shape::Exec { cmd: os("id") }
        );
        let inv = Invocation::parse(&argv(&["sealcast-shell", "-l"])).unwrap();
        assert!(inv.login && inv.command.is_none());
        // The -c command wins over a (client-sent) SSH_ORIGINAL_COMMAND.
        assert_eq!(
            shape(
                &["sealcast-shell", "-c", "date"],
                &[("SSH_ORIGINAL_COMMAND", "rm -rf /")],
                false
            ),
            Shape::Exec { cmd: os("date") }
        );
    }

    #[test]
    fn force_command_through_a_sealcast_login_shell() {
        let a = [
            "sealcast-shell",
            "-c",
            "/usr/local/lib/sealcast/sealcast-shell --config /c.toml",
        ];
        let inv = Invocation::parse(&argv(&a)).unwrap();
        assert!(inv.forced_via_login_shell);
        assert_eq!(inv.config, Some(PathBuf::from("/c.toml")));
        assert_eq!(inv.command, None);
        assert_eq!(shape(&a, &[TTY], false), Shape::Interactive);
        assert_eq!(
            shape(&a, &[("SSH_ORIGINAL_COMMAND", "hostname")], false),
            Shape::Exec {
                cmd: os("hostname")
            }
        );
        // Its own -c is not honoured there.
        assert!(Invocation::parse(&argv(&["x", "-c", "sealcast-shell -c id"])).is_err());
    }

    #[test]
    fn bad_command_lines() {
        for a in [
            &["sealcast-shell", "script.sh"][..],
            &["sealcast-shell", "-x"],
            &["sealcast-shell", "-c"],
            &["sealcast-shell", "--config"],
            &["sealcast-shell", "--verbose"],
        ] {
            assert!(Invocation::parse(&argv(a)).is_err(), "{a:?}");
        }
        // Messages escape what they quote (they reach journald and terminals).
        for (arg, msg) in [
            ("-l\x1b", "unknown option -\\u{1b}"),
            (
                "\x1b[2J",
                "unexpected argument \"\\u{1b}[2J\" (sealcast-shell runs no scripts)",
            ),
        ] {
            let e = Invocation::parse(&argv(&["sealcast-shell", arg])).unwrap_err();
            assert_eq!(e.0, msg);
        }
        let inv = Invocation::parse(&argv(&["sealcast-shell", "--check-config"])).unwrap();
        assert!(inv.check_config);
        // Nothing at all (argv empty) is a plain, non-login start.
        assert_eq!(Invocation::parse(&[]).unwrap(), Invocation::default());
    }

    #[test]
    fn word_grammar() {
        let w = |c: &[u8]| {
            command_words(c).map(|v| {
                v.into_iter()
                    .map(|w| String::from_utf8_lossy(&w).into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(w(b""), Some(vec![]));
        assert_eq!(w(b" \t "), Some(vec![]));
        assert_eq!(
            w(b"scp\t-t  /tmp "),
            Some(vec!["scp".into(), "-t".into(), "/tmp".into()])
        );
        assert_eq!(
            w(br#"a'b c'"d e"\ f\;g '' """#),
            Some(vec!["ab cd e f;g".into(), "".into(), "".into()])
        );
        assert_eq!(
            w(b"'$(x)' \"a'b\" \\$HOME"),
            Some(vec!["$(x)".into(), "a'b".into(), "$HOME".into()])
        );
        assert_eq!(
            w("caf\u{e9} \u{2603}".as_bytes()),
            Some(vec!["caf\u{e9}".into(), "\u{2603}".into()])
        );
        assert_eq!(command_words(b"a\xffb"), Some(vec![b"a\xffb".to_vec()]));
        for bad in [
            &b"a;b"[..],
            b"a&b",
            b"a|b",
            b"a<b",
            b"a>b",
            b"(a)",
            b"$x",
            b"`x`",
            b"a*",
            b"a?",
            b"[a]",
            b"{a,b}",
            b"~",
            b"#x",
            b"!x",
            b"a\nb",
            b"a\rb",
            b"a\0b",
            b"a\x1bb",
            b"a\x7fb",
            b"a\x0bb",
            b"a\x0cb",
            b"'a",
            b"\"a",
            b"a\\",
            b"a\\\n",
            b"'a\nb'",
            b"\"$x\"",
            b"\"`x`\"",
            b"\"a\\b\"",
            b"\"!x\"",
            b"\"a\rb\"",
            b"\\\x1b",
        ] {
            assert_eq!(
                command_words(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn transfers() {
        let t = |c: &str| transfer(OsStr::new(c), &programs());
        use TransferKind::*;
        for (c, kind, args) in [
            ("scp -t /tmp", Scp, &["-t", "/tmp"][..]),
            ("scp -f file", Scp, &["-f", "file"]),
            ("scp -v -r -d -t -- /dir", Scp, &["-v", "-r", "-d", "-t", "--", "/dir"]),
            ("scp -pf -- a b", Scp, &["-pf", "--", "a", "b"]),
            ("/usr/bin/scp -t .", Scp, &["-t", "."]),
            ("scp -r -t -- 'with space'", Scp, &["-r", "-t", "--", "with space"]),
            ("scp -t -- -dash", Scp, &["-t", "--", "-dash"]),
            ("scp\t-t\t/tmp", Scp, &["-t", "/tmp"]),
            ("internal-sftp", Sftp, &[]),
            ("internal-sftp -l INFO", Sftp, &["-l", "INFO"]),
            ("/usr/lib/openssh/sftp-server", Sftp, &[]),
            ("sftp-server -e -lVERBOSE -f AUTH -R -u 022", Sftp, &["-e", "-lVERBOSE", "-f", "AUTH", "-R", "-u", "022"]),
            ("sftp-server -el INFO -d /srv/%u -P remove,rename -p open -Q requests -h", Sftp,
                &["-el", "INFO", "-d", "/srv/%u", "-P", "remove,rename", "-p", "open", "-Q", "requests", "-h"]),
            ("rsync --server -vlogDtpre.iLsfxCIvu . /dst/", Rsync, &["--server", "-vlogDtpre.iLsfxCIvu", ".", "/dst/"]),
            ("rsync --server --sender -vlogDtpre.iLsfxCIvu . /src/", Rsync,
                &["--server", "--sender", "-vlogDtpre.iLsfxCIvu", ".", "/src/"]),
            ("/usr/bin/rsync --server -e.LsfxC . x", Rsync, &["--server", "-e.LsfxC", ".", "x"]),
            ("rsync --server -e31.14iLsfxCIvu . with\\ space/", Rsync, &["--server", "-e31.14iLsfxCIvu", ".", "with space/"]),
            ("rsync --server --sender -logDtprze.iLsfxCIvu -B2048 -@-1 --log-format=%i%I --timeout=30 \
              --bwlimit=100 --compress-level=3 --max-delete=-1 --delete-after --backup-dir bak \
              --partial-dir .p --files-from=- --from0 --no-relative --info=FLIST2,PROGRESS0 \
              --usermap=\\*:root --mkpath . a b", Rsync,
                &["--server", "--sender", "-logDtprze.iLsfxCIvu", "-B2048", "-@-1", "--log-format=%i%I",
                  "--timeout=30", "--bwlimit=100", "--compress-level=3", "--max-delete=-1", "--delete-after",
                  "--backup-dir", "bak", "--partial-dir", ".p", "--files-from=-", "--from0", "--no-relative",
                  "--info=FLIST2,PROGRESS0", "--usermap=*:root", "--mkpath", ".", "a", "b"]),
        ] {
            assert_eq!(t(c), Some(xfer(kind, args)), "{c}");
        }
        for c in [
            "scp file other:/tmp", // client use: an ordinary command
            "scp -P 22 a b",
            "scp -- -t", // after --: a file name
            "scp -T x y",
            "scp -t",
            "scp -tf x",
            "scp -t -S /bin/sh x",
            "scp -t x -S",
            "scp -t -",
            "scp -t -o ProxyCommand=x x",
            "scp -3 -t x",
            "scp -D /bin/sh -t x",
            "./scp -t /tmp",
            "/home/u/bin/scp -t /tmp",
            "/usr/local/bin/scp -t /tmp",
            "FOO=1 scp -t /tmp",
            "command scp -t /tmp",
            "exec scp -t /tmp",
            "scp -t /tmp; echo MARK",
            "scp -t /tmp\necho MARK",
            "scp -t $(echo MARK >&2)",
            "scp -t `id`",
            "scp -t /tmp && id",
            "scp -t /tmp | id",
            "scp -t >file",
            "scp -t ~/x",
            "scp -t *.txt",
            "scp -t /tmp\r",
            "scp -t /tmp #x",
            "rsync -a src dst",
            "rsync --server -e.LsfxC . /tmp; echo MARK",
            "rsync --server --daemon --config=/home/u/r.conf .",
            "rsync --server --daemon .",
            "rsync --server --config=x . y",
            "rsync --server -M--fake-super . y",
            "rsync --server --dparam=x . y",
            "rsync --server --rsh=sh . y",
            "rsync --server --rsync-path=sh . y",
            "rsync --server --remote-option=x . y",
            "rsync --server --early-input=x . y",
            "rsync --server --log-file=/tmp/l . y",
            "rsync --server --log-file-format=x . y",
            "rsync --server --write-batch=x . y",
            "rsync --server --read-batch=x . y",
            "rsync --server --only-write-batch=X . y",
            "rsync --server -s . y",
            "rsync --server -vse.x . y",
            "rsync --server --secluded-args . y",
            "rsync --server --protect-args . y",
            "rsync --server -vlogDtpre.iLsfxC . -daemon",
            "rsync --server -vlogDtpre.iLsfxC . '--daemon'",
            "rsync --server -vlogDtpre.iLsfxC . y --daemon",
            "rsync --server -vlogDtpre.iLs=x . y",
            "rsync --server --backup-dir --daemon . y",
            "rsync --server --backup-dir",
            "rsync --server -vlogDtpr",
            "rsync --server -vlogDtpr .",
            "rsync --server -B . y",
            "rsync --server -vB5 . y",
            "rsync --server -f+x . y",
            "rsync --server -i . y",
            "rsync --server - . y",
            "rsync --server -- . y",
            "rsync --server x . y",
            "rsync --sender --server . y",
            "rsync --server --unknown . y",
            "rsync --server --timeout . y",
            "rsync --server --delete=x . y",
            "rsync --server --iconv=utf8 . y",
            "sftp host",
            "sftp-serverx",
            "/usr/lib/sftp-server -e",
            "/opt/sftp/sftp-server",
            "sftp-server -c 'echo x'",
            "sftp-server x",
            "sftp-server -l",
            "sftp-server -l -e",
            "sftp-server --",
            "internal-sftp; echo MARK",
            "echo scp -t",
            "",
            "   ",
        ] {
            assert_eq!(t(c), None, "{c}");
        }
    }

    #[test]
    fn configured_program_paths_are_the_only_paths() {
        let p = TransferPrograms {
            scp: PathBuf::from("/opt/ssh/bin/scp"),
            rsync: PathBuf::from("/opt/rsync"),
            sftp_server: PathBuf::from("/opt/sftp/sftp-srv"),
        };
        let t = |c: &str| transfer(OsStr::new(c), &p).map(|t| (t.kind, t.program));
        assert_eq!(
            t("/opt/ssh/bin/scp -t x"),
            Some((TransferKind::Scp, p.scp.clone()))
        );
        assert_eq!(t("scp -t x"), Some((TransferKind::Scp, p.scp.clone())));
        assert_eq!(t("/usr/bin/scp -t x"), None);
        assert_eq!(
            t("/opt/rsync --server . x"),
            Some((TransferKind::Rsync, p.rsync.clone()))
        );
        assert_eq!(t("/usr/bin/rsync --server . x"), None);
        assert_eq!(
            t("/opt/sftp/sftp-srv -e"),
            Some((TransferKind::Sftp, p.sftp_server.clone()))
        );
        assert_eq!(
            t("internal-sftp"),
            Some((TransferKind::Sftp, p.sftp_server.clone()))
        );
        assert_eq!(t("/usr/lib/openssh/sftp-server"), None);
    }

    #[test]
    fn transfers_win_over_pty_and_come_from_either_source() {
        assert_eq!(
            shape(
                &[SELF],
                &[("SSH_ORIGINAL_COMMAND", "internal-sftp"), TTY],
                false
            ),
            Shape::Transfer {
                cmd: os("internal-sftp"),
                transfer: xfer(TransferKind::Sftp, &[]),
            }
        );
        assert_eq!(
            shape(&["sealcast-shell", "-c", "scp -t /x"], &[], false),
            Shape::Transfer {
                cmd: os("scp -t /x"),
                transfer: xfer(TransferKind::Scp, &["-t", "/x"]),
            }
        );
        assert_eq!(
            shape(
                &[SELF],
                &[("SSH_ORIGINAL_COMMAND", "rsync --server . /d")],
                true
            ),
            Shape::Transfer {
                cmd: os("rsync --server . /d"),
                transfer: xfer(TransferKind::Rsync, &["--server", ".", "/d"]),
            }
        );
        // Look-alikes are commands, recorded in full, from either source.
        assert_eq!(
            shape(
                &[SELF],
                &[("SSH_ORIGINAL_COMMAND", "scp -t /tmp; bash -i")],
                false
            ),
            Shape::Exec {
                cmd: os("scp -t /tmp; bash -i")
            }
        );
        assert_eq!(
            shape(
                &["sealcast-shell", "-c", "scp -t /x\necho MARK"],
                &[TTY],
                false
            ),
            Shape::ExecPty {
                cmd: os("scp -t /x\necho MARK")
            }
        );
    }

    #[test]
    fn shape_names_and_properties() {
        let cmd = os("x");
        let t = |kind| Shape::Transfer {
            cmd: cmd.clone(),
            transfer: xfer(kind, &[]),
        };
        let cases = [
            (Shape::Interactive, "interactive", true, false),
            (Shape::Exec { cmd: cmd.clone() }, "exec", false, true),
            (Shape::ExecPty { cmd: cmd.clone() }, "exec-pty", true, true),
            (Shape::ShellNoPty, "shell-no-pty", false, false),
            (t(TransferKind::Scp), "scp", false, true),
            (t(TransferKind::Sftp), "sftp", false, true),
            (t(TransferKind::Rsync), "rsync", false, true),
        ];
        for (s, name, pty, has_cmd) in cases {
            assert_eq!(s.name(), name);
            assert_eq!(s.uses_pty(), pty, "{name}");
            assert_eq!(s.command().is_some(), has_cmd, "{name}");
        }
    }

    #[test]
    fn non_utf8_commands_are_kept_exactly() {
        let raw = OsString::from_vec(b"scp -t /tmp/\xff".to_vec());
        let inv = Invocation::parse(&[os(SELF)]).unwrap();
        let mut e = HashMap::new();
        e.insert(os("SSH_ORIGINAL_COMMAND"), raw.clone());
        assert_eq!(
            classify(&inv, &e, &ctx(false)),
            Shape::Transfer {
                cmd: raw,
                transfer: Transfer {
                    kind: TransferKind::Scp,
                    program: PathBuf::from("/usr/bin/scp"),
                    args: vec![os("-t"), OsString::from_vec(b"/tmp/\xff".to_vec())],
                },
            }
        );
    }

    #[test]
    fn endpoints() {
        let e = env(&[("SSH_CONNECTION", "192.0.2.7 50022 198.51.100.1 22")]);
        assert_eq!(
            ssh_endpoints(&e),
            Some(("192.0.2.7 50022".into(), "198.51.100.1 22".into()))
        );
        assert_eq!(ssh_endpoints(&env(&[("SSH_CONNECTION", "x y")])), None);
        assert_eq!(ssh_endpoints(&env(&[])), None);
    }
}
