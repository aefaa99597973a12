//! Facts about the local system that the recorder needs: the real user's passwd entry, the
//! login shell, the host name, the kernel audit ids, and terminal queries on file
//! descriptors.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The passwd entry (`getpwuid_r(3)`) of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// Login name (`pw_name`), lossily converted to UTF-8.
    pub name: String,
    /// Home directory (`pw_dir`).
    pub home: PathBuf,
    /// Login shell (`pw_shell`); may be empty.
    pub shell: PathBuf,
}

/// The passwd entry of the **real** user id of this process (not the effective one, so a
/// set-uid wrapper still records who ran it): `getpwuid_r(3)` through `nix`. `None` when the
/// uid has no entry (containers running as an arbitrary uid) or the lookup fails.
pub fn current_user() -> Option<Passwd> {
    let u = nix::unistd::User::from_uid(nix::unistd::getuid()).ok()??;
    Some(Passwd {
        name: u.name,
        home: u.dir,
        shell: u.shell,
    })
}

/// Login name of the real user: the passwd entry, else `$USER`, else the numeric uid.
pub fn user_name() -> String {
    if let Some(p) = current_user().filter(|p| !p.name.is_empty()) {
        return p.name;
    }
    match std::env::var("USER") {
        Ok(u) if !u.is_empty() => u,
        _ => nix::unistd::getuid().to_string(),
    }
}

fn is_executable(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path.
    !p.as_os_str().is_empty() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

/// The user's login shell: the passwd entry's shell when it is executable, else `$SHELL` when
/// executable, else `/bin/sh`.
pub fn login_shell() -> PathBuf {
    if let Some(p) = current_user().filter(|p| is_executable(&p.shell)) {
        return p.shell;
    }
    if let Some(s) = std::env::var_os("SHELL").map(PathBuf::from) {
        if is_executable(&s) {
            return s;
        }
    }
    PathBuf::from("/bin/sh")
}

/// The system host name (`gethostname(2)`), lossily UTF-8; `localhost` if it is empty or the
/// call fails. Not sanitised: it may in theory contain whitespace.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for buf.len() bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let s = String::from_utf8_lossy(&buf[..n]).trim().to_string();
    if s.is_empty() {
        "localhost".into()
    } else {
        s
    }
}

/// The host id `sealcast record` and sealcast-shell write when none is configured:
/// [`hostname`] through [`sealcast_format::host_id::sanitize`]. It is also the
/// `allowed_signers` principal that lets this host's key sign its recordings (SPEC §6).
pub fn default_host_id() -> String {
    sealcast_format::host_id::sanitize(&hostname())
}

/// The value the kernel shows for an unset audit id (`(u32)-1`, `AUDIT_SID_UNSET` and
/// `AUDIT_UID_UNSET`).
pub const AUDIT_UNSET: u32 = u32::MAX;

/// Parse the content of `/proc/<pid>/sessionid` or `/proc/<pid>/loginuid`: a decimal `u32`
/// (optional trailing newline); `None` for [`AUDIT_UNSET`] or anything else.
pub fn parse_audit_id(text: &str) -> Option<u32> {
    text.trim_end_matches('\n')
        .parse::<u32>()
        .ok()
        .filter(|&v| v != AUDIT_UNSET)
}

/// The kernel audit session id of this process (`/proc/self/sessionid`; set by
/// `pam_loginuid` when sshd or login opened the session, inherited by every child): the value
/// for the header key `audit_session` (SPEC §2.4.4). `None` when unset, unreadable or not
/// built into the kernel (`CONFIG_AUDIT`).
pub fn audit_session_id() -> Option<u32> {
    parse_audit_id(&std::fs::read_to_string("/proc/self/sessionid").ok()?)
}

/// The audit login uid of this process (`/proc/self/loginuid`, the `auid` of audit
/// records): the value for the header key `loginuid` (SPEC §2.4.4). `None` when unset or
/// unreadable.
pub fn login_uid() -> Option<u32> {
    parse_audit_id(&std::fs::read_to_string("/proc/self/loginuid").ok()?)
}

/// True if `fd` refers to a terminal (`isatty(3)`).
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// Size of the terminal on `fd` as `(cols, rows)` (`TIOCGWINSZ`); `None` when `fd` is not a
/// terminal or reports a zero dimension.
pub fn terminal_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    // SAFETY: all-zero is a valid winsize; the ioctl writes at most one winsize.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// Initial PTY size `(cols, rows)` for a session whose local input is `stdin`: the terminal's
/// size when `stdin` is a terminal, else `$COLUMNS` × `$LINES` (each used when it parses as a
/// positive number), else 80 × 24.
pub fn initial_size(stdin: BorrowedFd<'_>) -> (u16, u16) {
    if let Some(s) = terminal_size(stdin) {
        return s;
    }
    let var = |name: &str, default: u16| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u16>().ok())
            .filter(|&v| v > 0)
            .unwrap_or(default)
    };
    (var("COLUMNS", 80), var("LINES", 24))
}

/// `$TERM` when set and non-empty, else `xterm-256color`.
pub fn default_term() -> String {
    match std::env::var("TERM") {
        Ok(t) if !t.trim().is_empty() => t,
        _ => "xterm-256color".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_ids_parse_and_unset_is_none() {
        assert_eq!(parse_audit_id("42\n"), Some(42));
        assert_eq!(parse_audit_id("0"), Some(0));
        assert_eq!(parse_audit_id("4294967295"), None);
        assert_eq!(parse_audit_id(""), None);
        assert_eq!(parse_audit_id("-1"), None);
        assert_eq!(parse_audit_id("4294967296"), None);
        // Whatever this machine says, the readers agree with the files.
        let file = |p: &str| std::fs::read_to_string(p).ok();
        assert_eq!(
            audit_session_id(),
            file("/proc/self/sessionid").and_then(|t| parse_audit_id(&t))
        );
        assert_eq!(
            login_uid(),
            file("/proc/self/loginuid").and_then(|t| parse_audit_id(&t))
        );
    }

    #[test]
    fn facts_are_plausible() {
        assert!(!user_name().is_empty());
        assert!(!hostname().is_empty());
        assert!(!default_host_id().contains(char::is_whitespace));
        assert!(login_shell().is_absolute());
        assert!(!default_term().is_empty());
        let devnull = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        assert!(!is_tty(devnull.as_fd()));
        assert_eq!(terminal_size(devnull.as_fd()), None);
    }
}
