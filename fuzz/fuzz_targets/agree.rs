//! verify, cat, export and info on the same arbitrary file: the readers (`cat` through
//! `Reader`, `export -f asciicast-v3` through `write_v3`, `info` through `inspect`) accept
//! and reject exactly the same files, with the same error text (one validation path,
//! `EventRules`); a file `verify` reports OK reads completely in all of them; a FORMAT found
//! at an event line is the readers' error for that line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealcast_player::{cat, write_v3};
use sealcast_reader::{inspect, verify_bytes, Reader, Status, StreamEnd};
use sealcast_signer::TrustStore;

const TRUST: &str = include_str!("../../format-spec/vectors/allowed_signers");

fuzz_target!(|data: &[u8]| {
    let trust = TrustStore::parse(TRUST).expect("vector trust file");
    let report = verify_bytes(data, None, &trust);
    let (cat_err, cat_end) = match Reader::open(data) {
        Err(e) => (Some(e.to_string()), None),
        Ok(r) => match cat(r, &mut std::io::sink()) {
            Ok(end) => (None, Some(end)),
            Err(e) => (Some(e.to_string()), None),
        },
    };
    let v3_err = write_v3(data, &mut std::io::sink()).err().map(|e| e.to_string());
    let info_err = match inspect(data) {
        Err(e) => Some(e.to_string()),
        Ok(s) => s.bad_line.map(|e| e.to_string()),
    };
    assert_eq!(cat_err, v3_err, "cat and export -f asciicast-v3 disagree");
    assert_eq!(cat_err, info_err, "cat and info disagree");
    if report.status == Status::Ok {
        assert_eq!(cat_err, None, "verified OK, but readers fail");
        assert_eq!(cat_end, Some(StreamEnd::Complete), "verified OK, but the stream is cut");
    }
    if let (Status::Format, Some(d)) = (report.status, &report.divergence) {
        let at = format!("line {}, offset {}: {}", d.line, d.offset, report.reason);
        if d.line > 0 && !report.reason.contains("offset") {
            assert_eq!(cat_err.as_deref(), Some(at.as_str()), "verify and cat disagree on the line");
        }
    }
});
