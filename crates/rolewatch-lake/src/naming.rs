//! Deterministic object keys: the name of a file derives from the data it holds.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Timelike};
use rolewatch_event::AuditEvent;
use sha2::{Digest, Sha256};

use crate::{EVENTS_PREFIX, LakeError};

/// How many bytes of a file identify it (as Vector's `checksum` fingerprint does): the first
/// lines of a log carry timestamps, so two different logs differ within them.
pub const FINGERPRINT_BYTES: usize = 4096;

/// The identity of an input stream: a log file (by content fingerprint, so a renamed or rotated
/// file keeps its identity) or a Kafka topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    /// The identity of a file whose first bytes (up to [`FINGERPRINT_BYTES`]) are `prefix`.
    pub fn for_file_prefix(prefix: &[u8]) -> Self {
        let head = prefix.get(..FINGERPRINT_BYTES).unwrap_or(prefix);
        let digest = Sha256::digest(head);
        Self(format!("file-{}", hex::encode(digest.get(..8).unwrap_or_default())))
    }

    /// The identity of a Kafka topic partition.
    pub fn for_kafka(topic: &str, partition: i32) -> Self {
        let safe: String = topic
            .chars()
            .map(|character| {
                if character.is_ascii_alphanumeric() || character == '-' || character == '_' {
                    character
                } else {
                    '_'
                }
            })
            .collect();
        Self(format!("kafka-{safe}-{partition:05}"))
    }

    /// The text used in object names.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a stream id back from its text (as found in object names and manifests). Only the
    /// characters the constructors produce are accepted, so a manifest cannot smuggle a path.
    pub fn parse(text: &str) -> Option<Self> {
        let allowed =
            |character: char| character.is_ascii_alphanumeric() || character == '-' || character == '_';
        let known_kind = text.starts_with("file-") || text.starts_with("kafka-");
        (known_kind && text.chars().all(allowed)).then(|| Self(text.to_owned()))
    }
}

impl serde::Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid stream id {text:?}")))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An hour partition of the events table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HourPartition {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
}

impl HourPartition {
    /// The partition an event's `ts` falls in.
    pub fn of(event: &AuditEvent) -> Self {
        Self { year: event.ts.year(), month: event.ts.month(), day: event.ts.day(), hour: event.ts.hour() }
    }

    /// `date=YYYY-MM-DD/hour=HH`.
    pub fn path(&self) -> String {
        format!("date={:04}-{:02}-{:02}/hour={:02}", self.year, self.month, self.day, self.hour)
    }
}

/// Groups events by hour partition, partitions in time order, events in input order.
pub(crate) fn group_by_hour(events: &[AuditEvent]) -> BTreeMap<HourPartition, Vec<&AuditEvent>> {
    let mut groups: BTreeMap<HourPartition, Vec<&AuditEvent>> = BTreeMap::new();
    // Runs of events in one hour (a chunk is usually within one) are collected before they go
    // into their group: the calendar hour of every event, and a map lookup for each, were 2% of
    // a Kafka run. An event is in the run's hour when its date and hour are the run's.
    let mut run: Option<(HourPartition, chrono::NaiveDate, u32)> = None;
    let mut members: Vec<&AuditEvent> = Vec::with_capacity(events.len());
    for event in events {
        let (date, hour) = (event.ts.date_naive(), event.ts.hour());
        match run {
            Some((_, run_date, run_hour)) if run_date == date && run_hour == hour => {}
            _ => {
                if let Some((partition, _, _)) = run {
                    append_run(&mut groups, partition, &mut members);
                }
                run = Some((HourPartition::of(event), date, hour));
            }
        }
        members.push(event);
    }
    if let Some((partition, _, _)) = run {
        append_run(&mut groups, partition, &mut members);
    }
    groups
}

/// Moves a run of events of one hour to the end of that hour's group.
fn append_run<'a>(
    groups: &mut BTreeMap<HourPartition, Vec<&'a AuditEvent>>,
    partition: HourPartition,
    members: &mut Vec<&'a AuditEvent>,
) {
    match groups.get_mut(&partition) {
        Some(group) => group.append(members),
        // The run's vector becomes the group (the first one has room for the whole chunk).
        None => {
            groups.insert(partition, std::mem::take(members));
        }
    }
}

/// `events/date=YYYY-MM-DD/hour=HH/<stream>-<first offset:020>-<last offset:020>.parquet`.
pub fn event_file_key(
    stream: &StreamId,
    partition: &HourPartition,
    events: &[&AuditEvent],
) -> Result<String, LakeError> {
    let mut first = u64::MAX;
    let mut last = 0;
    for event in events {
        let offset = event
            .source_offset
            .and_then(|offset| u64::try_from(offset).ok())
            .ok_or_else(|| LakeError::MissingOffset { ts: rolewatch_event::format_rfc3339(&event.ts) })?;
        first = first.min(offset);
        last = last.max(offset);
    }
    Ok(format!("{EVENTS_PREFIX}/{}/{stream}-{first:020}-{last:020}.parquet", partition.path()))
}

#[cfg(test)]
mod tests {
    use rolewatch_event::{LogFormat, Source};

    use super::*;

    /// Events of interleaved hours (and the same hour on two days) go to their hour's group,
    /// groups in time order, each group's events in input order.
    #[test]
    fn events_are_grouped_by_hour_in_input_order() {
        let events: Vec<AuditEvent> = [
            "2026-11-26T10:05:00Z",
            "2026-11-26T10:59:59.999999Z",
            "2026-11-26T11:00:00Z",
            "2026-11-26T10:30:00Z",
            "2026-11-27T10:01:00Z",
            "2026-11-26T11:10:00Z",
            "2026-11-26T10:00:00Z",
        ]
        .iter()
        .enumerate()
        .map(|(offset, ts)| {
            let mut event = AuditEvent::new(ts.parse().unwrap(), Source::Postgres, LogFormat::PgauditJsonlog);
            event.source_offset = Some(offset as i64);
            event
        })
        .collect();
        let groups: Vec<(String, Vec<i64>)> = group_by_hour(&events)
            .into_iter()
            .map(|(partition, group)| {
                (partition.path(), group.iter().filter_map(|event| event.source_offset).collect())
            })
            .collect();
        assert_eq!(
            groups,
            [
                ("date=2026-11-26/hour=10".to_owned(), vec![0, 1, 3, 6]),
                ("date=2026-11-26/hour=11".to_owned(), vec![2, 5]),
                ("date=2026-11-27/hour=10".to_owned(), vec![4]),
            ]
        );
    }

    #[test]
    fn keys_are_deterministic_and_sort_by_offset() {
        let event = |offset: i64| {
            let mut event = AuditEvent::new(
                "2026-11-26T09:59:59Z".parse().unwrap(),
                Source::Postgres,
                LogFormat::PgauditJsonlog,
            );
            event.source_offset = Some(offset);
            event
        };
        let events = [event(812), event(4), event(90)];
        let stream = StreamId::for_file_prefix(b"2026-11-26 first line");
        let groups = group_by_hour(&events);
        let (partition, group) = groups.iter().next().unwrap();
        let key = event_file_key(&stream, partition, group).unwrap();
        assert_eq!(
            key,
            format!(
                "events/date=2026-11-26/hour=09/{stream}-00000000000000000004-00000000000000000812.parquet"
            )
        );
        assert_eq!(StreamId::for_file_prefix(b"2026-11-26 first line"), stream);
        assert_ne!(StreamId::for_file_prefix(b"2026-11-26 other line"), stream);
        assert_eq!(StreamId::for_kafka("pg.audit/x", 2).as_str(), "kafka-pg_audit_x-00002");
    }
}
