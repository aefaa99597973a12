//! SSHSIG (the manifest signatures, format-spec/MANIFEST.md; OpenSSH PROTOCOL.sshsig):
//! parsing an armoured signature and verifying it against a namespace and any message never
//! panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealcast_signer::sshsig;

fuzz_target!(|data: &[u8]| {
    let _ = sshsig::parse(data);
    let _ = sshsig::verify(data, "sealcast-manifest", b"manifest");
    // Split the input into an armoured signature and a message at the first NUL.
    if let Some(at) = data.iter().position(|&b| b == 0) {
        let (sig, msg) = (&data[..at], &data[at + 1..]);
        let _ = sshsig::verify(sig, "sealcast-manifest", msg);
    }
});
