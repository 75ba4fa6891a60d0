//! ISO-8601 / RFC 3339 timestamps as JavaScript's `Date.toISOString()` writes them
//! (`2026-11-28T03:04:05.678Z`), for express-session compatible `cookie.expires`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, millisecond precision; before 1970 clamps).
///
/// Every session write formats its expiry, so years 0000–9999 are written digit by digit into a
/// fixed buffer (a tenth of the instructions of `format!`); other years take [`format_general`].
pub(crate) fn format(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format_general(ms);
    }
    let mut out = *b"0000-00-00T00:00:00.000Z";
    for (range, value) in [
        (0..4, y),
        (5..7, m),
        (8..10, d),
        (11..13, rem / 3600),
        (14..16, rem % 3600 / 60),
        (17..19, rem % 60),
        (20..23, (ms % 1000) as i64),
    ] {
        let mut v = value;
        for digit in out[range].iter_mut().rev() {
            *digit = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    // Only ASCII digits and separators: never lossy.
    String::from_utf8_lossy(&out).into_owned()
}

/// Milliseconds since the epoch: the precision of a stored expiry, so two times that format
/// the same compare equal.
pub(crate) fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

/// [`format`] for any year, with `format!`.
fn format_general(ms: u128) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. Times before 1970 clamp to the epoch
/// (they are in the past either way). Returns `None` for anything else.
pub(crate) fn parse(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = (i - start).min(9);
        if digits == 0 {
            return None;
        }
        nanos *= 10u64.pow(9 - digits as u32);
    }
    let offset_secs = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    if secs < 0 {
        return Some(UNIX_EPOCH);
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_nanos(nanos))
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_javascript_to_iso_string() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_298_245_678);
        assert_eq!(format(t), "2025-11-28T02:50:45.678Z");
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn fast_path_matches_the_general_formatter() {
        // Every day boundary, leap day and millisecond field over four centuries, in strides.
        let mut ms: u128 = 0;
        while ms < 13_000_000_000_000 {
            let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
            assert_eq!(format(t), format_general(ms), "{ms}");
            ms += 86_399_999 + 7_919;
        }
        let far = UNIX_EPOCH + Duration::from_secs(253_402_300_800); // 10000-01-01
        assert_eq!(format(far), "10000-01-01T00:00:00.000Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for ms in [
            0u64,
            1,
            951_782_400_000,
            1_764_298_245_678,
            4_102_444_800_123,
        ] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(parse(&format(t)), Some(t), "{ms}");
        }
        let z = parse("2025-11-28T02:50:45Z").unwrap();
        assert_eq!(parse("2025-11-28T03:50:45+01:00"), Some(z));
        assert_eq!(parse("2025-11-28T01:50:45-01:00"), Some(z));
        assert_eq!(parse("1960-01-01T00:00:00Z"), Some(UNIX_EPOCH));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "tomorrow",
            "2025-13-01T00:00:00Z",
            "2025-11-28T02:50:45",
            "2025-11-28T02:50:45.Z",
            "2025-11-28T02:50:45+0100",
            "２０２５-11-28T02:50:45Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
