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
