//! The event vocabulary (SPEC §2.2, registry §2.5): one type for the code of an event line,
//! used by the writer ([`crate::EventEncoder`]) and every reader ([`crate::parse_event`],
//! [`crate::EventRules`]).

use std::fmt;

/// The code of an event line (SPEC §2.2; the registry of codes is SPEC §2.5).
///
/// The codes sealcast v1 knows (SPEC §2.5) have a variant each; any other code is
/// [`EventKind::Unknown`], which a v1 reader must accept and ignore (asciicast v3: unknown
/// codes are skipped, their interval still counts). New extension codes are added here and in
/// the registry of SPEC §2.5 together; until then they read as `Unknown`.
///
/// Deviation from a `char` code: asciicast v3 codes are JSON strings, and a v1 reader accepts
/// an event with an empty or multi-character code (it ignores it, `info` counts it by its
/// code), so `Unknown` keeps the code as written. Every code sealcast writes is one character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// `o`: output from the PTY, or a non-PTY session's stdout (asciicast v3). Data: UTF-8
    /// text (lossy when followed by [`EventKind::Bytes`]).
    Output,
    /// `i`: input to the PTY, only with input capture (asciicast v3). Data: UTF-8 text.
    Input,
    /// `r`: terminal resize (asciicast v3). Data: `"COLSxROWS"`.
    Resize,
    /// `x`: exit status of the recorded command (asciicast v3). Data: decimal, `128+N` when
    /// killed by signal N.
    Exit,
    /// `m`: marker (asciicast v3). Data: a label.
    Marker,
    /// `b` (extension, SPEC §2.2): exact bytes of the immediately preceding `o`, `i` or `e`
    /// event. Data: padded standard base64 (RFC 4648 §4).
    Bytes,
    /// `e` (extension, SPEC §2.3): stderr of a session without a PTY. Data: UTF-8 text, as `o`.
    Stderr,
    /// `s` (extension, SPEC §2.3): session summary of a file transfer. Data: a JSON object,
    /// serialised as a JSON string.
    Summary,
    /// `c` (extension, SPEC §2.4.1): a command the shell's hooks claim. Data: a JSON object
    /// ([`crate::CommandEvent`]), serialised as a JSON string.
    Command,
    /// `p` (extension, SPEC §2.4.2): a process the recorder observed. Data: a JSON object
    /// ([`crate::ProcessEvent`]), serialised as a JSON string.
    Process,
    /// `d` (extension, SPEC §11): a database statement or outcome the database proxy
    /// relayed. Data: a JSON object, serialised as a JSON string.
    Database,
    /// Any other code, as written (a v1 reader ignores the event; its interval still counts).
    Unknown(Box<str>),
}

impl EventKind {
    /// Every code sealcast v1 knows, in the order of the registry (SPEC §2.5).
    pub const KNOWN: [EventKind; 11] = [
        EventKind::Output,
        EventKind::Input,
        EventKind::Resize,
        EventKind::Exit,
        EventKind::Marker,
        EventKind::Bytes,
        EventKind::Stderr,
        EventKind::Summary,
        EventKind::Command,
        EventKind::Process,
        EventKind::Database,
    ];

    /// The known kind whose code is the character `c`, or `None` (no allocation, for the
    /// line checks that run on every line).
    pub const fn known(c: char) -> Option<EventKind> {
        Some(match c {
            'o' => EventKind::Output,
            'i' => EventKind::Input,
            'r' => EventKind::Resize,
            'x' => EventKind::Exit,
            'm' => EventKind::Marker,
            'b' => EventKind::Bytes,
            'e' => EventKind::Stderr,
            's' => EventKind::Summary,
            'c' => EventKind::Command,
            'p' => EventKind::Process,
            'd' => EventKind::Database,
            _ => return None,
        })
    }

    /// The kind of the code `code` as it stands in an event line (after JSON unescaping).
    pub fn from_code(code: &str) -> EventKind {
        Self::single_known(code).unwrap_or_else(|| EventKind::Unknown(code.into()))
    }

    /// [`EventKind::from_code`] for an owned code (an unknown code keeps its allocation).
    pub fn from_code_string(code: String) -> EventKind {
        Self::single_known(&code).unwrap_or_else(|| EventKind::Unknown(code.into_boxed_str()))
    }

    fn single_known(code: &str) -> Option<EventKind> {
        let mut chars = code.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Self::known(c),
            _ => None,
        }
    }

    /// The code as written in an event line: `"o"`, `"i"`, …, or an unknown code as read.
    pub fn code(&self) -> &str {
        match self {
            EventKind::Output => "o",
            EventKind::Input => "i",
            EventKind::Resize => "r",
            EventKind::Exit => "x",
            EventKind::Marker => "m",
            EventKind::Bytes => "b",
            EventKind::Stderr => "e",
            EventKind::Summary => "s",
            EventKind::Command => "c",
            EventKind::Process => "p",
            EventKind::Database => "d",
            EventKind::Unknown(code) => code,
        }
    }

    /// The registry name (SPEC §2.5): `output`, `input`, `resize`, `exit`, `marker`, `bytes`,
    /// `stderr`, `summary`, `command`, `process`, `database`; `unknown` for any other code.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Output => "output",
            EventKind::Input => "input",
            EventKind::Resize => "resize",
            EventKind::Exit => "exit",
            EventKind::Marker => "marker",
            EventKind::Bytes => "bytes",
            EventKind::Stderr => "stderr",
            EventKind::Summary => "summary",
            EventKind::Command => "command",
            EventKind::Process => "process",
            EventKind::Database => "database",
            EventKind::Unknown(_) => "unknown",
        }
    }

    /// True for the byte streams `o`, `i` and `e`: the kinds a [`EventKind::Bytes`] event may
    /// follow (SPEC §2.2).
    pub fn is_stream(&self) -> bool {
        matches!(
            self,
            EventKind::Output | EventKind::Input | EventKind::Stderr
        )
    }

    /// True for a code this version does not know ([`EventKind::Unknown`]).
    pub fn is_unknown(&self) -> bool {
        matches!(self, EventKind::Unknown(_))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for k in EventKind::KNOWN {
            assert_eq!(k.code().chars().count(), 1, "{k:?}");
            assert_eq!(EventKind::from_code(k.code()), k);
            assert_eq!(EventKind::from_code_string(k.code().to_string()), k);
            assert_eq!(k.to_string(), k.code());
            assert!(!k.is_unknown());
        }
        for code in ["", "oo", "cc", "a", "P", "O", "\u{e9}"] {
            let k = EventKind::from_code(code);
            assert_eq!(k, EventKind::Unknown(code.into()));
            assert_eq!(k.code(), code);
            assert!(k.is_unknown() && !k.is_stream());
        }
        let streams: Vec<_> = EventKind::KNOWN.iter().filter(|k| k.is_stream()).collect();
        assert_eq!(
            streams,
            [&EventKind::Output, &EventKind::Input, &EventKind::Stderr]
        );
    }

    /// The registry table of SPEC §2.5 lists exactly the known codes, with these names, and
    /// any code it marks reserved is not (yet) known.
    #[test]
    fn spec_registry_matches() {
        let spec = include_str!("../../format-spec/SPEC.md");
        let start = spec.find("### 2.5 Event code registry").expect("SPEC §2.5");
        let section = &spec[start..];
        let section = &section[..section[4..].find("\n## ").map_or(section.len(), |i| i + 4)];
        let mut rows = Vec::new();
        for line in section.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() > 3 && cells[1].starts_with('`') && cells[1].ends_with('`') {
                rows.push((cells[1].trim_matches('`').to_string(), cells[2].to_string()));
            }
        }
        let known: Vec<(String, String)> = EventKind::KNOWN
            .iter()
            .map(|k| (k.code().to_string(), k.name().to_string()))
            .collect();
        let listed: Vec<(String, String)> = rows
            .iter()
            .filter(|(_, name)| !name.starts_with("reserved"))
            .cloned()
            .collect();
        assert_eq!(listed, known);
        for (code, _) in rows.iter().filter(|(_, n)| n.starts_with("reserved")) {
            assert!(EventKind::from_code(code).is_unknown(), "{code}");
        }
    }
}
