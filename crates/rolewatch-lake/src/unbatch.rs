//! Record batches of the `events` table back to events: the inverse of
//! [`events_to_batch`](crate::events_to_batch), for backtests over the lake
//! (`rolewatch detect --lake`).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::ArrowError;
use chrono::DateTime;
use rolewatch_event::{AuditEvent, LogFormat, Source, StatementClass, Text};

use crate::LakeError;

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("the events table has no column {name}")))
}

fn invalid(name: &str, row: usize, detail: impl std::fmt::Display) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("column {name}, row {row}: {detail}"))
}

/// Reads every row of an `events` batch (in the schema of `rolewatch_event::schema`) back
/// into an [`AuditEvent`]. Errors name the column and row that does not fit.
pub fn batch_to_events(batch: &RecordBatch) -> Result<Vec<AuditEvent>, LakeError> {
    let text_column = |name: &str| -> Result<_, ArrowError> {
        column(batch, name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| ArrowError::SchemaError(format!("column {name} is not text")))
    };
    let int64_column = |name: &str| -> Result<_, ArrowError> {
        column(batch, name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| ArrowError::SchemaError(format!("column {name} is not int64")))
    };
    let int32_column = |name: &str| -> Result<_, ArrowError> {
        column(batch, name)?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| ArrowError::SchemaError(format!("column {name} is not int32")))
    };
    let list_column = |name: &str| -> Result<_, ArrowError> {
        column(batch, name)?
            .as_list_opt::<i32>()
            .ok_or_else(|| ArrowError::SchemaError(format!("column {name} is not a list")))
    };
    let ts = column(batch, "ts")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| ArrowError::SchemaError("column ts is not a microsecond timestamp".into()))?;
    let success = column(batch, "success")?
        .as_boolean_opt()
        .ok_or_else(|| ArrowError::SchemaError("column success is not boolean".into()))?;
    let [source, format, server, database, role, client_addr, application, session_id, command, class] = [
        "source",
        "format",
        "server",
        "database",
        "role",
        "client_addr",
        "application",
        "session_id",
        "command",
        "class",
    ]
    .map(text_column);
    let (source, format, server, database, role, client_addr, application, session_id, command, class) = (
        source?,
        format?,
        server?,
        database?,
        role?,
        client_addr?,
        application?,
        session_id?,
        command?,
        class?,
    );
    let [statement, error_code, error_message, source_file, source_topic] =
        ["statement", "error_code", "error_message", "source_file", "source_topic"].map(text_column);
    let (statement, error_code, error_message, source_file, source_topic) =
        (statement?, error_code?, error_message?, source_file?, source_topic?);
    let [rows, statement_id, substatement_id, source_line, source_offset] =
        ["rows", "statement_id", "substatement_id", "source_line", "source_offset"].map(int64_column);
    let (rows, statement_id, substatement_id, source_line, source_offset) =
        (rows?, statement_id?, substatement_id?, source_line?, source_offset?);
    let client_port = int32_column("client_port")?;
    let source_partition = int32_column("source_partition")?;
    let objects = list_column("objects")?;
    let parameters = list_column("parameters")?;

    let optional_text = |array: &arrow_array::StringArray, row: usize| {
        array.is_valid(row).then(|| array.value(row).to_owned())
    };
    let optional_short = |array: &arrow_array::StringArray, row: usize| {
        array.is_valid(row).then(|| Text::from(array.value(row)))
    };
    let optional_shared = |array: &arrow_array::StringArray, row: usize| {
        array.is_valid(row).then(|| Arc::<str>::from(array.value(row)))
    };
    let optional_unsigned = |array: &arrow_array::Int64Array, name: &str, row: usize| {
        if array.is_null(row) {
            return Ok(None);
        }
        u64::try_from(array.value(row)).map(Some).map_err(|error| invalid(name, row, error))
    };
    fn list<T: for<'a> From<&'a str>>(array: &arrow_array::ListArray, row: usize) -> Option<Vec<T>> {
        if array.is_null(row) {
            return None;
        }
        let values = array.value(row);
        Some(values.as_string::<i32>().iter().map(|value| T::from(value.unwrap_or_default())).collect())
    }

    let mut events = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let ts = DateTime::from_timestamp_micros(ts.value(row))
            .ok_or_else(|| invalid("ts", row, "out of range"))?;
        let source: Source = source.value(row).parse().map_err(|error| invalid("source", row, error))?;
        let format: LogFormat = format.value(row).parse().map_err(|error| invalid("format", row, error))?;
        let mut event = AuditEvent::new(ts, source, format);
        event.server = optional_short(server, row);
        event.database = optional_short(database, row);
        event.role = optional_short(role, row);
        event.client_addr = optional_short(client_addr, row);
        event.client_port = if client_port.is_null(row) {
            None
        } else {
            Some(u16::try_from(client_port.value(row)).map_err(|error| invalid("client_port", row, error))?)
        };
        event.application = optional_short(application, row);
        event.session_id = optional_short(session_id, row);
        event.command = Text::from(command.value(row));
        event.class =
            class.value(row).parse::<StatementClass>().map_err(|error| invalid("class", row, error))?;
        event.objects = list(objects, row).unwrap_or_default();
        event.statement = optional_text(statement, row);
        event.parameters = list(parameters, row);
        event.rows = optional_unsigned(rows, "rows", row)?;
        event.success = success.value(row);
        event.error_code = optional_short(error_code, row);
        event.error_message = optional_text(error_message, row);
        event.statement_id = optional_unsigned(statement_id, "statement_id", row)?;
        event.substatement_id = optional_unsigned(substatement_id, "substatement_id", row)?;
        event.source_file = optional_shared(source_file, row);
        event.source_line = optional_unsigned(source_line, "source_line", row)?;
        event.source_topic = optional_shared(source_topic, row);
        event.source_partition = (!source_partition.is_null(row)).then(|| source_partition.value(row));
        event.source_offset = (!source_offset.is_null(row)).then(|| source_offset.value(row));
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rolewatch_event::SourcePosition;

    use super::*;
    use crate::events_to_batch;

    fn arbitrary_event() -> impl Strategy<Value = AuditEvent> {
        (
            0i64..4_000_000_000_000_000,
            prop::sample::select(LogFormat::ALL.to_vec()),
            prop::sample::select(StatementClass::ALL.to_vec()),
            prop::option::of("[a-z_]{1,12}"),
            prop::option::of(any::<u16>()),
            prop::collection::vec("[a-z]{1,8}\\.[a-z]{1,8}", 0..3),
            prop::option::of(prop::collection::vec(".{0,6}", 0..3)),
            prop::option::of(0u64..i64::MAX as u64),
            any::<bool>(),
            prop::option::of(".{0,40}"),
            (0u64..1 << 40, 1u64..1 << 30),
        )
            .prop_map(
                |(
                    micros,
                    format,
                    class,
                    role,
                    port,
                    objects,
                    parameters,
                    rows,
                    success,
                    statement,
                    position,
                )| {
                    let ts = DateTime::from_timestamp_micros(micros).unwrap_or_default();
                    let mut event = AuditEvent::new(ts, format.source(), format);
                    event.role = role.map(Text::from);
                    event.client_port = port;
                    event.class = class;
                    event.command = class.as_str().into();
                    event.objects = objects.into_iter().map(Text::from).collect();
                    event.parameters = parameters;
                    event.rows = rows;
                    event.success = success;
                    event.statement = statement;
                    let (offset, line) = position;
                    event.set_position(&SourcePosition::File { file: "pg.json".into(), line, offset });
                    event
                },
            )
    }

    proptest! {
        #[test]
        fn events_survive_a_round_trip_through_a_batch(events in prop::collection::vec(arbitrary_event(), 0..20)) {
            let batch = events_to_batch(&events).unwrap();
            prop_assert_eq!(batch_to_events(&batch).unwrap(), events);
        }
    }
}
