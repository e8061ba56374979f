//! PostgreSQL log timestamps: `2026-11-26 10:00:00.123 UTC` (`%m`), `2026-11-26 10:00:00 UTC`
//! (`%t`), with the zone written as `log_timezone`'s abbreviation or a numeric offset.
//!
//! Abbreviations other than UTC and GMT are ambiguous (`IST`, `CST`) and are refused with an
//! error that says so; servers should log in UTC.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The text is not `YYYY-MM-DD HH:MM:SS[.fraction] ZONE`.
    #[error("malformed timestamp {0:?}")]
    Malformed(String),
    /// The zone is an abbreviation that names more than one offset.
    #[error("time zone abbreviation {0:?} is ambiguous: set log_timezone = 'UTC' on the server")]
    AmbiguousZone(String),
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes
        .iter()
        .try_fold(0u32, |value, byte| byte.is_ascii_digit().then(|| value * 10 + u32::from(byte - b'0')))
}

/// Parses a PostgreSQL log timestamp into UTC.
pub(crate) fn parse_pg_timestamp(text: &str) -> Result<DateTime<Utc>, TimestampError> {
    let malformed = || TimestampError::Malformed(text.chars().take(64).collect());
    let bytes = text.as_bytes();
    let head = bytes.get(..19).ok_or_else(malformed)?;
    if head.get(4) != Some(&b'-') || head.get(7) != Some(&b'-') || head.get(13) != Some(&b':') {
        return Err(malformed());
    }
    let field = |range: std::ops::Range<usize>| head.get(range).and_then(digits).ok_or_else(malformed);
    let year = i32::try_from(field(0..4)?).map_err(|_| malformed())?;
    let date = NaiveDate::from_ymd_opt(year, field(5..7)?, field(8..10)?).ok_or_else(malformed)?;
    let naive = date.and_hms_opt(field(11..13)?, field(14..16)?, field(17..19)?).ok_or_else(malformed)?;

    let mut rest = bytes.get(19..).unwrap_or_default();
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let length = fraction.iter().take_while(|byte| byte.is_ascii_digit()).count();
        let used = fraction.get(..length.min(9)).ok_or_else(malformed)?;
        if length == 0 {
            return Err(malformed());
        }
        nanos = digits(used).ok_or_else(malformed)? * 10u32.pow(9 - u32::try_from(used.len()).unwrap_or(9));
        rest = fraction.get(length..).unwrap_or_default();
    }
    let zone = std::str::from_utf8(rest).map_err(|_| malformed())?.trim();
    let offset_seconds = zone_offset_seconds(zone)?;
    let local = naive.and_utc() + TimeDelta::nanoseconds(i64::from(nanos));
    Ok(local - TimeDelta::seconds(offset_seconds))
}

fn zone_offset_seconds(zone: &str) -> Result<i64, TimestampError> {
    match zone {
        "UTC" | "GMT" | "Z" | "UCT" | "" => return Ok(0),
        _ => {}
    }
    let (sign, digits_part) = match zone.as_bytes().first() {
        Some(b'+') => (1, zone.get(1..).unwrap_or_default()),
        Some(b'-') => (-1, zone.get(1..).unwrap_or_default()),
        _ => return Err(TimestampError::AmbiguousZone(zone.chars().take(16).collect())),
    };
    let compact: String = digits_part.chars().filter(|character| *character != ':').collect();
    let malformed = || TimestampError::Malformed(zone.to_owned());
    let (hours, minutes) = match compact.len() {
        2 => (compact.parse::<i64>().map_err(|_| malformed())?, 0),
        4 => (
            compact.get(..2).and_then(|hours| hours.parse::<i64>().ok()).ok_or_else(malformed)?,
            compact.get(2..).and_then(|minutes| minutes.parse::<i64>().ok()).ok_or_else(malformed)?,
        ),
        _ => return Err(malformed()),
    };
    Ok(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> String {
        rolewatch_event::format_rfc3339(&parse_pg_timestamp(text).unwrap())
    }

    #[test]
    fn reads_milliseconds_seconds_and_offsets() {
        assert_eq!(utc("2023-05-13 21:09:08.502 GMT"), "2023-05-13T21:09:08.502000Z");
        assert_eq!(utc("2020-11-13 08:07:36 UTC"), "2020-11-13T08:07:36.000000Z");
        assert_eq!(utc("2024-05-14 10:08:56.5 +02"), "2024-05-14T08:08:56.500000Z");
        assert_eq!(utc("2024-05-14 10:08:56 -05:30"), "2024-05-14T15:38:56.000000Z");
        assert_eq!(utc("2024-05-14 10:08:56.123456789 UTC"), "2024-05-14T10:08:56.123456Z");
    }

    #[test]
    fn refuses_ambiguous_abbreviations_and_garbage() {
        assert!(matches!(
            parse_pg_timestamp("2024-05-14 10:08:56 IST"),
            Err(TimestampError::AmbiguousZone(zone)) if zone == "IST"
        ));
        for bad in [
            "",
            "2024-05-14",
            "2024-13-14 10:08:56 UTC",
            "2024-05-14 25:08:56 UTC",
            "2024-05-14 10:08:56. UTC",
            "x024-05-14 10:08:56 UTC",
        ] {
            assert!(parse_pg_timestamp(bad).is_err(), "{bad}");
        }
    }
}
