//! sealcast writer: everything a recording producer needs to write a sealed recording,
//! without a terminal, a PTY or an async runtime.
//!
//! - [`SealedWriter`]: events → canonical lines → hash chain → zstd frames → signed
//!   checkpoint frames (SPEC §1–§5), with an injected [`Clock`] and any [`Durable`] sink; it
//!   latches the first I/O error so nothing that did not reach the sink is ever signed.
//! - [`CheckpointPolicy`]: when checkpoints are taken (SPEC §5).
//! - [`Clock`] / [`SystemClock`]: monotonic and wall time, injected so tests move time by hand.
//! - Sinks: [`Durable`] (a `Write` that can be made durable), [`SyncedFile`] (a file whose
//!   per-checkpoint `fdatasync` runs on a background thread), [`sink::FailOpen`] (the
//!   `fail_closed = false` policy: a session keeps going unrecorded after the first error).
//! - [`boundary`]: where `o`/`e` events may end (outside escape and UTF-8 sequences,
//!   SPEC §2.2 "Byte exactness").
//! - [`archive`]: the spool protocol's write side (SPEC §5.1): exclusive create with a held
//!   `flock`, and the atomic seal receipt.
//!
//! The capture sources (PTY, pipes, the relay loop, process observation) live in
//! `sealcast-recorder`, which re-exports this crate's items under their old paths; the
//! database proxy links this crate alone.

pub mod archive;
pub mod boundary;
mod clock;
pub mod sink;
mod writer;

pub use clock::{Clock, SystemClock};
pub use sink::FailOpen;
pub use writer::{CheckpointPolicy, Closed, Durable, SealedWriter, SyncedFile, WriteEvent};

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_format::{scan, FrameKind, Header, SealMeta};
    use sealcast_signer::SigningKey;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A clock the test moves by hand.
    #[derive(Clone)]
    struct Manual(Rc<Cell<u64>>);
    // The writer requires `Send`; tests stay on one thread.
    unsafe impl Send for Manual {}
    impl Clock for Manual {
        fn mono_us(&self) -> u64 {
            self.0.get()
        }
        fn wall_us(&self) -> u64 {
            1_700_000_000_000_000 + self.0.get()
        }
    }

    fn header() -> Header {
        Header {
            timestamp: Some(1_700_000_000),
            ..Header::sealed(SealMeta::new(
                "0123456789abcdef0123456789abcdef",
                "h",
                "u",
                1_700_000_000_000_000,
                "test",
                String::new(),
            ))
        }
    }

    #[test]
    fn checkpoints_by_time_and_size() {
        let t = Rc::new(Cell::new(0));
        let policy = CheckpointPolicy {
            interval_us: 10_000_000,
            max_bytes: 1000,
            zstd_level: 3,
        };
        let key = SigningKey::generate().unwrap();
        let mut h = header();
        h.sealcast.as_mut().unwrap().key_id = key.id().to_string();
        let mut w = SealedWriter::new(Vec::new(), key, &h, Manual(t.clone()), policy).unwrap();
        w.output(b"hello").unwrap();
        t.set(11_000_000);
        w.tick().unwrap(); // time-based checkpoint
        w.tick().unwrap(); // nothing new: no checkpoint
        w.output(&[b'x'; 2000]).unwrap(); // size-based checkpoint
        let (file, note) = w.finish(Some(0)).unwrap();
        let kinds: Vec<FrameKind> = scan(&file).map(|f| f.unwrap().kind).collect();
        use FrameKind::*;
        assert_eq!(
            kinds,
            [Data, Checkpoint, Data, Checkpoint, Data, Checkpoint, Data, Checkpoint]
        );
        assert!(String::from_utf8(note).unwrap().contains("final 1"));
        let text = String::from_utf8(zstd_decode(&file)).unwrap();
        assert!(text.ends_with("\"x\", \"0\"]\n"), "{text}");
        assert!(text.contains("[11.000000, \"o\", \"xxx"), "{text}");
    }

    #[test]
    fn a_carried_tail_waits_for_its_sequence_or_at_most_a_second() {
        let t = Rc::new(Cell::new(0));
        let key = SigningKey::generate().unwrap();
        let mut h = header();
        h.sealcast.as_mut().unwrap().key_id = key.id().to_string();
        let policy = CheckpointPolicy::default();
        let mut w = SealedWriter::new(Vec::new(), key, &h, Manual(t.clone()), policy).unwrap();
        w.output(b"ab\x1b[3").unwrap();
        w.stderr(b"err \xe2\x82").unwrap();
        t.set(100_000);
        w.output(b"1mred\x1b]0;ti").unwrap();
        w.stderr(b"\xac").unwrap();
        t.set(600_000);
        w.tick().unwrap(); // held for 0.5 s: kept
        t.set(1_200_000);
        w.tick().unwrap(); // held for 1.1 s: recorded as it is
        w.output(b"tle\x07.").unwrap();
        let (file, _) = w.finish(Some(0)).unwrap();
        let text = String::from_utf8(zstd_decode(&file)).unwrap();
        let events: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            events,
            [
                r#"[0.000000, "o", "ab"]"#,
                r#"[0.000000, "e", "err "]"#,
                r#"[0.100000, "o", "\u001b[31mred"]"#,
                r#"[0.000000, "e", "€"]"#,
                r#"[1.100000, "o", "\u001b]0;ti"]"#,
                r#"[0.000000, "o", "tle\u0007."]"#,
                r#"[0.000000, "x", "0"]"#,
            ]
        );
    }

    /// A sink that fails once `fail` is set.
    struct Flaky {
        data: Vec<u8>,
        fail: Rc<Cell<bool>>,
    }
    unsafe impl Send for Flaky {}
    impl std::io::Write for Flaky {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.fail.get() {
                return Err(std::io::Error::other("disk full"));
            }
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Durable for Flaky {
        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn after_a_write_error_nothing_more_is_signed() {
        let t = Rc::new(Cell::new(0));
        let fail = Rc::new(Cell::new(false));
        let sink = Flaky {
            data: Vec::new(),
            fail: fail.clone(),
        };
        let key = SigningKey::generate().unwrap();
        let mut h = header();
        h.sealcast.as_mut().unwrap().key_id = key.id().to_string();
        let policy = CheckpointPolicy {
            interval_us: 10_000_000,
            max_bytes: 100,
            zstd_level: 3,
        };
        let mut w = SealedWriter::new(sink, key, &h, Manual(t.clone()), policy).unwrap();
        w.output(b"kept").unwrap();
        fail.set(true);
        assert!(w.output(&[b'x'; 500]).is_err());
        fail.set(false);
        // The chain saw lines the sink did not: every later call must refuse.
        assert!(w.output(b"more").is_err());
        assert!(w.tick().is_err());
        assert!(w.finish(Some(0)).is_err());
    }

    /// Every [`WriteEvent`] writes lines of its own kind, and the per-kind methods write
    /// byte for byte the file `write` does (same key, same hand-moved clock).
    #[test]
    fn typed_events_write_their_kinds_as_the_per_kind_methods_do() {
        use sealcast_format::{parse_event, CommandEvent, ProcessEvent};
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem();
        let mut h = header();
        h.sealcast.as_mut().unwrap().key_id = key.id().to_string();
        let start = CommandEvent::Start {
            id: 1,
            src: "shell".into(),
            cmd: "ls -l".into(),
            cwd: None,
            partial: false,
            trunc: false,
            late: false,
        };
        let exit = ProcessEvent::Exit { pid: 7 };
        let events = [
            WriteEvent::Output(b"ab\xff"),
            WriteEvent::Input(b"ls\r"),
            WriteEvent::Stderr(b"oops"),
            WriteEvent::Resize {
                cols: 100,
                rows: 30,
            },
            WriteEvent::Marker("here"),
            WriteEvent::Command(&start),
            WriteEvent::Process(&exit),
            WriteEvent::Database {
                json: r#"{"k":"query"}"#,
                write_ahead: true,
            },
            WriteEvent::Database {
                json: r#"{"k":"ok"}"#,
                write_ahead: false,
            },
            WriteEvent::Summary(r#"{"files":0}"#),
        ];
        let record = |typed: bool| {
            let t = Rc::new(Cell::new(0));
            let key = SigningKey::from_file_bytes(pem.as_bytes()).unwrap();
            let policy = CheckpointPolicy::default();
            let mut w = SealedWriter::new(Vec::new(), key, &h, Manual(t.clone()), policy).unwrap();
            let mut codes = Vec::new();
            for ev in events {
                t.set(t.get() + 250_000);
                let before = w.lines();
                if typed {
                    w.write(ev).unwrap();
                } else {
                    match ev {
                        WriteEvent::Output(b) => w.output(b),
                        WriteEvent::Input(b) => w.input(b),
                        WriteEvent::Stderr(b) => w.stderr(b),
                        WriteEvent::Resize { cols, rows } => w.resize(cols, rows),
                        WriteEvent::Marker(l) => w.marker(l),
                        WriteEvent::Command(c) => w.command(c),
                        WriteEvent::Process(p) => w.process(p),
                        WriteEvent::Database { json, write_ahead } => w.db_event(json, write_ahead),
                        WriteEvent::Summary(j) => w.summary(j),
                    }
                    .unwrap();
                }
                codes.push((ev.kind(), w.lines() - before));
            }
            let (file, _) = w.finish(Some(3)).unwrap();
            (file, codes)
        };
        let (typed, counts) = record(true);
        let (methods, _) = record(false);
        assert_eq!(typed, methods);
        let text = String::from_utf8(zstd_decode(&typed)).unwrap();
        let written: Vec<String> = text
            .lines()
            .skip(1)
            .map(|l| parse_event(l.as_bytes()).unwrap().kind.code().to_string())
            .collect();
        assert_eq!(
            written,
            ["o", "b", "i", "e", "r", "m", "c", "m", "p", "d", "d", "s", "x"],
            "{text}"
        );
        // Each event's lines start with a line of its kind.
        let mut at = 0;
        for (kind, n) in counts {
            assert!(n >= 1, "{kind:?} wrote no line");
            assert_eq!(written[at], kind.code(), "{text}");
            at += n as usize;
        }
        assert_eq!(written[at], "x");
    }

    #[test]
    fn header_must_name_the_signing_key() {
        let t = Rc::new(Cell::new(0));
        let err = SealedWriter::new(
            Vec::new(),
            SigningKey::generate().unwrap(),
            &header(),
            Manual(t),
            CheckpointPolicy::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("key_id"), "{err}");
    }

    #[test]
    fn synced_file_syncs_in_background_and_finally() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast.zst");
        let file = std::fs::File::create(&path).unwrap();
        let key = SigningKey::generate().unwrap();
        let mut h = header();
        h.sealcast.as_mut().unwrap().key_id = key.id().to_string();
        let policy = CheckpointPolicy {
            interval_us: 10_000_000,
            max_bytes: 1000,
            zstd_level: 3,
        };
        let mut w = SealedWriter::new(
            SyncedFile::new(file).unwrap(),
            key,
            &h,
            SystemClock::new(),
            policy,
        )
        .unwrap();
        for _ in 0..50 {
            w.output(&[b'y'; 400]).unwrap();
        }
        let (_file, note) = w.finish(Some(0)).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert!(on_disk.ends_with(&note));
        assert!(
            scan(&on_disk)
                .filter(|f| f.as_ref().unwrap().kind == FrameKind::Checkpoint)
                .count()
                > 10
        );
    }

    fn zstd_decode(file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in scan(file) {
            let f = f.unwrap();
            if f.kind == FrameKind::Data {
                sealcast_format::decompress_frame(f.bytes, f.offset, &mut out).unwrap();
            }
        }
        out
    }
}
