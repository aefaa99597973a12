//! The default file that `sealcast install-bastion` writes, and TOML string quoting.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::schema::Config;
use crate::{
    DEFAULT_CHECKPOINT_BYTES, DEFAULT_CHECKPOINT_SECS, DEFAULT_ENV_KEEP, DEFAULT_PATH,
    DEFAULT_RSYNC, DEFAULT_SCP, DEFAULT_SFTP_SERVER, DEFAULT_SHELL,
};

/// The three values `install-bastion` chooses for a new file; every other key is written at
/// its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// `host_id` (and the `allowed_signers` principal of the host key).
    pub host_id: String,
    /// `spool_dir`.
    pub spool_dir: PathBuf,
    /// `key`.
    pub key: PathBuf,
}

impl Installed {
    /// The configuration [`render_default`] describes: these three values set, every other
    /// key at its default.
    pub fn config(&self) -> Config {
        Config {
            host_id: Some(self.host_id.clone()),
            spool_dir: Some(self.spool_dir.clone()),
            key: Some(self.key.clone()),
            ..Config::default()
        }
    }
}

/// The text of a default `sealcast.toml` as `install-bastion` writes it: every top-level key
/// at its default (`host_id`, `spool_dir`, `key` from `i`), each with a comment. Parsing it
/// gives [`Installed::config`]. `install-bastion --uninstall` deletes the file only while it
/// is byte-identical to this text, so the text of existing keys never changes.
pub fn render_default(i: &Installed) -> String {
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
checkpoint_secs = {checkpoint_secs}
checkpoint_bytes = {checkpoint_bytes}

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
        host_id = toml_string(&i.host_id),
        spool_dir = toml_string(&i.spool_dir.display().to_string()),
        key = toml_string(&i.key.display().to_string()),
        shell = toml_string(DEFAULT_SHELL),
        sftp = toml_string(DEFAULT_SFTP_SERVER),
        scp = toml_string(DEFAULT_SCP),
        rsync = toml_string(DEFAULT_RSYNC),
        path = toml_string(DEFAULT_PATH),
        checkpoint_secs = DEFAULT_CHECKPOINT_SECS,
        checkpoint_bytes = DEFAULT_CHECKPOINT_BYTES,
    )
}

/// `s` as a TOML basic string (`"…"`, TOML 1.0 "String"): `"` and `\` escaped, newline and
/// tab as `\n` and `\t`, other control characters as `\uXXXX`.
pub fn toml_string(s: &str) -> String {
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
