//! The step runner and the file system steps: each checks the current state first and acts
//! only when it differs, so a second run changes nothing.

use std::ffi::OsStr;
use std::fmt::Display;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::accounts::{group_gid, user_uid};
use crate::error::InstallError;
use crate::SYSTEM_USER;

/// Performs or (in a dry run) describes each change, counts them, and reports them.
pub(crate) struct Ctx<'a> {
    /// Describe instead of doing.
    pub dry: bool,
    /// Changes made (or that would be made).
    pub changes: usize,
    /// Where the report goes (stdout in the CLI).
    out: &'a mut dyn Write,
    /// Where warnings go (stderr in the CLI).
    warn: &'a mut dyn Write,
}

impl<'a> Ctx<'a> {
    pub fn new(dry: bool, out: &'a mut dyn Write, warn: &'a mut dyn Write) -> Ctx<'a> {
        Ctx {
            dry,
            changes: 0,
            out,
            warn,
        }
    }

    /// One change: `what` in the imperative ("create /x"). Dry run: prints "would create
    /// /x"; otherwise runs `f` and prints "created /x".
    pub fn act(
        &mut self,
        what: impl AsRef<str>,
        f: impl FnOnce() -> Result<(), InstallError>,
    ) -> Result<(), InstallError> {
        self.changes += 1;
        if self.dry {
            self.say(format_args!("would {}", what.as_ref()))
        } else {
            f()?;
            self.say(past_tense(what.as_ref()))
        }
    }

    /// A line of the report.
    pub fn say(&mut self, line: impl Display) -> Result<(), InstallError> {
        writeln!(self.out, "{line}").map_err(InstallError::Output)
    }

    /// A warning line, prefixed `sealcast: warning: `.
    pub fn warn(&mut self, line: impl Display) -> Result<(), InstallError> {
        writeln!(self.warn, "sealcast: warning: {line}").map_err(InstallError::Output)
    }
}

/// "create X" → "created X", for the log of what was done.
pub(crate) fn past_tense(what: &str) -> String {
    let (verb, rest) = what.split_once(' ').unwrap_or((what, ""));
    let done = match verb {
        "create" => "created",
        "install" => "installed",
        "write" => "wrote",
        "remove" => "removed",
        "append" => "appended",
        "generate" => "generated",
        "set" => "set",
        "hand" => "handed",
        "delete" => "deleted",
        other => return format!("{other} {rest}"),
    };
    format!("{done} {rest}")
}

/// Ids of the `sealcast` user and group, when they exist.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ids {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Ids {
    /// Look both up.
    pub fn lookup() -> Result<Ids, InstallError> {
        Ok(Ids {
            uid: user_uid(SYSTEM_USER)?,
            gid: group_gid(SYSTEM_USER)?,
        })
    }
}

/// Who should own a path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner {
    Ids(u32, u32),
    /// The service user and group (unknown in a dry run before they exist).
    Service(Ids),
}

impl Owner {
    fn ids(self) -> Option<(u32, u32)> {
        match self {
            Owner::Ids(u, g) => Some((u, g)),
            Owner::Service(Ids {
                uid: Some(u),
                gid: Some(g),
            }) => Some((u, g)),
            Owner::Service(_) => None,
        }
    }

    fn require(self) -> Result<(u32, u32), InstallError> {
        self.ids()
            .ok_or_else(|| InstallError::State(format!("the {SYSTEM_USER} user does not exist")))
    }

    fn describe(self) -> String {
        match self {
            Owner::Ids(0, 0) => "root:root".into(),
            Owner::Ids(u, g) => format!("{u}:{g}"),
            Owner::Service(_) => format!("{SYSTEM_USER}:{SYSTEM_USER}"),
        }
    }
}

/// Create `dir` (parents 0755 root) with `mode` and `owner`, or correct an existing one.
pub(crate) fn ensure_dir(
    ctx: &mut Ctx,
    dir: &Path,
    mode: u32,
    owner: Owner,
) -> Result<(), InstallError> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(InstallError::Usage(format!(
            "{} is a symbolic link; refusing to use it",
            dir.display()
        ))),
        Ok(m) if !m.is_dir() => Err(InstallError::Usage(format!(
            "{} exists and is not a directory",
            dir.display()
        ))),
        Ok(_) => ensure_mode(ctx, dir, mode, owner),
        Err(e) if e.kind() == io::ErrorKind::NotFound => ctx.act(
            format!(
                "create {} (mode {mode:04o}, {})",
                dir.display(),
                owner.describe()
            ),
            || {
                if let Some(parent) = dir.parent() {
                    create_parents(parent)?;
                }
                fs::create_dir(dir).map_err(InstallError::io("creating", dir))?;
                set_owner_mode(dir, mode, owner)
            },
        ),
        Err(e) => Err(InstallError::io("inspecting", dir)(e)),
    }
}

fn create_parents(dir: &Path) -> Result<(), InstallError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_parents(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, Permissions::from_mode(0o755))
            .map_err(InstallError::io("chmod", dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(InstallError::io("creating", dir)(e)),
    }
}

/// Correct the owner and permission bits of an existing path when they differ.
pub(crate) fn ensure_mode(
    ctx: &mut Ctx,
    path: &Path,
    mode: u32,
    owner: Owner,
) -> Result<(), InstallError> {
    let m = fs::symlink_metadata(path).map_err(InstallError::io("inspecting", path))?;
    let mode_ok = m.mode() & 0o7777 == mode;
    let owner_ok = match owner.ids() {
        Some((u, g)) => m.uid() == u && m.gid() == g,
        None => false, // service user not created yet (dry run)
    };
    if mode_ok && owner_ok {
        return Ok(());
    }
    ctx.act(
        format!(
            "set {} to mode {mode:04o}, {} (was {:04o}, {}:{})",
            path.display(),
            owner.describe(),
            m.mode() & 0o7777,
            m.uid(),
            m.gid()
        ),
        || set_owner_mode(path, mode, owner),
    )
}

/// chown then chmod (chown clears set-id bits, so the mode comes last).
fn set_owner_mode(path: &Path, mode: u32, owner: Owner) -> Result<(), InstallError> {
    let (u, g) = owner.require()?;
    std::os::unix::fs::lchown(path, Some(u), Some(g)).map_err(InstallError::io("chown", path))?;
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(InstallError::io("chmod", path))
}

/// Write a new file exclusively (never over an existing one, never through a symlink).
pub(crate) fn write_new(
    path: &Path,
    data: &[u8],
    mode: u32,
    owner: Owner,
) -> Result<(), InstallError> {
    let (u, g) = owner.require()?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(InstallError::io("creating", path))?;
    std::os::unix::fs::fchown(&f, Some(u), Some(g)).map_err(InstallError::io("chown", path))?;
    f.set_permissions(Permissions::from_mode(mode))
        .map_err(InstallError::io("chmod", path))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(InstallError::io("writing", path))
}

/// Append `line` to the existing file `path` (not through a symlink), on a line of its own.
pub(crate) fn append_line(path: &Path, current: &str, line: &str) -> Result<(), InstallError> {
    let mut f = OpenOptions::new()
        .append(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(InstallError::io("opening", path))?;
    let sep = if current.is_empty() || current.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.write_all(format!("{sep}{line}").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(InstallError::io("writing", path))
}

/// Copy `source` to `dest` owned by the service user, mode 4755, atomically (temp file in
/// the same directory, then rename), unless an identical copy is already in place.
pub(crate) fn install_binary(
    ctx: &mut Ctx,
    source: &Path,
    dest: &Path,
    ids: Ids,
) -> Result<(), InstallError> {
    let want_owner = ids.uid.map(|u| (u, 0u32));
    if let Ok(m) = fs::symlink_metadata(dest) {
        let same_owner = want_owner.is_some_and(|(u, g)| m.uid() == u && m.gid() == g);
        if m.is_file() && same_owner && m.mode() & 0o7777 == 0o4755 && same_content(source, dest)? {
            return Ok(());
        }
    }
    let what = if fs::symlink_metadata(dest).is_ok() {
        "install (replacing)"
    } else {
        "install"
    };
    ctx.act(
        format!(
            "{what} {} from {} (owner {SYSTEM_USER}, mode 4755: set-uid {SYSTEM_USER})",
            dest.display(),
            source.display()
        ),
        || {
            let (uid, gid) = want_owner.ok_or_else(|| {
                InstallError::State(format!("the {SYSTEM_USER} user does not exist"))
            })?;
            let dir = dest.parent().ok_or_else(|| {
                InstallError::Usage(format!("{} has no parent directory", dest.display()))
            })?;
            let tmp = dir.join(format!(".sealcast-shell.tmp-{}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            let result = (|| -> Result<(), InstallError> {
                let mut src = File::open(source).map_err(InstallError::io("opening", source))?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o700)
                    .open(&tmp)
                    .map_err(InstallError::io("creating", &tmp))?;
                io::copy(&mut src, &mut f).map_err(InstallError::io("writing", &tmp))?;
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                    .map_err(InstallError::io("chown", &tmp))?;
                f.set_permissions(Permissions::from_mode(0o4755))
                    .map_err(InstallError::io("chmod", &tmp))?;
                f.sync_all().map_err(InstallError::io("syncing", &tmp))?;
                fs::rename(&tmp, dest).map_err(InstallError::io("renaming into place", dest))
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result
        },
    )
}

fn same_content(a: &Path, b: &Path) -> Result<bool, InstallError> {
    let ma = fs::metadata(a).map_err(InstallError::io("inspecting", a))?;
    let mb = fs::metadata(b).map_err(InstallError::io("inspecting", b))?;
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let mut fa = File::open(a).map_err(InstallError::io("opening", a))?;
    let mut fb = File::open(b).map_err(InstallError::io("opening", b))?;
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(InstallError::io("reading", a))?;
        let m = read_full(&mut fb, &mut bb).map_err(InstallError::io("reading", b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Warn when a directory above `path` lets someone other than root replace it.
pub(crate) fn warn_writable_parents(ctx: &mut Ctx, path: &Path) -> Result<(), InstallError> {
    for dir in path.ancestors().skip(1) {
        if let Ok(m) = fs::metadata(dir) {
            let sticky = m.mode() & 0o1000 != 0;
            if m.uid() != 0 || (m.mode() & 0o022 != 0 && !sticky) {
                return ctx.warn(format_args!(
                    "{} is writable by a non-root user (owner {}, mode {:04o}), so {} can be \
                     replaced",
                    dir.display(),
                    m.uid(),
                    m.mode() & 0o7777,
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut it| it.next().is_none())
}

pub(crate) fn only_entry_is(dir: &Path, name: &str) -> bool {
    fs::read_dir(dir).is_ok_and(|it| {
        let names: Vec<_> = it.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.len() == 1 && names[0] == OsStr::new(name)
    })
}

/// Whether `p` belongs to the service user or group.
pub(crate) fn owned_by_service(p: &Path, ids: Ids) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| Some(m.uid()) == ids.uid || Some(m.gid()) == ids.gid)
}

/// `chown -R` without following symlinks.
pub(crate) fn chown_tree(p: &Path, uid: u32, gid: u32) -> Result<(), InstallError> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(InstallError::io("chown", p))?;
    let m = fs::symlink_metadata(p).map_err(InstallError::io("inspecting", p))?;
    if m.is_dir() {
        for entry in fs::read_dir(p).map_err(InstallError::io("listing", p))? {
            let entry = entry.map_err(InstallError::io("listing", p))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_tense_of_actions() {
        assert_eq!(past_tense("create /x"), "created /x");
        assert_eq!(past_tense("set /x to mode"), "set /x to mode");
    }
}
