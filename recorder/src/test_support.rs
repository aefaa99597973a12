//! Helpers shared by the recorder's unit tests (compiled only for tests).

use std::io::{self, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sealcast_format::{
    decompress_frame, parse_event, scan, EventKind, FrameKind, Header, SealMeta,
};
use sealcast_signer::SigningKey;

use crate::{CheckpointPolicy, Durable, SealedWriter, SystemClock};

/// A writer into `sink` with a fresh key, an 80x24 header and the default policy.
pub(crate) fn writer<W: Durable>(sink: W) -> io::Result<SealedWriter<W, SystemClock>> {
    let key = SigningKey::generate().expect("key");
    let h = Header::sealed(SealMeta::new(
        "0123456789abcdef0123456789abcdef",
        "h",
        "u",
        0,
        "test",
        key.id().to_string(),
    ));
    SealedWriter::new(
        sink,
        key,
        &h,
        SystemClock::new(),
        CheckpointPolicy::default(),
    )
}

/// Run `f` on another thread, failing the test if it takes longer than `secs` seconds.
pub(crate) fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("session did not end in time")
}

/// A sink that fails with ENOSPC once `limit` bytes would be exceeded (a full disk).
#[derive(Debug)]
pub(crate) struct Full {
    pub(crate) data: Vec<u8>,
    pub(crate) limit: usize,
}

impl Write for Full {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.data.len() + b.len() > self.limit {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.data.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Durable for Full {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// (code, exact bytes) of every event after the header, `b` folded into its event.
pub(crate) fn events(file: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut text = Vec::new();
    for f in scan(file) {
        let f = f.unwrap();
        if f.kind == FrameKind::Data {
            decompress_frame(f.bytes, f.offset, &mut text).unwrap();
        }
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in text
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|l| !l.is_empty())
    {
        let ev = parse_event(line).unwrap();
        if ev.kind == EventKind::Bytes {
            out.last_mut().unwrap().1 = ev.raw_bytes().unwrap();
        } else {
            out.push((ev.kind.code().to_string(), ev.data.into_bytes()));
        }
    }
    out
}

/// The concatenated data of the events with `code`.
pub(crate) fn stream(ev: &[(String, Vec<u8>)], code: &str) -> Vec<u8> {
    ev.iter()
        .filter(|e| e.0 == code)
        .flat_map(|e| e.1.iter().copied())
        .collect()
}
