//! Nested-session detection: sealcast-shell started inside a session that a sealcast-shell is
//! already recording (a user's `tmux`/`screen` or `su` that starts the login shell again)
//! runs the command directly instead of recording it twice.
//!
//! `SEALCAST_SESSION` alone proves nothing — the user sets their own environment — so an
//! **ancestor process** must also be a genuine recorder:
//!
//! - its `/proc/<pid>/exe` is the same file (device and inode) as this process's, when that
//!   link can be read (a recorder that dropped privileges is not dumpable, so only root can
//!   read it); or
//! - when this process runs set-uid: its `/proc/<pid>/status` names `sealcast-shell` and all
//!   four of its uids are the service user — a process only a set-uid `sealcast-shell` can be,
//!   since nothing else runs as that user.
//!
//! The plain `sealcast record` CLI does not count: it runs as the user, who controls its
//! output, so it must not suppress a recording by the privileged recorder.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::privs::Privileges;

/// How many ancestors are examined, at most.
const MAX_DEPTH: usize = 64;

/// The pid of the recording sealcast-shell this process runs under, if it does.
pub fn recorder_ancestor(env: &HashMap<OsString, OsString>, privs: &Privileges) -> Option<u32> {
    let id = env.get(OsStr::new("SEALCAST_SESSION"))?.to_str()?;
    if !sealcast_format::names::is_session_id(id) {
        return None;
    }
    let own = fs::metadata("/proc/self/exe").ok()?;
    // SAFETY: getppid has no preconditions.
    let mut pid = unsafe { libc::getppid() } as u32;
    for _ in 0..MAX_DEPTH {
        if pid <= 1 {
            return None;
        }
        if is_recorder(pid, &own, privs) {
            return Some(pid);
        }
        pid = parent_of(pid)?;
    }
    None
}

fn is_recorder(pid: u32, own: &fs::Metadata, privs: &Privileges) -> bool {
    if let Ok(m) = fs::metadata(format!("/proc/{pid}/exe")) {
        if m.dev() == own.dev() && m.ino() == own.ino() {
            return true;
        }
    }
    if !privs.setuid() {
        return false;
    }
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status_is_recorder(&status, privs.service)
}

/// Whether a `/proc/<pid>/status` text is that of a sealcast-shell running entirely as
/// `service`.
fn status_is_recorder(status: &str, service: u32) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let name_ok = field("Name") == Some(crate::classify::BINARY_NAME);
    let uids_ok = field("Uid").is_some_and(|u| {
        let ids: Vec<&str> = u.split_whitespace().collect();
        ids.len() == 4 && ids.iter().all(|i| i.parse::<u32>().ok() == Some(service))
    });
    name_ok && uids_ok
}

/// Parent pid from `/proc/<pid>/stat` (the field after the state, past the command name in
/// parentheses, which may itself contain spaces and parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_check() {
        let s = "Name:\tsealcast-shell\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t998\t998\t998\t998\nGid:\t1000\t1000\t1000\t1000\n";
        assert!(status_is_recorder(s, 998));
        assert!(!status_is_recorder(s, 999));
        let user_copy = s.replace("Uid:\t998\t998\t998\t998", "Uid:\t1000\t998\t998\t998");
        assert!(!status_is_recorder(&user_copy, 998));
        assert!(!status_is_recorder(
            &s.replace("sealcast-shell", "sealcast"),
            998
        ));
    }

    #[test]
    fn parent_of_self() {
        // SAFETY: no preconditions.
        let (me, parent) = unsafe { (libc::getpid(), libc::getppid()) };
        assert_eq!(parent_of(me as u32), Some(parent as u32));
    }

    #[test]
    fn requires_a_well_formed_session_id() {
        let p = Privileges::detect().unwrap();
        let mut env = HashMap::new();
        assert_eq!(recorder_ancestor(&env, &p), None);
        env.insert(OsString::from("SEALCAST_SESSION"), OsString::from("x"));
        assert_eq!(recorder_ancestor(&env, &p), None);
        // A well-formed id, but no recorder among this test's ancestors.
        env.insert(
            OsString::from("SEALCAST_SESSION"),
            OsString::from("0123456789abcdef0123456789abcdef"),
        );
        assert_eq!(recorder_ancestor(&env, &p), None);
    }
}
