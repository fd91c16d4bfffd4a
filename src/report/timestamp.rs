//! ISO 8601 timestamps as the credential report and the IAM API write them
//! (`2017-01-13T01:21:41+00:00`, also `Z`, fractional seconds and other offsets).

use super::model::UnixSeconds;

/// A wall-clock time as Unix seconds (negative before 1970).
pub fn unix_seconds(t: std::time::SystemTime) -> UnixSeconds {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Parses an ISO 8601 / RFC 3339 date-time with an offset into Unix seconds (fractions dropped).
/// Returns `None` for anything else, sentinels such as `N/A` included.
pub fn parse(s: &str) -> Option<UnixSeconds> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    if let Some((b'.', tail)) = rest.split_first() {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &tail[n..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn report_format() {
        assert_eq!(parse("2017-01-13T01:21:41+00:00"), Some(1_484_270_501));
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("2015-02-02T20:02:02Z"), Some(1_422_907_322));
    }

    #[test]
    fn fractions_and_offsets() {
        assert_eq!(parse("2017-01-13T01:21:41.999+00:00"), Some(1_484_270_501));
        assert_eq!(parse("2017-01-13T03:21:41+02:00"), Some(1_484_270_501));
        assert_eq!(parse("2017-01-12T23:21:41-0200"), Some(1_484_270_501));
    }

    #[test]
    fn leap_day() {
        assert_eq!(parse("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse("2023-02-29T00:00:00Z"), None);
    }

    #[test]
    fn rejects_non_dates() {
        for s in [
            "N/A",
            "no_information",
            "not_supported",
            "",
            "2017-01-13",
            "2017-01-13T01:21:41",
            "2017-13-13T01:21:41+00:00",
            "2017-01-13T24:00:00+00:00",
            "2017-01-13T01:21:41+00:00x",
            "2017-01-13T01:21:41.+00:00",
            "２017-01-13T01:21:41+00:00",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }
}
