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
    /// A file transfer (with or without a PTY): run over pipes under the transfer policy.
    Transfer {
        /// Which protocol.
        kind: TransferKind,
        /// The command, exactly as received (`internal-sftp` included).
        cmd: OsString,
    },
    /// Login without a command and without a PTY (`ssh -T host`): the login shell reading
    /// commands from stdin, over pipes.
    ShellNoPty,
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
            Shape::Transfer { kind, .. } => kind.name(),
        }
    }

    /// The command, for shapes that have one.
    pub fn command(&self) -> Option<&OsStr> {
        match self {
            Shape::Exec { cmd } | Shape::ExecPty { cmd } | Shape::Transfer { cmd, .. } => Some(cmd),
            Shape::Interactive | Shape::ShellNoPty => None,
        }
    }

    /// Whether the session runs in a PTY.
    pub fn uses_pty(&self) -> bool {
        matches!(self, Shape::Interactive | Shape::ExecPty { .. })
    }
}

/// sealcast-shell's own command line, as a login shell or a ForceCommand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// Started as a login shell (`argv[0]` starts with `-`, or `-l` / `--login`).
    pub login: bool,
    /// `--config FILE` (honoured only for a trusted file, see [`crate::config`]).
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
                                return Err(UsageError(format!(
                                    "unknown option -{}",
                                    char::from(f)
                                )))
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
    /// The configured `sftp_server`, recognised as an SFTP command too.
    pub sftp_server: PathBuf,
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
/// command is a transfer when [`transfer_kind`] recognises it, whatever the PTY; otherwise a
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
        Some(cmd) => match transfer_kind(&cmd, &ctx.sftp_server) {
            Some(kind) => Shape::Transfer { kind, cmd },
            None if pty => Shape::ExecPty { cmd },
            None => Shape::Exec { cmd },
        },
    }
}

/// Whitespace-separated words of a command (no shell quoting: enough to recognise the
/// fixed command lines that scp, sftp and rsync clients send).
fn words(cmd: &[u8]) -> Vec<&[u8]> {
    cmd.split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Recognise a file-transfer server command, as the clients send them:
///
/// - `scp` with server mode `-t` (sink) or `-f` (source), alone or in a flag cluster of
///   `d f p r t v` before `--` (`scp -v -r -d -t -- /dir`, `scp -pf file`);
/// - `sftp-server` (any directory), `internal-sftp`, or the configured `sftp_server`;
/// - `rsync` with `--server` (`rsync --server --sender -vlogDtpre.iLsfxC . path`).
///
/// The first word is matched by file name, so `/usr/bin/scp` counts. Anything else — a
/// transfer tool used as a client, or behind other shell words — is an ordinary command
/// (recorded in full).
pub fn transfer_kind(cmd: &OsStr, sftp_server: &Path) -> Option<TransferKind> {
    let w = words(cmd.as_bytes());
    let first = *w.first()?;
    if first == sftp_server.as_os_str().as_bytes() || first == b"internal-sftp" {
        return Some(TransferKind::Sftp);
    }
    let name = Path::new(OsStr::from_bytes(first)).file_name()?.as_bytes();
    match name {
        b"sftp-server" => Some(TransferKind::Sftp),
        b"rsync" if w[1..].iter().any(|a| *a == b"--server") => Some(TransferKind::Rsync),
        b"scp" => {
            let server = w[1..]
                .iter()
                .take_while(|a| **a != b"--")
                .filter(|a| a.len() > 1 && a[0] == b'-' && a[1] != b'-')
                .any(|a| {
                    a[1..].iter().all(|c| b"dfprtv".contains(c))
                        && a[1..].iter().any(|c| *c == b't' || *c == b'f')
                });
            server.then_some(TransferKind::Scp)
        }
        _ => None,
    }
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
            sftp_server: PathBuf::from("/usr/lib/openssh/sftp-server"),
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
        let inv = Invocation::parse(&argv(&["sealcast-shell", "--check-config"])).unwrap();
        assert!(inv.check_config);
        // Nothing at all (argv empty) is a plain, non-login start.
        assert_eq!(Invocation::parse(&[]).unwrap(), Invocation::default());
    }

    #[test]
    fn transfers() {
        let t = |c: &str| transfer_kind(OsStr::new(c), Path::new("/opt/sftp/sftp-srv"));
        use TransferKind::*;
        for c in [
            "scp -t /tmp",
            "scp -f file",
            "scp -v -r -d -t -- /dir",
            "scp -pf -- a b",
            "/usr/bin/scp -t .",
            "scp -r -t -- 'with space'",
        ] {
            assert_eq!(t(c), Some(Scp), "{c}");
        }
        for c in [
            "internal-sftp",
            "internal-sftp -l INFO",
            "/usr/lib/openssh/sftp-server",
            "/usr/lib/sftp-server -e",
            "/opt/sftp/sftp-srv",
        ] {
            assert_eq!(t(c), Some(Sftp), "{c}");
        }
        for c in [
            "rsync --server -vlogDtpre.iLsfxCIvu . /dst/",
            "rsync --server --sender -vlogDtpre.iLsfxCIvu . /src/",
            "/usr/bin/rsync --server -e.LsfxC . x",
        ] {
            assert_eq!(t(c), Some(Rsync), "{c}");
        }
        for c in [
            "scp file other:/tmp", // client use: an ordinary command
            "scp -P 22 a b",
            "scp -- -t", // after --: a file name
            "scp -T x y",
            "rsync -a src dst",
            "sftp host",
            "sftp-serverx",
            "echo scp -t",
            "",
            "   ",
        ] {
            assert_eq!(t(c), None, "{c}");
        }
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
                kind: TransferKind::Sftp,
                cmd: os("internal-sftp")
            }
        );
        assert_eq!(
            shape(&["sealcast-shell", "-c", "scp -t /x"], &[], false),
            Shape::Transfer {
                kind: TransferKind::Scp,
                cmd: os("scp -t /x")
            }
        );
        assert_eq!(
            shape(
                &[SELF],
                &[("SSH_ORIGINAL_COMMAND", "rsync --server . /d")],
                true
            ),
            Shape::Transfer {
                kind: TransferKind::Rsync,
                cmd: os("rsync --server . /d")
            }
        );
    }

    #[test]
    fn shape_names_and_properties() {
        let cmd = os("x");
        let cases = [
            (Shape::Interactive, "interactive", true, false),
            (Shape::Exec { cmd: cmd.clone() }, "exec", false, true),
            (Shape::ExecPty { cmd: cmd.clone() }, "exec-pty", true, true),
            (Shape::ShellNoPty, "shell-no-pty", false, false),
            (
                Shape::Transfer {
                    kind: TransferKind::Scp,
                    cmd: cmd.clone(),
                },
                "scp",
                false,
                true,
            ),
            (
                Shape::Transfer {
                    kind: TransferKind::Sftp,
                    cmd: cmd.clone(),
                },
                "sftp",
                false,
                true,
            ),
            (
                Shape::Transfer {
                    kind: TransferKind::Rsync,
                    cmd,
                },
                "rsync",
                false,
                true,
            ),
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
                kind: TransferKind::Scp,
                cmd: raw
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
