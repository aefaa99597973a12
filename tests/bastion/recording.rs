//! Reading a recording back for assertions: the header as JSON (so the session facts
//! sealcast-shell adds — shape, ssh_client, original_command, policy — are read by name)
//! and the events through the player's reader, tolerating a damaged tail.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use sealcast_format::{EventKind, EventLine};
use sealcast_reader::Reader;
use serde_json::Value;

/// A recording's header and events.
#[derive(Debug)]
pub struct Rec {
    /// The file.
    pub path: PathBuf,
    /// Line 0 as JSON.
    pub header: Value,
    /// Every event that could be read (`b` bytes folded into the event before them).
    pub events: Vec<EventLine>,
    /// The read error that ended the events early, if any (a crash tail).
    pub error: Option<String>,
}

impl Rec {
    /// Read `path`; panics only if the header cannot be read.
    pub fn load(path: &Path) -> Rec {
        let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let header =
            header_json(&data).unwrap_or_else(|| panic!("{}: no readable header", path.display()));
        let mut events = Vec::new();
        let mut error = None;
        match Reader::open(&data) {
            Ok(reader) => {
                for e in reader {
                    match e {
                        Ok(e) => events.push(e.into_event()),
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
            }
            Err(e) => error = Some(e.to_string()),
        }
        Rec {
            path: path.to_path_buf(),
            header,
            events,
            error,
        }
    }

    /// `header.sealcast.<key>` as a string (numbers and booleans as their JSON text).
    pub fn meta(&self, key: &str) -> Option<String> {
        match &self.header["sealcast"][key] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The session shape (`header.sealcast.shape`).
    pub fn shape(&self) -> Option<String> {
        self.meta("shape")
    }

    /// Concatenated exact bytes of the events with `code`.
    pub fn stream(&self, code: &str) -> Vec<u8> {
        self.events
            .iter()
            .filter(|e| e.kind.code() == code)
            .flat_map(|e| e.bytes.iter().copied())
            .collect()
    }

    /// [`Rec::stream`], lossily as text.
    pub fn text(&self, code: &str) -> String {
        String::from_utf8_lossy(&self.stream(code)).into_owned()
    }

    /// Every event's bytes, whatever the code.
    pub fn all_bytes(&self) -> Vec<u8> {
        self.events
            .iter()
            .flat_map(|e| e.bytes.iter().copied())
            .collect()
    }

    /// Data of the `x` (exit status) event.
    pub fn exit(&self) -> Option<String> {
        self.events
            .iter()
            .find(|e| e.kind == EventKind::Exit)
            .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
    }

    /// Data of the `r` (resize) events.
    pub fn resizes(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Resize)
            .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
            .collect()
    }

    /// The `s` (transfer summary) events, parsed as JSON objects.
    pub fn summaries(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Summary)
            .map(|e| serde_json::from_slice(&e.bytes).unwrap_or(Value::Null))
            .collect()
    }

    /// The distinct event codes, in order of first appearance.
    pub fn codes(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for e in &self.events {
            let code = e.kind.code().to_string();
            if !v.contains(&code) {
                v.push(code);
            }
        }
        v
    }

    /// One-line description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{}: header sealcast={} codes={:?} exit={:?} error={:?}",
            self.path.display(),
            self.header["sealcast"],
            self.codes(),
            self.exit(),
            self.error
        )
    }
}

/// Line 0 of the decompressed stream as JSON. Decompresses frame by frame with the stock
/// zstd decoder (which skips the checkpoint frames) and stops at the first LF.
pub fn header_json(data: &[u8]) -> Option<Value> {
    use std::io::Read;
    let mut dec = zstd::stream::read::Decoder::new(data).ok()?;
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = dec.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..i]);
            return serde_json::from_slice(&line).ok();
        }
        line.extend_from_slice(&buf[..n]);
    }
    None
}
