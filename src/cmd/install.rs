//! `sealcast install-bastion`: set this host up as a recorded SSH bastion, or undo it.
//!
//! Run as root; idempotent. It creates the system user and group `sealcast`, `/etc/sealcast`
//! with the host signing key, the default `sealcast.toml` and an `allowed_signers` file, the
//! spool directory, and installs `sealcast-shell` set-uid to `sealcast`. It never overwrites
//! a signing key or an existing config, and `--uninstall` never deletes keys or recordings
//! (they are evidence). It prints the sshd_config snippet instead of editing sshd's config:
//! a wrong `ForceCommand` locks everyone out, so that step stays with the operator.
//!
//! Why set-uid to a user rather than set-gid to a group: the recorder must also be out of the
//! recorded user's reach at run time (no signals, no ptrace). A set-uid binary that makes its
//! real uid `sealcast` after forking the user's shell is a process the user does not own;
//! a set-gid one still runs with the user's real uid, so the user could signal it.

use std::ffi::{CString, OsStr};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sealcast_signer::{PublicKey, SigningKey, RECORDING_NAMESPACE};

use super::UsageError;

/// The dedicated system user and group that own the key, the spool and the set-uid binary.
pub const SYSTEM_USER: &str = "sealcast";
/// Default installation prefix: the binary goes to `<prefix>/lib/sealcast/sealcast-shell`.
pub const DEFAULT_PREFIX: &str = "/usr/local";
/// Default configuration directory.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/sealcast";
/// Default spool directory.
pub const DEFAULT_SPOOL_DIR: &str = "/var/spool/sealcast";
/// Default real shell of the recorded users.
pub const DEFAULT_SHELL: &str = "/bin/bash";
/// Default sftp server that `internal-sftp` maps to.
pub const DEFAULT_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// Default scp binary run for `scp -t` / `scp -f` transfers.
pub const DEFAULT_SCP: &str = "/usr/bin/scp";
/// Default rsync binary run for `rsync --server` transfers.
pub const DEFAULT_RSYNC: &str = "/usr/bin/rsync";
/// Default `PATH` of recorded sessions.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Default environment variables passed from sshd to the session.
pub const DEFAULT_ENV_KEEP: &[&str] = &["TERM", "LANG", "LC_ALL", "TZ"];

/// Arguments of `sealcast install-bastion`.
#[derive(Debug, clap::Args)]
pub struct InstallBastionArgs {
    /// Installation prefix: sealcast-shell goes to PREFIX/lib/sealcast/sealcast-shell.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PREFIX)]
    pub prefix: PathBuf,
    /// The sealcast-shell binary to install (default: `sealcast-shell` next to this executable).
    #[arg(long, value_name = "PATH")]
    pub shell_binary: Option<PathBuf>,
    /// Configuration directory (sealcast.toml, keys/, allowed_signers). Anything but the
    /// default needs `--config` in ForceCommand, which the printed snippet includes.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// Spool directory for recordings (default: spool_dir of an existing sealcast.toml, else
    /// /var/spool/sealcast).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Host id for a new sealcast.toml and the allowed_signers principal (default: host_id of
    /// an existing sealcast.toml, else the host name).
    #[arg(long, value_name = "ID")]
    pub host_id: Option<String>,
    /// Remove the installed binary and the unchanged default config; keys, allowed_signers
    /// and recordings are kept.
    #[arg(long)]
    pub uninstall: bool,
    /// With --uninstall: also delete the `sealcast` user and group (kept files are handed
    /// to root first, so a future account that reuses the id cannot read them).
    #[arg(long, requires = "uninstall")]
    pub purge: bool,
    /// With --uninstall: go ahead even though some users still have sealcast-shell as their
    /// login shell (they will not be able to log in until it is changed).
    #[arg(long, requires = "uninstall")]
    pub force: bool,
    /// Print what would be done and change nothing (allowed without root).
    #[arg(long)]
    pub dry_run: bool,
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
        self.config_dir.join("sealcast.toml")
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
        if self.config() == Path::new(DEFAULT_CONFIG_DIR).join("sealcast.toml") {
            self.shell_bin().display().to_string()
        } else {
            format!(
                "{} --config {}",
                self.shell_bin().display(),
                self.config().display()
            )
        }
    }

    /// The default `sealcast.toml` for this layout: every key at its default, with a comment.
    pub fn default_config(&self) -> String {
        default_config_text(&self.host_id, &self.spool_dir, &self.key())
    }
}

/// The text of a default `sealcast.toml`.
pub fn default_config_text(host_id: &str, spool_dir: &Path, key: &Path) -> String {
    let env_keep = DEFAULT_ENV_KEEP
        .iter()
        .map(|v| toml_string(v))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"# sealcast-shell configuration, written by `sealcast install-bastion` with every key at
# its default. sealcast-shell reads only this file for policy (never the user's files or
# environment). Owned by root, mode 0644. `sealcast install-bastion --uninstall` deletes it
# only while it is unchanged.

# Host id stored in every recording and checkpoint (no whitespace). It is also the principal
# of this host's key in allowed_signers. Default: the host name at install time.
host_id = {host_id}

# Recordings: <spool_dir>/<session-id>.cast.zst and <session-id>.cast.zst.seal, mode 0640.
# The directory is owned by the sealcast user, mode 0750.
spool_dir = {spool_dir}

# Host signing key (PKCS#8 PEM), readable only by the sealcast user. Never overwritten.
key = {key}

# The recorded users' real shell. Never taken from $SHELL or from the passwd entry (which
# should be sealcast-shell itself: `usermod -s`).
shell = {shell}

# true: when the spool cannot be written (disk full, permissions, I/O error) refuse new
# sessions and end running ones with a final checkpoint. false: keep the session going and
# log loudly. Nothing already recorded is lost either way.
fail_closed = true

# File transfers (scp, sftp, rsync): "metadata" records the command line, bytes in each
# direction, duration and exit status but no payload; "full" also records the payload;
# "deny" refuses them with a one-line message (the attempt is still recorded).
transfer_policy = "metadata"

# Also record keystrokes ("i" events). Off by default: input contains passwords.
capture_input = false

# A signed checkpoint every checkpoint_secs seconds or checkpoint_bytes bytes of events.
checkpoint_secs = 10
checkpoint_bytes = 65536

# The transfer programs, run directly (no shell) for scp -t/-f, sftp and rsync --server; each
# must be changeable only by root. sshd's `internal-sftp` maps to sftp_server.
sftp_server = {sftp}
scp_path = {scp}
rsync_path = {rsync}

# Variables passed on from sshd's environment to the session; "NAME*" matches a prefix
# (e.g. "LC_*"). Everything else is rebuilt: HOME, USER, LOGNAME, SHELL, PATH, TERM (PTY
# sessions), SSH_CONNECTION, SSH_CLIENT, SSH_TTY, SSH_ORIGINAL_COMMAND, SEALCAST_SESSION.
env_keep = [{env_keep}]

# PATH of recorded sessions.
path = {path}
"#,
        host_id = toml_string(host_id),
        spool_dir = toml_string(&spool_dir.display().to_string()),
        key = toml_string(&key.display().to_string()),
        shell = toml_string(DEFAULT_SHELL),
        sftp = toml_string(DEFAULT_SFTP_SERVER),
        scp = toml_string(DEFAULT_SCP),
        rsync = toml_string(DEFAULT_RSYNC),
        path = toml_string(DEFAULT_PATH),
    )
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

/// Run `install-bastion`; returns the exit code.
///
/// # Errors
/// [`UsageError`] (exit 3) when not root, on bad paths or a missing shell binary; I/O errors
/// naming the path otherwise.
pub fn run(args: InstallBastionArgs) -> Result<u8> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && !args.dry_run {
        let what = if args.uninstall {
            "install-bastion --uninstall"
        } else {
            "install-bastion"
        };
        return Err(UsageError(format!(
            "{what} must run as root (it creates a system user, /etc/sealcast and a set-uid \
             binary); try sudo, or --dry-run to see what it would do"
        ))
        .into());
    }
    let layout = layout(&args)?;
    let mut ctx = Ctx {
        dry: args.dry_run,
        changes: 0,
    };
    if args.uninstall {
        uninstall(&mut ctx, &layout, &args)?;
    } else {
        install(&mut ctx, &layout, &args)?;
    }
    Ok(0)
}

/// Resolve paths (absolute, no characters that would need quoting in sshd_config or
/// /etc/passwd) and the effective spool dir and host id.
fn layout(args: &InstallBastionArgs) -> Result<Layout> {
    let prefix = absolute(&args.prefix, "--prefix")?;
    let config_dir = absolute(&args.config_dir, "--config-dir")?;
    let existing = match fs::read_to_string(config_dir.join("sealcast.toml")) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) if args.dry_run && e.kind() == io::ErrorKind::PermissionDenied => None,
        Err(e) => {
            return Err(e)
                .with_context(|| format!("reading {}/sealcast.toml", config_dir.display()))
        }
    };
    let from_config = |key: &str| existing.as_deref().and_then(|t| toml_top_string(t, key));
    let spool_dir = match (&args.spool_dir, from_config("spool_dir")) {
        (Some(flag), Some(conf)) if absolute(flag, "--spool-dir")? != Path::new(&conf) => {
            return Err(UsageError(format!(
                "--spool-dir {} differs from spool_dir = {conf:?} in the existing {}; edit the \
                 config instead (install-bastion never rewrites it)",
                flag.display(),
                config_dir.join("sealcast.toml").display()
            ))
            .into())
        }
        (Some(flag), _) => absolute(flag, "--spool-dir")?,
        (None, Some(conf)) => absolute(Path::new(&conf), "spool_dir in sealcast.toml")?,
        (None, None) => PathBuf::from(DEFAULT_SPOOL_DIR),
    };
    let host_id = match (&args.host_id, from_config("host_id")) {
        (Some(h), _) => h.trim().to_string(),
        (None, Some(h)) => h,
        (None, None) => sealcast_recorder::sys::default_host_id(),
    };
    if host_id.is_empty() || host_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UsageError(format!(
            "host id {host_id:?} must be non-empty without whitespace"
        ))
        .into());
    }
    Ok(Layout {
        prefix,
        config_dir,
        spool_dir,
        host_id,
    })
}

fn absolute(p: &Path, what: &str) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .context("current directory")?
            .join(p)
    };
    let s = abs.as_os_str().as_bytes();
    if s.iter().any(|&b| {
        b.is_ascii_whitespace() || b.is_ascii_control() || b"'\"\\:$`;&|<>*?#".contains(&b)
    }) {
        return Err(UsageError(format!(
            "{what} {} contains a character sshd_config or /etc/passwd cannot take unquoted",
            abs.display()
        ))
        .into());
    }
    Ok(abs)
}

/// Step runner: performs or (with --dry-run) describes each change, and counts them.
struct Ctx {
    dry: bool,
    changes: usize,
}

impl Ctx {
    fn act(&mut self, what: impl AsRef<str>, f: impl FnOnce() -> Result<()>) -> Result<()> {
        self.changes += 1;
        if self.dry {
            println!("would {}", what.as_ref());
            Ok(())
        } else {
            f()?;
            println!("{}", past_tense(what.as_ref()));
            Ok(())
        }
    }
}

/// "create X" → "created X", for the log of what was done.
fn past_tense(what: &str) -> String {
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
struct Ids {
    uid: Option<u32>,
    gid: Option<u32>,
}

fn lookup_ids() -> Ids {
    Ids {
        uid: user_uid(SYSTEM_USER),
        gid: group_gid(SYSTEM_USER),
    }
}

fn install(ctx: &mut Ctx, l: &Layout, args: &InstallBastionArgs) -> Result<()> {
    let source = match &args.shell_binary {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("locating the running sealcast executable")?
            .with_file_name("sealcast-shell"),
    };
    let source_meta = fs::metadata(&source).map_err(|e| {
        UsageError(format!(
            "sealcast-shell binary {}: {e}; build it (cargo build --release -p sealcast-shell) \
             or pass --shell-binary PATH",
            source.display()
        ))
    })?;
    if !source_meta.is_file() || source_meta.mode() & 0o111 == 0 {
        return Err(UsageError(format!(
            "{} is not an executable file (--shell-binary)",
            source.display()
        ))
        .into());
    }

    // 1. The system group and user.
    if group_gid(SYSTEM_USER).is_none() {
        ctx.act(format!("create system group {SYSTEM_USER}"), || {
            run_tool("groupadd", &["--system", SYSTEM_USER])
        })?;
    }
    if user_uid(SYSTEM_USER).is_none() {
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
    let ids = lookup_ids();
    if !ctx.dry && (ids.uid.is_none() || ids.gid.is_none()) {
        bail!("the {SYSTEM_USER} user or group is still missing after useradd/groupadd");
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
    warn_writable_parents(&l.shell_bin());
    warn_writable_parents(&l.config());

    if ctx.changes == 0 {
        println!("nothing to change: the bastion install is complete");
    }
    print_next_steps(l);
    Ok(())
}

fn print_next_steps(l: &Layout) {
    let bin = l.shell_bin();
    println!();
    println!("# --- sshd_config snippet (/etc/ssh/sshd_config.d/sealcast.conf) ---");
    print!("{}", sshd_snippet(&l.force_command()));
    println!("# --- end of snippet ---");
    println!();
    println!(
        "Also make sealcast-shell the login shell of every recorded user. With ForceCommand \
         alone, sshd runs `<login shell> -c <ForceCommand>`, and Debian's bash first sources \
         ~/.bashrc, which the user controls and which can exec something else before any \
         recording starts:"
    );
    println!("    usermod -s {} USER", bin.display());
    println!(
        "(sealcast-shell then runs the real shell from `shell` in {}.)",
        l.config().display()
    );
    println!(
        "Verify recordings with: sealcast verify --trusted {} {}",
        l.allowed_signers().display(),
        l.spool_dir.display()
    );
}

fn uninstall(ctx: &mut Ctx, l: &Layout, args: &InstallBastionArgs) -> Result<()> {
    let bin = l.shell_bin();
    let users = users_with_shell(&bin)?;
    if !users.is_empty() {
        let list = users.join(", ");
        if !args.force {
            return Err(UsageError(format!(
                "these users have {} as their login shell and could not log in without it: \
                 {list}; change it first (usermod -s /bin/bash USER) or pass --force",
                bin.display()
            ))
            .into());
        }
        eprintln!(
            "sealcast: warning: users {list} keep {} as login shell and cannot log in until it \
             is changed",
            bin.display()
        );
    }
    if fs::symlink_metadata(&bin).is_ok() {
        ctx.act(format!("remove {}", bin.display()), || {
            fs::remove_file(&bin).with_context(|| format!("removing {}", bin.display()))
        })?;
    }
    let bin_dir = l.bin_dir();
    if is_empty_dir(&bin_dir) || (ctx.dry && only_entry_is(&bin_dir, "sealcast-shell")) {
        ctx.act(
            format!("remove empty directory {}", bin_dir.display()),
            || fs::remove_dir(&bin_dir).with_context(|| format!("removing {}", bin_dir.display())),
        )?;
    }

    let config = l.config();
    match fs::read_to_string(&config) {
        Ok(text) => {
            if text == l.default_config() {
                ctx.act(
                    format!("remove {} (unchanged default)", config.display()),
                    || {
                        fs::remove_file(&config)
                            .with_context(|| format!("removing {}", config.display()))
                    },
                )?;
            } else {
                println!("kept {} (changed from the default)", config.display());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", config.display())),
    }

    let kept = [l.keys_dir(), l.allowed_signers(), l.spool_dir.clone()];
    let present: Vec<String> = kept
        .iter()
        .filter(|p| fs::symlink_metadata(p).is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if !present.is_empty() {
        println!(
            "kept {} (the signing key, trust file and recordings are evidence: delete them by \
             hand once the recordings are archived and verified elsewhere)",
            present.join(", ")
        );
    }

    if args.purge {
        // Hand what stays to root before the ids become free for reuse.
        for p in kept.iter().filter(|p| fs::symlink_metadata(p).is_ok()) {
            if owned_by_service(p) {
                ctx.act(format!("hand {} to root:root", p.display()), || {
                    chown_tree(p, 0, 0)
                })?;
            }
        }
        if user_uid(SYSTEM_USER).is_some() {
            ctx.act(
                format!("delete system user and group {SYSTEM_USER}"),
                || {
                    run_tool("userdel", &[SYSTEM_USER])?;
                    // userdel removes the user's private group; a shared one is left to groupdel.
                    if group_gid(SYSTEM_USER).is_some() {
                        run_tool("groupdel", &[SYSTEM_USER])?;
                    }
                    Ok(())
                },
            )?;
        } else if group_gid(SYSTEM_USER).is_some() {
            ctx.act(format!("delete system group {SYSTEM_USER}"), || {
                run_tool("groupdel", &[SYSTEM_USER])
            })?;
        }
    } else if user_uid(SYSTEM_USER).is_some() {
        println!("kept system user and group {SYSTEM_USER} (--purge deletes them)");
    }
    if ctx.changes == 0 {
        println!("nothing to remove");
    }
    println!(
        "Remove the sealcast lines from sshd_config (ForceCommand {}) and reload sshd.",
        l.force_command()
    );
    Ok(())
}

/// Who should own a path.
#[derive(Debug, Clone, Copy)]
enum Owner {
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
    fn describe(self) -> String {
        match self {
            Owner::Ids(0, 0) => "root:root".into(),
            Owner::Ids(u, g) => format!("{u}:{g}"),
            Owner::Service(_) => format!("{SYSTEM_USER}:{SYSTEM_USER}"),
        }
    }
}

/// Create `dir` (parents 0755 root) with `mode` and `owner`, or correct an existing one.
fn ensure_dir(ctx: &mut Ctx, dir: &Path, mode: u32, owner: Owner) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(UsageError(format!(
            "{} is a symbolic link; refusing to use it",
            dir.display()
        ))
        .into()),
        Ok(m) if !m.is_dir() => {
            Err(UsageError(format!("{} exists and is not a directory", dir.display())).into())
        }
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
                fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
                set_owner_mode(dir, mode, owner)
            },
        ),
        Err(e) => Err(e).with_context(|| format!("inspecting {}", dir.display())),
    }
}

fn create_parents(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_parents(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", dir.display())),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", dir.display())),
    }
}

/// Correct the owner and permission bits of an existing path when they differ.
fn ensure_mode(ctx: &mut Ctx, path: &Path, mode: u32, owner: Owner) -> Result<()> {
    let m = fs::symlink_metadata(path).with_context(|| format!("inspecting {}", path.display()))?;
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
fn set_owner_mode(path: &Path, mode: u32, owner: Owner) -> Result<()> {
    let (u, g) = owner
        .ids()
        .with_context(|| format!("the {SYSTEM_USER} user does not exist"))?;
    std::os::unix::fs::lchown(path, Some(u), Some(g))
        .with_context(|| format!("chown {}", path.display()))?;
    fs::set_permissions(path, Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Write a new file exclusively (never over an existing one).
fn write_new(path: &Path, data: &[u8], mode: u32, owner: Owner) -> Result<()> {
    let (u, g) = owner
        .ids()
        .with_context(|| format!("the {SYSTEM_USER} user does not exist"))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::os::unix::fs::fchown(&f, Some(u), Some(g))
        .with_context(|| format!("chown {}", path.display()))?;
    f.set_permissions(Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The host key: generated when missing (never overwritten), else loaded and its owner and
/// mode corrected. `None` only in a dry run that would generate it.
fn ensure_key(ctx: &mut Ctx, l: &Layout, owner: Owner) -> Result<Option<SigningKey>> {
    let path = l.key();
    match fs::symlink_metadata(&path) {
        Ok(m) if !m.is_file() => Err(UsageError(format!(
            "{} exists and is not a regular file",
            path.display()
        ))
        .into()),
        Ok(_) => {
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if ctx.dry && e.kind() == io::ErrorKind::PermissionDenied => {
                    println!("(cannot read {} without root)", path.display());
                    return Ok(None);
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            let key = SigningKey::from_file_bytes(&bytes).with_context(|| {
                format!(
                    "{} exists but is not a signing key; it is never overwritten: move it \
                     away by hand",
                    path.display()
                )
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
            let key = SigningKey::generate().context("generating an Ed25519 key")?;
            let pem = key.to_pem();
            ctx.act(
                format!(
                    "generate the host signing key {} (mode 0400, {SYSTEM_USER}, key id {})",
                    path.display(),
                    key.id()
                ),
                || write_new(&path, pem.as_bytes(), 0o400, owner),
            )?;
            Ok(Some(key))
        }
        Err(e) => Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
}

fn ensure_public_key(ctx: &mut Ctx, l: &Layout, public: &PublicKey, owner: Owner) -> Result<()> {
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

fn ensure_allowed_signers(ctx: &mut Ctx, l: &Layout, public: &PublicKey) -> Result<()> {
    let path = l.allowed_signers();
    let key_text = public.to_openssh("");
    let entry = format!(
        "{} namespaces=\"{RECORDING_NAMESPACE}\" {key_text}\n",
        l.host_id
    );
    match fs::read_to_string(&path) {
        Ok(text) => {
            let blob = key_text.split_whitespace().nth(1).unwrap_or_default();
            if text
                .lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .any(|line| line.split_whitespace().any(|w| w == blob))
            {
                return ensure_mode(ctx, &path, 0o644, Owner::Ids(0, 0));
            }
            ctx.act(format!("append the host key to {}", path.display()), || {
                let mut f = OpenOptions::new()
                    .append(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                let sep = if text.is_empty() || text.ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                f.write_all(format!("{sep}{entry}").as_bytes())
                    .and_then(|()| f.sync_all())
                    .with_context(|| format!("writing {}", path.display()))
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => ctx.act(
            format!(
                "write {} (principal {}, namespaces=\"{RECORDING_NAMESPACE}\")",
                path.display(),
                l.host_id
            ),
            || write_new(&path, entry.as_bytes(), 0o644, Owner::Ids(0, 0)),
        ),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Copy `source` to `dest` owned by the service user, mode 4755, atomically (temp file in
/// the same directory, then rename), unless an identical copy is already in place.
fn install_binary(ctx: &mut Ctx, source: &Path, dest: &Path, ids: Ids) -> Result<()> {
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
            let (uid, gid) = want_owner.context("the sealcast user does not exist")?;
            let dir = dest.parent().context("binary path has no parent")?;
            let tmp = dir.join(format!(".sealcast-shell.tmp-{}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            let result = (|| -> Result<()> {
                let mut src =
                    File::open(source).with_context(|| format!("opening {}", source.display()))?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o700)
                    .open(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                io::copy(&mut src, &mut f).with_context(|| format!("writing {}", tmp.display()))?;
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                    .with_context(|| format!("chown {}", tmp.display()))?;
                f.set_permissions(Permissions::from_mode(0o4755))
                    .with_context(|| format!("chmod {}", tmp.display()))?;
                f.sync_all()
                    .with_context(|| format!("syncing {}", tmp.display()))?;
                fs::rename(&tmp, dest)
                    .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result
        },
    )
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let (ma, mb) = (fs::metadata(a)?, fs::metadata(b)?);
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
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
fn warn_writable_parents(path: &Path) {
    for dir in path.ancestors().skip(1) {
        if let Ok(m) = fs::metadata(dir) {
            let sticky = m.mode() & 0o1000 != 0;
            if m.uid() != 0 || (m.mode() & 0o022 != 0 && !sticky) {
                eprintln!(
                    "sealcast: warning: {} is writable by a non-root user (owner {}, mode {:04o}), \
                     so {} can be replaced",
                    dir.display(),
                    m.uid(),
                    m.mode() & 0o7777,
                    path.display()
                );
                return;
            }
        }
    }
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut it| it.next().is_none())
}

fn only_entry_is(dir: &Path, name: &str) -> bool {
    fs::read_dir(dir).is_ok_and(|it| {
        let names: Vec<_> = it.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.len() == 1 && names[0] == OsStr::new(name)
    })
}

fn owned_by_service(p: &Path) -> bool {
    let (u, g) = (user_uid(SYSTEM_USER), group_gid(SYSTEM_USER));
    fs::symlink_metadata(p).is_ok_and(|m| Some(m.uid()) == u || Some(m.gid()) == g)
}

/// `chown -R` without following symlinks.
fn chown_tree(p: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", p.display()))?;
    let m = fs::symlink_metadata(p)?;
    if m.is_dir() {
        for entry in fs::read_dir(p).with_context(|| format!("listing {}", p.display()))? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Login names whose passwd shell is `shell`.
fn users_with_shell(shell: &Path) -> Result<Vec<String>> {
    let text = match fs::read_to_string("/etc/passwd") {
        Ok(t) => t,
        Err(e) => return Err(e).context("reading /etc/passwd"),
    };
    let want = shell.as_os_str().as_bytes();
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7 && f[6].as_bytes() == want).then(|| f[0].to_string())
        })
        .collect())
}

fn run_tool(tool: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("running {tool}"))?;
    if !out.status.success() {
        bail!(
            "{tool} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn user_uid(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: all-zero is a valid `passwd`; it is only read after getpwnam_r filled it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the given length for the duration of the call.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !result.is_null()).then_some(pwd.pw_uid);
    }
}

fn group_gid(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: all-zero is a valid `group`; it is only read after getgrnam_r filled it.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the given length for the duration of the call.
        let rc = unsafe {
            libc::getgrnam_r(
                c.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !result.is_null()).then_some(grp.gr_gid);
    }
}

/// A TOML basic string (`"…"` with escapes).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value of a top-level `key = "string"` line (before any `[table]`), if there is one.
/// Enough to read back what install-bastion wrote; sealcast-shell has the real parser.
fn toml_top_string(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            return None;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches('"');
        if k != key {
            continue;
        }
        let v = v.trim();
        if let Some(rest) = v.strip_prefix('\'') {
            return rest.split_once('\'').map(|(s, _)| s.to_string());
        }
        let mut chars = v.strip_prefix('"')?.chars();
        let mut out = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        return None;
    }
    None
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
    fn default_config_reads_back() {
        let text = default_config_text(
            "bastion-1",
            Path::new("/var/spool/sealcast"),
            Path::new("/etc/sealcast/keys/signing.key"),
        );
        assert_eq!(
            toml_top_string(&text, "host_id").as_deref(),
            Some("bastion-1")
        );
        assert_eq!(
            toml_top_string(&text, "spool_dir").as_deref(),
            Some("/var/spool/sealcast")
        );
        assert_eq!(
            toml_top_string(&text, "key").as_deref(),
            Some("/etc/sealcast/keys/signing.key")
        );
        assert_eq!(toml_top_string(&text, "missing"), None);
        for key in [
            "host_id",
            "spool_dir",
            "key",
            "shell",
            "fail_closed",
            "transfer_policy",
            "capture_input",
            "checkpoint_secs",
            "checkpoint_bytes",
            "sftp_server",
            "scp_path",
            "rsync_path",
            "env_keep",
            "path",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "{key} missing from the default config"
            );
        }
    }

    #[test]
    fn toml_strings_escape() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(
            toml_top_string(r#"x = "a\"b\\c""#, "x").as_deref(),
            Some(r#"a"b\c"#)
        );
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

    #[test]
    fn past_tense_of_actions() {
        assert_eq!(past_tense("create /x"), "created /x");
        assert_eq!(past_tense("set /x to mode"), "set /x to mode");
    }
}
