//! Users and groups: lookups through `nix` (`getpwnam_r(3)`, `getgrnam_r(3)`), changes through
//! the shadow-utils tools (`groupadd`, `useradd`, `usermod`, `userdel`, `groupdel`), which also
//! keep `/etc/shadow` and `/etc/gshadow` consistent.

use std::fs;
use std::path::Path;
use std::process::Command;

use nix::unistd::{Group, User};

use crate::error::InstallError;

/// The uid of user `name`, `None` when there is no such user.
///
/// # Errors
/// [`InstallError::Lookup`] when the user database cannot be read.
pub fn user_uid(name: &str) -> Result<Option<u32>, InstallError> {
    Ok(user(name)?.map(|u| u.uid.as_raw()))
}

/// The passwd entry of `name`, `None` when there is no such user.
///
/// # Errors
/// [`InstallError::Lookup`] when the user database cannot be read.
pub fn user(name: &str) -> Result<Option<User>, InstallError> {
    User::from_name(name).map_err(|source| InstallError::Lookup {
        kind: "user",
        name: name.to_string(),
        source,
    })
}

/// The gid of group `name`, `None` when there is no such group.
///
/// # Errors
/// [`InstallError::Lookup`] when the group database cannot be read.
pub fn group_gid(name: &str) -> Result<Option<u32>, InstallError> {
    Ok(group(name)?.map(|g| g.gid.as_raw()))
}

/// The group entry of `name`, `None` when there is no such group.
///
/// # Errors
/// [`InstallError::Lookup`] when the group database cannot be read.
pub fn group(name: &str) -> Result<Option<Group>, InstallError> {
    Group::from_name(name).map_err(|source| InstallError::Lookup {
        kind: "group",
        name: name.to_string(),
        source,
    })
}

/// The entries of `/etc/passwd` as (login name, gid, login shell).
fn passwd_entries() -> Result<Vec<(String, u32, String)>, InstallError> {
    let text =
        fs::read_to_string("/etc/passwd").map_err(InstallError::io("reading", "/etc/passwd"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let gid = f.get(3)?.parse().ok()?;
            (f.len() >= 7).then(|| (f[0].to_string(), gid, f[6].to_string()))
        })
        .collect())
}

/// Login names in `/etc/passwd` whose login shell is `shell`.
///
/// # Errors
/// [`InstallError::Io`] when `/etc/passwd` cannot be read.
pub fn users_with_shell(shell: &Path) -> Result<Vec<String>, InstallError> {
    let want = shell.as_os_str();
    Ok(passwd_entries()?
        .into_iter()
        .filter(|(_, _, s)| std::ffi::OsStr::new(s) == want)
        .map(|(name, _, _)| name)
        .collect())
}

/// The members of group `name`: the users listed in its entry and, from `/etc/passwd`, the
/// users whose primary group it is; sorted, without duplicates.
///
/// # Errors
/// [`InstallError::Usage`] when there is no such group; lookup and read errors.
pub fn group_members(name: &str) -> Result<Vec<String>, InstallError> {
    let g = group(name)?
        .ok_or_else(|| InstallError::Usage(format!("--group {name}: no such group")))?;
    let mut members = g.mem.clone();
    members.extend(
        passwd_entries()?
            .into_iter()
            .filter(|(_, gid, _)| *gid == g.gid.as_raw())
            .map(|(user, _, _)| user),
    );
    members.sort();
    members.dedup();
    Ok(members)
}

/// Run `tool args…`; its standard error becomes the error message when it fails.
///
/// # Errors
/// [`InstallError::Spawn`], [`InstallError::Tool`].
pub fn run_tool(tool: &'static str, args: &[&str]) -> Result<(), InstallError> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|source| InstallError::Spawn { tool, source })?;
    if !out.status.success() {
        return Err(InstallError::Tool {
            tool,
            args: args.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}
