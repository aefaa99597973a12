//! Test vectors of format-spec/vectors/: regenerated here from a fixed key, clock and session
//! id, compared byte for byte with the committed files, and checked against the verifier.
//!
//! Regenerate with `format-spec/vectors/generate.sh` (sets `SEALCAST_REGEN_VECTORS=1`).
//! Never edit the files by hand: this test fails if they differ from what the code writes.

#[path = "support/coverage.rs"]
mod coverage;
#[path = "support/player.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sealcast_format::{
    decompress_frame, scan, skippable_frame, CommandEvent, FrameKind, Header, ProcStart,
    ProcessEvent, SealMeta, SessionInfo, TermInfo, SHELL_SOURCE,
};
use sealcast_reader::{verify_bytes, Coverage, Reader};
use sealcast_recorder::{CheckpointPolicy, SealedWriter};
use sealcast_signer::{Sealer, SigningKey, TrustStore};
use sealcast_testkit::TestClock;

const T0_WALL: u64 = 1_763_700_000_000_000; // 2025-11-21T04:40:00Z
const HOST: &str = "vector-host";
/// The host `vector-host2.key` is trusted for (and only for) in `allowed_signers`.
const OTHER_HOST: &str = "other-host";

enum Step {
    Out(u64, &'static [u8]),
    Resize(u64, u16, u16),
    Tick(u64),
    Cmd(u64, CommandEvent),
    Proc(u64, ProcessEvent),
    /// A `d` event (SPEC §11) and whether it is written ahead (a statement).
    Db(u64, String, bool),
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors")
}

fn regen() -> bool {
    std::env::var_os("SEALCAST_REGEN_VECTORS").is_some()
}

/// The vector keys: generated once by generate.sh, then inputs to every later run.
fn key(name: &str) -> SigningKey {
    let path = dir().join(name);
    if !path.exists() && regen() {
        std::fs::write(&path, SigningKey::generate().unwrap().to_pem()).unwrap();
    }
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run generate.sh)", path.display()));
    SigningKey::from_file_bytes(&bytes).unwrap()
}

fn header(session: &str, key: &SigningKey, user: &str) -> Header {
    Header {
        term: TermInfo {
            cols: 80,
            rows: 24,
            term_type: Some("xterm-256color".into()),
        },
        timestamp: Some((T0_WALL / 1_000_000) as i64),
        command: Some("/bin/sh -c demo".into()),
        env: Some(BTreeMap::from([
            ("SHELL".into(), "/bin/sh".into()),
            ("TERM".into(), "xterm-256color".into()),
        ])),
        ..Header::sealed(SealMeta::new(
            session,
            HOST,
            user,
            T0_WALL,
            "sealcast vectors",
            key.id().to_string(),
        ))
    }
}

fn record(
    session: &str,
    key: SigningKey,
    steps: &[Step],
    exit: i32,
    max_bytes: u64,
) -> (Vec<u8>, Vec<u8>) {
    record_with(
        session,
        key,
        &SessionInfo::default(),
        steps,
        exit,
        max_bytes,
    )
}

fn record_with(
    session: &str,
    key: SigningKey,
    info: &SessionInfo,
    steps: &[Step],
    exit: i32,
    max_bytes: u64,
) -> (Vec<u8>, Vec<u8>) {
    let t = TestClock::with_wall_start(T0_WALL);
    let policy = CheckpointPolicy {
        interval_us: 10_000_000,
        max_bytes,
        zstd_level: 3,
    };
    let h = header(session, &key, "alice");
    let mut w = SealedWriter::with_session(Vec::new(), key, &h, info, t.clone(), policy).unwrap();
    for s in steps {
        match *s {
            Step::Out(at, b) => {
                t.set(at);
                w.output(b).unwrap();
            }
            Step::Resize(at, c, r) => {
                t.set(at);
                w.resize(c, r).unwrap();
            }
            Step::Tick(at) => {
                t.set(at);
                w.tick().unwrap();
            }
            Step::Cmd(at, ref ev) => {
                t.set(at);
                w.command(ev).unwrap();
            }
            Step::Proc(at, ref ev) => {
                t.set(at);
                w.process(ev).unwrap();
            }
            Step::Db(at, ref json, ahead) => {
                t.set(at);
                w.db_event(json, ahead).unwrap();
            }
        }
    }
    w.finish(Some(exit)).unwrap()
}

/// Frames of a file: data frames as their lines, checkpoint frames as raw bytes.
enum Part {
    Lines(Vec<Vec<u8>>),
    Raw(Vec<u8>),
}

fn split(file: &[u8]) -> Vec<Part> {
    scan(file)
        .map(|f| {
            let f = f.unwrap();
            match f.kind {
                FrameKind::Data => {
                    let mut out = Vec::new();
                    decompress_frame(f.bytes, f.offset, &mut out).unwrap();
                    out.pop();
                    Part::Lines(out.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect())
                }
                FrameKind::Checkpoint => Part::Raw(skippable_frame(f.bytes)),
            }
        })
        .collect()
}

fn join(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Part::Raw(b) => out.extend_from_slice(b),
            Part::Lines(lines) => {
                let mut text = lines.join(&b'\n');
                text.push(b'\n');
                out.extend_from_slice(&zstd::bulk::compress(&text, 3).unwrap());
            }
        }
    }
    out
}

/// Apply `f` to the lines of the `n`th data frame and re-encode the file.
fn edit_frame(file: &[u8], n: usize, f: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let mut parts = split(file);
    let lines = parts
        .iter_mut()
        .filter_map(|p| match p {
            Part::Lines(l) => Some(l),
            Part::Raw(_) => None,
        })
        .nth(n)
        .unwrap();
    f(lines);
    join(&parts)
}

/// Byte offset just after the `n`th checkpoint frame.
fn after_checkpoint(file: &[u8], n: usize) -> usize {
    let f = scan(file)
        .filter_map(Result::ok)
        .filter(|f| f.kind == FrameKind::Checkpoint)
        .nth(n)
        .unwrap();
    (f.offset + f.len) as usize
}

struct Vector {
    name: &'static str,
    file: Vec<u8>,
    seal: Option<Vec<u8>>,
    status: &'static str,
    line: Option<u64>,
    events: bool,
}

const S1: &str = "5ea1ca5700000000000000000000a001";
const S2: &str = "5ea1ca5700000000000000000000a002";

fn basic_steps() -> Vec<Step> {
    vec![
        Step::Out(120_000, b"$ "),
        Step::Out(900_000, b"echo hello\r\nhello\r\n"),
        Step::Out(1_000_000, b"\x1b[31mred\x1b[0m \xe2\x9c\x93\r\n"),
        Step::Resize(2_500_000, 120, 40),
        Step::Out(2_600_000, b"binary:\xff\xfe\x00\x01|split:\xe2\x82"),
        Step::Out(2_600_100, b"\xac euro\r\n"),
        Step::Tick(13_000_000),
        Step::Out(13_500_000, b"after a time checkpoint\r\n"),
        Step::Out(13_600_000, b"quote \" backslash \\ tab \t del \x7f\r\n"),
    ]
}

/// A bash session with command and process events (SPEC §2.4): the hooks and the proc
/// source start, a claimed pipeline whose processes were seen, output imitating marks, a
/// command the hooks did not claim, and the audit ids in the header (§2.4.4).
fn commands_steps() -> Vec<Step> {
    let start = |id, cmd: &str, cwd: &str| CommandEvent::Start {
        id,
        src: SHELL_SOURCE.into(),
        cmd: cmd.into(),
        cwd: Some(cwd.into()),
        partial: false,
        trunc: false,
        late: false,
    };
    let end = |id, exit, pipestatus: Vec<i32>, duration_us| CommandEvent::End {
        id,
        src: SHELL_SOURCE.into(),
        exit: Some(exit),
        pipestatus,
        duration_us,
    };
    let proc_ = |pid, ppid, age_us, comm: &str, argv: &[&str]| {
        ProcessEvent::Start(ProcStart {
            pid,
            ppid,
            pgid: if pid == 4102 { 4101 } else { pid },
            sid: 4100,
            uid: 1000,
            euid: 1000,
            age_us,
            comm: comm.into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            trunc: false,
        })
    };
    vec![
        Step::Cmd(
            0,
            CommandEvent::Hooks {
                shell: "bash".into(),
            },
        ),
        Step::Proc(
            0,
            ProcessEvent::Watch {
                root: 4100,
                sid: 4100,
                period_us: 250_000,
            },
        ),
        Step::Proc(
            0,
            proc_(
                4100,
                1,
                20_000,
                "bash",
                &[
                    "bash",
                    "--rcfile",
                    "/tmp/sealcast-hooks.1f2e3d4c5b6a7980/bashrc",
                    "-i",
                ],
            ),
        ),
        Step::Out(
            300_000,
            b"\x1b]133;A;cwd=/home/alice;sealcast=5ea1ca5700000000000000000000c0de\x07alice@host:~$ ",
        ),
        Step::Out(
            1_500_000,
            b"ls | wc -l\r\n\x1b]133;C;cmd=ls | wc -l;sealcast=5ea1ca5700000000000000000000c0de\x07",
        ),
        Step::Cmd(1_500_000, start(1, "ls | wc -l", "/home/alice")),
        Step::Proc(1_500_000, ProcessEvent::Fg { pgid: 4101 }),
        Step::Proc(1_750_000, proc_(4101, 4100, 240_000, "ls", &["ls"])),
        Step::Proc(1_750_000, proc_(4102, 4100, 240_000, "wc", &["wc", "-l"])),
        Step::Out(
            1_800_000,
            b"12\r\n\x1b]133;D;0;pipestatus=0,0;sealcast=5ea1ca5700000000000000000000c0de\x07",
        ),
        Step::Cmd(1_800_000, end(1, 0, vec![0, 0], 300_000)),
        Step::Proc(1_800_000, ProcessEvent::Fg { pgid: 4100 }),
        Step::Proc(2_000_000, ProcessEvent::Exit { pid: 4101 }),
        Step::Proc(2_000_000, ProcessEvent::Exit { pid: 4102 }),
        Step::Cmd(3_000_000, start(2, "cat notes.txt", "/home/alice")),
        Step::Out(
            3_010_000,
            b"\x1b]133;C;cmd=rm -rf /\x07forged\r\n",
        ),
        Step::Cmd(
            3_010_000,
            CommandEvent::Ignored {
                marks: 1,
                bad_nonce: 0,
            },
        ),
        Step::Cmd(3_020_000, end(2, 0, vec![], 20_000)),
        Step::Tick(12_000_000),
        Step::Proc(
            12_250_000,
            ProcessEvent::Exec {
                pid: 4100,
                uid: 1000,
                euid: 1000,
                comm: "sh".into(),
                argv: vec!["sh".into()],
                trunc: false,
            },
        ),
        Step::Proc(
            13_000_000,
            proc_(
                4110,
                4100,
                30_000,
                "curl",
                &["curl", "-s", "http://198.51.100.7/x"],
            ),
        ),
        Step::Proc(13_500_000, ProcessEvent::Exit { pid: 4110 }),
        Step::Out(
            14_000_000, b"$ exit\r\n",
        ),
        Step::Proc(14_000_000, ProcessEvent::Exit { pid: 4100 }),
    ]
}

/// One PostgreSQL connection through the database proxy (SPEC §11), its `d` events built by
/// the proxy's own event builder: open, auth, then a query and its result under checkpoint
/// 1 (the tick at 11 s), an update and its result, close.
fn db_steps() -> Vec<Step> {
    use sealcast_dbproxy::event::{start, Obj, SqlText};
    use sealcast_dbproxy::sql::Dialect;
    let ev = |k: &str, at: u64, f: &dyn Fn(&mut Obj)| {
        let mut o = start(k, 1, "pg", T0_WALL + at);
        f(&mut o);
        o.finish()
    };
    let stmt = |at: u64, q: u64, sql: &str| {
        let json = ev("db.stmt", at, &|o| {
            o.u64("q", q).str("via", "simple");
            let text = SqlText::new(sql.as_bytes(), Dialect::Postgres, 4096);
            text.put(o);
            o.opt_u64("n_parts", text.n_parts).str("txn_before", "I");
        });
        Step::Db(at, json, true)
    };
    let result = |at: u64, q: u64, tag: &str, rows_out: u64, bytes_out: u64, dur_us: u64| {
        let json = ev("db.result", at, &|o| {
            o.u64("q", q)
                .u64("i", 0)
                .str("status", "ok")
                .str("tag", tag)
                .u64("rows", 1)
                .u64("rows_out", rows_out)
                .u64("bytes_out", bytes_out)
                .u64("dur_us", dur_us);
        });
        Step::Db(at, json, false)
    };
    let open = ev("db.open", 100_000, &|o| {
        let mut client = Obj::new();
        client.str("transport", "unix").u64("peer_uid", 1000);
        let mut upstream = Obj::new();
        upstream
            .str("host", "db.internal")
            .u64("port", 5432)
            .str("addr", "192.0.2.10:5432")
            .bool("tls", false);
        let mut startup = Obj::new();
        startup
            .str("user", "app")
            .str("database", "shop")
            .str("protocol", "3.0");
        o.obj("client", client)
            .str("target", "shop")
            .obj("upstream", upstream)
            .obj("startup", startup)
            .str("auth_mode", "passthrough")
            .u64("connect_us", 1200);
    });
    let auth = ev("db.auth", 150_000, &|o| {
        let mut server = Obj::new();
        server.str("version", "16.4").u64("backend_pid", 4242);
        o.str("method", "scram-sha-256")
            .bool("ok", true)
            .obj("server", server)
            .u64("dur_us", 5000);
    });
    let close = ev("db.close", 13_000_000, &|o| {
        o.str("reason", "terminate")
            .u64("stmts", 2)
            .u64("errors", 0)
            .u64("bytes_c2s", 180)
            .u64("bytes_s2c", 420)
            .u64("dur_us", 12_900_000);
    });
    vec![
        Step::Db(100_000, open, true),
        Step::Db(150_000, auth, false),
        stmt(1_000_000, 1, "SELECT id, name FROM customers WHERE id = 7"),
        result(1_002_000, 1, "SELECT 1", 1, 16, 2000),
        Step::Tick(11_000_000),
        stmt(
            12_000_000,
            2,
            "UPDATE customers SET name = 'Bob' WHERE id = 7",
        ),
        result(12_003_000, 2, "UPDATE 1", 0, 0, 3000),
        Step::Db(13_000_000, close, false),
    ]
}

fn vectors() -> Vec<Vector> {
    let k = || key("vector-signing.key");
    let other = key("vector-other.key");
    let (basic, basic_seal) = record(S1, k(), &basic_steps(), 0, 64 * 1024);
    let many_steps: Vec<Step> = (0..40)
        .map(|i| {
            Step::Out(
                100_000 * (i + 1),
                b"a line of output that fills frames quickly\r\n",
            )
        })
        .collect();
    let (many, many_seal) = record(S1, k(), &many_steps, 3, 400);
    let (empty, empty_seal) = record(S1, k(), &[], 0, 64 * 1024);
    let audit = SessionInfo {
        shape: Some("interactive".into()),
        audit_session: Some(42),
        loginuid: Some(1000),
        ..SessionInfo::default()
    };
    let (commands, commands_seal) = record_with(S1, k(), &audit, &commands_steps(), 0, 64 * 1024);
    let (other_session, other_seal) = record(S2, k(), &many_steps, 3, 400);
    let db_shape = SessionInfo {
        shape: Some("db".into()),
        ..SessionInfo::default()
    };
    let (db, db_seal) = record_with(S1, k(), &db_shape, &db_steps(), 0, 64 * 1024);

    let v = |name, file, seal, status, line: Option<u64>| Vector {
        name,
        file,
        seal,
        status,
        line,
        events: false,
    };
    let mut out = vec![
        Vector {
            name: "valid-basic",
            file: basic.clone(),
            seal: Some(basic_seal.clone()),
            status: "OK",
            line: None,
            events: true,
        },
        Vector {
            name: "valid-checkpoints",
            file: many.clone(),
            seal: Some(many_seal.clone()),
            status: "OK",
            line: None,
            events: true,
        },
        Vector {
            name: "valid-commands",
            file: commands,
            seal: Some(commands_seal),
            status: "OK",
            line: None,
            events: true,
        },
        Vector {
            name: "valid-db",
            file: db.clone(),
            seal: Some(db_seal),
            status: "OK",
            line: None,
            events: true,
        },
        Vector {
            name: "valid-empty-session",
            file: empty,
            seal: Some(empty_seal),
            status: "OK",
            line: None,
            events: true,
        },
    ];
    // Content changes in `basic` (frame 1 holds lines 1..=8), each re-compressed so only the
    // chain can notice.
    let f1 = |f: &dyn Fn(&mut Vec<Vec<u8>>)| edit_frame(&basic, 1, f);
    let text = |l: &[u8]| String::from_utf8(l.to_vec()).unwrap();
    out.push(v(
        "tamper-flip-event-byte",
        f1(&|l| l[1][22] ^= 0x01),
        None,
        "MODIFIED",
        Some(1),
    ));
    out.push(v(
        "tamper-delete-line",
        f1(&|l| drop(l.remove(2))),
        None,
        "MODIFIED",
        Some(1),
    ));
    out.push(v(
        "tamper-swap-lines",
        f1(&|l| l.swap(1, 2)),
        None,
        "MODIFIED",
        Some(1),
    ));
    out.push(v(
        "tamper-duplicate-line",
        f1(&|l| l.insert(3, l[2].clone())),
        None,
        "MODIFIED",
        Some(4),
    ));
    out.push(v(
        "tamper-json-equivalent-rewrite",
        f1(&|l| l[1] = text(&l[1]).replacen("\"o\"", "\"\\u006f\"", 1).into_bytes()),
        None,
        "MODIFIED",
        Some(2),
    ));
    out.push(v(
        "tamper-header-user",
        edit_frame(&basic, 0, |l| {
            l[0] = text(&l[0]).replace("alice", "mallory").into_bytes()
        }),
        None,
        "MODIFIED",
        Some(0),
    ));
    // `valid-db` (frame 1 holds lines 1..=4: db.open, db.auth, the query, its result): one
    // byte of the query's SQL changed; and a crash right after the update was written ahead,
    // its result missing (a complete frame after checkpoint 1, no later checkpoint).
    out.push(v(
        "tamper-db-statement",
        edit_frame(&db, 1, |l| {
            l[2] = text(&l[2]).replacen("id = 7", "id = 8", 1).into_bytes()
        }),
        None,
        "MODIFIED",
        Some(1),
    ));
    let crash_db = {
        let mut parts = split(&db);
        let cp1 = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p, Part::Raw(_)))
            .map(|(i, _)| i)
            .nth(1)
            .unwrap();
        let update = match &parts[cp1 + 1] {
            Part::Lines(l) => l[0].clone(),
            Part::Raw(_) => unreachable!("a data frame follows checkpoint 1"),
        };
        assert!(update.windows(6).any(|w| w == b"UPDATE"));
        parts.truncate(cp1 + 1);
        parts.push(Part::Lines(vec![update]));
        join(&parts)
    };
    out.push(v("crash-db-tail", crash_db, None, "UNSEALED_TAIL", None));
    // Checkpoint and container attacks.
    let cut = after_checkpoint(&many, 2);
    out.push(v(
        "tamper-truncated-after-close",
        many[..cut].to_vec(),
        Some(many_seal.clone()),
        "TRUNCATED",
        None,
    ));
    out.push(v(
        "crash-unclosed",
        many[..cut].to_vec(),
        None,
        "UNCLOSED",
        None,
    ));
    let final_cp = scan(&many).filter_map(Result::ok).last().unwrap();
    let mut crash = many[..final_cp.offset as usize].to_vec();
    crash.truncate(crash.len() - 12); // cut into the last data frame as well
    out.push(v("crash-unsealed-tail", crash, None, "UNSEALED_TAIL", None));
    let mut foreign = many[..cut].to_vec();
    let mut forger = Sealer::new(other, HOST, S1);
    foreign.extend_from_slice(&skippable_frame(&forger.checkpoint(T0_WALL, true)));
    out.push(v(
        "tamper-foreign-key-checkpoint",
        foreign,
        None,
        "UNTRUSTED_KEY",
        None,
    ));
    let mut badsig = many.clone();
    let sig_at = badsig.windows(4).rposition(|w| w == b"sig ").unwrap() + 6;
    badsig[sig_at] = if badsig[sig_at] == b'A' { b'B' } else { b'A' };
    out.push(v(
        "tamper-bad-signature",
        badsig,
        None,
        "BAD_SIGNATURE",
        None,
    ));
    // Splice: the first frames of session S1, the rest from S2 (same key, same content).
    let splice_at = after_checkpoint(&other_session, 2);
    let mut spliced = many[..cut].to_vec();
    spliced.extend_from_slice(&other_session[splice_at..]);
    out.push(v(
        "tamper-splice-other-session",
        spliced,
        None,
        "MODIFIED",
        None,
    ));
    let mut after_final = many.clone();
    after_final
        .extend_from_slice(&zstd::bulk::compress(b"[0.000000, \"o\", \"extra\"]\n", 3).unwrap());
    out.push(v(
        "tamper-data-after-final",
        after_final,
        None,
        "MODIFIED",
        None,
    ));
    let mut hidden = many[..cut].to_vec();
    hidden.extend_from_slice(&0x184D_2A51u32.to_le_bytes());
    hidden.extend_from_slice(&4u32.to_le_bytes());
    hidden.extend_from_slice(b"hide");
    hidden.extend_from_slice(&many[cut..]);
    out.push(v(
        "tamper-unknown-skippable-frame",
        hidden,
        None,
        "MODIFIED",
        None,
    ));
    // Keys bound to hosts (SPEC §6, §7 WRONG_SIGNER). A second trusted key, trusted only for
    // another host, writes a whole recording (and receipt) that claims this host.
    let (wrong_host, wrong_host_seal) =
        record(S1, key("vector-host2.key"), &basic_steps(), 0, 64 * 1024);
    out.push(Vector {
        seal: Some(wrong_host_seal),
        ..v(
            "tamper-wrong-host-key",
            wrong_host.clone(),
            None,
            "WRONG_SIGNER",
            None,
        )
    });
    // The header names that other trusted key; this host's own key signed every checkpoint.
    out.push(v(
        "tamper-header-key-id",
        support::resign(&wrong_host, k(), 0),
        None,
        "WRONG_SIGNER",
        None,
    ));
    let mut flipped = many.clone();
    let first_data_after = scan(&many)
        .filter_map(Result::ok)
        .filter(|f| f.kind == FrameKind::Data)
        .nth(2)
        .unwrap();
    flipped[(first_data_after.offset + first_data_after.len - 2) as usize] ^= 0x10;
    out.push(v("tamper-compressed-byte", flipped, None, "MODIFIED", None));
    // Not sealcast recordings at all.
    out.push(v("bad-empty", Vec::new(), None, "FORMAT", None));
    out.push(v(
        "bad-garbage",
        b"\x00\x01garbage that is not zstd".to_vec(),
        None,
        "FORMAT",
        None,
    ));
    out.push(v(
        "bad-plain-asciicast",
        b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[0.1, \"o\", \"hi\"]\n".to_vec(),
        None,
        "FORMAT",
        None,
    ));
    let plain = zstd::bulk::compress(
        b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[0.1, \"o\", \"hi\"]\n",
        3,
    )
    .unwrap();
    out.push(v("bad-unsigned-asciicast-zst", plain, None, "FORMAT", None));
    // Checkpoint 0 is signed before the session starts (SPEC §10): a file that was never
    // signed is not a crash, whatever is in it.
    let first = scan(&basic).next().unwrap().unwrap();
    out.push(v(
        "bad-truncated-first-frame",
        basic[..(first.len / 2) as usize].to_vec(),
        None,
        "FORMAT",
        None,
    ));
    let unsigned: Vec<Part> = split(&basic)
        .into_iter()
        .filter(|p| matches!(p, Part::Lines(_)))
        .collect();
    out.push(v(
        "bad-no-checkpoint",
        join(&unsigned),
        None,
        "FORMAT",
        None,
    ));
    // Signed as it stands, but line 1 is a `b` event that follows no `o`/`i`/`e`: every
    // reader stops there, so it is not a recording (SPEC §7 precedence: after the region's
    // checkpoint verified).
    let mut sealer = Sealer::new(k(), HOST, S1);
    let header_line = split(&basic)
        .into_iter()
        .find_map(|p| match p {
            Part::Lines(l) => Some(l[0].clone()),
            Part::Raw(_) => None,
        })
        .unwrap();
    sealer.line(&header_line);
    let cp0 = sealer.checkpoint(T0_WALL, false);
    let orphan = br#"[0.100000, "b", "/w=="]"#.to_vec();
    sealer.line(&orphan);
    let fin = sealer.checkpoint(T0_WALL + 100_000, true);
    let signed_bad = join(&[
        Part::Lines(vec![header_line]),
        Part::Raw(skippable_frame(&cp0)),
        Part::Lines(vec![orphan]),
        Part::Raw(skippable_frame(&fin)),
    ]);
    out.push(v(
        "bad-signed-orphan-b-event",
        signed_bad,
        Some(fin),
        "FORMAT",
        Some(1),
    ));
    // A data frame of 16 MiB + 1 byte (SPEC §8), after checkpoint 2 of a valid file.
    let mut oversized = many[..cut].to_vec();
    let mut content = Vec::new();
    while content.len() < sealcast_format::MAX_FRAME_CONTENT + 1 {
        content.extend_from_slice(b"[0.000000, \"o\", \"x\"]\n");
    }
    content.truncate(sealcast_format::MAX_FRAME_CONTENT);
    content.push(b'\n');
    oversized.extend_from_slice(&zstd::bulk::compress(&content, 3).unwrap());
    oversized.extend_from_slice(&many[cut..]);
    out.push(v("bad-oversized-frame", oversized, None, "FORMAT", None));
    // Seal receipts that are not this session's final checkpoint (SPEC §5).
    let cp1 = scan(&many)
        .filter_map(Result::ok)
        .filter(|f| f.kind == FrameKind::Checkpoint)
        .nth(1)
        .unwrap();
    out.push(v(
        "tamper-receipt-not-final",
        many.clone(),
        Some(cp1.bytes.to_vec()),
        "MODIFIED",
        None,
    ));
    out.push(v(
        "tamper-receipt-other-session",
        many.clone(),
        Some(other_seal),
        "MODIFIED",
        None,
    ));
    out
}

fn events_json(file: &[u8]) -> String {
    let r = Reader::open(file).unwrap();
    let mut lines = Vec::new();
    for e in r {
        let e = e.unwrap().into_event();
        let data = match std::str::from_utf8(&e.bytes) {
            Ok(s) => serde_json::json!({ "t_us": e.time_us, "code": e.kind.code(), "text": s }),
            Err(_) => {
                serde_json::json!({ "t_us": e.time_us, "code": e.kind.code(), "bytes_b64": B64.encode(&e.bytes) })
            }
        };
        lines.push(data.to_string());
    }
    lines.join("\n") + "\n"
}

#[test]
fn vectors_are_reproducible_and_verify_as_expected() {
    let d = dir();
    // Each key may sign for its own host only (SPEC §6).
    let trust_text = format!(
        "{HOST} namespaces=\"sealcast\" {}\n{OTHER_HOST} namespaces=\"sealcast\" {}\n",
        key("vector-signing.key").public().to_openssh(""),
        key("vector-host2.key").public().to_openssh("")
    );
    let trust = TrustStore::parse(&trust_text).unwrap();
    let mut manifest = BTreeMap::new();
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for v in vectors() {
        let path = d.join(format!("{}.cast.zst", v.name));
        files.push((path.clone(), v.file.clone()));
        if let Some(seal) = &v.seal {
            files.push((d.join(format!("{}.cast.zst.seal", v.name)), seal.clone()));
        }
        if v.events {
            files.push((
                d.join(format!("{}.events.ndjson", v.name)),
                events_json(&v.file).into_bytes(),
            ));
        }
        let report = verify_bytes(&v.file, v.seal.as_deref(), &trust);
        assert_eq!(
            report.status.as_str(),
            v.status,
            "{}: {}",
            v.name,
            report.reason
        );
        if let Some(line) = v.line {
            assert_eq!(
                report.divergence.as_ref().map(|d| d.line),
                Some(line),
                "{}: {}",
                v.name,
                report.reason
            );
        }
        manifest.insert(
            v.name,
            serde_json::json!({ "status": v.status, "exit_class": report.status.exit_class(), "line": v.line, "seal": v.seal.is_some(), "reason": report.reason }),
        );
    }
    let mut m = serde_json::to_string_pretty(&manifest).unwrap();
    m.push('\n');
    files.push((d.join("expected.json"), m.into_bytes()));
    files.push((d.join("allowed_signers"), trust_text.into_bytes()));

    for (path, bytes) in files {
        if regen() {
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let on_disk = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run generate.sh)", path.display()));
            assert!(
                on_disk == bytes,
                "{} differs from what the code writes: run format-spec/vectors/generate.sh",
                path.display()
            );
        }
    }
}

/// Every vector read with the verifying reader: the report `verify` gives, the events an
/// unchecked read gives, and each line's coverage as the status says (valid: all verified;
/// crash: a verified prefix, then an unsealed tail; tampered: verified up to where it fails,
/// `Failed` from there).
#[test]
fn every_vector_reads_as_it_verifies() {
    let trust = TrustStore::parse(&std::fs::read_to_string(dir().join("allowed_signers")).unwrap())
        .unwrap();
    let mut seen = BTreeMap::new();
    for v in vectors() {
        let (report, lines) =
            coverage::reads_as_it_verifies(v.name, &v.file, v.seal.as_deref(), &trust);
        assert_eq!(report.status.as_str(), v.status, "{}", v.name);
        let Some(lines) = lines else { continue };
        let verified = lines.iter().filter(|c| c.is_verified()).count();
        let unsealed = lines.iter().filter(|c| **c == Coverage::Unsealed).count();
        let failed = lines.iter().filter(|c| **c == Coverage::Failed).count();
        match v.status {
            "OK" => assert_eq!((unsealed, failed), (0, 0), "{}", v.name),
            "UNSEALED_TAIL" => {
                // Every complete line of the tail (this one has none) is unsealed.
                let tail = report.tail.as_ref().map_or(0, |t| t.lines);
                assert!(verified > 0 && failed == 0, "{}", v.name);
                assert_eq!(unsealed as u64, tail, "{}", v.name);
            }
            "UNCLOSED" => assert_eq!((unsealed, failed), (0, 0), "{}", v.name),
            _ => {}
        }
        seen.insert(v.name, (verified, unsealed, failed));
    }
    // Tampered vectors whose failing checkpoint covers lines show it in the coverage (a
    // signature, or a line that is not what was signed, makes its region `Failed`).
    for name in [
        "tamper-flip-event-byte",
        "tamper-delete-line",
        "tamper-swap-lines",
        "tamper-bad-signature",
    ] {
        let (_, _, failed) = seen[name];
        assert!(failed > 0, "{name}: {:?}", seen[name]);
    }
}

#[test]
fn header_of_valid_vector_names_the_session() {
    let (file, _) = record(S1, key("vector-signing.key"), &basic_steps(), 0, 64 * 1024);
    let r = Reader::open(&file).unwrap();
    let h: &Header = r.header();
    assert_eq!(h.sealcast.as_ref().unwrap().session, S1);
}

/// The commands report (SPEC §2.4.5) of the `valid-commands` vector, read back through a
/// verifying reader: each event with its coverage, so the rows count as verified because the
/// reader says so, and the read's report is verify's.
#[test]
fn commands_vector_reports_rows_processes_and_disagreements() {
    use sealcast_player::commands::{commands_report, Disagreement, MetaInput};
    use sealcast_reader::{Context, Receipt};
    let (file, seal) = record_with(
        S1,
        key("vector-signing.key"),
        &SessionInfo::default(),
        &commands_steps(),
        0,
        64 * 1024,
    );
    let trust = TrustStore::single(HOST, key("vector-signing.key").public());
    let verified = verify_bytes(&file, Some(&seal), &trust);
    assert_eq!(verified.status.as_str(), "OK");
    let ctx = Context {
        file_name: None,
        receipt: Receipt::Read {
            path: "",
            bytes: &seal,
        },
    };
    let mut reader = Reader::verifying(&file, &trust, ctx).unwrap();
    let events: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(reader.finish(), Some(verified));
    assert!(events.iter().all(|e| e.coverage().is_verified()));
    let report = commands_report(events.iter().map(|e| MetaInput {
        t_us: e.event().time_us,
        kind: &e.event().kind,
        data: std::str::from_utf8(&e.event().bytes).unwrap(),
        state: e.coverage(),
    }));
    let shell: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.id.is_some())
        .map(|r| {
            (
                r.cmd.as_str(),
                r.exit,
                r.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        shell,
        [
            ("ls | wc -l", Some(0), vec![4101, 4102]),
            ("cat notes.txt", Some(0), vec![])
        ]
    );
    assert!(report.rows[0].processes.iter().all(|p| p.foreground));
    let kinds: Vec<_> = report
        .disagreements
        .iter()
        .map(|d| match d {
            Disagreement::IgnoredMarks { during_id, .. } => format!("ignored {during_id:?}"),
            Disagreement::HooksSilent {
                after_id,
                pids,
                shell_replaced,
                ..
            } => format!(
                "silent {after_id:?} {pids:?} {:?}",
                shell_replaced.as_ref().map(|s| s.1.join(" "))
            ),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        // Silent since the last claim (3.0 s), which precedes the marks it ignored (3.01 s).
        ["silent Some(2) [4110] Some(\"sh\")", "ignored Some(2)"]
    );
    let summary = report.summary();
    assert_eq!((summary.commands, summary.disagreements), (2, 2));
    assert_eq!(
        (summary.commands_verified, summary.disagreements_verified),
        (2, 2)
    );
}
