//! The set-uid privilege model (see the crate documentation).
//!
//! At start a set-uid `sealcast-shell` has real uid = the user and effective = saved uid = the
//! service user (`sealcast`, the binary's owner). It reads the config and key and opens the
//! recording as the service user; the child switches to the user entirely before `exec`
//! ([`sealcast_recorder::ChildCommand::uid`]); then the recorder gives up the user's id for
//! good ([`Privileges::drop_user`]), so the user can neither signal nor trace it.

use std::io;

use sealcast_recorder::spawn::resuid;

/// The ids this process started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileges {
    /// The recorded user (real uid).
    pub user: libc::uid_t,
    /// The service user (effective uid): owner of the set-uid binary, of the spool and the
    /// key. Equal to [`Privileges::user`] when not set-uid.
    pub service: libc::uid_t,
}

impl Privileges {
    /// The current real and effective uids. Refuses a start where the saved uid is neither
    /// (not something a set-uid `exec` produces).
    ///
    /// # Errors
    /// `PermissionDenied` for inconsistent ids.
    pub fn detect() -> io::Result<Privileges> {
        let (r, e, s) = resuid();
        if s != e && s != r {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("unexpected user ids (real {r}, effective {e}, saved {s})"),
            ));
        }
        Ok(Privileges {
            user: r,
            service: e,
        })
    }

    /// Whether the binary runs set-uid (the real and effective uids differ). When not, every
    /// id change is skipped: tests as root, a developer's run.
    pub fn setuid(&self) -> bool {
        self.user != self.service
    }

    /// Owners accepted for the configuration file and its directories: root and the service
    /// user.
    pub fn trusted_owners(&self) -> Vec<u32> {
        let mut v = vec![0];
        if self.service != 0 {
            v.push(self.service);
        }
        v
    }

    /// Run `f` with the effective uid switched to the user (the saved uid keeps the service
    /// user, so switching back is allowed), then switch back. No-op when not set-uid.
    ///
    /// # Errors
    /// `seteuid` failures; `f`'s result otherwise.
    pub fn as_user<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        if !self.setuid() {
            return f();
        }
        seteuid(self.user)?;
        let r = f();
        seteuid(self.service)?;
        r
    }

    /// Give up the user's id for good: `setresuid(service, service, service)`, checked, and
    /// `PR_SET_DUMPABLE 0` (no core dumps, no `ptrace`, `/proc/<pid>` owned by root). After
    /// this the user cannot signal or trace the recorder. No-op when not set-uid.
    ///
    /// # Errors
    /// `setresuid` / `prctl` failures, or ids that did not end up as asked.
    pub fn drop_user(&self) -> io::Result<()> {
        if !self.setuid() {
            return Ok(());
        }
        let s = self.service;
        // SAFETY: plain system calls with integer arguments.
        if unsafe { libc::setresuid(s, s, s) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if resuid() != (s, s, s) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "user ids did not change",
            ));
        }
        set_nondumpable()
    }
}

/// `prctl(PR_SET_DUMPABLE, 0)`.
///
/// # Errors
/// The `prctl` error.
pub fn set_nondumpable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn seteuid(uid: libc::uid_t) -> io::Result<()> {
    // SAFETY: plain system call; -1 leaves the real and saved ids unchanged.
    if unsafe { libc::setresuid(libc::uid_t::MAX, uid, libc::uid_t::MAX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprivileged_runs_change_nothing() {
        let p = Privileges::detect().unwrap();
        if p.setuid() {
            return;
        }
        assert_eq!(p.as_user(|| Ok(resuid())).unwrap(), resuid());
        p.drop_user().unwrap();
        assert_eq!(resuid(), (p.user, p.user, p.user));
        assert!(p.trusted_owners().contains(&0));
    }
}
