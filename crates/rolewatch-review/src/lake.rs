//! Reading the lake's events for a period, straight from the Parquet files with the Arrow
//! reader: partitions (`events/date=YYYY-MM-DD/`) before the period are skipped by name, and
//! only the columns the review needs are decoded.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, RecordBatch};
use chrono::{DateTime, NaiveDate, Utc};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ReviewError;

/// The columns read, in the events schema's names.
const COLUMNS: [&str; 12] = [
    "ts",
    "source",
    "database",
    "role",
    "client_addr",
    "application",
    "session_id",
    "command",
    "class",
    "objects",
    "statement",
    "success",
];

/// One event, as much of it as the review needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEvent {
    /// When.
    pub ts: DateTime<Utc>,
    /// `postgres`, `mariadb`, `mysql`.
    pub source: String,
    /// The database of the session.
    pub database: Option<String>,
    /// The role that authenticated.
    pub role: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// The client application.
    pub application: Option<String>,
    /// The session id.
    pub session_id: Option<String>,
    /// The command tag.
    pub command: String,
    /// The statement class.
    pub class: String,
    /// The objects touched, `schema.table`.
    pub objects: Vec<String>,
    /// The statement text.
    pub statement: Option<String>,
    /// Whether it worked.
    pub success: bool,
}

/// The event files of `lake` that may hold events at or after `since`, in key order (date,
/// hour, name), so that a session's statements come in order.
pub fn event_files(lake: &Path, since: DateTime<Utc>) -> Result<Vec<PathBuf>, ReviewError> {
    let events = lake.join("events");
    let first_day = since.date_naive();
    let mut files = Vec::new();
    let mut days = list_dir(&events)?;
    days.sort();
    for day in days {
        let Some(date) = partition_value(&day, "date").and_then(|date| date.parse::<NaiveDate>().ok()) else {
            continue;
        };
        if date < first_day {
            continue;
        }
        let mut hours = list_dir(&day)?;
        hours.sort();
        for hour in hours {
            if partition_value(&hour, "hour").is_none() {
                continue;
            }
            let mut names = list_dir(&hour)?;
            names.retain(|path| path.extension().is_some_and(|extension| extension == "parquet"));
            names.sort();
            files.extend(names);
        }
    }
    Ok(files)
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, ReviewError> {
    let io_error = |source| ReviewError::LakeIo { path: dir.display().to_string(), source };
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.map(|entry| entry.path()).map_err(io_error)).collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(io_error(error)),
    }
}

fn partition_value<'a>(path: &'a Path, key: &str) -> Option<&'a str> {
    path.file_name()?.to_str()?.strip_prefix(key)?.strip_prefix('=')
}

/// Reads one event file and hands every event at or after `since` to `visit`. Returns the
/// number of rows read.
pub fn read_event_file(
    path: &Path,
    since: DateTime<Utc>,
    visit: &mut dyn FnMut(ActivityEvent),
) -> Result<u64, ReviewError> {
    let bad = |reason: String| ReviewError::LakeFile { path: path.display().to_string(), reason };
    let file = File::open(path)
        .map_err(|source| ReviewError::LakeIo { path: path.display().to_string(), source })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|error| bad(error.to_string()))?;
    let schema = builder.schema().clone();
    let mut roots = Vec::with_capacity(COLUMNS.len());
    for name in COLUMNS {
        roots.push(schema.index_of(name).map_err(|_| bad(format!("no column {name}")))?);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).build().map_err(|error| bad(error.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|error| bad(error.to_string()))?;
        rows += u64::try_from(batch.num_rows()).unwrap_or(u64::MAX);
        decode_batch(&batch, since, visit).map_err(bad)?;
    }
    Ok(rows)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, String> {
    batch.column_by_name(name).ok_or_else(|| format!("no column {name}"))
}

fn decode_batch(
    batch: &RecordBatch,
    since: DateTime<Utc>,
    visit: &mut dyn FnMut(ActivityEvent),
) -> Result<(), String> {
    let ts = column(batch, "ts")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or("column ts is not a timestamp(µs)")?;
    let text_column = |name: &str| -> Result<&arrow_array::StringArray, String> {
        column(batch, name)?.as_string_opt::<i32>().ok_or_else(|| format!("column {name} is not a string"))
    };
    let source = text_column("source")?;
    let database = text_column("database")?;
    let role = text_column("role")?;
    let client_addr = text_column("client_addr")?;
    let application = text_column("application")?;
    let session_id = text_column("session_id")?;
    let command = text_column("command")?;
    let class = text_column("class")?;
    let statement = text_column("statement")?;
    let success = column(batch, "success")?.as_boolean_opt().ok_or("column success is not a boolean")?;
    let objects = column(batch, "objects")?.as_list_opt::<i32>().ok_or("column objects is not a list")?;
    let text = |array: &arrow_array::StringArray, row: usize| {
        array.is_valid(row).then(|| array.value(row).to_owned())
    };
    for row in 0..batch.num_rows() {
        if !ts.is_valid(row) {
            continue;
        }
        let Some(when) = DateTime::<Utc>::from_timestamp_micros(ts.value(row)) else { continue };
        if when < since {
            continue;
        }
        let object_names = if objects.is_valid(row) {
            let values = objects.value(row);
            values
                .as_string_opt::<i32>()
                .map(|names| names.iter().flatten().map(str::to_owned).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        visit(ActivityEvent {
            ts: when,
            source: text(source, row).unwrap_or_default(),
            database: text(database, row),
            role: text(role, row),
            client_addr: text(client_addr, row),
            application: text(application, row),
            session_id: text(session_id, row),
            command: text(command, row).unwrap_or_default(),
            class: text(class, row).unwrap_or_default(),
            objects: object_names,
            statement: text(statement, row),
            success: success.is_valid(row) && success.value(row),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_before_the_period_are_skipped_and_a_bad_file_is_an_error_not_a_panic() {
        let lake = tempfile::tempdir().unwrap();
        for (day, name) in
            [("2026-11-01", "old.parquet"), ("2026-11-20", "new.parquet"), ("2026-11-21", "notes.txt")]
        {
            let dir = lake.path().join(format!("events/date={day}/hour=10"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), b"not parquet").unwrap();
        }
        std::fs::create_dir_all(lake.path().join("events/not-a-partition")).unwrap();
        let since: DateTime<Utc> = "2026-11-15T00:00:00Z".parse().unwrap();
        let files = event_files(lake.path(), since).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].ends_with("date=2026-11-20/hour=10/new.parquet"));
        let error = read_event_file(&files[0], since, &mut |_| {}).unwrap_err().to_string();
        assert!(error.contains("new.parquet"), "{error}");
        assert!(
            event_files(&lake.path().join("missing"), since).unwrap().is_empty(),
            "an empty lake has no files"
        );
    }
}
