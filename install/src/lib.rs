//! `sealcast-install`: `sealcast install-bastion`, which sets this host up as a recorded SSH
//! bastion, or undoes it.
//!
//! Run as root; idempotent. It creates the system user and group `sealcast`, `/etc/sealcast`
//! with the host signing key, the default `sealcast.toml` ([`sealcast_config::render_default`])
//! and an `allowed_signers` file, the spool directory, and installs `sealcast-shell` set-uid
//! to `sealcast`. It never overwrites a signing key or an existing config, and uninstalling
//! never deletes keys or recordings (they are evidence). It prints the sshd_config snippet
//! instead of editing sshd's config: a wrong `ForceCommand` locks everyone out, so that step
//! stays with the operator.
//!
//! Why set-uid to a user rather than set-gid to a group: the recorder must also be out of the
//! recorded user's reach at run time (no signals, no ptrace). A set-uid binary that makes its
//! real uid `sealcast` after forking the user's shell is a process the user does not own;
//! a set-gid one still runs with the user's real uid, so the user could signal it.
//!
//! Users and groups are looked up through `nix` and changed with the shadow-utils tools
//! ([`accounts`]). The report of what was done (or, in a dry run, would be) goes to the `out`
//! writer given to [`run`], warnings to `warn`.
#![forbid(unsafe_code)]

pub mod accounts;
mod error;
mod steps;

use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sealcast_config::{
    ConfigError, Installed, CONFIG_FILE_NAME, DEFAULT_CONFIG, DEFAULT_CONFIG_DIR, DEFAULT_SPOOL_DIR,
};
use sealcast_recorder::sys;
use sealcast_signer::sshsig::MANIFEST_NAMESPACE;
use sealcast_signer::{PublicKey, SigningKey, TrustStore, RECORDING_NAMESPACE};

pub use error::InstallError;

use accounts::{group_gid, group_members, run_tool, user, user_uid, users_with_shell};
use steps::{
    append_line, chown_tree, ensure_dir, ensure_mode, install_binary, is_empty_dir, only_entry_is,
    owned_by_service, warn_writable_parents, write_new, Ctx, Ids, Owner,
};

/// The dedicated system user and group that own the key, the spool and the set-uid binary.
pub const SYSTEM_USER: &str = "sealcast";
/// Default installation prefix: the binary goes to `<prefix>/lib/sealcast/sealcast-shell`.
pub const DEFAULT_PREFIX: &str = "/usr/local";

/// What to install where (the options of `sealcast install-bastion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Installation prefix: sealcast-shell goes to `<prefix>/lib/sealcast/sealcast-shell`.
    pub prefix: PathBuf,
    /// The sealcast-shell binary to install; `None`: `sealcast-shell` next to the running
    /// executable.
    pub shell_binary: Option<PathBuf>,
    /// Configuration directory (`sealcast.toml`, `keys/`, `allowed_signers`). Anything but
    /// [`DEFAULT_CONFIG_DIR`] needs `--config` in ForceCommand, which the printed snippet
    /// includes.
    pub config_dir: PathBuf,
    /// Spool directory; `None`: `spool_dir` of an existing `sealcast.toml`, else
    /// [`DEFAULT_SPOOL_DIR`].
    pub spool_dir: Option<PathBuf>,
    /// Host id for a new `sealcast.toml` and the `allowed_signers` principal, sanitized as
    /// `sealcast record --host-id` does (whitespace becomes `-`); `None`: `host_id` of an
    /// existing `sealcast.toml`, else the host id `sealcast record` and sealcast-shell write
    /// by default ([`sys::default_host_id`]).
    pub host_id: Option<String>,
    /// Remove the installed binary and the unchanged default config instead; keys,
    /// `allowed_signers` and recordings are kept.
    pub uninstall: bool,
    /// Users to record: their login shell becomes the installed sealcast-shell (which refuses
    /// sessions of users whose login shell is anything else). Install only.
    pub users: Vec<String>,
    /// A group whose members are recorded like [`Options::users`]: those listed in its entry
    /// and those whose primary group it is, at the time of the run. Install only.
    pub group: Option<String>,
    /// With `uninstall`: also delete the `sealcast` user and group (kept files are handed to
    /// root first, so a future account that reuses the id cannot read them).
    pub purge: bool,
    /// With `uninstall`: go ahead even though some users still have sealcast-shell as their
    /// login shell.
    pub force: bool,
    /// Describe what would be done and change nothing (allowed without root).
    pub dry_run: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            prefix: DEFAULT_PREFIX.into(),
            shell_binary: None,
            config_dir: DEFAULT_CONFIG_DIR.into(),
            spool_dir: None,
            host_id: None,
            users: Vec::new(),
            group: None,
            uninstall: false,
            purge: false,
            force: false,
            dry_run: false,
        }
    }
}

/// Where everything goes.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `--prefix`.
    pub prefix: PathBuf,
    /// `--config-dir`.
    pub config_dir: PathBuf,
    /// Effective spool directory.
    pub spool_dir: PathBuf,
    /// Effective host id.
    pub host_id: String,
}

impl Layout {
    /// `<prefix>/lib/sealcast`.
    pub fn bin_dir(&self) -> PathBuf {
        self.prefix.join("lib/sealcast")
    }
    /// `<prefix>/lib/sealcast/sealcast-shell`.
    pub fn shell_bin(&self) -> PathBuf {
        self.bin_dir().join("sealcast-shell")
    }
    /// `<config_dir>/sealcast.toml`.
    pub fn config(&self) -> PathBuf {
        self.config_dir.join(CONFIG_FILE_NAME)
    }
    /// `<config_dir>/keys`.
    pub fn keys_dir(&self) -> PathBuf {
        self.config_dir.join("keys")
    }
    /// `<config_dir>/keys/signing.key`.
    pub fn key(&self) -> PathBuf {
        self.keys_dir().join("signing.key")
    }
    /// `<config_dir>/keys/signing.pub`.
    pub fn public_key(&self) -> PathBuf {
        self.keys_dir().join("signing.pub")
    }
    /// `<config_dir>/allowed_signers`.
    pub fn allowed_signers(&self) -> PathBuf {
        self.config_dir.join("allowed_signers")
    }
    /// The ForceCommand value: the binary, plus `--config` unless the config is the default.
    pub fn force_command(&self) -> String {
        if self.config() == Path::new(DEFAULT_CONFIG) {
            self.shell_bin().display().to_string()
        } else {
            format!(
                "{} --config {}",
                self.shell_bin().display(),
                self.config().display()
            )
        }
    }

    /// The default `sealcast.toml` for this layout: every key at its default, with a comment
    /// ([`sealcast_config::render_default`]).
    pub fn default_config(&self) -> String {
        sealcast_config::render_default(&Installed {
            host_id: self.host_id.clone(),
            spool_dir: self.spool_dir.clone(),
            key: self.key(),
        })
    }
}

/// The sshd_config lines for `force_command` (also shipped as
/// `packaging/sshd_config.d/sealcast.conf` for the default layout).
pub fn sshd_snippet(force_command: &str) -> String {
    format!(
        r#"# sealcast: record every SSH session on this host (sshd_config(5)).
# Put this file in /etc/ssh/sshd_config.d/ (Debian's sshd_config includes that directory
# first, and for most keywords the first value sshd reads wins), then `sshd -t` and reload.
ForceCommand {force_command}
DisableForwarding yes
PermitTunnel no
PermitUserRC no
PermitUserEnvironment no
AllowAgentForwarding no
X11Forwarding no
# Keep the existing `Subsystem sftp ...` line (do not repeat it here: a second Subsystem sftp
# is an error). ForceCommand overrides subsystems too: sshd runs the line above with
# SSH_ORIGINAL_COMMAND set to the subsystem's command (/usr/lib/openssh/sftp-server or
# internal-sftp), and sealcast-shell runs its configured sftp_server under the transfer policy.
# Without any Subsystem sftp line, sshd refuses sftp (and default scp) before ForceCommand.
"#
    )
}

/// Install (or with [`Options::uninstall`], uninstall) as `opts` says. The report of what
/// was done — one line per change, `nothing to change` when there was none, then the
/// sshd_config snippet and the next steps — goes to `out`; warnings to `warn`.
///
/// # Errors
/// [`InstallError::Usage`] when not root (unless a dry run), on bad paths, a missing shell
/// binary or an existing file it will not touch; [`InstallError::Config`] for an existing
/// `sealcast.toml` that is not valid; I/O and tool errors naming the path or tool.
pub fn run(opts: &Options, out: &mut dyn Write, warn: &mut dyn Write) -> Result<(), InstallError> {
    let root = nix::unistd::geteuid().is_root();
    if !root && !opts.dry_run {
        let what = if opts.uninstall {
            "install-bastion --uninstall"
        } else {
            "install-bastion"
        };
        return Err(InstallError::Usage(format!(
            "{what} must run as root (it creates a system user, /etc/sealcast and a set-uid \
             binary); try sudo, or --dry-run to see what it would do"
        )));
    }
    let layout = layout(opts)?;
    let mut ctx = Ctx::new(opts.dry_run, out, warn);
    if opts.uninstall {
        if !opts.users.is_empty() || opts.group.is_some() {
            return Err(InstallError::Usage(
                "--users and --group are for installing, not with --uninstall".into(),
            ));
        }
        uninstall(&mut ctx, &layout, opts)
    } else {
        let recorded = recorded_users(&mut ctx, opts)?;
        install(&mut ctx, &layout, opts, &recorded)
    }
}

/// Resolve paths (absolute, no characters that would need quoting in sshd_config or
/// /etc/passwd) and the effective spool dir and host id.
fn layout(opts: &Options) -> Result<Layout, InstallError> {
    let prefix = absolute(&opts.prefix, "--prefix")?;
    let config_dir = absolute(&opts.config_dir, "--config-dir")?;
    let config_path = config_dir.join(CONFIG_FILE_NAME);
    let existing = match fs::symlink_metadata(&config_path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        _ => match sealcast_config::load(&config_path) {
            Ok(c) => Some(c),
            Err(ConfigError::Read { source, .. })
                if opts.dry_run && source.kind() == io::ErrorKind::PermissionDenied =>
            {
                None
            }
            Err(e) => return Err(InstallError::Config(e)),
        },
    };
    let spool_dir = match (
        &opts.spool_dir,
        existing.as_ref().and_then(|c| c.spool_dir.as_ref()),
    ) {
        (Some(flag), Some(conf)) if absolute(flag, "--spool-dir")? != *conf => {
            return Err(InstallError::Usage(format!(
                "--spool-dir {} differs from spool_dir = {:?} in the existing {}; edit the \
                 config instead (install-bastion never rewrites it)",
                flag.display(),
                conf.display().to_string(),
                config_path.display()
            )))
        }
        (Some(flag), _) => absolute(flag, "--spool-dir")?,
        (None, Some(conf)) => absolute(conf, "spool_dir in sealcast.toml")?,
        (None, None) => PathBuf::from(DEFAULT_SPOOL_DIR),
    };
    let host_id = host_id(opts.host_id.as_deref(), existing.and_then(|c| c.host_id))?;
    Ok(Layout {
        prefix,
        config_dir,
        spool_dir,
        host_id,
    })
}

/// The host id: `flag` through [`sealcast_format::host_id::sanitize`] (as `sealcast record --host-id`),
/// else the existing config's `host_id` (which sealcast-shell writes as it is), else
/// [`sys::default_host_id`] (what sealcast-shell writes without one). It is also the
/// principal of the host key in `allowed_signers`, so it must read back as exactly one
/// literal principal that matches the host id (SPEC §6): no whitespace or control
/// characters, no `"`, no pattern characters `,` `*` `?` `!`, no leading `#`.
fn host_id(flag: Option<&str>, from_config: Option<String>) -> Result<String, InstallError> {
    let h = match (flag, from_config) {
        (Some(h), _) => sealcast_format::host_id::sanitize(h),
        (None, Some(h)) => h,
        (None, None) => sys::default_host_id(),
    };
    let literal = !h.is_empty()
        && !h.starts_with('#')
        && !h
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\",*?!".contains(c));
    if !literal {
        return Err(InstallError::Usage(format!(
            "host id {h:?} cannot be an allowed_signers principal: it must be non-empty, \
             without whitespace, control characters, quotes or the pattern characters , * ? !"
        )));
    }
    Ok(h)
}

fn absolute(p: &Path, what: &str) -> Result<PathBuf, InstallError> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(InstallError::io("reading", "the current directory"))?
            .join(p)
    };
    let s = abs.as_os_str().as_bytes();
    if s.iter().any(|&b| {
        b.is_ascii_whitespace() || b.is_ascii_control() || b"'\"\\:$`;&|<>*?#".contains(&b)
    }) {
        return Err(InstallError::Usage(format!(
            "{what} {} contains a character sshd_config or /etc/passwd cannot take unquoted",
            abs.display()
        )));
    }
    Ok(abs)
}

/// A user to record and their current login shell.
struct Recorded {
    name: String,
    shell: PathBuf,
    /// A member of [`Options::group`].
    in_group: bool,
}

/// The users of [`Options::users`] and the members of [`Options::group`], checked before
/// anything changes: each must exist; root and the service user are refused by name and
/// skipped (with a warning) as group members — a broken sealcast-shell must not lock root
/// out, and the service user must never log in.
fn recorded_users(ctx: &mut Ctx, opts: &Options) -> Result<Vec<Recorded>, InstallError> {
    let mut names: Vec<(String, bool)> = opts.users.iter().map(|u| (u.clone(), true)).collect();
    if let Some(g) = &opts.group {
        let members = group_members(g)?;
        if members.is_empty() {
            ctx.warn(format_args!(
                "group {g} has no members; no login shell changed for it"
            ))?;
        }
        names.extend(members.into_iter().map(|u| (u, false)));
    }
    let mut out: Vec<Recorded> = Vec::new();
    for (name, named) in names {
        if let Some(r) = out.iter_mut().find(|r| r.name == name) {
            r.in_group |= !named;
            continue;
        }
        let u = user(&name)?
            .ok_or_else(|| InstallError::Usage(format!("--users {name}: no such user")))?;
        let why_not = if u.uid.is_root() {
            Some("a broken sealcast-shell would lock root out")
        } else if name == SYSTEM_USER {
            Some("the service user never logs in")
        } else {
            None
        };
        match why_not {
            Some(why) if named => {
                return Err(InstallError::Usage(format!(
                    "--users {name}: refusing to make sealcast-shell its login shell ({why})"
                )))
            }
            Some(why) => {
                ctx.warn(format_args!(
                    "group member {name} skipped: sealcast-shell is not made its login shell \
                     ({why})"
                ))?;
            }
            None => out.push(Recorded {
                name,
                shell: u.shell,
                in_group: !named,
            }),
        }
    }
    Ok(out)
}

fn install(
    ctx: &mut Ctx,
    l: &Layout,
    opts: &Options,
    recorded: &[Recorded],
) -> Result<(), InstallError> {
    let source = match &opts.shell_binary {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(InstallError::io(
                "locating",
                "the running sealcast executable",
            ))?
            .with_file_name("sealcast-shell"),
    };
    let source_meta = fs::metadata(&source).map_err(|e| {
        InstallError::Usage(format!(
            "sealcast-shell binary {}: {e}; build it (cargo build --release -p sealcast-shell) \
             or pass --shell-binary PATH",
            source.display()
        ))
    })?;
    if !source_meta.is_file() || source_meta.mode() & 0o111 == 0 {
        return Err(InstallError::Usage(format!(
            "{} is not an executable file (--shell-binary)",
            source.display()
        )));
    }

    // 1. The system group and user.
    if group_gid(SYSTEM_USER)?.is_none() {
        ctx.act(format!("create system group {SYSTEM_USER}"), || {
            run_tool("groupadd", &["--system", SYSTEM_USER])
        })?;
    }
    if user_uid(SYSTEM_USER)?.is_none() {
        ctx.act(
            format!("create system user {SYSTEM_USER} (no home, shell /usr/sbin/nologin)"),
            || {
                run_tool(
                    "useradd",
                    &[
                        "--system",
                        "--gid",
                        SYSTEM_USER,
                        "--no-create-home",
                        "--home-dir",
                        "/nonexistent",
                        "--shell",
                        "/usr/sbin/nologin",
                        "--comment",
                        "sealcast session recorder",
                        SYSTEM_USER,
                    ],
                )
            },
        )?;
    }
    let ids = Ids::lookup()?;
    if !ctx.dry && (ids.uid.is_none() || ids.gid.is_none()) {
        return Err(InstallError::State(format!(
            "the {SYSTEM_USER} user or group is still missing after useradd/groupadd"
        )));
    }
    let root = Owner::Ids(0, 0);
    let svc = Owner::Service(ids);

    // 2. Configuration directory, keys, trust file, config.
    ensure_dir(ctx, &l.config_dir, 0o755, root)?;
    ensure_dir(ctx, &l.keys_dir(), 0o700, svc)?;
    let key = ensure_key(ctx, l, svc)?;
    if let Some(key) = &key {
        ensure_public_key(ctx, l, &key.public(), svc)?;
        ensure_allowed_signers(ctx, l, &key.public())?;
    }
    if fs::symlink_metadata(l.config()).is_err() {
        let text = l.default_config();
        ctx.act(
            format!("write {} (every key at its default)", l.config().display()),
            || write_new(&l.config(), text.as_bytes(), 0o644, root),
        )?;
    } else {
        ensure_mode(ctx, &l.config(), 0o644, root)?;
    }

    // 3. Spool directory.
    ensure_dir(ctx, &l.spool_dir, 0o750, svc)?;

    // 4. The set-uid binary.
    ensure_dir(ctx, &l.bin_dir(), 0o755, root)?;
    install_binary(ctx, &source, &l.shell_bin(), ids)?;
    warn_writable_parents(ctx, &l.shell_bin())?;
    warn_writable_parents(ctx, &l.config())?;

    // 5. The recorded users' login shell: sealcast-shell refuses anything else.
    let bin = l.shell_bin();
    for r in recorded {
        if r.shell == bin {
            continue;
        }
        let bin_text = bin.display().to_string();
        ctx.act(
            format!(
                "set the login shell of {} to {bin_text} (was {})",
                r.name,
                r.shell.display()
            ),
            || run_tool("usermod", &["--shell", &bin_text, &r.name]),
        )?;
    }
    if let Some(g) = &opts.group {
        let names: Vec<&str> = recorded
            .iter()
            .filter(|r| r.in_group)
            .map(|r| r.name.as_str())
            .collect();
        ctx.say(format_args!(
            "recorded users of group {g}: {} (users who join it later need \
             `install-bastion --group {g}` again, or usermod -s)",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))?;
    }

    if ctx.changes == 0 {
        ctx.say("nothing to change: the bastion install is complete")?;
    }
    print_next_steps(ctx, l)
}

fn print_next_steps(ctx: &mut Ctx, l: &Layout) -> Result<(), InstallError> {
    let bin = l.shell_bin();
    ctx.say("")?;
    ctx.say("# --- sshd_config snippet (/etc/ssh/sshd_config.d/sealcast.conf) ---")?;
    ctx.say(sshd_snippet(&l.force_command()).trim_end())?;
    ctx.say("# --- end of snippet ---")?;
    ctx.say("")?;
    ctx.say(
        "Every recorded user's login shell must be sealcast-shell (--users and --group set \
         it): with ForceCommand alone, sshd runs `<login shell> -c <ForceCommand>`, and \
         Debian's bash first sources ~/.bashrc, which the user controls and which runs before \
         any recording starts, so sealcast-shell refuses those sessions. For other users:",
    )?;
    ctx.say(format_args!("    usermod -s {} USER", bin.display()))?;
    ctx.say(format_args!(
        "(sealcast-shell then runs the real shell from `shell` in {}.)",
        l.config().display()
    ))?;
    ctx.say(format_args!(
        "Verify recordings with: sealcast verify --trusted {} {}",
        l.allowed_signers().display(),
        l.spool_dir.display()
    ))
}

fn uninstall(ctx: &mut Ctx, l: &Layout, opts: &Options) -> Result<(), InstallError> {
    let bin = l.shell_bin();
    let users = users_with_shell(&bin)?;
    if !users.is_empty() {
        let list = users.join(", ");
        if !opts.force {
            return Err(InstallError::Usage(format!(
                "these users have {} as their login shell and could not log in without it: \
                 {list}; change it first (usermod -s /bin/bash USER) or pass --force",
                bin.display()
            )));
        }
        ctx.warn(format_args!(
            "users {list} keep {} as login shell and cannot log in until it is changed",
            bin.display()
        ))?;
    }
    if fs::symlink_metadata(&bin).is_ok() {
        ctx.act(format!("remove {}", bin.display()), || {
            fs::remove_file(&bin).map_err(InstallError::io("removing", &bin))
        })?;
    }
    let bin_dir = l.bin_dir();
    if is_empty_dir(&bin_dir) || (ctx.dry && only_entry_is(&bin_dir, "sealcast-shell")) {
        ctx.act(
            format!("remove empty directory {}", bin_dir.display()),
            || fs::remove_dir(&bin_dir).map_err(InstallError::io("removing", &bin_dir)),
        )?;
    }

    let config = l.config();
    match fs::read_to_string(&config) {
        Ok(text) => {
            if text == l.default_config() {
                ctx.act(
                    format!("remove {} (unchanged default)", config.display()),
                    || fs::remove_file(&config).map_err(InstallError::io("removing", &config)),
                )?;
            } else {
                ctx.say(format_args!(
                    "kept {} (changed from the default)",
                    config.display()
                ))?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(InstallError::io("reading", &config)(e)),
    }

    let kept = [l.keys_dir(), l.allowed_signers(), l.spool_dir.clone()];
    let present: Vec<String> = kept
        .iter()
        .filter(|p| fs::symlink_metadata(p).is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if !present.is_empty() {
        ctx.say(format_args!(
            "kept {} (the signing key, trust file and recordings are evidence: delete them by \
             hand once the recordings are archived and verified elsewhere)",
            present.join(", ")
        ))?;
    }

    let ids = Ids::lookup()?;
    if opts.purge {
        // Hand what stays to root before the ids become free for reuse.
        for p in kept.iter().filter(|p| fs::symlink_metadata(p).is_ok()) {
            if owned_by_service(p, ids) {
                ctx.act(format!("hand {} to root:root", p.display()), || {
                    chown_tree(p, 0, 0)
                })?;
            }
        }
        if ids.uid.is_some() {
            ctx.act(
                format!("delete system user and group {SYSTEM_USER}"),
                || {
                    run_tool("userdel", &[SYSTEM_USER])?;
                    // userdel removes the user's private group; a shared one is left to groupdel.
                    if group_gid(SYSTEM_USER)?.is_some() {
                        run_tool("groupdel", &[SYSTEM_USER])?;
                    }
                    Ok(())
                },
            )?;
        } else if ids.gid.is_some() {
            ctx.act(format!("delete system group {SYSTEM_USER}"), || {
                run_tool("groupdel", &[SYSTEM_USER])
            })?;
        }
    } else if ids.uid.is_some() {
        ctx.say(format_args!(
            "kept system user and group {SYSTEM_USER} (--purge deletes them)"
        ))?;
    }
    if ctx.changes == 0 {
        ctx.say("nothing to remove")?;
    }
    ctx.say(format_args!(
        "Remove the sealcast lines from sshd_config (ForceCommand {}) and reload sshd.",
        l.force_command()
    ))
}

/// The host key: generated when missing (never overwritten), else loaded and its owner and
/// mode corrected. `None` only in a dry run that would generate it.
fn ensure_key(ctx: &mut Ctx, l: &Layout, owner: Owner) -> Result<Option<SigningKey>, InstallError> {
    let path = l.key();
    match fs::symlink_metadata(&path) {
        Ok(m) if !m.is_file() => Err(InstallError::Usage(format!(
            "{} exists and is not a regular file",
            path.display()
        ))),
        Ok(_) => {
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if ctx.dry && e.kind() == io::ErrorKind::PermissionDenied => {
                    ctx.say(format_args!(
                        "(cannot read {} without root)",
                        path.display()
                    ))?;
                    return Ok(None);
                }
                Err(e) => return Err(InstallError::io("reading", &path)(e)),
            };
            let key = SigningKey::from_file_bytes(&bytes).map_err(|source| InstallError::Key {
                what: format!(
                    "{} exists but is not a signing key; it is never overwritten: move it \
                     away by hand",
                    path.display()
                ),
                source,
            })?;
            ensure_mode(ctx, &path, 0o400, owner)?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if ctx.dry {
                ctx.act(
                    format!(
                        "generate the host signing key {} (mode 0400, {SYSTEM_USER})",
                        path.display()
                    ),
                    || Ok(()),
                )?;
                return Ok(None);
            }
            let key = SigningKey::generate().map_err(|source| InstallError::Key {
                what: "generating an Ed25519 key".into(),
                source,
            })?;
            let pem = key.to_pem();
            ctx.act(
                format!(
                    "generate the host signing key {} (mode 0400, {SYSTEM_USER})",
                    path.display()
                ),
                || write_new(&path, pem.as_bytes(), 0o400, owner),
            )?;
            Ok(Some(key))
        }
        Err(e) => Err(InstallError::io("inspecting", &path)(e)),
    }
}

fn ensure_public_key(
    ctx: &mut Ctx,
    l: &Layout,
    public: &PublicKey,
    owner: Owner,
) -> Result<(), InstallError> {
    let path = l.public_key();
    let line = format!(
        "{}\n",
        public.to_openssh(&format!("sealcast@{}", l.host_id))
    );
    let current = fs::read_to_string(&path).ok();
    let matches = current
        .as_deref()
        .and_then(|t| PublicKey::parse_openssh(t.trim()).ok())
        .is_some_and(|k| k == *public);
    if matches {
        return ensure_mode(ctx, &path, 0o644, owner);
    }
    let verb = if current.is_some() {
        "write (replacing a stale copy)"
    } else {
        "write"
    };
    ctx.act(format!("{verb} {}", path.display()), || {
        let _ = fs::remove_file(&path);
        write_new(&path, line.as_bytes(), 0o644, owner)
    })
}

/// The `allowed_signers` line that lets `public` sign recordings and manifests for `host`
/// (SPEC §6, MANIFEST.md §3): `<host> namespaces="sealcast,sealcast-manifest" ssh-ed25519 …`.
pub fn trust_line(host: &str, public: &PublicKey) -> String {
    format!(
        "{host} namespaces=\"{RECORDING_NAMESPACE},{MANIFEST_NAMESPACE}\" {}\n",
        public.to_openssh("")
    )
}

/// Make `allowed_signers` trust the host key for the host id in both namespaces: written
/// when missing; otherwise [`trust_line`] is appended unless some line already trusts the
/// key for this host in both (now). A line naming the key with `valid-after` /
/// `valid-before` is the operator's decision and is left alone (with a warning).
fn ensure_allowed_signers(
    ctx: &mut Ctx,
    l: &Layout,
    public: &PublicKey,
) -> Result<(), InstallError> {
    let path = l.allowed_signers();
    let entry = trust_line(&l.host_id, public);
    let namespaces = format!("{RECORDING_NAMESPACE},{MANIFEST_NAMESPACE}");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return ctx.act(
                format!(
                    "write {} (principal {}, namespaces=\"{namespaces}\")",
                    path.display(),
                    l.host_id
                ),
                || write_new(&path, entry.as_bytes(), 0o644, Owner::Ids(0, 0)),
            );
        }
        Err(e) => return Err(InstallError::io("reading", &path)(e)),
    };
    let store = TrustStore::parse(&text).map_err(|e| {
        InstallError::Usage(format!(
            "{}: {e}; fix that line by hand (install-bastion only appends to this file)",
            path.display()
        ))
    })?;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let trusted_for = |ns: &str| store.lookup(&public.id(), ns, &l.host_id, now_us).is_ok();
    if trusted_for(RECORDING_NAMESPACE) && trusted_for(MANIFEST_NAMESPACE) {
        return ensure_mode(ctx, &path, 0o644, Owner::Ids(0, 0));
    }
    let blob = entry.split_whitespace().last().unwrap_or_default();
    let naming: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter(|line| line.split_whitespace().any(|w| w == blob))
        .collect();
    if naming
        .iter()
        .any(|line| line.contains("valid-after") || line.contains("valid-before"))
    {
        ctx.warn(format_args!(
            "{} limits the host key with valid-after/valid-before and does not trust it for \
             {} in namespaces \"{namespaces}\" now; left as it is",
            path.display(),
            l.host_id
        ))?;
        return ensure_mode(ctx, &path, 0o644, Owner::Ids(0, 0));
    }
    let why = if naming.is_empty() {
        String::new()
    } else {
        " (the existing line does not let it sign this host's recordings and manifests)".into()
    };
    ctx.act(
        format!(
            "append the host key to {} (principal {}, namespaces=\"{namespaces}\"){why}",
            path.display(),
            l.host_id
        ),
        || append_line(&path, &text, &entry),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_snippet_matches_the_printed_one() {
        let packaged = include_str!("../../packaging/sshd_config.d/sealcast.conf");
        assert_eq!(
            packaged,
            sshd_snippet("/usr/local/lib/sealcast/sealcast-shell")
        );
    }

    #[test]
    fn host_ids_are_sanitized_as_record_writes_them() {
        // --host-id: as `sealcast record --host-id` (whitespace becomes '-').
        assert_eq!(host_id(Some(" bastion 01\t"), None).unwrap(), "bastion-01");
        assert_eq!(host_id(Some("b1"), Some("b2".into())).unwrap(), "b1");
        // The existing config's host_id is what sealcast-shell writes.
        assert_eq!(host_id(None, Some("b2".into())).unwrap(), "b2");
        // Neither: what sealcast-shell and record write without one.
        assert_eq!(host_id(None, None).unwrap(), sys::default_host_id());
        // Not usable as one literal principal.
        for bad in [
            "",
            " ",
            "bastion-*",
            "a,b",
            "!a",
            "#a",
            "a\"b",
            "a\u{1}b",
            "a?",
        ] {
            let e = host_id(Some(bad), None).unwrap_err();
            assert!(
                e.is_usage() && e.to_string().contains("principal"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn the_trust_line_trusts_the_key_for_recordings_and_manifests_of_the_host() {
        let key = SigningKey::generate().unwrap().public();
        let line = trust_line("bastion-01", &key);
        let store = TrustStore::parse(&line).unwrap();
        assert_eq!(store.len(), 1);
        for ns in [RECORDING_NAMESPACE, MANIFEST_NAMESPACE] {
            assert!(store.lookup(&key.id(), ns, "bastion-01", 0).is_ok(), "{ns}");
            assert!(
                store.lookup(&key.id(), ns, "bastion-02", 0).is_err(),
                "{ns}"
            );
        }
    }

    #[test]
    fn force_command_names_the_config_only_when_not_default() {
        let mut l = Layout {
            prefix: "/usr/local".into(),
            config_dir: DEFAULT_CONFIG_DIR.into(),
            spool_dir: DEFAULT_SPOOL_DIR.into(),
            host_id: "h".into(),
        };
        assert_eq!(l.force_command(), "/usr/local/lib/sealcast/sealcast-shell");
        l.config_dir = "/opt/sc/etc".into();
        assert_eq!(
            l.force_command(),
            "/usr/local/lib/sealcast/sealcast-shell --config /opt/sc/etc/sealcast.toml"
        );
    }
}
