//! Object layout in the bucket (format-spec/MANIFEST.md): keys and UTC time formatting.

/// Civil UTC date and time of Unix microseconds: (year, month, day, hour, minute, second).
pub fn civil_utc(us: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (us / 1_000_000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
pub fn rfc3339(us: u64) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(us);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
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
        "{prefix}recordings/{host}/{}/{session}.cast.zst",
        date_path(start_us)
    )
}

/// A segment of a live recording starting at byte `offset`:
/// `<prefix>recordings/<host>/<YYYY>/<MM>/<DD>/<session>.cast.zst.part-<offset, 15 digits>`.
/// The segments of a session, concatenated in key order, are its verifiable prefix
/// (`cat <session>.cast.zst.part-* > <session>.cast.zst`).
pub fn segment_key(prefix: &str, host: &str, start_us: u64, session: &str, offset: u64) -> String {
    format!(
        "{prefix}recordings/{host}/{}/{session}.cast.zst.part-{offset:015}",
        date_path(start_us)
    )
}

/// The seal receipt object beside a recording: `<recording key>.seal`.
pub fn receipt_key(recording_key: &str) -> String {
    format!("{recording_key}.seal")
}

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

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse a UTC time: Unix seconds, `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM[:SS]Z`; Unix µs.
pub fn parse_utc(s: &str) -> Option<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1_000_000);
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    let (mut h, mut mi, mut se) = (0, 0, 0);
    if let Some(t) = time {
        let mut p = t.split(':').map(|x| x.parse::<i64>().ok());
        h = p.next()??;
        mi = p.next()??;
        se = p.next().unwrap_or(Some(0))?;
        if p.next().is_some() || h > 23 || mi > 59 || se > 60 {
            return None;
        }
    }
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs).ok().map(|s| s * 1_000_000)
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
