//! verify_bytes on arbitrary files: never panics, and OK only for content that was signed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealcast_signer::TrustStore;

const TRUST: &str = include_str!("../../format-spec/vectors/allowed_signers");

fuzz_target!(|data: &[u8]| {
    let trust = TrustStore::parse(TRUST).expect("vector trust file");
    let (file, seal) = match data.split_first() {
        // First byte decides whether a receipt is appended from the tail of the input.
        Some((&b, rest)) if b & 1 == 1 && rest.len() > 8 => {
            let cut = rest.len() - (b as usize % 8 + 1) * (rest.len() / 16).max(1);
            let cut = cut.min(rest.len());
            (&rest[..cut], Some(&rest[cut..]))
        }
        Some((_, rest)) => (rest, None),
        None => (data, None),
    };
    let _ = sealcast_player::verify_bytes(file, seal, &trust);
});
