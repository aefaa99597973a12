//! Keys written by `sealcast keygen` are readable by OpenSSH's own tools (SPEC §6).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

#[test]
fn ssh_keygen_reads_the_public_key_and_agrees_on_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = Command::new(env!("CARGO_BIN_EXE_sealcast"))
        .args(["keygen", "--comment", "ci@example", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(keys.join("signing.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "private key must be 0600");

    let pub_line = std::fs::read_to_string(keys.join("signing.pub")).unwrap();
    let blob = STANDARD
        .decode(pub_line.split_whitespace().nth(1).unwrap())
        .unwrap();
    let ours = format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob)));

    let ssh = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(keys.join("signing.pub"))
        .output();
    let ssh = match ssh {
        Ok(o) => o,
        Err(e) if std::env::var_os("CI").is_none() => {
            return eprintln!("skipping: ssh-keygen not runnable: {e}")
        }
        Err(e) => panic!(
            "ssh-keygen missing in CI (scripts/setup-debian.sh installs openssh-client): {e}"
        ),
    };
    let text = String::from_utf8_lossy(&ssh.stdout);
    assert!(
        ssh.status.success(),
        "ssh-keygen rejected our key: {}",
        String::from_utf8_lossy(&ssh.stderr)
    );
    assert!(text.starts_with("256 "), "{text}");
    assert!(
        text.contains(&ours),
        "ssh-keygen says {text}, we computed {ours}"
    );
    assert!(
        text.contains("ci@example") && text.contains("(ED25519)"),
        "{text}"
    );

    // The key id printed by keygen is SHA-256 of the raw 32-byte key (the blob's last 32 bytes).
    let key_id = hex_lower(&Sha256::digest(&blob[blob.len() - 32..]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&key_id),
        "keygen output lacks key id {key_id}"
    );
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `keygen` prints the `allowed_signers` line that trusts the new key for its host id (SPEC
/// §6: principals are the host ids a key may sign for) and appends it to `--trust FILE`;
/// `ssh-keygen -Y verify -I <host>` accepts a manifest signature of the key with that file, for
/// that host only. Without `--host-id` the principal is the host id `record` writes; a host id
/// that cannot be a principal is a usage error before any key is written.
#[test]
fn keygen_prints_and_appends_the_trust_line_for_its_host() {
    use sealcast_signer::sshsig::{self, MANIFEST_NAMESPACE};
    use sealcast_signer::{SigningKey, TrustStore, RECORDING_NAMESPACE};
    let dir = tempfile::tempdir().unwrap();
    let keygen = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sealcast"))
            .arg("keygen")
            .args(args)
            .output()
            .unwrap()
    };
    let trust = dir.path().join("allowed_signers");
    std::fs::write(&trust, "# fleet, no newline at the end").unwrap();
    let keys = dir.path().join("b1");
    let out = keygen(&[
        "--out",
        keys.to_str().unwrap(),
        "--host-id",
        "bastion-01",
        "--trust",
        trust.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key =
        SigningKey::from_file_bytes(&std::fs::read(keys.join("signing.key")).unwrap()).unwrap();
    let line = format!(
        "bastion-01 namespaces=\"sealcast,sealcast-manifest\" {}\n",
        key.public().to_openssh("")
    );
    assert!(
        stdout.contains(&format!("allowed_signers: {line}")),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&trust).unwrap();
    assert_eq!(text, format!("# fleet, no newline at the end\n{line}"));
    let t = TrustStore::parse(&text).unwrap();
    for ns in [RECORDING_NAMESPACE, MANIFEST_NAMESPACE] {
        assert!(t.lookup(&key.id(), ns, "bastion-01", 0).is_ok());
        assert!(t.lookup(&key.id(), ns, "bastion-02", 0).is_err());
    }
    // OpenSSH reads the line the same way.
    let msg = dir.path().join("m.json");
    std::fs::write(&msg, b"{}\n").unwrap();
    let sig = dir.path().join("m.json.sig");
    std::fs::write(&sig, sshsig::sign(&key, MANIFEST_NAMESPACE, b"{}\n")).unwrap();
    let ssh_verify = |host: &str| {
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(&trust)
            .args(["-I", host, "-n", MANIFEST_NAMESPACE, "-s"])
            .arg(&sig)
            .stdin(std::fs::File::open(&msg).unwrap())
            .output()
            .expect("ssh-keygen (openssh-client) must be installed")
            .status
            .success()
    };
    assert!(ssh_verify("bastion-01"));
    assert!(!ssh_verify("bastion-02"));

    // Default: the host id `record` writes.
    let out = keygen(&["--out", dir.path().join("default").to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let host = sealcast_recorder::sys::default_host_id();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("allowed_signers: {host} namespaces=")),
        "{out:?}"
    );

    // Not a principal: exit 3, no key.
    let bad = dir.path().join("bad");
    let out = keygen(&["--out", bad.to_str().unwrap(), "--host-id", "two words"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(!bad.join("signing.key").exists());
}
