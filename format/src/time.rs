//! UTC civil time without a time-zone database: proleptic Gregorian dates ↔ days since
//! 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms",
//! `days_from_civil` / `civil_from_days`), Unix microseconds ↔ RFC 3339 UTC text, and the
//! `YYYYMMDD[HHMM[SS]][Z]` times of `allowed_signers` (ssh-keygen(1) "ALLOWED SIGNERS").
//! The one implementation every crate uses (SPEC §3: times are Unix microseconds).

/// A UTC date and time of day: what [`civil`] makes of Unix microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year (proleptic Gregorian; 1970 and later for `u64` microseconds).
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59 (no leap seconds in Unix time).
    pub second: u32,
    /// Microseconds within the second, 0–999 999.
    pub micros: u32,
}

/// Days since 1970-01-01 of the proleptic Gregorian date `year`-`month`-`day` (month 1–12;
/// the day is not checked against the month's length: the 31st of a 30-day month is the 1st
/// of the next).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month 1–12, day 1–31)` of `days` since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as u32, d as u32)
}

/// The UTC date and time of `unix_us` (Unix microseconds).
pub fn civil(unix_us: u64) -> Civil {
    // u64::MAX µs is about 1.8e13 s: an i64 holds it.
    let secs = (unix_us / 1_000_000) as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400) as u32;
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        micros: (unix_us % 1_000_000) as u32,
    }
}

/// RFC 3339 UTC with whole seconds: `2025-11-21T04:40:00Z`.
pub fn rfc3339(unix_us: u64) -> String {
    let c = civil(unix_us);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// RFC 3339 UTC with microseconds: `2025-11-21T04:40:00.123456Z`.
pub fn rfc3339_micros(unix_us: u64) -> String {
    let c = civil(unix_us);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros
    )
}

/// Unix microseconds of `year-month-day hour:minute:second` UTC, after range checks (month
/// 1–12, day 1–31, hour ≤ 23, minute ≤ 59, second ≤ 60); `None` before 1970 or out of range.
fn checked_us(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<u64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs).ok().map(|s| s * 1_000_000)
}

/// Parse an RFC 3339 UTC date or date-time as Unix microseconds: `YYYY-MM-DD` (midnight) or
/// `YYYY-MM-DDTHH:MM[:SS]Z`. `None` for anything else, or a time before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() {
        return None;
    }
    let (mut h, mut mi, mut se) = (0, 0, 0);
    if let Some(t) = time {
        let mut p = t.split(':').map(|x| x.parse::<i64>().ok());
        h = p.next()??;
        mi = p.next()??;
        se = p.next().unwrap_or(Some(0))?;
        if p.next().is_some() {
            return None;
        }
    }
    checked_us(y, mo, da, h, mi, se)
}

/// Parse an `allowed_signers` time, `YYYYMMDD[HHMM[SS]][Z]` (ssh-keygen(1) "ALLOWED
/// SIGNERS"), as UTC (SPEC §6: sealcast has no local time) in Unix microseconds.
pub fn parse_signers_time(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    if !(s.len() == 8 || s.len() == 12 || s.len() == 14) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    checked_us(n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let t = |us| {
            let c = civil(us);
            (c.year, c.month, c.day, c.hour, c.minute, c.second)
        };
        assert_eq!(t(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(t(1_763_739_723_000_000), (2025, 11, 21, 15, 42, 3));
        assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_763_700_000_000_000), "2025-11-21T04:40:00Z");
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(1_763_700_000_123_456),
            "2025-11-21T04:40:00.123456Z"
        );
        assert_eq!(
            rfc3339_micros(951_782_400_000_001),
            "2000-02-29T00:00:00.000001Z"
        );
        // The largest time, without overflow.
        assert_eq!(rfc3339_micros(u64::MAX), "586524-01-19T08:01:49.551615Z");
    }

    /// Every day from 1900 to 2400 and back (leap years, century rules).
    #[test]
    fn days_round_trip() {
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2400, 12, 31);
        let mut prev = None;
        for days in start..=end {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
            if let Some((py, pm, pd)) = prev {
                assert!((y, m, d) > (py, pm, pd));
            }
            prev = Some((y, m, d));
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28),
            1
        );
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-02"), Some(86_400_000_000));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z")
                .map(rfc3339)
                .as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:01Z"), Some(60_000_000));
        assert_eq!(parse_rfc3339("2000-13-01"), None);
        assert_eq!(parse_rfc3339("1969-12-31"), None);
        assert_eq!(parse_rfc3339("2000-01-01T00:00:00"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn parses_signers_times() {
        assert_eq!(parse_signers_time("19700102"), Some(86_400_000_000));
        assert_eq!(parse_signers_time("197001010001Z"), Some(60_000_000));
        assert_eq!(parse_signers_time("19700101000001"), Some(1_000_000));
        for bad in [
            "1970010",
            "197001011",
            "19701301",
            "19700100",
            "1970-01-01",
            "x",
        ] {
            assert_eq!(parse_signers_time(bad), None, "{bad}");
        }
    }
}
