//! The asciicast v3 header line (SPEC §2.1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// Terminal description (`term` in asciicast v3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermInfo {
    /// Columns (characters).
    pub cols: u16,
    /// Rows (lines).
    pub rows: u16,
    /// `$TERM` of the recorded session.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub term_type: Option<String>,
}

/// sealcast's own header object (`"sealcast": {...}`), SPEC §2.1. asciinema tools drop it on
/// convert; the values that matter for verification are also in the signed chain (§4, §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealMeta {
    /// Format version, 1.
    pub format: u32,
    /// Session id: 32 lowercase hex digits.
    pub session: String,
    /// Host id (no whitespace).
    pub host: String,
    /// Login name of the recorded user.
    pub user: String,
    /// Session start, Unix microseconds.
    pub start_us: u64,
    /// Recorder name and version, e.g. `sealcast 0.1.0`.
    pub recorder: String,
    /// Key id of the signing key (lowercase hex SHA-256 of the public key).
    pub key_id: String,
    /// Whether `i` (input) events are recorded.
    #[serde(default)]
    pub capture_input: bool,
}

impl SealMeta {
    /// Format-1 metadata without input capture (SPEC §2.1): `session` (32 hex digits),
    /// `host` (no whitespace), `user`, `start_us` (Unix µs), `recorder` (name and version),
    /// `key_id` (lowercase hex SHA-256 of the public key, SPEC §6). Not validated here.
    pub fn new(
        session: impl Into<String>,
        host: impl Into<String>,
        user: impl Into<String>,
        start_us: u64,
        recorder: impl Into<String>,
        key_id: impl Into<String>,
    ) -> SealMeta {
        SealMeta {
            format: 1,
            session: session.into(),
            host: host.into(),
            user: user.into(),
            start_us,
            recorder: recorder.into(),
            key_id: key_id.into(),
            capture_input: false,
        }
    }
}

/// Optional facts about how a session was started, written inside the `sealcast` header
/// object after the [`SealMeta`] keys (SPEC §2.3, §2.4.4). Every field is omitted when `None`, so a
/// header without them is byte-identical to one written before they existed; v1 readers ignore
/// unknown keys.
///
/// Kept apart from [`SealMeta`] so existing code that builds a `SealMeta` literal keeps
/// compiling; write it with [`Header::to_line_with`] and read it with
/// [`SessionInfo::from_header_line`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Session shape: `interactive`, `exec`, `exec-pty`, `shell-no-pty`, `scp`, `sftp` or
    /// `rsync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
    /// SSH client address and port, `"IP PORT"` (fields 1–2 of `SSH_CONNECTION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_client: Option<String>,
    /// SSH server address and port, `"IP PORT"` (fields 3–4 of `SSH_CONNECTION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_server: Option<String>,
    /// The command the client asked for: `SSH_ORIGINAL_COMMAND`, or the `-c` argument when
    /// run as the login shell (lossily UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_command: Option<String>,
    /// File-transfer policy applied to the session: `metadata`, `full` or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Kernel audit session id of the recorded session (`/proc/self/sessionid`), SPEC §2.4.4;
    /// `None` when unset (4294967295) or unreadable. Joins `ausearch --session N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_session: Option<u32>,
    /// Audit login uid (`/proc/self/loginuid`), SPEC §2.4.4; `None` when unset or unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loginuid: Option<u32>,
}

impl SessionInfo {
    /// True when no field is set (nothing to write).
    pub fn is_empty(&self) -> bool {
        *self == SessionInfo::default()
    }

    /// Read the session facts from a header line (without LF): the fields found in its
    /// `sealcast` object, all `None` when it has none.
    ///
    /// # Errors
    /// [`ParseError::Json`] when the line is not a JSON object or a field is not a string.
    pub fn from_header_line(line: &[u8]) -> Result<SessionInfo, ParseError> {
        #[derive(Deserialize)]
        struct Outer {
            #[serde(default)]
            sealcast: Option<SessionInfo>,
        }
        let o: Outer = serde_json::from_slice(line).map_err(|e| ParseError::Json(e.to_string()))?;
        Ok(o.sealcast.unwrap_or_default())
    }
}

/// The header line of an asciicast v3 stream. Unknown keys are ignored on parse, as the
/// asciicast v3 spec requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always 3.
    pub version: i64,
    /// Terminal size and type at start.
    pub term: TermInfo,
    /// Start time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Idle time limit hint for players, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_time_limit: Option<f64>,
    /// Command that was recorded, when not the login shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Captured environment (`SHELL`, `TERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// sealcast metadata; absent in plain asciicast files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealcast: Option<SealMeta>,
}

impl Header {
    /// The smallest sealed header: asciicast v3, an 80×24 terminal of unknown type, `meta`,
    /// and no timestamp, idle limit, command, title or environment. Set other fields with
    /// struct update syntax (`Header { timestamp: Some(t), ..Header::sealed(meta) }`).
    pub fn sealed(meta: SealMeta) -> Header {
        Header {
            version: 3,
            term: TermInfo {
                cols: 80,
                rows: 24,
                term_type: None,
            },
            timestamp: None,
            idle_time_limit: None,
            command: None,
            title: None,
            env: None,
            sealcast: Some(meta),
        }
    }

    /// Serialise as one JSON line (no LF), keys in the writer's order.
    pub fn to_line(&self) -> Vec<u8> {
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Like [`Header::to_line`], with the set fields of `info` appended to the `sealcast`
    /// object (after its own keys, in [`SessionInfo`] field order). Without `sealcast`
    /// metadata, or with an empty `info`, this is exactly [`Header::to_line`].
    pub fn to_line_with(&self, info: &SessionInfo) -> Vec<u8> {
        let mut line = self.to_line();
        if self.sealcast.is_none() || info.is_empty() {
            return line;
        }
        // `sealcast` is the last field of `Header`, so the line ends with the two closing
        // braces of the `sealcast` object and of the header.
        let extra = serde_json::to_vec(info).unwrap_or_default();
        if !line.ends_with(b"}}") || extra.len() < 2 {
            return line;
        }
        let at = line.len() - 2;
        let mut tail = Vec::with_capacity(extra.len() + 2);
        tail.push(b',');
        tail.extend_from_slice(&extra[1..extra.len() - 1]);
        line.splice(at..at, tail);
        line
    }

    /// Parse a header line (without LF).
    ///
    /// # Errors
    /// [`ParseError::Json`] for anything that is not a JSON object with `version` and `term`,
    /// [`ParseError::Version`] when `version` is not 3.
    pub fn parse(line: &[u8]) -> Result<Header, ParseError> {
        #[derive(Deserialize)]
        struct V {
            version: i64,
        }
        let v: V = serde_json::from_slice(line).map_err(|e| ParseError::Json(e.to_string()))?;
        if v.version != 3 {
            return Err(ParseError::Version(v.version));
        }
        serde_json::from_slice(line).map_err(|e| ParseError::Json(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_key_order() {
        let h = Header {
            version: 3,
            term: TermInfo {
                cols: 80,
                rows: 24,
                term_type: Some("xterm".into()),
            },
            timestamp: Some(1),
            idle_time_limit: None,
            command: None,
            title: None,
            env: None,
            sealcast: None,
        };
        let line = h.to_line();
        assert_eq!(
            line,
            br#"{"version":3,"term":{"cols":80,"rows":24,"type":"xterm"},"timestamp":1}"#
        );
        assert_eq!(Header::parse(&line).unwrap(), h);
        assert!(matches!(
            Header::parse(br#"{"version":2,"width":80,"height":24}"#),
            Err(ParseError::Version(2))
        ));
        assert!(Header::parse(b"[1, \"o\", \"x\"]").is_err());
    }

    fn with_meta() -> Header {
        Header {
            command: Some("ls".into()),
            ..Header::sealed(SealMeta::new("s", "h", "u", 1, "r", "k"))
        }
    }

    #[test]
    fn session_info_goes_inside_the_sealcast_object() {
        let h = with_meta();
        assert_eq!(h.to_line_with(&SessionInfo::default()), h.to_line());
        let info = SessionInfo {
            shape: Some("exec".into()),
            ssh_client: Some("192.0.2.1 50000".into()),
            ssh_server: None,
            original_command: Some("echo \"hi\"}}".into()),
            policy: None,
            audit_session: None,
            loginuid: None,
        };
        let line = h.to_line_with(&info);
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(
            text.ends_with(
                r#""capture_input":false,"shape":"exec","ssh_client":"192.0.2.1 50000","original_command":"echo \"hi\"}}"}}"#
            ),
            "{text}"
        );
        assert_eq!(Header::parse(&line).unwrap(), h);
        assert_eq!(SessionInfo::from_header_line(&line).unwrap(), info);
        assert_eq!(
            SessionInfo::from_header_line(&h.to_line()).unwrap(),
            SessionInfo::default()
        );
        let mut bare = h.clone();
        bare.sealcast = None;
        assert_eq!(bare.to_line_with(&info), bare.to_line());
    }

    #[test]
    fn audit_keys_follow_the_session_keys_and_are_numbers() {
        let h = with_meta();
        let info = SessionInfo {
            shape: Some("interactive".into()),
            audit_session: Some(42),
            loginuid: Some(1000),
            ..SessionInfo::default()
        };
        let text = String::from_utf8(h.to_line_with(&info)).unwrap();
        assert!(
            text.ends_with(
                r#""capture_input":false,"shape":"interactive","audit_session":42,"loginuid":1000}}"#
            ),
            "{text}"
        );
        assert_eq!(
            SessionInfo::from_header_line(text.as_bytes()).unwrap(),
            info
        );
        // Absent: the header is byte-identical to one written before the keys existed.
        let none = SessionInfo {
            shape: Some("interactive".into()),
            ..SessionInfo::default()
        };
        assert!(h
            .to_line_with(&none)
            .ends_with(br#""capture_input":false,"shape":"interactive"}}"#));
    }
}
