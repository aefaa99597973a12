//! Recordings made by the real writer with a hand-moved clock, and players over them.
#![allow(dead_code)]

use sealcast_format::{CommandEvent, Header, ProcessEvent, SealMeta, TermInfo};
use sealcast_recorder::{CheckpointPolicy, SealedWriter};
use sealcast_signer::{SigningKey, TrustStore};
pub use sealcast_testkit::TestClock;
use sealcast_tui::{
    App, Outcome, Player, PlayerOptions, Recording, Shared, Verification, VerifySummary,
};

/// A clock the test moves: monotonic µs; wall = 2025-11-21 04:40:00 UTC + monotonic.
pub fn test_clock() -> TestClock {
    TestClock::with_wall_start(1_763_700_000_000_000)
}

/// One thing the recorded session does at a time (µs).
pub enum Step {
    Out(&'static str),
    Resize(u16, u16),
    Marker(&'static str),
    /// A `c` event (and the marker the writer adds after a `start`).
    Cmd(CommandEvent),
    /// A `p` event.
    Proc(ProcessEvent),
    /// A `d` event (its JSON data).
    Db(&'static str),
}

/// `c` `start` of command `id`.
pub fn start(id: u64, cmd: &str, cwd: &str) -> Step {
    Step::Cmd(CommandEvent::Start {
        id,
        src: "shell".into(),
        cmd: cmd.into(),
        cwd: Some(cwd.into()),
        partial: false,
        trunc: false,
        late: false,
    })
}

/// `c` `end` of command `id`.
pub fn end(id: u64, exit: i32, duration_us: u64) -> Step {
    Step::Cmd(CommandEvent::End {
        id,
        src: "shell".into(),
        exit: Some(exit),
        pipestatus: Vec::new(),
        duration_us,
    })
}

/// A session with shell commands (one fails) and database statements (one fails), 60×10:
/// `make test` (exit 0), `deploy --prod` (exit 2), a SELECT (1 row), a DELETE refused with
/// SQLSTATE 42501, `echo done`; exit 0 at 9 s.
pub fn commands_session() -> Vec<(u64, Step)> {
    vec![
        (0, Step::Out("$ ")),
        (1_000_000, Step::Out("make test\r\n")),
        (1_000_000, start(1, "make test", "/home/alice/src")),
        (2_000_000, Step::Out("ok\r\n")),
        (3_000_000, end(1, 0, 2_000_000)),
        (3_000_000, Step::Out("$ deploy --prod\r\n")),
        (4_000_000, start(2, "deploy --prod", "/srv/app")),
        (4_500_000, Step::Out("deploying...\r\nerror: denied\r\n")),
        (5_000_000, end(2, 2, 1_000_000)),
        (5_000_000, Step::Out("$ psql app\r\napp=> ")),
        (
            6_000_000,
            Step::Db(
                r#"{"v":1,"k":"db.open","c":1,"proto":"pg","ts":"2026-11-21T04:53:26.000000Z","client":{"transport":"unix","peer_uid":1000},"target":"main","startup":{"user":"alice","database":"app","protocol":"3.0"},"auth_mode":"passthrough","connect_us":900}"#,
            ),
        ),
        (
            6_500_000,
            Step::Db(
                r#"{"v":1,"k":"db.stmt","c":1,"proto":"pg","ts":"2026-11-21T04:53:26.500000Z","q":1,"via":"simple","sql":"SELECT name\n  FROM users WHERE id = 1;","sql_len":37,"sql_sha256":"00","txn_before":"I"}"#,
            ),
        ),
        (
            6_600_000,
            Step::Db(
                r#"{"v":1,"k":"db.result","c":1,"proto":"pg","ts":"2026-11-21T04:53:26.600000Z","q":1,"i":0,"status":"ok","tag":"SELECT 1","rows":1,"rows_out":1,"bytes_out":9,"dur_us":100000}"#,
            ),
        ),
        (6_600_000, Step::Out("alice\r\napp=> ")),
        (
            7_000_000,
            Step::Db(
                r#"{"v":1,"k":"db.stmt","c":1,"proto":"pg","ts":"2026-11-21T04:53:27.000000Z","q":2,"via":"simple","sql":"DELETE FROM audit_log;","sql_len":22,"sql_sha256":"00","txn_before":"I"}"#,
            ),
        ),
        (
            7_100_000,
            Step::Db(
                r#"{"v":1,"k":"db.result","c":1,"proto":"pg","ts":"2026-11-21T04:53:27.100000Z","q":2,"i":0,"status":"error","rows_out":0,"bytes_out":0,"dur_us":100000,"err":{"sqlstate":"42501","severity":"ERROR","message":"permission denied for table audit_log"}}"#,
            ),
        ),
        (
            7_100_000,
            Step::Out("ERROR: permission denied\r\napp=> \\q\r\n$ "),
        ),
        (8_000_000, start(3, "echo done", "/srv/app")),
        (8_000_000, Step::Out("echo done\r\ndone\r\n")),
        (8_100_000, end(3, 0, 100_000)),
        (9_000_000, Step::Out("$ exit\r\n")),
    ]
}

/// A sealed recording of `cols`×`rows` doing `steps`, checkpoints every `cp_bytes` of events.
pub fn record(
    cols: u16,
    rows: u16,
    steps: &[(u64, Step)],
    exit: Option<i32>,
    cp_bytes: u64,
) -> (Vec<u8>, TrustStore) {
    // The vectors' fixed key, so snapshots show the same key id every run.
    let key = SigningKey::from_file_bytes(include_bytes!(
        "../../../format-spec/vectors/vector-signing.key"
    ))
    .unwrap();
    let trust = TrustStore::single("bastion-01", key.public());
    let clock = test_clock();
    let header = Header {
        term: TermInfo {
            cols,
            rows,
            term_type: Some("xterm-256color".into()),
        },
        timestamp: Some(1_763_700_000),
        ..Header::sealed(SealMeta::new(
            "ab".repeat(16),
            "bastion-01",
            "alice",
            1_763_700_000_000_000,
            "sealcast test",
            key.id().to_string(),
        ))
    };
    let policy = CheckpointPolicy {
        max_bytes: cp_bytes,
        ..CheckpointPolicy::default()
    };
    let mut w = SealedWriter::new(Vec::new(), key, &header, clock.clone(), policy).unwrap();
    for (t, s) in steps {
        clock.set(*t);
        match s {
            Step::Out(text) => w.output(text.as_bytes()).unwrap(),
            Step::Resize(c, r) => w.resize(*c, *r).unwrap(),
            Step::Marker(m) => w.marker(m).unwrap(),
            Step::Cmd(c) => w.command(c).unwrap(),
            Step::Proc(p) => w.process(p).unwrap(),
            Step::Db(d) => w.db_event(d, true).unwrap(),
        }
    }
    (w.finish(exit).unwrap().0, trust)
}

/// The player's summary of a verifying read (what the CLI adapter, `src/cmd/play_tui.rs`,
/// does): the report's conclusion, each event's state from its coverage.
pub fn verify(data: &[u8], trust: &TrustStore) -> VerifySummary {
    use sealcast_reader::{Context, Coverage, Reader, Status};
    let mut s = VerifySummary::without_events(Outcome::Unverifiable, "", "");
    let frames = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = std::rc::Rc::clone(&frames);
    let observer = Box::new(move |offset: u64, content: &[u8], c: Coverage| {
        if c.is_verified() {
            seen.borrow_mut()
                .push((offset, sealcast_tui::frame_digest(content)));
        }
    });
    let mut r = Reader::verifying_observed(data, trust, Context::default(), observer).unwrap();
    for ev in r.by_ref() {
        let Ok(ev) = ev else { break };
        s.push(match ev.coverage() {
            Coverage::Verified { checkpoint } => Verification::Verified { seq: checkpoint },
            Coverage::Failed => Verification::Failed,
            _ => Verification::Unsealed,
        });
    }
    let r = r.finish().unwrap();
    VerifySummary {
        outcome: match r.status {
            Status::Ok => Outcome::Sealed,
            Status::UnsealedTail | Status::Unclosed => Outcome::Unsealed,
            Status::Format => Outcome::Unsigned,
            _ => Outcome::Broken,
        },
        status: r.status.as_str().into(),
        reason: r.reason.clone(),
        signer: r.signer.clone(),
        key_id: r.key_id.clone(),
        frames: frames.take(),
        ..s
    }
}

/// A fully indexed player over `data`, paused at the start unless `opts` says otherwise.
pub fn player(data: Vec<u8>, opts: PlayerOptions) -> Player {
    let rec = Recording::from_bytes(data).unwrap();
    let shared = Shared::new(rec, sealcast_term::IndexPolicy::default());
    shared.index_all(sealcast_term::IndexPolicy::default());
    Player::new(shared, opts)
}

/// An app over `data`, paused at 0, with its verification done.
pub fn app(data: Vec<u8>, summary: Option<VerifySummary>) -> App {
    let mut app = App::with_player(player(
        data,
        PlayerOptions {
            at_us: Some(0),
            ..Default::default()
        },
    ));
    if let Some(s) = summary {
        app.update(sealcast_tui::Action::Verified(s));
    }
    app
}

/// The session the state-machine tests use: 40×8, a prompt and commands, a marker at 5 s,
/// a resize at 8 s, 20 s of idle, `false` fails, exit 1.
pub fn session() -> Vec<(u64, Step)> {
    vec![
        (0, Step::Out("$ ")),
        (1_000_000, Step::Out("echo hello\r\nhello\r\n$ ")),
        (2_000_000, Step::Out("ls\r\nalpha  beta  gamma\r\n$ ")),
        (
            3_000_000,
            Step::Out("printf '\\033[31mred\\033[0m'\r\n\x1b[31mred\x1b[0m\r\n$ "),
        ),
        (5_000_000, Step::Marker("deploy starts")),
        (
            6_000_000,
            Step::Out(
                "seq 1 12\r\n1\r\n2\r\n3\r\n4\r\n5\r\n6\r\n7\r\n8\r\n9\r\n10\r\n11\r\n12\r\n$ ",
            ),
        ),
        (8_000_000, Step::Resize(50, 10)),
        (9_000_000, Step::Out("false\r\n$ ")),
        (
            29_000_000,
            Step::Out("echo needle-in-haystack\r\nneedle-in-haystack\r\n$ "),
        ),
        (30_000_000, Step::Out("exit\r\n")),
    ]
}
