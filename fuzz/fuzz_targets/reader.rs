//! The event reader on arbitrary files: never panics, always terminates; read verifying (the
//! vectors' trust file), it reports exactly what `verify` reports, however far it was read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealcast_reader::{verify_bytes, Context, Reader};
use sealcast_signer::TrustStore;

const TRUST: &str = include_str!("../../format-spec/vectors/allowed_signers");

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Reader::open(data) {
        for e in r.take(100_000) {
            if e.is_err() {
                break;
            }
        }
    }
    let trust = TrustStore::parse(TRUST).expect("vector trust file");
    if let Ok(mut r) = Reader::verifying(data, &trust, Context::default()) {
        let n = data.first().map_or(0, |&b| usize::from(b));
        for e in r.by_ref().take(n) {
            if e.is_err() {
                break;
            }
        }
        let want = verify_bytes(data, None, &trust);
        assert_eq!(r.finish(), Some(want), "a verifying read reports what verify reports");
    }
});
