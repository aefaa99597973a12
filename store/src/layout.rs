//! Object layout in the bucket (format-spec/MANIFEST.md): keys and UTC time formatting.

use sealcast_format::names;
use sealcast_format::time::civil;

pub use sealcast_format::time::rfc3339;

/// Civil UTC date and time of Unix microseconds: (year, month, day, hour, minute, second)
/// ([`sealcast_format::time::civil`]).
pub fn civil_utc(us: u64) -> (i64, u32, u32, u32, u32, u32) {
    let c = civil(us);
    (c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// `YYYYMMDDTHHMMSSZ` (ISO 8601 basic, UTC).
pub fn basic_utc(us: u64) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(us);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `YYYY/MM/DD` of Unix microseconds (UTC).
pub fn date_path(us: u64) -> String {
    let (y, mo, d, ..) = civil_utc(us);
    format!("{y:04}/{mo:02}/{d:02}")
}

/// True when `s` can be one path segment of an object key: non-empty, at most 128 bytes,
/// only ASCII letters, digits, `.`, `_` and `-`, and not `.`/`..`.
pub fn is_safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `<prefix>recordings/<host>/<YYYY>/<MM>/<DD>/<session>.cast.zst`, the date being the
/// session's start (UTC). `prefix` is empty or ends with `/`.
pub fn recording_key(prefix: &str, host: &str, start_us: u64, session: &str) -> String {
    format!(
        "{prefix}recordings/{host}/{}/{}",
        date_path(start_us),
        names::recording_name(session)
    )
}

/// A segment of a live recording starting at byte `offset`:
/// `<prefix>recordings/<host>/<YYYY>/<MM>/<DD>/<session>.cast.zst.part-<offset, 15 digits>`.
/// The segments of a session, concatenated in key order, are its verifiable prefix
/// (`cat <session>.cast.zst.part-* > <session>.cast.zst`).
pub fn segment_key(prefix: &str, host: &str, start_us: u64, session: &str, offset: u64) -> String {
    format!(
        "{prefix}recordings/{host}/{}/{}",
        date_path(start_us),
        names::segment_name(session, offset)
    )
}

/// The seal receipt object beside a recording: `<recording key>.seal`.
pub use sealcast_format::names::receipt_key;

/// `<prefix>manifests/<host>/<YYYY>/<MM>/<DD>/<host>_<YYYYMMDDTHHMMSSZ>_<seq:06>.json`, dated
/// by the period end.
pub fn manifest_key(prefix: &str, host: &str, period_end_us: u64, seq: u64) -> String {
    format!(
        "{prefix}manifests/{host}/{}/{host}_{}_{seq:06}.json",
        date_path(period_end_us),
        basic_utc(period_end_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_utc(0), (1970, 1, 1, 0, 0, 0));
        // 2026-11-21T15:42:03Z
        assert_eq!(civil_utc(1_763_739_723_000_000), (2025, 11, 21, 15, 42, 3));
        assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(basic_utc(1_000_000), "19700101T000001Z");
        assert_eq!(
            recording_key("p/", "h1", 0, "ab"),
            "p/recordings/h1/1970/01/01/ab.cast.zst"
        );
        assert_eq!(
            manifest_key("", "h1", 300_000_000, 7),
            "manifests/h1/1970/01/01/h1_19700101T000500Z_000007.json"
        );
        assert!(is_safe_segment("bastion-01.example"));
        assert!(!is_safe_segment("a/b") && !is_safe_segment("..") && !is_safe_segment(""));
    }
}

/// Parse a UTC time: Unix seconds, `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM[:SS]Z`; Unix µs.
pub fn parse_utc(s: &str) -> Option<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1_000_000);
    }
    sealcast_format::time::parse_rfc3339(s)
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parses_times() {
        assert_eq!(parse_utc("60"), Some(60_000_000));
        assert_eq!(parse_utc("1970-01-02"), Some(86_400_000_000));
        assert_eq!(
            parse_utc("2000-02-29T00:00:00Z").map(rfc3339).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(parse_utc("1970-01-01T00:01Z"), Some(60_000_000));
        assert_eq!(parse_utc("2000-13-01"), None);
        assert_eq!(parse_utc("yesterday"), None);
    }
}
