//! Shell hooks (SPEC §2.4.3): how to start bash or zsh so that it writes OSC 133 marks with
//! the session nonce, without editing any user file.
//!
//! [`plan`] is pure: given the shell, how it is to run and the nonce, it returns the argv and
//! the environment to use and the files to put in the hook directory. [`HookDir`] writes
//! those files into a fresh directory that the recorder owns (mode 0755, files 0644: the
//! user's shell reads them, only the recorder could change them) and removes it when
//! dropped. The files hold no secret — the nonce travels in the environment variable
//! [`NONCE_VAR`], which the hooks move into a shell variable and unset.
//!
//! Where: `HookDir::create(base)` under a base directory the caller picks: `/tmp` for
//! `sealcast-shell` (the service user can create there, every user can read, the sticky bit
//! stops others from renaming it, and a fresh random name per session means nothing to squat
//! or clean up across sessions), `$XDG_RUNTIME_DIR` or `/tmp` for `sealcast record`. The
//! shell reads the files only while it starts, but the directory is kept until the session
//! ends.
//!
//! The scripts are in `recorder/hooks/` and embedded here with `include_str!`.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Nonce;

/// Environment variable that carries the nonce to the hooks (unset by them at once).
pub const NONCE_VAR: &str = "SEALCAST_HOOK_NONCE";
/// Environment variable that asks the bash hooks to emulate a login shell.
pub const LOGIN_VAR: &str = "SEALCAST_HOOK_LOGIN";
/// Environment variable that carries the user's own `ZDOTDIR` to the zsh hooks.
pub const ZDOTDIR_VAR: &str = "SEALCAST_HOOK_ZDOTDIR";

/// The bash rc file (`recorder/hooks/bashrc.bash`).
pub const BASHRC: &str = include_str!("../../hooks/bashrc.bash");
/// The zsh startup files (`recorder/hooks/*.zsh`).
pub const ZSHENV: &str = include_str!("../../hooks/zshenv.zsh");
/// See [`ZSHENV`].
pub const ZPROFILE: &str = include_str!("../../hooks/zprofile.zsh");
/// See [`ZSHENV`].
pub const ZSHRC: &str = include_str!("../../hooks/zshrc.zsh");
/// See [`ZSHENV`].
pub const ZLOGIN: &str = include_str!("../../hooks/zlogin.zsh");
/// The zsh hook functions, sourced by the last startup file.
pub const ZSH_HOOKS: &str = include_str!("../../hooks/sealcast-hooks.zsh");

/// A shell sealcast has hooks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellKind {
    /// GNU bash (4.4 or later for the hooks to install; older ones run without).
    Bash,
    /// zsh.
    Zsh,
}

impl ShellKind {
    /// The shell of `path`, by its file name (`bash`, `zsh`, `zsh5`, …); `None` for any
    /// other (sh, dash, fish, …: those get no hooks, only the proc source).
    pub fn of(path: &Path) -> Option<ShellKind> {
        let name = path.file_name()?.to_str()?;
        let name = name.strip_prefix('-').unwrap_or(name);
        if name == "bash" || name.starts_with("bash5") || name.starts_with("bash-") {
            Some(ShellKind::Bash)
        } else if name == "zsh" || name.starts_with("zsh5") || name.starts_with("zsh-") {
            Some(ShellKind::Zsh)
        } else {
            None
        }
    }

    /// Name written in the `hooks` event (`bash`, `zsh`).
    pub fn name(self) -> &'static str {
        match self {
            ShellKind::Bash => "bash",
            ShellKind::Zsh => "zsh",
        }
    }
}

/// How the shell is to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellMode {
    /// An interactive shell; `login`: a login shell (`argv[0]` `-bash`, `bash -l`).
    Interactive {
        /// Run the login sequence.
        login: bool,
    },
    /// `shell -c COMMAND`: no prompts, so no hooks.
    Command,
}

/// A file of the hook directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookFile {
    /// File name inside the directory.
    pub name: &'static str,
    /// Contents.
    pub contents: &'static str,
}

/// How to start a shell with hooks. The files go into `dir` (given to [`plan`]); `argv` and
/// `env` refer to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookPlan {
    /// Which shell.
    pub shell: ShellKind,
    /// `argv[0]`.
    pub arg0: OsString,
    /// Arguments after `argv[0]`, replacing the ones the shell would otherwise get.
    pub args: Vec<OsString>,
    /// Variables to set in the shell's environment (after everything else).
    pub env: Vec<(OsString, OsString)>,
    /// Files to write into the hook directory.
    pub files: Vec<HookFile>,
}

/// The files of the hook directory for `shell`.
pub fn files(shell: ShellKind) -> Vec<HookFile> {
    match shell {
        ShellKind::Bash => vec![HookFile {
            name: "bashrc",
            contents: BASHRC,
        }],
        ShellKind::Zsh => vec![
            HookFile {
                name: ".zshenv",
                contents: ZSHENV,
            },
            HookFile {
                name: ".zprofile",
                contents: ZPROFILE,
            },
            HookFile {
                name: ".zshrc",
                contents: ZSHRC,
            },
            HookFile {
                name: ".zlogin",
                contents: ZLOGIN,
            },
            HookFile {
                name: "sealcast-hooks.zsh",
                contents: ZSH_HOOKS,
            },
        ],
    }
}

/// How to start `shell` in `mode` with hooks that carry `nonce`, the hook files living in
/// `dir`; `user_zdotdir` is the `ZDOTDIR` the shell would otherwise have had (zsh only).
/// `None` when there are no hooks for it: another shell, or [`ShellMode::Command`].
///
/// - bash: `bash --rcfile <dir>/bashrc -i` (`argv[0]` without a leading `-`: bash ignores
///   `--rcfile` in a login shell; a login is emulated by the rc file, [`LOGIN_VAR`]).
/// - zsh: its own argv (`-zsh` for a login) with `ZDOTDIR=<dir>` and [`ZDOTDIR_VAR`].
pub fn plan(
    shell: &Path,
    mode: ShellMode,
    nonce: &Nonce,
    dir: &Path,
    user_zdotdir: Option<&OsStr>,
) -> Option<HookPlan> {
    let kind = ShellKind::of(shell)?;
    let ShellMode::Interactive { login } = mode else {
        return None;
    };
    let base = shell
        .file_name()
        .map(|n| n.to_string_lossy().trim_start_matches('-').to_string())
        .unwrap_or_else(|| kind.name().to_string());
    let mut env = vec![(OsString::from(NONCE_VAR), OsString::from(nonce.as_str()))];
    let (arg0, args) = match kind {
        ShellKind::Bash => {
            if login {
                env.push((LOGIN_VAR.into(), "1".into()));
            }
            (
                OsString::from(base),
                vec![
                    OsString::from("--rcfile"),
                    dir.join("bashrc").into_os_string(),
                    OsString::from("-i"),
                ],
            )
        }
        ShellKind::Zsh => {
            env.push(("ZDOTDIR".into(), dir.as_os_str().to_owned()));
            if let Some(z) = user_zdotdir {
                env.push((ZDOTDIR_VAR.into(), z.to_owned()));
            }
            let arg0 = if login { format!("-{base}") } else { base };
            (OsString::from(arg0), Vec::new())
        }
    };
    Some(HookPlan {
        shell: kind,
        arg0,
        args,
        env,
        files: files(kind),
    })
}

/// A hook directory: created fresh under a base directory, removed when dropped. See the
/// module documentation for where.
#[derive(Debug)]
pub struct HookDir {
    path: PathBuf,
    names: Vec<&'static str>,
}

impl HookDir {
    /// Create `<base>/sealcast-hooks.<16 random hex>` (exclusively: an existing path is never
    /// reused), write `files` into it (0644), then make it 0755.
    ///
    /// # Errors
    /// I/O errors creating the directory or writing a file (the directory is removed again).
    pub fn create(base: &Path, files: &[HookFile]) -> io::Result<HookDir> {
        let mut tries = 0;
        let path = loop {
            let suffix = Nonce::generate()?;
            let p = base.join(format!("sealcast-hooks.{}", &suffix.as_str()[..16]));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => break p,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
                Err(e) => return Err(e),
            }
        };
        let dir = HookDir {
            path,
            names: files.iter().map(|f| f.name).collect(),
        };
        for f in files {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(dir.path.join(f.name))?;
            file.write_all(f.contents.as_bytes())?;
            // The mode passed to open is reduced by the umask; set it exactly.
            file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755))?;
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HookDir {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = std::fs::remove_file(self.path.join(n));
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    #[test]
    fn shells_by_name() {
        assert_eq!(ShellKind::of(Path::new("/bin/bash")), Some(ShellKind::Bash));
        assert_eq!(ShellKind::of(Path::new("-bash")), Some(ShellKind::Bash));
        assert_eq!(
            ShellKind::of(Path::new("/usr/bin/zsh")),
            Some(ShellKind::Zsh)
        );
        assert_eq!(ShellKind::of(Path::new("/bin/zsh5")), Some(ShellKind::Zsh));
        for other in ["/bin/sh", "/bin/dash", "/usr/bin/fish", "/bin/bashful", "/"] {
            assert_eq!(ShellKind::of(Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn bash_login_runs_the_rc_file_and_emulates_the_login() {
        let n = Nonce::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let dir = Path::new("/tmp/sealcast-hooks.x");
        let p = plan(
            Path::new("/bin/bash"),
            ShellMode::Interactive { login: true },
            &n,
            dir,
            None,
        )
        .unwrap();
        assert_eq!(
            p.arg0,
            os("bash"),
            "a leading - would make bash ignore --rcfile"
        );
        assert_eq!(
            p.args,
            [os("--rcfile"), os("/tmp/sealcast-hooks.x/bashrc"), os("-i")]
        );
        assert_eq!(
            p.env,
            [
                (os(NONCE_VAR), os("00112233445566778899aabbccddeeff")),
                (os(LOGIN_VAR), os("1"))
            ]
        );
        assert_eq!(p.files.len(), 1);
        let non_login = plan(
            Path::new("/bin/bash"),
            ShellMode::Interactive { login: false },
            &n,
            dir,
            None,
        )
        .unwrap();
        assert_eq!(non_login.env.len(), 1);
        assert!(plan(Path::new("/bin/bash"), ShellMode::Command, &n, dir, None).is_none());
        assert!(plan(
            Path::new("/bin/dash"),
            ShellMode::Interactive { login: true },
            &n,
            dir,
            None
        )
        .is_none());
    }

    #[test]
    fn zsh_keeps_its_argv_and_gets_zdotdir() {
        let n = Nonce::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let dir = Path::new("/tmp/h");
        let p = plan(
            Path::new("/usr/bin/zsh"),
            ShellMode::Interactive { login: true },
            &n,
            dir,
            Some(OsStr::new("/home/u/.config/zsh")),
        )
        .unwrap();
        assert_eq!((p.arg0.clone(), p.args.clone()), (os("-zsh"), vec![]));
        assert_eq!(
            p.env,
            [
                (os(NONCE_VAR), os("00112233445566778899aabbccddeeff")),
                (os("ZDOTDIR"), os("/tmp/h")),
                (os(ZDOTDIR_VAR), os("/home/u/.config/zsh"))
            ]
        );
        let names: Vec<_> = p.files.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                ".zshenv",
                ".zprofile",
                ".zshrc",
                ".zlogin",
                "sealcast-hooks.zsh"
            ]
        );
        let plain = plan(
            Path::new("/usr/bin/zsh"),
            ShellMode::Interactive { login: false },
            &n,
            dir,
            None,
        )
        .unwrap();
        assert_eq!(plain.arg0, os("zsh"));
        assert_eq!(plain.env.len(), 2);
    }

    #[test]
    fn the_scripts_never_fork_per_prompt_and_name_the_spec() {
        for s in [BASHRC, ZSHENV, ZPROFILE, ZSHRC, ZLOGIN, ZSH_HOOKS] {
            assert!(s.contains("SPEC.md §2.4.3"), "{s}");
        }
        // The bash hooks run builtins only; the one command substitution is the fallback
        // when there is no scratch file.
        let substitutions = BASHRC.matches("$(").count() - BASHRC.matches("$((").count();
        assert_eq!(substitutions, 1);
        assert!(!ZSH_HOOKS.contains("$("));
    }

    #[test]
    fn the_hook_directory_is_readable_fresh_and_removed() {
        let base = tempfile::tempdir().unwrap();
        let files = files(ShellKind::Zsh);
        let d = HookDir::create(base.path(), &files).unwrap();
        let path = d.path().to_path_buf();
        assert!(path.starts_with(base.path()));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o755);
        for f in &files {
            let p = path.join(f.name);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), f.contents);
            assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o644);
        }
        let other = HookDir::create(base.path(), &files).unwrap();
        assert_ne!(other.path(), d.path());
        drop(d);
        assert!(!path.exists());
        assert!(other.path().exists());
    }
}
