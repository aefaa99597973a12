//! The transfer property of SPEC §10.1 on a deterministic corpus, so CI checks it without
//! cargo-fuzz (`fuzz/fuzz_targets/classify_command.rs` runs the same checks on arbitrary
//! bytes): every command classified as a transfer — from `SSH_ORIGINAL_COMMAND` or from a
//! login shell's `-c` — passes the independent oracle in `support/transfer_oracle.rs`
//! (configured program; nothing a shell would act on outside quotes; no process-starting
//! option). The corpus: real client command lines, the look-alikes of the recording-bypass
//! issue, each of them with every interesting byte inserted at every position, with hostile
//! suffixes and other program words, and token soup from a fixed-seed generator.

#[path = "support/transfer_oracle.rs"]
mod oracle;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use sealcast_shell::classify::{classify, transfer, Context, Invocation, Shape};

/// Command lines the real clients send (OpenSSH scp/sftp, rsync 3.x), which must stay
/// transfers.
const REAL: &[&str] = &[
    "scp -t /tmp",
    "scp -t .",
    "scp -f file",
    "scp -v -r -p -d -t -- /dir",
    "scp -r -f -- -leading-dash",
    "scp -f 'with space'",
    "scp -t /tmp/caf\u{e9}",
    "internal-sftp",
    "internal-sftp -l INFO -f AUTH",
    "/usr/lib/openssh/sftp-server",
    "/usr/lib/openssh/sftp-server -e -d /srv/%u",
    "rsync --server -vlogDtpre.iLsfxCIvu . /dst/",
    "rsync --server --sender -vlogDtpre.iLsfxCIvu . /src/",
    "rsync --server -logDtpre.iLsfxCIvu --delete-after . with\\ space/",
    "rsync --server --sender -vre.iLsfxCIvu --files-from=- --from0 . src",
];

/// The issue's four look-alikes and their relatives: never transfers.
const LOOKALIKES: &[&str] = &[
    "scp -t /tmp; echo MARK",
    "scp -t /tmp\necho MARK",
    "scp -t $(echo MARK >&2)",
    "rsync --server -e.LsfxC . /tmp; echo MARK",
    "scp -t /tmp; bash -i",
    "scp -t /tmp && echo MARK",
    "scp -t /tmp | echo MARK",
    "scp -t `echo MARK`",
    "scp -t >file",
    "FOO=1 scp -t /tmp",
    "~/bin/scp -t /tmp",
    "/home/u/bin/scp -t /tmp",
    "rsync --server --daemon --config=/home/u/r.conf .",
    "internal-sftp; echo MARK",
    "scp -t /tmp\r",
    "scp -t /tmp\x1b[2J",
];

const INTERESTING: &[u8] = b";&|<>()$`*?[]{}~#!\n\r\t\0\x1b\x7f'\"\\ =-.";

const SUFFIXES: &[&str] = &[
    "; echo MARK",
    "\necho MARK",
    " $(echo MARK)",
    " `id`",
    " && id",
    " || id",
    " | id",
    " >f",
    " <f",
    " &",
    " -S /bin/sh",
    " -D /bin/sh",
    " -o ProxyCommand=sh",
    " --daemon",
    " --config=x",
    " -e sh",
    " --rsh=sh",
    " -M--x",
    " -s",
    " -c sh",
    " '--daemon'",
    " \\-S",
    " #",
    " \"$HOME\"",
];

const PROGRAM_WORDS: &[&str] = &[
    "scp",
    "rsync",
    "sftp-server",
    "internal-sftp",
    "/usr/bin/scp",
    "/usr/bin/rsync",
    "/usr/lib/openssh/sftp-server",
    "./scp",
    "/home/u/bin/scp",
    "FOO=1 scp",
    "command scp",
    "exec scp",
    "sh -c scp",
    "'scp'",
    "s\\cp",
    "env scp",
];

const TOKENS: &[&str] = &[
    "scp",
    "rsync",
    "sftp-server",
    "internal-sftp",
    "--server",
    "--sender",
    "-t",
    "-f",
    "-tf",
    "-r",
    "-d",
    "-p",
    "-v",
    "--",
    ".",
    "/tmp",
    "x",
    "-e.LsfxC",
    "-vlogDtpre.iLsfxCIvu",
    "--daemon",
    "--config=x",
    "-M--x",
    "-s",
    "-S",
    "/bin/sh",
    "-l",
    "INFO",
    "-c",
    "-e",
    "--backup-dir",
    "-B5",
    "-@-1",
    "'a b'",
    "\"a b\"",
    "a\\ b",
    "''",
    "$x",
    "$(id)",
    "`id`",
    ";",
    "&&",
    "|",
    ">",
    "<",
    "~",
    "*",
    "#",
    "!",
    "\\",
    "'",
    "\"",
    "FOO=1",
    "\u{e9}",
    "\u{1b}",
    "--log-format=%i",
    "--files-from=-",
    "--iconv=utf8",
    "-@",
    "-B",
];

const SEPARATORS: &[&str] = &[" ", " ", " ", "\t", "", "\n", "  "];

struct Corpus {
    cases: Vec<Vec<u8>>,
}

impl Corpus {
    fn build() -> Corpus {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        let seeds: Vec<&str> = REAL.iter().chain(LOOKALIKES).copied().collect();
        for s in &seeds {
            let b = s.as_bytes();
            cases.push(b.to_vec());
            for i in 0..=b.len() {
                for &x in INTERESTING {
                    let mut v = b[..i].to_vec();
                    v.push(x);
                    v.extend_from_slice(&b[i..]);
                    cases.push(v);
                }
                // Drop a byte too (unbalances quotes, joins words).
                if i < b.len() {
                    let mut v = b.to_vec();
                    v.remove(i);
                    cases.push(v);
                }
            }
            for suf in SUFFIXES {
                cases.push([b, suf.as_bytes()].concat());
            }
            if let Some(sp) = s.find(' ') {
                for p in PROGRAM_WORDS {
                    cases.push([p.as_bytes(), &b[sp..]].concat());
                }
            }
        }
        let mut x: u64 = 0x5ea1_ca57_u64 | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..40_000 {
            let n = 1 + (next() % 8) as usize;
            let mut v = Vec::new();
            for k in 0..n {
                if k > 0 {
                    v.extend_from_slice(
                        SEPARATORS[(next() % SEPARATORS.len() as u64) as usize].as_bytes(),
                    );
                }
                // Bias the first word towards the transfer programs.
                let t = if k == 0 && next() % 4 != 0 {
                    TOKENS[(next() % 4) as usize]
                } else {
                    TOKENS[(next() % TOKENS.len() as u64) as usize]
                };
                v.extend_from_slice(t.as_bytes());
            }
            if next() % 8 == 0 {
                let at = (next() as usize) % (v.len() + 1);
                v.insert(at, (next() % 256) as u8);
            }
            cases.push(v);
        }
        Corpus { cases }
    }
}

fn ctx() -> Context {
    Context {
        stdin_tty: false,
        programs: oracle::programs(),
    }
}

/// Classify `cmd` every way sshd can hand it over and check the property; returns whether
/// it was a transfer.
fn check_all_ways(cmd: &[u8]) -> bool {
    let programs = oracle::programs();
    let ctx = ctx();
    let what = || format!("{:?}", String::from_utf8_lossy(cmd));
    let direct = transfer(OsStr::from_bytes(cmd), &programs);
    if let Some(t) = &direct {
        oracle::check(cmd, t, &programs).unwrap_or_else(|e| panic!("{}: {e}", what()));
    }
    // ForceCommand: SSH_ORIGINAL_COMMAND, with and without a PTY.
    let inv =
        Invocation::parse(&[OsString::from("/usr/local/lib/sealcast/sealcast-shell")]).unwrap();
    for tty in [false, true] {
        let mut env = HashMap::new();
        env.insert(
            OsString::from("SSH_ORIGINAL_COMMAND"),
            OsString::from_vec(cmd.to_vec()),
        );
        if tty {
            env.insert(OsString::from("SSH_TTY"), OsString::from("/dev/pts/1"));
        }
        let shape = classify(&inv, &env, &ctx);
        oracle::check_shape(cmd, &shape, &programs).unwrap_or_else(|e| panic!("{}: {e}", what()));
        assert_eq!(
            matches!(shape, Shape::Transfer { .. }),
            direct.is_some(),
            "{}",
            what()
        );
    }
    // Login shell: `sealcast-shell -c CMD`.
    let argv = [
        OsString::from("sealcast-shell"),
        OsString::from("-c"),
        OsString::from_vec(cmd.to_vec()),
    ];
    if let Ok(inv) = Invocation::parse(&argv) {
        let shape = classify(&inv, &HashMap::new(), &ctx);
        oracle::check_shape(cmd, &shape, &programs).unwrap_or_else(|e| panic!("{}: {e}", what()));
    }
    direct.is_some()
}

#[test]
fn real_client_commands_are_transfers_and_pass_the_oracle() {
    for c in REAL {
        assert!(check_all_ways(c.as_bytes()), "{c:?} is not a transfer");
    }
}

#[test]
fn the_issues_lookalikes_are_not_transfers() {
    for c in LOOKALIKES {
        assert!(!check_all_ways(c.as_bytes()), "{c:?} is a transfer");
    }
}

#[test]
fn every_transfer_in_the_corpus_passes_the_oracle() {
    let corpus = Corpus::build();
    let mut transfers = 0;
    for c in &corpus.cases {
        if check_all_ways(c) {
            transfers += 1;
        }
    }
    let total = corpus.cases.len();
    eprintln!("{transfers} transfers among {total} generated commands");
    // Not vacuous: both sides of the classifier are exercised.
    assert!(
        transfers > 2_000,
        "only {transfers} transfers in the corpus"
    );
    assert!(
        total - transfers > 20_000,
        "only {} non-transfers",
        total - transfers
    );
}

/// The oracle itself rejects what it must (so a passing corpus means something).
#[test]
fn the_oracle_catches_unsafe_transfers() {
    use sealcast_shell::classify::{Transfer, TransferKind};
    use std::path::PathBuf;
    let p = oracle::programs();
    let t = |kind, program: &str, args: &[&str]| Transfer {
        kind,
        program: PathBuf::from(program),
        args: args.iter().map(OsString::from).collect(),
    };
    let bad = [
        (
            "scp -t x; id",
            t(TransferKind::Scp, "/usr/bin/scp", &["-t", "x"]),
        ),
        (
            "scp -t 'x",
            t(TransferKind::Scp, "/usr/bin/scp", &["-t", "x"]),
        ),
        (
            "scp -t \"$x\"",
            t(TransferKind::Scp, "/usr/bin/scp", &["-t", "$x"]),
        ),
        ("scp x y", t(TransferKind::Scp, "/usr/bin/scp", &["x", "y"])),
        (
            "scp -t -S sh x",
            t(TransferKind::Scp, "/usr/bin/scp", &["-t", "-S", "sh", "x"]),
        ),
        ("scp -t x", t(TransferKind::Scp, "/tmp/scp", &["-t", "x"])),
        (
            "rsync --server --daemon .",
            t(
                TransferKind::Rsync,
                "/usr/bin/rsync",
                &["--server", "--daemon", "."],
            ),
        ),
        (
            "rsync --server -vs . x",
            t(
                TransferKind::Rsync,
                "/usr/bin/rsync",
                &["--server", "-vs", ".", "x"],
            ),
        ),
        (
            "rsync -e sh x y",
            t(
                TransferKind::Rsync,
                "/usr/bin/rsync",
                &["-e", "sh", "x", "y"],
            ),
        ),
        (
            "sftp-server -c x",
            t(
                TransferKind::Sftp,
                "/usr/lib/openssh/sftp-server",
                &["-c", "x"],
            ),
        ),
        (
            "scp -t a\\\nb",
            t(TransferKind::Scp, "/usr/bin/scp", &["-t", "ab"]),
        ),
    ];
    for (cmd, tr) in bad {
        assert!(
            oracle::check(cmd.as_bytes(), &tr, &p).is_err(),
            "the oracle accepts {cmd:?} -> {tr:?}"
        );
    }
}
