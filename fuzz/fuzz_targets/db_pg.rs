//! The pg framers, message parsers and connection state machine of the database proxy on
//! arbitrary two-way streams: never panics, always terminates.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealcast_dbproxy::fuzzing::pg(data);
});
