//! Names of recordings and their companions, as every writer, reader and uploader spells
//! them: `<session>.cast.zst` (SPEC preamble), its seal receipt `<file>.seal` (SPEC §5), the
//! session a file name claims (SPEC §7.1 step 4), and the segment suffix of a live
//! recording's upload (MANIFEST.md §1). Paths are only put together here, never opened.

use std::path::{Path, PathBuf};

/// File name extension of a recording (SPEC preamble): `<session-id>.cast.zst`.
pub const RECORDING_EXT: &str = ".cast.zst";

/// What is appended to a recording's name (or object key) to name its seal receipt (SPEC §5).
pub const RECEIPT_EXT: &str = ".seal";

/// Length of a session id in characters: 32 hex digits (128 random bits).
pub const SESSION_ID_LEN: usize = 32;

/// True when `id` has the shape of a session id: [`SESSION_ID_LEN`] ASCII hex digits. Writers
/// produce lowercase digits; a name claims a session with digits of either case (SPEC §7.1).
pub fn is_session_id(id: &str) -> bool {
    id.len() == SESSION_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The file name of a session's recording: `<session>.cast.zst`.
pub fn recording_name(session: &str) -> String {
    format!("{session}{RECORDING_EXT}")
}

/// True when a file name ends in `.cast.zst` (what `verify DIR` and the uploader collect).
pub fn is_recording_name(name: &str) -> bool {
    name.ends_with(RECORDING_EXT)
}

/// The session id a recording's file name claims (SPEC §7.1 step 4): `Some(id)` for
/// `<32 hex digits>.cast.zst`, `None` for any other name (a `record --out` choice, a renamed
/// copy, a segment `<session>.cast.zst.part-<offset>`), which claims nothing.
pub fn claimed_session(file_name: &str) -> Option<&str> {
    let id = file_name.strip_suffix(RECORDING_EXT)?;
    is_session_id(id).then_some(id)
}

/// The seal receipt beside a recording: `<recording>.seal` (SPEC §5).
pub fn receipt_path(recording: &Path) -> PathBuf {
    let mut s = recording.as_os_str().to_owned();
    s.push(RECEIPT_EXT);
    PathBuf::from(s)
}

/// The seal receipt object beside a recording object: `<recording key>.seal`
/// (MANIFEST.md §1).
pub fn receipt_key(recording_key: &str) -> String {
    format!("{recording_key}{RECEIPT_EXT}")
}

/// The name of a segment of a live recording that starts at byte `offset` of the file:
/// `<session>.cast.zst.part-<offset, 15 digits>` (MANIFEST.md §1), so a session's segments
/// sort in file order.
pub fn segment_name(session: &str, offset: u64) -> String {
    format!("{session}{RECORDING_EXT}.part-{offset:015}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(is_session_id(id) && is_session_id(&id.to_uppercase()));
        assert!(!is_session_id(&id[1..]) && !is_session_id(&format!("{}g", &id[1..])));
        assert_eq!(recording_name(id), format!("{id}.cast.zst"));
        assert_eq!(claimed_session(&recording_name(id)), Some(id));
        for name in [
            "x.cast.zst".to_string(),
            format!("{id}.cast"),
            segment_name(id, 7),
            format!("{id}.cast.zst.seal"),
        ] {
            assert_eq!(claimed_session(&name), None, "{name}");
        }
        assert!(is_recording_name("a.cast.zst") && !is_recording_name("a.cast.zst.seal"));
        assert_eq!(
            receipt_path(Path::new("/s/a.cast.zst")),
            Path::new("/s/a.cast.zst.seal")
        );
        assert_eq!(receipt_key("p/a.cast.zst"), "p/a.cast.zst.seal");
        assert_eq!(segment_name("ab", 42), "ab.cast.zst.part-000000000000042");
    }
}
