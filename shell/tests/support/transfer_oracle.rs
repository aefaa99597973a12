//! An oracle for the transfer classifier (`sealcast_shell::classify::transfer`), written
//! independently of it (its own quote scanner and its own per-program deny lists, from the
//! programs' sources rather than from the classifier's whitelists). Shared by the stable test
//! `tests/classify_property.rs` and the cargo-fuzz target `fuzz/fuzz_targets/classify_command.rs`.
//!
//! The property (SPEC §10.1): a command classified as a transfer and run by argv can start no
//! process other than the transfer program. It holds when
//!
//! 1. the program is the configured absolute path for its kind;
//! 2. no byte of the original command outside quotes is a shell metacharacter or a control
//!    byte, quotes are balanced, and quoted text holds nothing a shell would expand — so the
//!    command, had a shell seen it, would have been that one program and nothing else;
//! 3. no argument is a process-starting option of that program: scp without `-t`/`-f` is a
//!    client that runs ssh, and `-S`, `-D`, `-o`, `-F`, `-J`, `-3` name programs or ssh
//!    options; rsync without a leading `--server` is a client that runs a remote shell, and
//!    `--daemon`, `--config`, `--dparam`/`-M`, `--rsh`, `--rsync-path`, `--remote-option`,
//!    `--early-input`, `--log-file*`, batch files and `-s` (options then come from stdin)
//!    are out; sftp-server has no such option, so only `-c` (treat the rest as a shell
//!    command line) is out;
//! 4. no argument holds a NUL (it could not be passed to `execve` unchanged).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sealcast_shell::classify::{Shape, Transfer, TransferKind, TransferPrograms};

/// The programs the checks use (the defaults of sealcast.toml).
pub fn programs() -> TransferPrograms {
    TransferPrograms {
        scp: PathBuf::from("/usr/bin/scp"),
        rsync: PathBuf::from("/usr/bin/rsync"),
        sftp_server: PathBuf::from("/usr/lib/openssh/sftp-server"),
    }
}

/// Bytes a POSIX shell treats specially outside quotes (XCU 2.2, 2.4, 2.6, 2.13, 2.10.2),
/// plus bash's `!` (history) and `{`/`}` (brace expansion).
const METACHARACTERS: &[u8] = b";&|<>()$`*?[]{}~#!\n";

/// Check one classification: `Err` says which part of the property fails.
pub fn check_shape(
    original: &[u8],
    shape: &Shape,
    programs: &TransferPrograms,
) -> Result<(), String> {
    match shape {
        Shape::Transfer { cmd, transfer } => {
            use std::os::unix::ffi::OsStrExt;
            if cmd.as_bytes() != original {
                return Err("the header command is not the command as received".into());
            }
            check(original, transfer, programs)
        }
        _ => Ok(()),
    }
}

/// Check a transfer recognised in `original` (see the module docs).
pub fn check(original: &[u8], t: &Transfer, programs: &TransferPrograms) -> Result<(), String> {
    let want: &Path = match t.kind {
        TransferKind::Scp => &programs.scp,
        TransferKind::Rsync => &programs.rsync,
        TransferKind::Sftp => &programs.sftp_server,
    };
    if t.program != want || !t.program.is_absolute() {
        return Err(format!(
            "program {:?} is not the configured {want:?}",
            t.program
        ));
    }
    unquoted_bytes_are_inert(original)?;
    let args: Vec<&[u8]> = t
        .args
        .iter()
        .map(|a| {
            use std::os::unix::ffi::OsStrExt;
            a.as_bytes()
        })
        .collect();
    if let Some(a) = args.iter().find(|a| a.contains(&0)) {
        return Err(format!(
            "argument {:?} holds a NUL",
            String::from_utf8_lossy(a)
        ));
    }
    match t.kind {
        TransferKind::Scp => scp_starts_nothing(&args),
        TransferKind::Rsync => rsync_starts_nothing(&args),
        TransferKind::Sftp => sftp_starts_nothing(&args),
    }
}

fn control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Scan `cmd` as a shell would tokenise it, tracking quotes.
fn unquoted_bytes_are_inert(cmd: &[u8]) -> Result<(), String> {
    #[derive(PartialEq)]
    enum Q {
        None,
        Single,
        Double,
    }
    let mut q = Q::None;
    let mut i = 0;
    while i < cmd.len() {
        let b = cmd[i];
        match q {
            Q::None => match b {
                b'\'' => q = Q::Single,
                b'"' => q = Q::Double,
                b'\\' => match cmd.get(i + 1) {
                    None => return Err("trailing backslash".into()),
                    Some(&n) if control(n) => {
                        return Err(format!("backslash before control byte {n:#04x} at {i}"))
                    }
                    Some(_) => i += 1,
                },
                b' ' | b'\t' => {}
                _ if control(b) => return Err(format!("control byte {b:#04x} at {i}")),
                _ if METACHARACTERS.contains(&b) => {
                    return Err(format!("metacharacter {:?} at {i}", b as char))
                }
                _ => {}
            },
            Q::Single => match b {
                b'\'' => q = Q::None,
                _ if control(b) => return Err(format!("control byte {b:#04x} in '…' at {i}")),
                _ => {}
            },
            Q::Double => match b {
                b'"' => q = Q::None,
                b'$' | b'`' | b'\\' | b'!' => {
                    return Err(format!("{:?} inside \"…\" at {i}", b as char))
                }
                _ if control(b) => return Err(format!("control byte {b:#04x} in \"…\" at {i}")),
                _ => {}
            },
        }
        i += 1;
    }
    if q != Q::None {
        return Err("unbalanced quote".into());
    }
    Ok(())
}

/// OpenSSH scp (`scp.c` `main`, getopt `"12346ABCTdfOpqRrstvD:F:J:M:P:S:c:i:l:o:X:"`; glibc
/// getopt permutes, so every `-x` word before `--` is an option wherever it stands).
fn scp_starts_nothing(args: &[&[u8]]) -> Result<(), String> {
    let mut server = false;
    for a in args {
        if *a == b"--" {
            break;
        }
        if a.len() > 1 && a[0] == b'-' {
            for &c in &a[1..] {
                if b"SDoFJ3".contains(&c) {
                    return Err(format!(
                        "scp option -{} starts or configures a program",
                        c as char
                    ));
                }
                if c == b't' || c == b'f' {
                    server = true;
                }
            }
        }
    }
    if !server {
        return Err("scp without -t or -f is a client: it runs ssh".into());
    }
    Ok(())
}

/// rsync (`options.c` `long_options`, popt; popt permutes, so any `-x` word is an option).
fn rsync_starts_nothing(args: &[&[u8]]) -> Result<(), String> {
    if args.first() != Some(&&b"--server"[..]) {
        return Err("rsync without a leading --server is a client: it runs a remote shell".into());
    }
    const DENIED_LONG: &[&str] = &[
        "daemon",
        "config",
        "dparam",
        "rsh",
        "rsync-path",
        "remote-option",
        "early-input",
        "log-file",
        "log-file-format",
        "write-batch",
        "read-batch",
        "only-write-batch",
        "secluded-args",
        "protect-args",
        "copy-as",
    ];
    for a in args {
        if let Some(long) = a.strip_prefix(b"--") {
            let name = long.split(|&b| b == b'=').next().unwrap_or_default();
            if DENIED_LONG.iter().any(|d| d.as_bytes() == name) {
                return Err(format!("rsync option --{}", String::from_utf8_lossy(name)));
            }
        } else if let Some(short) = a.strip_prefix(b"-") {
            // Letters up to the first that takes a value (the rest of the word is its value).
            for &c in short {
                match c {
                    b'M' => return Err("rsync option -M (--remote-option / --dparam)".into()),
                    b's' => return Err("rsync option -s (arguments read from stdin)".into()),
                    b'e' | b'B' | b'@' | b'f' | b'T' => break,
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// OpenSSH sftp-server (`sftp-server.c`, getopt `"d:f:l:P:p:Q:u:cehR"`): nothing starts a
/// program; `-c` makes it ignore the rest, so a shell-style command line could hide there.
fn sftp_starts_nothing(args: &[&[u8]]) -> Result<(), String> {
    for a in args {
        if a.len() > 1 && a[0] == b'-' {
            for &c in &a[1..] {
                if c == b'c' {
                    return Err("sftp-server -c".into());
                }
                if b"dflPpQu".contains(&c) {
                    break;
                }
            }
        }
    }
    Ok(())
}
