//! Who may use a target: the session user's passwd entry and groups
//! (`getpwnam_r(3)`, `getpwuid_r(3)`, `getgrouplist(3)`, `getgrgid_r(3)`), checked against
//! `allowed_users` / `allowed_groups`.

use std::ffi::{CStr, CString};

use crate::config::Target;

/// A local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Names of the primary and supplementary groups.
    pub groups: Vec<String>,
}

fn pw(by: Result<&CStr, u32>) -> Option<(String, u32, u32)> {
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: zeroed passwd is valid; read only after success.
        let mut p: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: valid pointers for the given lengths during the call.
        let rc = unsafe {
            match by {
                Ok(name) => {
                    libc::getpwnam_r(name.as_ptr(), &mut p, buf.as_mut_ptr(), buf.len(), &mut res)
                }
                Err(uid) => libc::getpwuid_r(uid, &mut p, buf.as_mut_ptr(), buf.len(), &mut res),
            }
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || res.is_null() || p.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points into buf, NUL-terminated.
        let name = unsafe { CStr::from_ptr(p.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Some((name, p.pw_uid, p.pw_gid));
    }
}

fn group_name(gid: u32) -> Option<String> {
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: as in `pw`.
        let mut g: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: valid pointers for the given lengths during the call.
        let rc = unsafe { libc::getgrgid_r(gid, &mut g, buf.as_mut_ptr(), buf.len(), &mut res) };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || res.is_null() || g.gr_name.is_null() {
            return None;
        }
        // SAFETY: gr_name points into buf, NUL-terminated.
        return Some(
            unsafe { CStr::from_ptr(g.gr_name) }
                .to_string_lossy()
                .into_owned(),
        );
    }
}

impl User {
    /// Look a user up by login name, or by uid when `name` is all digits.
    pub fn lookup(name: &str) -> Option<User> {
        let (name, uid, gid) = match name.parse::<u32>() {
            Ok(uid) => pw(Err(uid))?,
            Err(_) => pw(Ok(&CString::new(name).ok()?))?,
        };
        let cname = CString::new(name.clone()).ok()?;
        let mut n: libc::c_int = 64;
        let mut gids: Vec<libc::gid_t> = vec![0; n as usize];
        loop {
            // SAFETY: gids has room for n entries; getgrouplist writes at most n and updates n.
            let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, gids.as_mut_ptr(), &mut n) };
            if rc >= 0 {
                gids.truncate(n.max(0) as usize);
                break;
            }
            if n as usize <= gids.len() || n > 65_536 {
                gids.truncate(0);
                break;
            }
            gids.resize(n as usize, 0);
        }
        let groups = gids.into_iter().filter_map(group_name).collect();
        Some(User { name, uid, groups })
    }

    /// The user this process runs as (real uid).
    pub fn current() -> Option<User> {
        // SAFETY: getuid has no preconditions.
        User::lookup(&unsafe { libc::getuid() }.to_string())
    }
}

/// Who may use a target (`allowed_users`, `allowed_groups` of [`Target`]).
pub trait Allows {
    /// Whether `user` may use the target: listed in `allowed_users`, or a member of a group
    /// in `allowed_groups`; everyone when both lists are empty.
    fn allows(&self, user: &User) -> bool;
}

impl Allows for Target {
    fn allows(&self, user: &User) -> bool {
        if self.allowed_users.is_empty() && self.allowed_groups.is_empty() {
            return true;
        }
        self.allowed_users.contains(&user.name)
            || self.allowed_groups.iter().any(|g| user.groups.contains(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_with_its_group() {
        let u = User::lookup("root").unwrap();
        assert_eq!(u.uid, 0);
        assert!(u.groups.iter().any(|g| g == "root"), "{:?}", u.groups);
        assert_eq!(User::lookup("0").unwrap().name, "root");
        assert!(User::lookup("no-such-user-sealcast").is_none());
    }
}
