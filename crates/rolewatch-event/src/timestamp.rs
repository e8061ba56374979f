//! Event times in JSON: RFC 3339, UTC, microseconds, `Z`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Formats a time the way every rolewatch JSON output does: `2026-11-26T10:00:00.123456Z`.
pub fn format_rfc3339(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn serialize<S: Serializer>(ts: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_rfc3339(ts))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(&text).map(|ts| ts.with_timezone(&Utc)).map_err(serde::de::Error::custom)
}
