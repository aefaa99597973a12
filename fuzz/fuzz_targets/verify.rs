//! verify_bytes / verify_recording on arbitrary files, receipts and file names: never panics;
//! a receipt or file name can only make a report worse, never turn it into OK.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealcast_reader::{verify_recording, Context, Receipt, Status};
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
    let alone = sealcast_reader::verify_bytes(file, None, &trust);
    let with_seal = sealcast_reader::verify_bytes(file, seal, &trust);
    if with_seal.status == Status::Ok {
        assert_eq!(alone.status, Status::Ok, "a receipt turned a report into OK");
    }
    // A file name made of the input's first bytes: `<32 hex>.cast.zst` must name the session.
    let name: String = file.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let name = format!("{name}.cast.zst");
    let ctx = Context {
        file_name: Some(&name),
        receipt: seal.map_or(Receipt::Absent, |bytes| Receipt::Read { path: "r.seal", bytes }),
    };
    let named = verify_recording(file, &ctx, &trust);
    if named.status == Status::Ok && name.len() == 32 + ".cast.zst".len() {
        assert_eq!(named.session.as_deref(), Some(&name[..32]), "name of another session");
    }
});
