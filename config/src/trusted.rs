//! The trusted-path check: a file only root or the service user can change.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Why a path is not trusted ([`check_trusted_path`]). Each message names the offending
/// component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UntrustedPath {
    /// A component could not be inspected (`lstat`, `stat` or `readlink` failed; a missing
    /// component is `ErrorKind::NotFound`).
    #[error("{}: {source}", path.display())]
    Io {
        /// The component.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A relative path, and the current directory is unknown.
    #[error("current directory: {0}")]
    CurrentDir(io::Error),
    /// The path resolves to something other than a regular file.
    #[error("{} is not a regular file", path.display())]
    NotRegular {
        /// The resolved path.
        path: PathBuf,
    },
    /// A component is owned by someone else than the trusted owners.
    #[error("{} is owned by uid {uid}, not by root or the sealcast user", path.display())]
    Owner {
        /// The component.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// A component is writable by its group or by others.
    #[error("{} is group- or world-writable (mode {mode:04o})", path.display())]
    Writable {
        /// The component.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// More than 40 symbolic links on the way (Linux's `MAXSYMLINKS`), or a loop.
    #[error("{}: too many symbolic links", path.display())]
    Loop {
        /// The path as given.
        path: PathBuf,
    },
}

impl UntrustedPath {
    /// Whether the check failed only because a component does not exist (every directory
    /// before it being trusted, so only a trusted owner could create it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, UntrustedPath::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Check that `path` names a regular file that only `owners` can change: the file and every
/// directory in which a component of its path is looked up — through every symbolic link,
/// component by component — are owned by one of `owners` and not writable by group or
/// others. (Checking only the fully resolved path would miss a directory holding a symlink on
/// the way, such as `/etc/alternatives`.) Returns the resolved path to read or execute.
///
/// Used for `sealcast-shell --config` and the system file (SPEC §10) and for the transfer
/// programs it runs (SPEC §10.1).
///
/// # Errors
/// [`UntrustedPath`], naming the offending component.
pub fn check_trusted_path(path: &Path, owners: &[u32]) -> Result<PathBuf, UntrustedPath> {
    let mut links = MAX_SYMLINKS;
    let real = resolve_trusted(path, owners, &mut links)?;
    let meta = fs::metadata(&real).map_err(|source| UntrustedPath::Io {
        path: real.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(UntrustedPath::NotRegular { path: real });
    }
    check_owner_and_mode(&real, &meta, owners)?;
    Ok(real)
}

/// Symbolic links followed at most while resolving one path (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UntrustedPath + '_ {
    move |source| UntrustedPath::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Resolve `path` one component at a time, checking each directory a name is looked up in
/// with [`check_owner_and_mode`] and following symbolic links (relative ones from the
/// directory holding them).
fn resolve_trusted(path: &Path, owners: &[u32], links: &mut u32) -> Result<PathBuf, UntrustedPath> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(UntrustedPath::CurrentDir)?
            .join(path)
    };
    let mut cur = PathBuf::from("/");
    for comp in abs.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) => cur = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(name) => {
                let dir = fs::metadata(&cur).map_err(io_err(&cur))?;
                check_owner_and_mode(&cur, &dir, owners)?;
                let next = cur.join(name);
                let m = fs::symlink_metadata(&next).map_err(io_err(&next))?;
                if m.file_type().is_symlink() {
                    if *links == 0 {
                        return Err(UntrustedPath::Loop {
                            path: path.to_path_buf(),
                        });
                    }
                    *links -= 1;
                    let target = fs::read_link(&next).map_err(io_err(&next))?;
                    cur = resolve_trusted(&cur.join(target), owners, links)?;
                } else {
                    cur = next;
                }
            }
        }
    }
    Ok(cur)
}

/// `p` (with metadata `m`) is owned by one of `owners` and not group- or world-writable.
fn check_owner_and_mode(p: &Path, m: &fs::Metadata, owners: &[u32]) -> Result<(), UntrustedPath> {
    if !owners.contains(&m.uid()) {
        return Err(UntrustedPath::Owner {
            path: p.to_path_buf(),
            uid: m.uid(),
        });
    }
    if m.mode() & 0o022 != 0 {
        return Err(UntrustedPath::Writable {
            path: p.to_path_buf(),
            mode: m.mode() & 0o7777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn trusted_paths() {
        // Under the build directory: /tmp itself is world-writable.
        let exe = std::env::current_exe().unwrap();
        let base = exe.parent().unwrap();
        let dir = tempfile::tempdir_in(base).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let f = dir.path().join("c.toml");
        fs::write(&f, "").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        // Our effective uid: the owner of the file we just created.
        let me = fs::metadata(&f).unwrap().uid();
        let owners = [0, me];
        if base.ancestors().any(|p| {
            fs::metadata(p).is_ok_and(|m| m.mode() & 0o022 != 0 || !owners.contains(&m.uid()))
        }) {
            return; // the build directory itself is not trustworthy here
        }
        let msg = |r: Result<PathBuf, UntrustedPath>| r.unwrap_err().to_string();
        assert!(check_trusted_path(&f, &owners).is_ok());
        fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).unwrap();
        let e = msg(check_trusted_path(&f, &owners));
        assert!(e.contains("world-writable (mode 0666)"), "{e}");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o775)).unwrap();
        let e = msg(check_trusted_path(&f, &owners));
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let e = msg(check_trusted_path(&f, &[12345]));
        assert!(e.contains("not by root or the sealcast user"), "{e}");
        assert!(msg(check_trusted_path(dir.path(), &owners)).contains("not a regular file"));
        let missing = check_trusted_path(&dir.path().join("missing"), &owners).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        assert!(!check_trusted_path(&f, &[12345]).unwrap_err().is_not_found());

        // Symbolic links: the directory holding each link on the way counts, not only the
        // directories of the resolved path.
        let good = dir.path().join("good-link.toml");
        std::os::unix::fs::symlink(&f, &good).unwrap();
        assert_eq!(
            check_trusted_path(&good, &owners).unwrap(),
            fs::canonicalize(&f).unwrap()
        );
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let swappable = open.join("link.toml");
        std::os::unix::fs::symlink(&f, &swappable).unwrap();
        let e = msg(check_trusted_path(&swappable, &owners));
        assert!(
            e.contains(&open.display().to_string()) && e.contains("world-writable"),
            "{e}"
        );
        // A missing file in an untrusted directory is untrusted, not missing.
        let e = check_trusted_path(&open.join("missing"), &owners).unwrap_err();
        assert!(!e.is_not_found(), "{e}");
        // A chain: trusted link -> link in the open directory -> trusted file.
        let chain = dir.path().join("chain.toml");
        std::os::unix::fs::symlink(&swappable, &chain).unwrap();
        let e = msg(check_trusted_path(&chain, &owners));
        assert!(e.contains(&open.display().to_string()), "{e}");
        // Relative links resolve from the link's directory; loops end.
        let rel = dir.path().join("rel.toml");
        std::os::unix::fs::symlink("c.toml", &rel).unwrap();
        assert!(check_trusted_path(&rel, &owners).is_ok());
        let lo = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &lo).unwrap();
        assert!(msg(check_trusted_path(&lo, &owners)).contains("too many symbolic links"));
    }
}
