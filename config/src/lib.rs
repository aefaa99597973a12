//! `sealcast-config`: the one owner of the system configuration file,
//! `/etc/sealcast/sealcast.toml` (TOML 1.0).
//!
//! Every program that reads the file reads it through this crate, so there is one schema,
//! one set of defaults and one set of error messages:
//!
//! - `sealcast-shell` (the set-uid ForceCommand / login shell) uses the top-level keys
//!   (recording policy) and loads the file with [`load_trusted`]: the file and every
//!   directory above it must be owned by root or the service user and not be group- or
//!   world-writable ([`check_trusted_path`]), since an ordinary user must not be able to hand
//!   a set-uid binary a policy of their own.
//! - `sealcast upload` uses the `[upload]` table ([`Upload`]) and `host_id`, `spool_dir`,
//!   `key` as defaults; it loads with [`load`] (it runs with its caller's rights).
//! - `sealcast install-bastion` writes the commented default file ([`render_default`]),
//!   compares against it before deleting it on uninstall, and reads an existing file back
//!   (its `host_id` and `spool_dir`).
//! - `[db.<name>]` tables are the database targets ([`db::Target`]) of `sealcast db-proxy`
//!   and of sealcast-shell's database sessions (`ssh bastion db <name>` and the in-session
//!   proxies); an `[index]` table is reserved as raw TOML ([`Config::index`]).
//!
//! Unknown keys are an error everywhere (`deny_unknown_fields`), and every error names the
//! file (and the line or key when known): [`ConfigError`].
//!
//! `shell/sealcast.toml.example` lists every key with its default and a comment; the tests
//! of this crate load it.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod db;
mod load;
mod render;
mod schema;
mod trusted;

pub use load::{load, load_trusted, ConfigError, Source};
pub use render::{render_default, toml_string, Installed};
pub use schema::{Config, LockMode, TransferPolicy, Upload};
pub use trusted::{check_trusted_path, UntrustedPath};

/// The configuration directory: `sealcast.toml`, `keys/`, `allowed_signers`.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/sealcast";
/// The file name of the configuration inside its directory.
pub const CONFIG_FILE_NAME: &str = "sealcast.toml";
/// The system configuration file: [`DEFAULT_CONFIG_DIR`]`/`[`CONFIG_FILE_NAME`]. Read by
/// sealcast-shell and `sealcast upload` when no `--config` is given.
pub const DEFAULT_CONFIG: &str = "/etc/sealcast/sealcast.toml";
/// Default `spool_dir`: where recordings go.
pub const DEFAULT_SPOOL_DIR: &str = "/var/spool/sealcast";
/// Default `key`: the host signing key (PKCS#8, SPEC §6).
pub const DEFAULT_KEY: &str = "/etc/sealcast/keys/signing.key";
/// Default `shell`: the recorded users' real shell.
pub const DEFAULT_SHELL: &str = "/bin/bash";
/// Default `sftp_server` (Debian's `openssh-sftp-server`).
pub const DEFAULT_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// Default `scp_path` (Debian's `openssh-client`).
pub const DEFAULT_SCP: &str = "/usr/bin/scp";
/// Default `rsync_path` (Debian's `rsync`).
pub const DEFAULT_RSYNC: &str = "/usr/bin/rsync";
/// Default `path`: `PATH` of recorded sessions.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Default `env_keep`: variables passed on from sshd's environment.
pub const DEFAULT_ENV_KEEP: &[&str] = &["TERM", "LANG", "LC_ALL", "TZ"];
/// Default `checkpoint_secs`, seconds (SPEC §5).
pub const DEFAULT_CHECKPOINT_SECS: u64 = 10;
/// Default `checkpoint_bytes`, bytes of events (SPEC §5).
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 64 * 1024;
/// Largest `checkpoint_bytes` (and `sealcast record --checkpoint-bytes`): 8 MiB, so a data
/// frame — the events between two checkpoints, plus the event that crosses the limit (under
/// 1 MiB even for a 64 KiB chunk of control bytes escaped 6×) — stays under the 16 MiB that
/// readers accept (SPEC §8). A larger value made real sessions unverifiable.
pub const MAX_CHECKPOINT_BYTES: u64 = 8 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert!(c.fail_closed);
        assert_eq!(c.transfer_policy, TransferPolicy::Metadata);
        assert_eq!(c.checkpoint_bytes, 65536);
        assert_eq!(c.spool_dir(), Path::new(DEFAULT_SPOOL_DIR));
        assert_eq!(c.key(), Path::new(DEFAULT_KEY));
        assert_eq!((c.spool_dir.as_ref(), c.key.as_ref()), (None, None));
        assert_eq!(c.upload, Upload::default());
    }

    #[test]
    fn the_default_path_is_the_default_dir_and_name() {
        assert_eq!(
            Path::new(DEFAULT_CONFIG),
            Path::new(DEFAULT_CONFIG_DIR).join(CONFIG_FILE_NAME)
        );
        assert_eq!(Source::System.path(), Path::new(DEFAULT_CONFIG));
        assert_eq!(Source::from_flag(None), Source::System);
    }

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shell/sealcast.toml.example");
        let mut c = load(&path).unwrap();
        assert_eq!(c.host_id.as_deref(), Some("bastion-1"));
        assert_eq!(
            c.upload,
            Upload {
                to: Some("s3://example-recordings/bastion".into()),
                watch: Some(true),
                poll_secs: Some(Upload::DEFAULT_POLL_SECS),
                period_secs: Some(Upload::DEFAULT_PERIOD_SECS),
                lock_mode: Some(Upload::DEFAULT_LOCK_MODE),
                lock_days: Some(Upload::DEFAULT_LOCK_DAYS),
                max_attempts: Some(Upload::DEFAULT_MAX_ATTEMPTS),
                max_backoff_secs: Some(Upload::DEFAULT_MAX_BACKOFF_SECS),
                multipart_threshold_mib: Some(Upload::DEFAULT_MULTIPART_THRESHOLD_MIB),
                part_size_mib: Some(Upload::DEFAULT_PART_SIZE_MIB),
                parallel_parts: Some(Upload::DEFAULT_PARALLEL_PARTS),
                segment_secs: Some(Upload::DEFAULT_SEGMENT_SECS),
                recover_after_secs: Some(60),
                ..Upload::default()
            }
        );
        // Every other value shown is its default.
        assert_eq!(c.spool_dir.as_deref(), Some(Path::new(DEFAULT_SPOOL_DIR)));
        assert_eq!(c.key.as_deref(), Some(Path::new(DEFAULT_KEY)));
        c.host_id = None;
        c.spool_dir = None;
        c.key = None;
        c.upload = Upload::default();
        // The example database target is kept for `sealcast db-proxy`, which checks it.
        assert!(c.db.remove("example").is_some(), "{:?}", c.db);
        assert_eq!(c, Config::default());
    }

    #[test]
    fn the_rendered_default_loads_as_the_defaults() {
        for i in [
            Installed {
                host_id: "bastion-1".into(),
                spool_dir: DEFAULT_SPOOL_DIR.into(),
                key: DEFAULT_KEY.into(),
            },
            Installed {
                host_id: "h\"ost\\1".into(),
                spool_dir: "/srv/spool dir/ü".into(),
                key: "/opt/sc/etc/keys/signing.key".into(),
            },
        ] {
            let text = render_default(&i);
            let c = Config::parse(&text, Path::new("sealcast.toml")).unwrap();
            assert_eq!(c, i.config(), "{text}");
            assert_eq!(
                Config {
                    host_id: None,
                    spool_dir: None,
                    key: None,
                    ..c
                },
                Config::default()
            );
        }
    }

    #[test]
    fn the_rendered_default_writes_every_key_with_a_comment() {
        let text = render_default(&Installed {
            host_id: "bastion-1".into(),
            spool_dir: DEFAULT_SPOOL_DIR.into(),
            key: DEFAULT_KEY.into(),
        });
        let rendered: toml::Table = toml::from_str(&text).unwrap();
        let example: toml::Table =
            toml::from_str(include_str!("../../shell/sealcast.toml.example")).unwrap();
        // Every top-level key the example documents (it documents all of them), none of the
        // other programs' tables — except the unsafe allow_foreign_login_shell, which the
        // default file does not offer (and whose absence keeps the text of earlier default
        // files, which uninstall compares byte for byte).
        let keys = |t: &toml::Table| -> Vec<String> {
            t.iter()
                .filter(|(k, v)| !v.is_table() && *k != "allow_foreign_login_shell")
                .map(|(k, _)| k.clone())
                .collect()
        };
        assert_eq!(keys(&rendered), keys(&example));
        assert!(example.contains_key("allow_foreign_login_shell"));
        assert_eq!(rendered.len(), keys(&rendered).len(), "{text}");
        // Each key has a comment right above it (or above its group).
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate().filter(|(_, l)| l.contains(" = ")) {
            let commented = lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.is_empty())
                .any(|l| l.starts_with('#'));
            assert!(commented, "no comment above {line:?}");
        }
    }

    #[test]
    fn toml_strings_escape() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_string("t\tn\n\u{1}"), r#""t\tn\n\u0001""#);
        for s in ["a\"b\\c", "t\tn\n\u{1}\u{7f}", "ü €"] {
            let t: toml::Table = toml::from_str(&format!("x = {}", toml_string(s))).unwrap();
            assert_eq!(t["x"].as_str(), Some(s));
        }
    }

    #[test]
    fn every_key() {
        let c = Config::parse(
            r#"
host_id = "b1"
spool_dir = "/s"
key = "/k"
shell = "/bin/zsh"
fail_closed = false
transfer_policy = "deny"
capture_input = true
checkpoint_secs = 3
checkpoint_bytes = 100
sftp_server = "/sftp"
scp_path = "/opt/scp"
rsync_path = "/opt/rsync"
env_keep = ["TERM", "LC_*"]
path = "/bin"
allow_foreign_login_shell = true

[upload]
to = "s3://b/p"
lock_mode = "GOVERNANCE"
part_size_mib = 8
"#,
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.host_id.as_deref(), Some("b1"));
        assert_eq!(c.spool_dir(), Path::new("/s"));
        assert_eq!(c.key(), Path::new("/k"));
        assert_eq!(c.transfer_policy, TransferPolicy::Deny);
        assert!(!c.fail_closed && c.capture_input);
        assert!(c.keeps("LC_TIME") && c.keeps("TERM") && !c.keeps("TERMINFO"));
        assert!(c.allow_foreign_login_shell);
        assert_eq!(
            (&c.scp_path, &c.rsync_path, &c.sftp_server),
            (
                &PathBuf::from("/opt/scp"),
                &PathBuf::from("/opt/rsync"),
                &PathBuf::from("/sftp")
            )
        );
        assert_eq!(c.upload.to.as_deref(), Some("s3://b/p"));
        assert_eq!(c.upload.lock_mode, Some(LockMode::Governance));
        assert_eq!(c.upload.part_size_mib, Some(8));
    }

    #[test]
    fn db_targets_are_typed_and_index_is_kept() {
        let c = Config::parse(
            "[db.main]\nprotocol = \"postgres\"\nhost = \"db\"\n\
             [db.audit]\nprotocol = \"mysql\"\nhost = \"m\"\nclient = \"/opt/mariadb\"\n\
             [index]\npath = \"/var/lib/sealcast/index\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.db.keys().collect::<Vec<_>>(), ["audit", "main"]);
        assert_eq!(c.db["main"].port(), 5432);
        assert_eq!(c.db["main"].client(), Path::new(db::DEFAULT_PG_CLIENT));
        assert_eq!(c.db["audit"].port(), 3306);
        assert_eq!(c.db["audit"].client(), Path::new("/opt/mariadb"));
        for (bad, needle) in [
            (
                "[db.main]\nprotocol = \"postgres\"\nhost = \"h\"\nlisten = \"x\"\n",
                "s.toml:4",
            ),
            ("[db.main]\nhost = \"h\"\n", "protocol"),
            (
                "[db.\"a;b\"]\nprotocol = \"postgres\"\nhost = \"h\"\n",
                "[db.a;b]",
            ),
            (
                "[db.m]\nprotocol = \"postgres\"\nhost = \"h\"\nclient = \"psql\"\n",
                "client must be an absolute path",
            ),
        ] {
            let e = Config::parse(bad, Path::new("/e/s.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("/e/s.toml") && e.contains(needle), "{bad}: {e}");
        }
        assert_eq!(
            c.index.as_ref().and_then(|t| t["path"].as_str()),
            Some("/var/lib/sealcast/index")
        );
        let e = Config::parse("[dbs.main]\n", Path::new("/e/s.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/e/s.toml:1:") && e.contains("dbs"), "{e}");
        let e = Config::parse("db = 1\n", Path::new("/e/s.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/e/s.toml:1:"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_line_and_key() {
        let e = Config::parse(
            "shell = \"/bin/sh\"\nshel = \"/bin/sh\"\n",
            Path::new("/e/s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("configuration error: /e/s.toml:2: unknown field `shel`"),
            "{e}"
        );
        let e = Config::parse("transfer_policy = \"some\"", Path::new("/e/s.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/e/s.toml:1:") && e.contains("some"), "{e}");
        let e = Config::parse("shell = \"bash\"", Path::new("/e/s.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "configuration error: /e/s.toml: shell: must be an absolute path"
        );
        for key in ["scp_path", "rsync_path", "sftp_server", "spool_dir", "key"] {
            let e = Config::parse(&format!("{key} = \"scp\""), Path::new("/e/s.toml"))
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("configuration error: /e/s.toml: {key}: must be an absolute path")
            );
        }
        let e = Config::parse("host_id = \"a b\"", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("host_id"), "{e}");
        let e = Config::parse("env_keep = [\"A*B\"]", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("env_keep"), "{e}");
        let e = Config::parse("checkpoint_secs = 0", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("checkpoint_secs"), "{e}");
        for bad in [MAX_CHECKPOINT_BYTES + 1, 32 << 20, 0] {
            let e = Config::parse(&format!("checkpoint_bytes = {bad}"), Path::new("/e/s.toml"))
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                "configuration error: /e/s.toml: checkpoint_bytes: must be 1 to 8388608 (a data \
                 frame holds the events between two checkpoints, and readers refuse frames \
                 over 16 MiB, SPEC §8)"
            );
        }
        let c = Config::parse("checkpoint_bytes = 8388608", Path::new("f")).unwrap();
        assert_eq!(c.checkpoint_bytes, MAX_CHECKPOINT_BYTES);
        assert!(MAX_CHECKPOINT_BYTES + (1 << 20) < sealcast_format::MAX_FRAME_CONTENT as u64);
        // The [upload] table: unknown keys and bad values, with file and line.
        let e = Config::parse(
            "[upload]\nto = \"s3://rec/pfx\"\nbukket = \"x\"\n",
            Path::new("/e/s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/e/s.toml:3:") && e.contains("bukket"), "{e}");
        let e = Config::parse("[upload]\nlock_mode = \"legal\"\n", Path::new("/e/s.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/e/s.toml:2:") && e.contains("compliance or governance"),
            "{e}"
        );
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        let e = load(&missing).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert_eq!(e.path(), missing);
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
        let e = Source::Explicit(missing.clone()).load().unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "checkpoint_secs = \"ten\"\n").unwrap();
        let e = load(&bad).unwrap_err().to_string();
        assert!(e.contains(&format!("{}:1:", bad.display())), "{e}");
    }
}
