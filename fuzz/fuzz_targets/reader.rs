//! The event reader on arbitrary files: never panics, always terminates.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = sealcast_reader::Reader::open(data) {
        for e in r.take(100_000) {
            if e.is_err() {
                break;
            }
        }
    }
});
