//! `sealcast install-bastion` as root under a temp prefix/config/spool: what it creates and
//! with which owners and modes, that a second run changes nothing, that it repairs drifted
//! modes and a replaced binary but never a key, `--dry-run`, the not-root error, `--users` and
//! `--group` (their login shell becomes the binary), and `--uninstall` (binary and unchanged
//! config removed; keys, trust file and recordings kept; refusal while a user's login shell
//! is the binary; `--purge`).
//!
//! Does not need sealcast-shell: it installs a copy of /bin/true in its place. Shares the
//! bastion tests' lock because it may create and delete the `sealcast` system user.

mod bastion;

use std::fs::{self, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bastion::harness::{
    chain_is_root_only, group_exists, id_of, require_root, sealcast_bin, secure_base, user_exists,
    GlobalLock,
};
use sealcast_signer::sshsig::MANIFEST_NAMESPACE;
use sealcast_signer::{PublicKey, SigningKey, TrustStore, RECORDING_NAMESPACE};

struct Paths {
    prefix: PathBuf,
    etc: PathBuf,
    spool: PathBuf,
    source: PathBuf,
}

impl Paths {
    fn bin(&self) -> PathBuf {
        self.prefix.join("lib/sealcast/sealcast-shell")
    }
    fn args(&self) -> Vec<String> {
        vec![
            "install-bastion".into(),
            "--prefix".into(),
            self.prefix.display().to_string(),
            "--config-dir".into(),
            self.etc.display().to_string(),
            "--spool-dir".into(),
            self.spool.display().to_string(),
            "--host-id".into(),
            "install-test-host".into(),
            "--shell-binary".into(),
            self.source.display().to_string(),
        ]
    }
    fn install(&self, extra: &[&str]) -> Output {
        let out = Command::new(sealcast_bin())
            .args(self.args())
            .args(extra)
            .output()
            .expect("run install-bastion");
        eprintln!(
            "install-bastion {extra:?} → {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Removes the base dir and, when this test created them, the `sealcast` user/group, and
/// the helper users and group, even when an assertion fails.
struct Cleanup {
    base: PathBuf,
    created_service_user: bool,
    extra_users: Vec<String>,
    extra_group: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for u in self.extra_users.drain(..) {
            if user_exists(&u) {
                let _ = Command::new("userdel").arg("--remove").arg(&u).status();
            }
        }
        if let Some(g) = self.extra_group.take() {
            if group_exists(&g) {
                let _ = Command::new("groupdel").arg(&g).status();
            }
        }
        if self.created_service_user && user_exists("sealcast") {
            let _ = Command::new("userdel").arg("sealcast").status();
        }
        if self.created_service_user && group_exists("sealcast") {
            let _ = Command::new("groupdel").arg("sealcast").status();
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn install_bastion_is_idempotent_and_uninstall_keeps_evidence() {
    if !require_root("install_bastion_is_idempotent_and_uninstall_keeps_evidence") {
        return;
    }
    let _lock = GlobalLock::acquire();
    // Not CARGO_TARGET_TMPDIR directly: a checkout below /tmp has a world-writable ancestor,
    // which install-bastion rightly refuses for config and binary paths.
    let base = secure_base().join(format!("install-bastion-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).unwrap();
    fs::set_permissions(&base, Permissions::from_mode(0o755)).unwrap();
    let mut cleanup = Cleanup {
        base: base.clone(),
        created_service_user: !user_exists("sealcast"),
        extra_users: Vec::new(),
        extra_group: None,
    };
    let p = Paths {
        prefix: base.join("prefix"),
        etc: base.join("etc"),
        spool: base.join("spool"),
        source: base.join("fake-sealcast-shell"),
    };
    fs::copy("/bin/true", &p.source).unwrap();
    fs::set_permissions(&p.source, Permissions::from_mode(0o755)).unwrap();

    // Not root: exit 3 with a clear message, nothing created.
    let o = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(sealcast_bin())
        .args(p.args())
        .output()
        .expect("run setpriv");
    assert_eq!(o.status.code(), Some(3), "not root: {o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("must run as root"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // --dry-run describes and changes nothing.
    let o = p.install(&["--dry-run"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("would generate the host signing key"),
        "{text}"
    );
    assert!(text.contains("would install"), "{text}");
    assert!(!p.etc.exists() && !p.prefix.exists() && !p.spool.exists());

    // The install.
    let o = p.install(&[]);
    assert!(o.status.success());
    let text = stdout(&o);
    let (su, sg) = (id_of("sealcast", "-u"), id_of("sealcast", "-g"));
    assert!(su != 0 && sg != 0);
    let passwd = Command::new("getent")
        .args(["passwd", "sealcast"])
        .output()
        .unwrap();
    assert!(
        stdout(&passwd).trim_end().ends_with(":/usr/sbin/nologin"),
        "sealcast must not have a login shell: {}",
        stdout(&passwd)
    );
    let key_path = p.etc.join("keys/signing.key");
    let expect = [
        (p.etc.clone(), 0o755, (0, 0)),
        (p.etc.join("keys"), 0o700, (su, sg)),
        (key_path.clone(), 0o400, (su, sg)),
        (p.etc.join("keys/signing.pub"), 0o644, (su, sg)),
        (p.etc.join("allowed_signers"), 0o644, (0, 0)),
        (p.etc.join("sealcast.toml"), 0o644, (0, 0)),
        (p.spool.clone(), 0o750, (su, sg)),
        (p.prefix.join("lib/sealcast"), 0o755, (0, 0)),
        (p.bin(), 0o4755, (su, 0)),
    ];
    for (path, m, o) in &expect {
        assert_eq!(mode(path), *m, "mode of {}", path.display());
        assert_eq!(owner(path), *o, "owner of {}", path.display());
    }
    assert!(chain_is_root_only(&p.etc.join("sealcast.toml")));
    assert_eq!(fs::read(p.bin()).unwrap(), fs::read("/bin/true").unwrap());
    let key_bytes = fs::read(&key_path).unwrap();
    let key = SigningKey::from_file_bytes(&key_bytes).expect("a valid signing key");
    let public = fs::read_to_string(p.etc.join("keys/signing.pub")).unwrap();
    assert_eq!(
        PublicKey::parse_openssh(public.trim()).unwrap(),
        key.public()
    );
    let signers = fs::read_to_string(p.etc.join("allowed_signers")).unwrap();
    assert_eq!(
        signers,
        format!(
            "install-test-host namespaces=\"sealcast,sealcast-manifest\" {}\n",
            key.public().to_openssh("")
        )
    );
    // The host key signs this host's recordings and its bucket manifests (SPEC §6,
    // MANIFEST.md §3), so bucket verify does not call them UNTRUSTED_KEY.
    let trusted_for = |text: &str, ns: &str| {
        TrustStore::parse(text)
            .expect("allowed_signers parses")
            .lookup(&key.public().id(), ns, "install-test-host", 0)
            .is_ok()
    };
    assert!(trusted_for(&signers, RECORDING_NAMESPACE));
    assert!(trusted_for(&signers, MANIFEST_NAMESPACE));
    let config = fs::read_to_string(p.etc.join("sealcast.toml")).unwrap();
    for line in [
        "host_id = \"install-test-host\"".to_string(),
        format!("spool_dir = \"{}\"", p.spool.display()),
        format!("key = \"{}\"", key_path.display()),
        "shell = \"/bin/bash\"".into(),
        "fail_closed = true".into(),
        "transfer_policy = \"metadata\"".into(),
        "capture_input = false".into(),
        "checkpoint_secs = 10".into(),
        "checkpoint_bytes = 65536".into(),
        "sftp_server = \"/usr/lib/openssh/sftp-server\"".into(),
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "{line} not in:\n{config}"
        );
    }
    for key in ["env_keep = ", "path = "] {
        assert!(config.lines().any(|l| l.starts_with(key)), "{key}");
    }
    // Every key has a comment right above it (or above its group).
    for (i, line) in config
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(" = "))
    {
        let above: Vec<&str> = config.lines().take(i).collect();
        let ok = above
            .iter()
            .rev()
            .take_while(|l| !l.is_empty())
            .any(|l| l.starts_with('#'));
        assert!(ok, "no comment above {line:?}");
    }
    // The snippet and the login-shell advice.
    let bin = p.bin().display().to_string();
    for want in [
        format!(
            "ForceCommand {bin} --config {}",
            p.etc.join("sealcast.toml").display()
        ),
        "DisableForwarding yes".into(),
        "PermitTunnel no".into(),
        "PermitUserRC no".into(),
        "PermitUserEnvironment no".into(),
        "AllowAgentForwarding no".into(),
        "X11Forwarding no".into(),
        format!("usermod -s {bin} USER"),
    ] {
        assert!(text.contains(&want), "{want:?} not printed:\n{text}");
    }
    assert!(
        !text.lines().any(|l| l.starts_with("Subsystem")),
        "the snippet must not repeat Subsystem sftp (sshd rejects a duplicate)"
    );

    // Second run: nothing to change, the key and config untouched.
    let config_before = fs::read(p.etc.join("sealcast.toml")).unwrap();
    let o = p.install(&[]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("nothing to change"),
        "second run changed something:\n{}",
        stdout(&o)
    );
    assert_eq!(fs::read(&key_path).unwrap(), key_bytes);
    assert_eq!(
        fs::read(p.etc.join("sealcast.toml")).unwrap(),
        config_before
    );

    // A trust file an earlier install-bastion wrote (recordings only) gets the line that
    // also trusts the key for manifests, once.
    let old_style = format!(
        "# kept\ninstall-test-host namespaces=\"sealcast\" {}",
        key.public().to_openssh("")
    );
    fs::write(p.etc.join("allowed_signers"), &old_style).unwrap();
    assert!(!trusted_for(&old_style, MANIFEST_NAMESPACE));
    let o = p.install(&[]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("appended the host key to"),
        "{}",
        stdout(&o)
    );
    let upgraded = fs::read_to_string(p.etc.join("allowed_signers")).unwrap();
    assert_eq!(upgraded, format!("{old_style}\n{signers}"));
    assert!(trusted_for(&upgraded, MANIFEST_NAMESPACE));
    let o = p.install(&[]);
    assert!(stdout(&o).contains("nothing to change"), "{}", stdout(&o));
    fs::write(p.etc.join("allowed_signers"), &signers).unwrap();

    // Drift is repaired; the key is never replaced.
    fs::set_permissions(&key_path, Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&p.spool, Permissions::from_mode(0o777)).unwrap();
    fs::copy("/bin/false", p.bin()).unwrap();
    fs::remove_file(p.etc.join("keys/signing.pub")).unwrap();
    let o = p.install(&[]);
    assert!(o.status.success());
    assert_eq!(mode(&key_path), 0o400);
    assert_eq!(mode(&p.spool), 0o750);
    assert_eq!(mode(&p.bin()), 0o4755);
    assert_eq!(owner(&p.bin()), (su, 0));
    assert_eq!(fs::read(p.bin()).unwrap(), fs::read("/bin/true").unwrap());
    assert_eq!(fs::read(&key_path).unwrap(), key_bytes);
    assert_eq!(
        PublicKey::parse_openssh(
            fs::read_to_string(p.etc.join("keys/signing.pub"))
                .unwrap()
                .trim()
        )
        .unwrap(),
        key.public()
    );
    assert_eq!(
        fs::read_to_string(p.etc.join("allowed_signers")).unwrap(),
        signers,
        "the host key line must not be appended twice"
    );

    // A recording in the spool, to show uninstall keeps it.
    let evidence = p.spool.join("0123456789abcdef0123456789abcdef.cast.zst");
    fs::write(&evidence, b"evidence").unwrap();

    // --users and --group: the recorded users' login shell becomes the binary (sealcast-shell
    // refuses sessions of users whose login shell is anything else), once.
    let login_shell = |user: &str| {
        let o = Command::new("getent")
            .args(["passwd", user])
            .output()
            .unwrap();
        stdout(&o)
            .trim_end()
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    };
    let helper = format!("scinst{}", std::process::id());
    let grouped = format!("scinsg{}", std::process::id());
    let group = format!("scinsgrp{}", std::process::id());
    cleanup.extra_group = Some(group.clone());
    let o = Command::new("groupadd").arg(&group).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    for (user, extra) in [(&helper, vec![]), (&grouped, vec!["--gid", group.as_str()])] {
        let o = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/bash"])
            .args(extra)
            .arg(user)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        cleanup.extra_users.push(user.clone());
    }
    let bin = p.bin().display().to_string();
    let o = p.install(&["--users", &helper, "--dry-run"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains(&format!(
            "would set the login shell of {helper} to {bin} (was /bin/bash)"
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(login_shell(&helper), "/bin/bash");
    let o = p.install(&["--users", &helper, "--group", &group]);
    assert!(o.status.success());
    for user in [&helper, &grouped] {
        assert!(
            stdout(&o).contains(&format!(
                "set the login shell of {user} to {bin} (was /bin/bash)"
            )),
            "{}",
            stdout(&o)
        );
        assert_eq!(login_shell(user), bin);
    }
    assert!(
        stdout(&o).contains(&format!("recorded users of group {group}: {grouped} ")),
        "{}",
        stdout(&o)
    );
    let o = p.install(&["--users", &helper, "--group", &group]);
    assert!(stdout(&o).contains("nothing to change"), "{}", stdout(&o));
    let root_shell = login_shell("root");
    for bad in [
        vec!["--users", "root"],
        vec!["--users", "sealcast"],
        vec!["--users", "no-such-user-x"],
    ] {
        let o = p.install(&bad);
        assert_eq!(o.status.code(), Some(3), "{bad:?}");
    }
    assert_eq!(
        login_shell("root"),
        root_shell,
        "root's login shell changed"
    );

    // Uninstall refuses while a user logs in through the binary.
    let o = p.install(&["--uninstall"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&helper));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&grouped));
    assert!(p.bin().exists(), "refused uninstall removed the binary");
    for user in cleanup.extra_users.drain(..) {
        let _ = Command::new("userdel").arg(&user).status();
    }

    // Uninstall with the default config: binary and config go, evidence stays.
    let o = p.install(&["--uninstall", "--dry-run"]);
    assert!(o.status.success());
    assert!(p.bin().exists() && p.etc.join("sealcast.toml").exists());
    let o = p.install(&["--uninstall"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(!p.bin().exists());
    assert!(!p.prefix.join("lib/sealcast").exists());
    assert!(!p.etc.join("sealcast.toml").exists(), "{text}");
    assert_eq!(fs::read(&key_path).unwrap(), key_bytes);
    assert!(p.etc.join("allowed_signers").exists());
    assert_eq!(fs::read(&evidence).unwrap(), b"evidence");
    assert!(text.contains("evidence"), "{text}");
    assert!(
        user_exists("sealcast"),
        "uninstall without --purge keeps the user"
    );

    // Reinstall reuses the key; an edited config survives uninstall.
    let o = p.install(&[]);
    assert!(o.status.success());
    assert_eq!(fs::read(&key_path).unwrap(), key_bytes);
    assert!(!stdout(&o).contains("generated the host signing key"));
    let mut edited = fs::read_to_string(p.etc.join("sealcast.toml")).unwrap();
    edited = edited.replace(
        "transfer_policy = \"metadata\"",
        "transfer_policy = \"deny\"",
    );
    fs::write(p.etc.join("sealcast.toml"), &edited).unwrap();
    let o = p.install(&["--uninstall"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("changed from the default"));
    assert_eq!(
        fs::read_to_string(p.etc.join("sealcast.toml")).unwrap(),
        edited
    );

    // --purge deletes the user and group, handing kept files to root first. Only when this
    // test created the user: an existing one may belong to a real installation.
    if cleanup.created_service_user {
        let o = p.install(&["--uninstall", "--purge"]);
        assert!(o.status.success());
        assert!(!user_exists("sealcast") && !group_exists("sealcast"));
        assert_eq!(owner(&key_path), (0, 0));
        assert_eq!(owner(&p.spool), (0, 0));
        assert_eq!(owner(&evidence), (0, 0));
        assert_eq!(fs::read(&key_path).unwrap(), key_bytes);
    } else {
        eprintln!("note: the sealcast user existed before this test; --purge not exercised");
    }
}
