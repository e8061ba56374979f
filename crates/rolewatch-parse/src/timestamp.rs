//! PostgreSQL log timestamps: `2026-11-26 10:00:00.123 UTC` (`%m`), `2026-11-26 10:00:00 UTC`
//! (`%t`), with the zone written as `log_timezone`'s abbreviation or a numeric offset.
//!
//! Abbreviations other than UTC and GMT are ambiguous (`IST`, `CST`) and are refused with an
//! error that says so, unless the source's IANA zone is configured (`--timezone`): then the local
//! time is read in that zone, and the abbreviation must be one that zone uses at that moment
//! (which also settles the repeated hour at the end of daylight saving time). Servers should log
//! in UTC.
//!
//! Sources that write local time without any zone (MariaDB's server_audit) are read in the
//! configured zone, UTC when none is configured.

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::{OffsetName, Tz};

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The text is not `YYYY-MM-DD HH:MM:SS[.fraction] ZONE`.
    #[error("malformed timestamp {0:?}")]
    Malformed(String),
    /// The zone is an abbreviation that names more than one offset.
    #[error(
        "time zone abbreviation {0:?} is ambiguous: pass the server's IANA zone (--timezone) or set log_timezone = 'UTC' on the server"
    )]
    AmbiguousZone(String),
    /// The abbreviation is not one the configured zone uses at that time.
    #[error("time zone abbreviation {abbreviation:?} is not used by {zone} at {local}")]
    ZoneMismatch {
        /// The abbreviation in the log.
        abbreviation: String,
        /// The configured IANA zone.
        zone: String,
        /// The local time, as written.
        local: String,
    },
    /// The local time does not exist in the configured zone (skipped by a daylight saving change).
    #[error("local time {local} does not exist in {zone}")]
    NonexistentLocalTime {
        /// The local time, as written.
        local: String,
        /// The configured IANA zone.
        zone: String,
    },
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes
        .iter()
        .try_fold(0u32, |value, byte| byte.is_ascii_digit().then(|| value * 10 + u32::from(byte - b'0')))
}

/// Parses a PostgreSQL log timestamp written with an explicit UTC zone or offset.
#[cfg(test)]
pub(crate) fn parse_pg_timestamp(text: &str) -> Result<DateTime<Utc>, TimestampError> {
    parse_pg_timestamp_in(text, None)
}

/// Reads `YYYY-MM-DD HH:MM:SS` (with `-` or nothing between the date parts, ` ` or `T` before
/// the time) at the start of `bytes`; returns the time and the bytes after it.
pub(crate) fn parse_naive_prefix(bytes: &[u8]) -> Option<(NaiveDateTime, &[u8])> {
    let dashed = bytes.get(4) == Some(&b'-');
    let (date_length, month_at, day_at) = if dashed { (10, 5, 8) } else { (8, 4, 6) };
    let date_bytes = bytes.get(..date_length)?;
    let field = |bytes: &[u8], at: usize| bytes.get(at..at + 2).and_then(digits);
    let year = i32::try_from(date_bytes.get(..4).and_then(digits)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, field(date_bytes, month_at)?, field(date_bytes, day_at)?)?;
    if dashed && date_bytes.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(bytes.get(date_length), Some(b' ' | b'T')) {
        return None;
    }
    let time = bytes.get(date_length + 1..date_length + 9)?;
    if time.get(2) != Some(&b':') || time.get(5) != Some(&b':') {
        return None;
    }
    let naive = date.and_hms_opt(field(time, 0)?, field(time, 3)?, field(time, 6)?)?;
    Some((naive, bytes.get(date_length + 9..).unwrap_or_default()))
}

/// Reads a time written in local time without a zone, in `zone` (UTC when `None`).
///
/// At the end of daylight saving time the repeated hour is ambiguous; the earlier of the two
/// instants is taken, as the source gives nothing to choose by.
pub(crate) fn local_to_utc(naive: NaiveDateTime, zone: Option<Tz>) -> Result<DateTime<Utc>, TimestampError> {
    let Some(zone) = zone else {
        return Ok(naive.and_utc());
    };
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => Ok(time.with_timezone(&Utc)),
        LocalResult::None => Err(TimestampError::NonexistentLocalTime {
            local: naive.to_string(),
            zone: zone.name().to_owned(),
        }),
    }
}

/// Parses a PostgreSQL log timestamp into UTC. `zone` is the server's `log_timezone` when the
/// operator configured it; it is needed only for zone abbreviations other than UTC and GMT.
/// A `%n` time (`1700000000.123`, seconds since the epoch) is read too.
pub(crate) fn parse_pg_timestamp_in(text: &str, zone: Option<Tz>) -> Result<DateTime<Utc>, TimestampError> {
    let malformed = || TimestampError::Malformed(text.chars().take(64).collect());
    let bytes = text.as_bytes();
    if bytes.get(4).is_some_and(u8::is_ascii_digit) {
        return parse_epoch_seconds(text).ok_or_else(malformed);
    }
    let (naive, mut rest) = parse_naive_prefix(bytes).ok_or_else(malformed)?;
    if bytes.get(4) != Some(&b'-') {
        return Err(malformed());
    }
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
    let abbreviation = std::str::from_utf8(rest).map_err(|_| malformed())?.trim();
    let fraction = TimeDelta::nanoseconds(i64::from(nanos));
    match zone_offset_seconds(abbreviation) {
        Ok(offset_seconds) => Ok(naive.and_utc() + fraction - TimeDelta::seconds(offset_seconds)),
        Err(TimestampError::AmbiguousZone(_)) if zone.is_some() => {
            Ok(in_zone_with_abbreviation(naive, abbreviation, zone)? + fraction)
        }
        Err(error) => Err(error),
    }
}

/// [`parse_pg_timestamp_in`] that remembers the last whole second it read: a busy server writes
/// thousands of records within one second, and those differ only in the fraction, which is
/// all that is read again. Exact: the cached instant is the one the full parse gave for the
/// same text without its fraction.
#[derive(Debug, Default)]
pub(crate) struct PgTimestampCache {
    /// The text of the last timestamp without its fraction (`2026-11-26 10:00:00 UTC`), the
    /// zone it was read in, and its instant.
    /// The instant is kept as UTC's naive time of a whole second, whose nanoseconds are
    /// then set rather than added (no calendar arithmetic per record).
    second: Option<(String, Option<Tz>, NaiveDateTime)>,
}

/// `YYYY-MM-DD HH:MM:SS.fraction rest` -> (`YYYY-MM-DD HH:MM:SS`, fraction digits, `rest`):
/// `None` for any other shape (epoch seconds, no fraction, a fraction too long to be exact).
fn split_fraction(text: &str) -> Option<(&str, &str, &str)> {
    let (head, after) = text.split_at_checked(19)?;
    let fraction = after.strip_prefix('.')?;
    let length = fraction.bytes().take_while(u8::is_ascii_digit).count();
    if length == 0 || length > 9 || text.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    let (digits, rest) = fraction.split_at_checked(length)?;
    Some((head, digits, rest))
}

impl PgTimestampCache {
    /// [`parse_pg_timestamp_in`], reusing the last whole second's result when only the fraction
    /// changed.
    pub(crate) fn parse(&mut self, text: &str, zone: Option<Tz>) -> Result<DateTime<Utc>, TimestampError> {
        let Some((head, fraction, rest)) = split_fraction(text) else {
            return parse_pg_timestamp_in(text, zone);
        };
        let nanos = || {
            let value = digits(fraction.as_bytes())?;
            value.checked_mul(10u32.checked_pow(9 - u32::try_from(fraction.len()).ok()?)?)
        };
        if let Some((key, key_zone, second)) = &self.second
            && *key_zone == zone
            && key.len() == head.len() + rest.len()
            && key.starts_with(head)
            && key.ends_with(rest)
            && let Some(at) = nanos().and_then(|nanos| second.with_nanosecond(nanos))
        {
            return Ok(at.and_utc());
        }
        let ts = parse_pg_timestamp_in(text, zone)?;
        // Only a whole second whose nanoseconds the fraction alone gave is kept (not a leap
        // second, whose nanoseconds go past one second).
        if let Some(nanos) = nanos()
            && ts.nanosecond() == nanos
            && let Some(whole) = ts.naive_utc().with_nanosecond(0)
        {
            let (key, key_zone, second) = self.second.get_or_insert_with(|| (String::new(), zone, whole));
            key.clear();
            key.push_str(head);
            key.push_str(rest);
            *key_zone = zone;
            *second = whole;
        }
        Ok(ts)
    }
}

/// `naive` read in `zone`, choosing the instant whose abbreviation is `abbreviation`.
fn in_zone_with_abbreviation(
    naive: NaiveDateTime,
    abbreviation: &str,
    zone: Option<Tz>,
) -> Result<DateTime<Utc>, TimestampError> {
    let Some(zone) = zone else {
        return Err(TimestampError::AmbiguousZone(abbreviation.chars().take(16).collect()));
    };
    let candidates: Vec<DateTime<Tz>> = match zone.from_local_datetime(&naive) {
        LocalResult::Single(time) => vec![time],
        LocalResult::Ambiguous(earlier, later) => vec![earlier, later],
        LocalResult::None => {
            return Err(TimestampError::NonexistentLocalTime {
                local: naive.to_string(),
                zone: zone.name().to_owned(),
            });
        }
    };
    candidates
        .into_iter()
        .find(|time| time.offset().abbreviation() == Some(abbreviation))
        .map(|time| time.with_timezone(&Utc))
        .ok_or_else(|| TimestampError::ZoneMismatch {
            abbreviation: abbreviation.chars().take(16).collect(),
            zone: zone.name().to_owned(),
            local: naive.to_string(),
        })
}

/// `1700000000.123` (PostgreSQL's `%n`) or `1700000000`.
fn parse_epoch_seconds(text: &str) -> Option<DateTime<Utc>> {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    if seconds.is_empty() || seconds.len() > 12 || !seconds.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let seconds = seconds.parse::<i64>().ok()?;
    let fraction_digits = fraction.get(..fraction.len().min(9))?;
    let nanos = if fraction_digits.is_empty() {
        0
    } else {
        let scale = 10u32.pow(9 - u32::try_from(fraction_digits.len()).ok()?);
        digits(fraction_digits.as_bytes())? * scale
    };
    DateTime::from_timestamp(seconds, nanos)
}

/// Epoch microseconds (Aurora MySQL's audit log) to UTC.
pub(crate) fn from_epoch_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
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
    fn reads_abbreviations_in_the_configured_zone() {
        let berlin = Some(chrono_tz::Europe::Berlin);
        let read =
            |text: &str| parse_pg_timestamp_in(text, berlin).map(|ts| rolewatch_event::format_rfc3339(&ts));
        assert_eq!(read("2024-05-14 10:08:56 CEST").unwrap(), "2024-05-14T08:08:56.000000Z");
        assert_eq!(read("2024-01-14 10:08:56.250 CET").unwrap(), "2024-01-14T09:08:56.250000Z");
        // The repeated hour at the end of summer time: the abbreviation picks the instant.
        assert_eq!(read("2024-10-27 02:30:00 CEST").unwrap(), "2024-10-27T00:30:00.000000Z");
        assert_eq!(read("2024-10-27 02:30:00 CET").unwrap(), "2024-10-27T01:30:00.000000Z");
        assert!(matches!(read("2024-05-14 10:08:56 IST"), Err(TimestampError::ZoneMismatch { .. })));
        assert!(matches!(read("2024-03-31 02:30:00 CEST"), Err(TimestampError::NonexistentLocalTime { .. })));
        // Explicit UTC and offsets need no zone and ignore it.
        assert_eq!(read("2024-05-14 10:08:56 UTC").unwrap(), "2024-05-14T10:08:56.000000Z");
    }

    #[test]
    fn reads_epoch_seconds_and_local_times() {
        assert_eq!(utc("1700000000.123"), "2023-11-14T22:13:20.123000Z");
        let (naive, rest) = parse_naive_prefix(b"20220527 12:21:14,host").unwrap();
        assert_eq!(rest, b",host");
        let berlin = local_to_utc(naive, Some(chrono_tz::Europe::Berlin)).unwrap();
        assert_eq!(rolewatch_event::format_rfc3339(&berlin), "2022-05-27T10:21:14.000000Z");
        assert_eq!(
            rolewatch_event::format_rfc3339(&local_to_utc(naive, None).unwrap()),
            "2022-05-27T12:21:14.000000Z"
        );
    }

    /// The cache gives what the full parse gives, for every shape, in any order.
    #[test]
    fn the_per_second_cache_agrees_with_the_full_parse() {
        let berlin: Option<Tz> = Some("Europe/Berlin".parse().unwrap());
        let texts = [
            "2026-11-26 10:00:00.123 UTC",
            "2026-11-26 10:00:00.9 UTC",
            "2026-11-26 10:00:00.123456789 UTC",
            "2026-11-26 10:00:01.001 UTC",
            "2026-11-26 10:00:01.001 GMT",
            "2026-11-26 10:00:01.001 +02",
            "2026-11-26 10:00:01 UTC",
            "2026-11-26 10:00:01.5 CET",
            "2026-10-25 02:30:00.250 CEST",
            "2026-10-25 02:30:00.250 CET",
            "1700000000.123",
            "2026-11-26 10:00:01.0011234567 UTC",
            "2026-11-26 10:00:01. UTC",
            "2026-11-26 10:00:01.5 IST",
            // No zone in the text: the source's zone decides, so a second read in one zone
            // must not be reused for the other.
            "2026-11-26 10:00:02.250",
            "2026-11-26 10:00:02.750",
            // A leap second, and the last nanosecond of a second.
            "2016-12-31 23:59:60.500 UTC",
            "2016-12-31 23:59:60.750 UTC",
            "2026-11-26 10:00:02.999999999 UTC",
            "2026-11-26 10:00:02.000000001 UTC",
        ];
        let mut cache = PgTimestampCache::default();
        for round in 0..2 {
            for text in texts {
                for zone in [None, berlin, None] {
                    let expected = parse_pg_timestamp_in(text, zone);
                    assert_eq!(cache.parse(text, zone), expected, "{text} in {zone:?}, round {round}");
                }
            }
        }
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
