//! Events to Arrow record batches, in the schema of `rolewatch_event::schema`.

use std::borrow::Borrow;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use rolewatch_event::AuditEvent;
use rolewatch_event::schema::{UTC, event_schema};

use crate::LakeError;

/// How many text columns an event has (see [`texts`]).
const TEXT_COLUMNS: usize = 15;

/// `[source, format, server, database, role, client_addr, application, session_id, command,
/// class, statement, error_code, error_message, source_file, source_topic]` of an event.
fn texts(event: &AuditEvent) -> [Option<&str>; TEXT_COLUMNS] {
    [
        Some(event.source.as_str()),
        Some(event.format.as_str()),
        event.server.as_deref(),
        event.database.as_deref(),
        event.role.as_deref(),
        event.client_addr.as_deref(),
        event.application.as_deref(),
        event.session_id.as_deref(),
        Some(event.command.as_str()),
        Some(event.class.as_str()),
        event.statement.as_deref(),
        event.error_code.as_deref(),
        event.error_message.as_deref(),
        event.source_file.as_deref(),
        event.source_topic.as_deref(),
    ]
}

/// The bytes each text column and each list column will hold, found in one pass, so that no
/// builder grows while it is filled: grown by doubling, the value buffer of a chunk's
/// statements was copied several times and faulted in fresh pages each time.
#[derive(Default)]
struct Sizes {
    text: [usize; TEXT_COLUMNS],
    objects: (usize, usize),
    parameters: (usize, usize),
}

impl Sizes {
    fn of(events: &[&AuditEvent]) -> Self {
        let mut sizes = Sizes::default();
        fn list<T: AsRef<str>>((items, bytes): &mut (usize, usize), values: &[T]) {
            *items += values.len();
            *bytes += values.iter().map(|value| value.as_ref().len()).sum::<usize>();
        }
        for event in events {
            for (total, value) in sizes.text.iter_mut().zip(texts(event)) {
                *total += value.map_or(0, str::len);
            }
            list(&mut sizes.objects, &event.objects);
            list::<String>(&mut sizes.parameters, event.parameters.as_deref().unwrap_or_default());
        }
        sizes
    }
}

fn unsigned(value: Option<u64>) -> Option<i64> {
    value.and_then(|value| i64::try_from(value).ok())
}

fn append_list<T: AsRef<str>>(builder: &mut ListBuilder<StringBuilder>, values: Option<&[T]>) {
    match values {
        Some(values) => {
            for value in values {
                builder.values().append_value(value.as_ref());
            }
            builder.append(true);
        }
        None => builder.append(false),
    }
}

/// The columns of a batch as it is filled, one event (row) at a time: each event is read once,
/// where filling column after column read the chunk's 26 MB of events once per column.
struct Columns {
    ts: Vec<i64>,
    text: [StringBuilder; TEXT_COLUMNS],
    client_port: Int32Builder,
    objects: ListBuilder<StringBuilder>,
    parameters: ListBuilder<StringBuilder>,
    rows: Int64Builder,
    success: BooleanBuilder,
    statement_id: Int64Builder,
    substatement_id: Int64Builder,
    source_line: Int64Builder,
    source_partition: Int32Builder,
    source_offset: Int64Builder,
}

impl Columns {
    fn with_capacity(rows: usize, sizes: &Sizes) -> Self {
        let list = |(items, bytes): (usize, usize)| {
            ListBuilder::with_capacity(StringBuilder::with_capacity(items, bytes), rows)
        };
        Self {
            ts: Vec::with_capacity(rows),
            text: sizes.text.map(|bytes| StringBuilder::with_capacity(rows, bytes)),
            client_port: Int32Builder::with_capacity(rows),
            objects: list(sizes.objects),
            parameters: list(sizes.parameters),
            rows: Int64Builder::with_capacity(rows),
            success: BooleanBuilder::with_capacity(rows),
            statement_id: Int64Builder::with_capacity(rows),
            substatement_id: Int64Builder::with_capacity(rows),
            source_line: Int64Builder::with_capacity(rows),
            source_partition: Int32Builder::with_capacity(rows),
            source_offset: Int64Builder::with_capacity(rows),
        }
    }

    fn append(&mut self, event: &AuditEvent) {
        self.ts.push(event.ts.timestamp_micros());
        for (builder, value) in self.text.iter_mut().zip(texts(event)) {
            builder.append_option(value);
        }
        self.client_port.append_option(event.client_port.map(i32::from));
        append_list(&mut self.objects, Some(&event.objects));
        append_list(&mut self.parameters, event.parameters.as_deref());
        self.rows.append_option(unsigned(event.rows));
        self.success.append_value(event.success);
        self.statement_id.append_option(unsigned(event.statement_id));
        self.substatement_id.append_option(unsigned(event.substatement_id));
        self.source_line.append_option(unsigned(event.source_line));
        self.source_partition.append_option(event.source_partition);
        self.source_offset.append_option(event.source_offset);
    }

    /// The arrays in the order of [`event_schema`].
    fn finish(mut self) -> Vec<ArrayRef> {
        let [
            source,
            format,
            server,
            database,
            role,
            client_addr,
            application,
            session_id,
            command,
            class,
            statement,
            error_code,
            error_message,
            source_file,
            source_topic,
        ] = self.text.map(|mut builder| Arc::new(builder.finish()) as ArrayRef);
        vec![
            Arc::new(TimestampMicrosecondArray::from(self.ts).with_timezone(UTC)),
            source,
            format,
            server,
            database,
            role,
            client_addr,
            Arc::new(self.client_port.finish()),
            application,
            session_id,
            command,
            class,
            Arc::new(self.objects.finish()),
            statement,
            Arc::new(self.parameters.finish()),
            Arc::new(self.rows.finish()),
            Arc::new(self.success.finish()),
            error_code,
            error_message,
            Arc::new(self.statement_id.finish()),
            Arc::new(self.substatement_id.finish()),
            source_file,
            Arc::new(self.source_line.finish()),
            source_topic,
            Arc::new(self.source_partition.finish()),
            Arc::new(self.source_offset.finish()),
        ]
    }
}

/// The events as one Arrow batch in [`event_schema`].
pub fn events_to_batch<E: Borrow<AuditEvent>>(events: &[E]) -> Result<RecordBatch, LakeError> {
    let events: Vec<&AuditEvent> = events.iter().map(Borrow::borrow).collect();
    let mut columns = Columns::with_capacity(events.len(), &Sizes::of(&events));
    for event in &events {
        columns.append(event);
    }
    Ok(RecordBatch::try_new(event_schema(), columns.finish())?)
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
