//! Recordings made by the real writer with a hand-moved clock, and players over them.
#![allow(dead_code)]

use sealcast_format::{Header, SealMeta, TermInfo};
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
        }
    }
    (w.finish(exit).unwrap().0, trust)
}

/// The player's summary of a verifying read (what the CLI adapter, `src/cmd/play_tui.rs`,
/// does): the report's conclusion, each event's state from its coverage.
pub fn verify(data: &[u8], trust: &TrustStore) -> VerifySummary {
    use sealcast_reader::{Context, Coverage, Reader, Status};
    let mut s = VerifySummary::without_events(Outcome::Unverifiable, "", "");
    let mut r = Reader::verifying(data, trust, Context::default()).unwrap();
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
