//! Events to Arrow record batches, in the schema of `rolewatch_event::schema`.

use std::borrow::Borrow;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use rolewatch_event::AuditEvent;
use rolewatch_event::schema::{UTC, event_schema};

use crate::LakeError;

/// A string column, its buffers sized in a first pass: grown by doubling, the value buffer of a
/// chunk's statements was copied several times and faulted in fresh pages each time.
fn text(events: &[&AuditEvent], get: impl Fn(&AuditEvent) -> Option<&str>) -> ArrayRef {
    let bytes = events.iter().map(|event| get(event).map_or(0, str::len)).sum();
    let mut builder = StringBuilder::with_capacity(events.len(), bytes);
    for event in events {
        builder.append_option(get(event));
    }
    Arc::new(builder.finish())
}

fn int64(events: &[&AuditEvent], get: impl Fn(&AuditEvent) -> Option<i64>) -> ArrayRef {
    Arc::new(events.iter().map(|event| get(event)).collect::<Int64Array>())
}

fn list_of_text<'a, T: AsRef<str> + 'a>(
    events: &[&'a AuditEvent],
    get: impl Fn(&'a AuditEvent) -> Option<&'a [T]>,
) -> ArrayRef {
    let (items, bytes) =
        events.iter().filter_map(|&event| get(event)).fold((0, 0), |(items, bytes), values| {
            (items + values.len(), bytes + values.iter().map(|value| value.as_ref().len()).sum::<usize>())
        });
    let mut builder = ListBuilder::with_capacity(StringBuilder::with_capacity(items, bytes), events.len());
    for &event in events {
        match get(event) {
            Some(values) => {
                for value in values {
                    builder.values().append_value(value.as_ref());
                }
                builder.append(true);
            }
            None => builder.append(false),
        }
    }
    Arc::new(builder.finish())
}

fn unsigned(value: Option<u64>) -> Option<i64> {
    value.and_then(|value| i64::try_from(value).ok())
}

/// Builds the `events` record batch for a slice of events (or of references to them, so that a
/// caller grouping a chunk need not copy it). Column order follows `event_schema()`.
pub fn events_to_batch<E: Borrow<AuditEvent>>(events: &[E]) -> Result<RecordBatch, LakeError> {
    let events: Vec<&AuditEvent> = events.iter().map(Borrow::borrow).collect();
    let events = events.as_slice();
    let ts: TimestampMicrosecondArray = events
        .iter()
        .map(|event| Some(event.ts.timestamp_micros()))
        .collect::<TimestampMicrosecondArray>()
        .with_timezone(UTC);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ts),
        text(events, |event| Some(event.source.as_str())),
        text(events, |event| Some(event.format.as_str())),
        text(events, |event| event.server.as_deref()),
        text(events, |event| event.database.as_deref()),
        text(events, |event| event.role.as_deref()),
        text(events, |event| event.client_addr.as_deref()),
        Arc::new(events.iter().map(|event| event.client_port.map(i32::from)).collect::<Int32Array>()),
        text(events, |event| event.application.as_deref()),
        text(events, |event| event.session_id.as_deref()),
        text(events, |event| Some(event.command.as_str())),
        text(events, |event| Some(event.class.as_str())),
        list_of_text(events, |event| Some(event.objects.as_slice())),
        text(events, |event| event.statement.as_deref()),
        list_of_text(events, |event| event.parameters.as_deref()),
        int64(events, |event| unsigned(event.rows)),
        Arc::new(events.iter().map(|event| Some(event.success)).collect::<BooleanArray>()),
        text(events, |event| event.error_code.as_deref()),
        text(events, |event| event.error_message.as_deref()),
        int64(events, |event| unsigned(event.statement_id)),
        int64(events, |event| unsigned(event.substatement_id)),
        text(events, |event| event.source_file.as_deref()),
        int64(events, |event| unsigned(event.source_line)),
        text(events, |event| event.source_topic.as_deref()),
        Arc::new(events.iter().map(|event| event.source_partition).collect::<Int32Array>()),
        int64(events, |event| event.source_offset),
    ];
    Ok(RecordBatch::try_new(event_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use rolewatch_event::{LogFormat, Source, SourcePosition, StatementClass};

    use super::*;

    #[test]
    fn builds_a_batch_in_the_schema() {
        let mut event = AuditEvent::new(
            "2026-11-26T10:00:00Z".parse().unwrap(),
            Source::Postgres,
            LogFormat::PgauditJsonlog,
        );
        event.class = StatementClass::Read;
        event.command = "SELECT".into();
        event.objects = vec!["public.a".into(), "public.b".into()];
        event.set_position(&SourcePosition::File { file: "f".into(), line: 1, offset: 0 });
        let mut second = event.clone();
        second.parameters = Some(vec!["7".into()]);
        let batch = events_to_batch(&[event, second]).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), event_schema());
    }
}
