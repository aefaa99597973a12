//! The recorded session's environment, rebuilt from scratch (nothing of sshd's environment
//! passes unless listed here or in `env_keep`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sealcast_config::Config;

/// Variables sshd sets that are passed on unchanged when present (`session.c`,
/// `do_setup_env`).
pub const FROM_SSHD: &[&str] = &[
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_TTY",
    "SSH_ORIGINAL_COMMAND",
];

/// Who the session runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name (`USER`, `LOGNAME`).
    pub name: String,
    /// Home directory (`HOME`, and the session's working directory).
    pub home: std::path::PathBuf,
}

/// The child's environment, in this order (a later entry replaces an earlier one of the same
/// name):
///
/// 1. every variable of `ours` (sealcast-shell's environment, as sshd built it) that
///    `env_keep` lists;
/// 2. `HOME`, `USER`, `LOGNAME` (passwd), `SHELL` (the configured shell), `PATH` (config);
/// 3. `TERM` = `term` for PTY sessions;
/// 4. [`FROM_SSHD`] as sshd gave them;
/// 5. `SEALCAST_SESSION` = the session id.
pub fn child_env(
    cfg: &Config,
    user: &User,
    ours: &[(OsString, OsString)],
    term: Option<&str>,
    session_id: &str,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |k: &OsStr, v: &OsStr| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_os_string(), v.to_os_string()));
    };
    for (k, v) in ours {
        if k.to_str().is_some_and(|name| cfg.keeps(name)) {
            set(k, v);
        }
    }
    set(OsStr::new("HOME"), user.home.as_os_str());
    set(OsStr::new("USER"), OsStr::new(&user.name));
    set(OsStr::new("LOGNAME"), OsStr::new(&user.name));
    set(OsStr::new("SHELL"), cfg.shell.as_os_str());
    set(OsStr::new("PATH"), OsStr::new(&cfg.path));
    if let Some(t) = term {
        set(OsStr::new("TERM"), OsStr::new(t));
    }
    for name in FROM_SSHD {
        if let Some((_, v)) = ours.iter().rev().find(|(k, _)| k == name) {
            set(OsStr::new(name), v);
        }
    }
    set(OsStr::new("SEALCAST_SESSION"), OsStr::new(session_id));
    env
}

/// Variables a transfer program (scp, rsync, sftp-server) is started with, when
/// [`child_env`] has them: identity, `PATH`, the terminal and locale (`LC_*` too), the
/// variables sshd sets, and `SEALCAST_SESSION`.
///
/// Everything else is dropped, whatever `env_keep` says: a variable can be a way to start a
/// process (`LD_PRELOAD`, rsync's `RSYNC_PANIC_ACTION`…), and a transfer under the
/// `metadata` policy records no payload (SPEC §10.1). `HOME` is dropped too: rsync reads
/// `$HOME/.popt` before it sees `--server` (`options.c`, `poptReadDefaultConfig`), and a popt
/// `exec` alias there runs any program in its place; none of the three uses `HOME`
/// otherwise (they start in the home directory, and find it in the passwd entry).
pub const TRANSFER_ENV: &[&str] = &[
    "USER",
    "LOGNAME",
    "SHELL",
    "PATH",
    "TERM",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_TTY",
    "SSH_ORIGINAL_COMMAND",
    "SEALCAST_SESSION",
];

/// [`child_env`] restricted to [`TRANSFER_ENV`], for a transfer program.
pub fn transfer_env(env: Vec<(OsString, OsString)>) -> Vec<(OsString, OsString)> {
    env.into_iter()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|name| {
                TRANSFER_ENV.iter().any(|t| match t.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => *t == name,
                })
            })
        })
        .collect()
}

/// `argv[0]` for the shell: `-name` for a login shell (sshd's convention), else `name`.
pub fn shell_arg0(shell: &Path, login: bool) -> OsString {
    let name = shell.file_name().unwrap_or(shell.as_os_str());
    let mut a = OsString::new();
    if login {
        a.push("-");
    }
    a.push(name);
    a
}

/// Lossy text of a command for headers and logs.
pub fn lossy(s: &OsStr) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}

/// Text of a client-supplied string that is safe to show on a terminal: [`lossy`], with
/// every control character (C0, DEL, C1) and `\` escaped as Rust does (`\u{1b}`, `\n`,
/// `\\`), so an `SSH_ORIGINAL_COMMAND` with terminal escapes cannot rewrite the screen of an
/// operator reading the log.
pub fn printable(s: &OsStr) -> String {
    lossy(s)
        .chars()
        .map(|c| {
            if c.is_control() || c == '\\' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    #[test]
    fn rebuilt_environment() {
        let cfg = Config {
            env_keep: vec!["LANG".into(), "LC_*".into(), "HOME".into()],
            ..Config::default()
        };
        let user = User {
            name: "alice".into(),
            home: "/home/alice".into(),
        };
        let ours = [
            (os("LANG"), os("C.UTF-8")),
            (os("LC_TIME"), os("de_DE")),
            (os("HOME"), os("/tmp/evil")),
            (os("LD_PRELOAD"), os("/tmp/x.so")),
            (os("PATH"), os("/tmp/bin")),
            (os("SHELL"), os("/tmp/sh")),
            (os("SSH_CONNECTION"), os("192.0.2.1 5 192.0.2.2 22")),
            (os("SSH_TTY"), os("/dev/pts/4")),
            (os("SEALCAST_SESSION"), os("forged")),
            (os("TERM"), os("vt100")),
        ];
        let env = child_env(&cfg, &user, &ours, Some("xterm"), "abc");
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(get("HOME").as_deref(), Some("/home/alice"));
        assert_eq!(get("USER").as_deref(), Some("alice"));
        assert_eq!(get("LOGNAME").as_deref(), Some("alice"));
        assert_eq!(get("SHELL").as_deref(), Some("/bin/bash"));
        assert_eq!(get("PATH").as_deref(), Some("/usr/local/bin:/usr/bin:/bin"));
        assert_eq!(get("TERM").as_deref(), Some("xterm"));
        assert_eq!(get("LANG").as_deref(), Some("C.UTF-8"));
        assert_eq!(get("LC_TIME").as_deref(), Some("de_DE"));
        assert_eq!(get("LD_PRELOAD"), None);
        assert_eq!(get("SSH_TTY").as_deref(), Some("/dev/pts/4"));
        assert_eq!(
            get("SSH_CONNECTION").as_deref(),
            Some("192.0.2.1 5 192.0.2.2 22")
        );
        assert_eq!(get("SSH_ORIGINAL_COMMAND"), None);
        assert_eq!(get("SEALCAST_SESSION").as_deref(), Some("abc"));
        let names: Vec<_> = env.iter().map(|(n, _)| n.clone()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "{names:?}");
        // No PTY: TERM only through env_keep.
        let env = child_env(&Config::default(), &user, &ours, None, "abc");
        assert!(env.iter().any(|(n, v)| n == "TERM" && v == "vt100"));
    }

    #[test]
    fn transfer_programs_get_no_home_and_no_extra_variables() {
        let cfg = Config {
            env_keep: vec!["*".into()],
            ..Config::default()
        };
        let user = User {
            name: "alice".into(),
            home: "/home/alice".into(),
        };
        let ours = [
            (os("LANG"), os("C.UTF-8")),
            (os("LC_TIME"), os("de_DE")),
            (os("LD_PRELOAD"), os("/tmp/x.so")),
            (os("RSYNC_PANIC_ACTION"), os("sh")),
            (os("POPT_X"), os("y")),
            (os("SSH_CONNECTION"), os("192.0.2.1 5 192.0.2.2 22")),
            (os("SSH_ORIGINAL_COMMAND"), os("scp -t .")),
        ];
        let env = transfer_env(child_env(&cfg, &user, &ours, None, "abc"));
        let mut names: Vec<String> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "LANG",
                "LC_TIME",
                "LOGNAME",
                "PATH",
                "SEALCAST_SESSION",
                "SHELL",
                "SSH_CONNECTION",
                "SSH_ORIGINAL_COMMAND",
                "USER"
            ]
        );
    }

    #[test]
    fn printable_escapes_control_characters() {
        use std::os::unix::ffi::OsStringExt;
        let raw = OsString::from_vec(b"ls \x1b[2J\r\n\t\x7f\\ \xc2\x9b caf\xc3\xa9 \xff".to_vec());
        assert_eq!(
            printable(&raw),
            "ls \\u{1b}[2J\\r\\n\\t\\u{7f}\\\\ \\u{9b} caf\u{e9} \u{fffd}"
        );
    }

    #[test]
    fn arg0() {
        assert_eq!(shell_arg0(Path::new("/bin/bash"), true), "-bash");
        assert_eq!(shell_arg0(Path::new("/usr/bin/zsh"), false), "zsh");
    }
}
