//! Text parsers: checkpoint notes, allowed_signers, event lines, headers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealcast_signer::Checkpoint::parse(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sealcast_signer::TrustStore::parse(s);
        let _ = sealcast_signer::PublicKey::parse_openssh(s);
    }
    if let Ok(ev) = sealcast_format::parse_event(data) {
        // Canonical re-encoding must parse back to the same event.
        let again = sealcast_format::parse_event(&ev.canonical_line()).expect("canonical line parses");
        assert_eq!(again.kind, ev.kind);
        assert_eq!(again.data, ev.data);
    }
    let _ = sealcast_format::Header::parse(data);
    let _ = sealcast_signer::SigningKey::from_file_bytes(data);
});
