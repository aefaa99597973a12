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
    /// Serialise as one JSON line (no LF), keys in the writer's order.
    pub fn to_line(&self) -> Vec<u8> {
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
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
}
