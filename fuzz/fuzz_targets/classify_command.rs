//! The session classifier on arbitrary bytes as `SSH_ORIGINAL_COMMAND` and as a login
//! shell's `-c` argument: whenever it says "transfer", the independent oracle
//! (`shell/tests/support/transfer_oracle.rs`) must agree that the program, run by argv, can
//! start no other process (SPEC §10.1). `shell/tests/classify_property.rs` runs the same
//! checks on a fixed corpus without cargo-fuzz.
#![no_main]

#[path = "../../shell/tests/support/transfer_oracle.rs"]
mod oracle;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use libfuzzer_sys::fuzz_target;
use sealcast_shell::classify::{classify, transfer, Context, Invocation, Shape};

fuzz_target!(|data: &[u8]| {
    let programs = oracle::programs();
    let ctx = Context {
        stdin_tty: false,
        programs: programs.clone(),
    };
    let direct = transfer(OsStr::from_bytes(data), &programs);
    if let Some(t) = &direct {
        if let Err(e) = oracle::check(data, t, &programs) {
            panic!("{:?}: {e}", String::from_utf8_lossy(data));
        }
    }
    let inv = Invocation::parse(&[OsString::from("/usr/local/lib/sealcast/sealcast-shell")])
        .expect("ForceCommand argv parses");
    let mut env = HashMap::new();
    env.insert(
        OsString::from("SSH_ORIGINAL_COMMAND"),
        OsString::from_vec(data.to_vec()),
    );
    let shape = classify(&inv, &env, &ctx);
    if let Err(e) = oracle::check_shape(data, &shape, &programs) {
        panic!(
            "SSH_ORIGINAL_COMMAND {:?}: {e}",
            String::from_utf8_lossy(data)
        );
    }
    assert_eq!(matches!(shape, Shape::Transfer { .. }), direct.is_some());
    let argv = [
        OsString::from("sealcast-shell"),
        OsString::from("-c"),
        OsString::from_vec(data.to_vec()),
    ];
    if let Ok(inv) = Invocation::parse(&argv) {
        let shape = classify(&inv, &HashMap::new(), &ctx);
        if let Err(e) = oracle::check_shape(data, &shape, &programs) {
            panic!("-c {:?}: {e}", String::from_utf8_lossy(data));
        }
    }
});
