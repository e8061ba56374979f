//! Reading events back in time order, one hour partition at a time, for backtests
//! (`rolewatch detect --lake`). Partitions outside the requested range are never opened.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rolewatch_event::AuditEvent;

use crate::{EVENTS_PREFIX, Lake, LakeError, batch_to_events};

/// One hour partition of the events table, as found in the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHour {
    /// The start of the hour.
    pub start: DateTime<Utc>,
    /// The event files of the hour, by key.
    pub keys: Vec<String>,
}

/// Parses `events/date=YYYY-MM-DD/hour=HH/<file>` into the hour's start.
fn hour_of_key(key: &str) -> Option<DateTime<Utc>> {
    let mut parts = key.strip_prefix(EVENTS_PREFIX)?.trim_start_matches('/').split('/');
    let date = NaiveDate::parse_from_str(parts.next()?.strip_prefix("date=")?, "%Y-%m-%d").ok()?;
    let hour: u32 = parts.next()?.strip_prefix("hour=")?.parse().ok()?;
    Some(date.and_hms_opt(hour, 0, 0)?.and_utc())
}

impl Lake {
    /// The hour partitions holding events in `[since, until)` (either end open when `None`),
    /// in time order, with their `.parquet` files.
    pub async fn event_hours(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<StoredHour>, LakeError> {
        let prefix = ObjectPath::from(EVENTS_PREFIX);
        let objects: Vec<_> = self.store().list(Some(&prefix)).try_collect().await?;
        let mut hours: BTreeMap<DateTime<Utc>, Vec<String>> = BTreeMap::new();
        for meta in objects {
            let key = meta.location.to_string();
            let Some(start) = hour_of_key(&key) else { continue };
            let overlaps = since.is_none_or(|since| start + TimeDelta::hours(1) > since)
                && until.is_none_or(|until| start < until);
            if key.ends_with(".parquet") && overlaps {
                hours.entry(start).or_default().push(key);
            }
        }
        Ok(hours
            .into_iter()
            .map(|(start, mut keys)| {
                keys.sort();
                StoredHour { start, keys }
            })
            .collect())
    }

    /// The events of one hour that fall in `[since, until)`, in time order (ties in source
    /// order: file or topic and partition, then offset).
    pub async fn read_hour(
        &self,
        hour: &StoredHour,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEvent>, LakeError> {
        let mut events = Vec::new();
        for key in &hour.keys {
            let location = ObjectPath::from(key.as_str());
            let bytes = self
                .store()
                .get(&location)
                .await
                .map_err(|source| LakeError::Store { key: key.clone(), source })?
                .bytes()
                .await
                .map_err(|source| LakeError::Store { key: key.clone(), source })?;
            let decoded = tokio::task::spawn_blocking(move || -> Result<Vec<AuditEvent>, LakeError> {
                let mut events = Vec::new();
                for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                    events.extend(batch_to_events(&batch?)?);
                }
                Ok(events)
            })
            .await
            .map_err(|error| LakeError::Task(error.to_string()))??;
            events.extend(decoded);
        }
        events.retain(|event| {
            since.is_none_or(|since| event.ts >= since) && until.is_none_or(|until| event.ts < until)
        });
        events.sort_by(|left, right| {
            (left.ts, &left.source_file, &left.source_topic, left.source_partition, left.source_offset).cmp(
                &(
                    right.ts,
                    &right.source_file,
                    &right.source_topic,
                    right.source_partition,
                    right.source_offset,
                ),
            )
        });
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use rolewatch_event::{LogFormat, Source, SourcePosition};

    use super::*;
    use crate::StreamId;

    fn event(ts: &str, offset: u64) -> AuditEvent {
        let mut event = AuditEvent::new(ts.parse().unwrap(), Source::Postgres, LogFormat::PgauditJsonlog);
        event.command = "SELECT".into();
        event.set_position(&SourcePosition::File { file: "pg.json".into(), line: offset + 1, offset });
        event
    }

    #[tokio::test]
    async fn reads_the_requested_range_in_time_order_without_opening_other_hours() {
        let lake = Lake::with_store(Arc::new(InMemory::new()));
        let first = StreamId::for_file_prefix(b"first file");
        let second = StreamId::for_file_prefix(b"second file");
        lake.write_events(&first, &[event("2026-11-26T09:10:00Z", 0), event("2026-11-26T10:30:00Z", 1)])
            .await
            .unwrap();
        lake.write_events(&second, &[event("2026-11-26T10:05:00Z", 0), event("2026-11-26T12:00:00Z", 1)])
            .await
            .unwrap();

        let since = Some("2026-11-26T10:00:00Z".parse().unwrap());
        let until = Some("2026-11-26T12:00:00Z".parse().unwrap());
        let hours = lake.event_hours(since, until).await.unwrap();
        let starts: Vec<String> = hours.iter().map(|hour| hour.start.to_rfc3339()).collect();
        assert_eq!(starts, ["2026-11-26T10:00:00+00:00"]);
        assert_eq!(hours[0].keys.len(), 2, "one file per stream");
        let events = lake.read_hour(&hours[0], since, until).await.unwrap();
        let times: Vec<String> = events.iter().map(|event| event.ts.to_rfc3339()).collect();
        assert_eq!(times, ["2026-11-26T10:05:00+00:00", "2026-11-26T10:30:00+00:00"]);

        let everything = lake.event_hours(None, None).await.unwrap();
        assert_eq!(everything.len(), 3);
    }

    #[test]
    fn keys_outside_the_layout_are_ignored() {
        assert!(hour_of_key("events/date=2026-11-26/hour=07/x.parquet").is_some());
        assert!(hour_of_key("events/date=2026-13-26/hour=07/x.parquet").is_none());
        assert!(hour_of_key("events/date=2026-11-26/hour=24/x.parquet").is_none());
        assert!(hour_of_key("dead_letters/x.parquet").is_none());
    }
}
