//! The Arrow schema of the lake's `events` table.
//!
//! Column names equal the JSON keys of [`AuditEvent`](crate::AuditEvent). Types are the ones
//! analysts' engines expect: `ts` is a UTC timestamp in microseconds, `objects` and `parameters`
//! are lists of strings, counters are signed 64-bit (Athena and Trino have no unsigned types).

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The time zone written into the `ts` column type.
pub const UTC: &str = "UTC";

/// The schema version written into each Parquet file's metadata (`rolewatch.schema_version`).
pub const EVENT_SCHEMA_VERSION: &str = "1";

static EVENT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let list_of_text = |name: &str, nullable: bool| {
        Field::new(name, DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), nullable)
    };
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())), false),
        Field::new("source", DataType::Utf8, false),
        Field::new("format", DataType::Utf8, false),
        text("server"),
        text("database"),
        text("role"),
        text("client_addr"),
        Field::new("client_port", DataType::Int32, true),
        text("application"),
        text("session_id"),
        Field::new("command", DataType::Utf8, false),
        Field::new("class", DataType::Utf8, false),
        list_of_text("objects", false),
        text("statement"),
        list_of_text("parameters", true),
        Field::new("rows", DataType::Int64, true),
        Field::new("success", DataType::Boolean, false),
        text("error_code"),
        text("error_message"),
        Field::new("statement_id", DataType::Int64, true),
        Field::new("substatement_id", DataType::Int64, true),
        text("source_file"),
        Field::new("source_line", DataType::Int64, true),
        text("source_topic"),
        Field::new("source_partition", DataType::Int32, true),
        Field::new("source_offset", DataType::Int64, true),
    ]))
});

/// The schema of the `events` table.
pub fn event_schema() -> SchemaRef {
    Arc::clone(&EVENT_SCHEMA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditEvent, LogFormat, Source};

    #[test]
    fn columns_are_the_json_keys_in_order() {
        let event = AuditEvent::new(chrono::Utc::now(), Source::Postgres, LogFormat::PgauditJsonlog);
        let json = serde_json::to_value(&event).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        let schema = event_schema();
        let columns: Vec<&String> = schema.fields().iter().map(|field| field.name()).collect();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort();
        let mut sorted_columns = columns.clone();
        sorted_columns.sort();
        assert_eq!(sorted_keys, sorted_columns);
    }
}
