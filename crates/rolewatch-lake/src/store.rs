//! Create-only puts and Parquet encoding.

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use crate::LakeError;

/// zstd level 1. Levels >= 6 cost 2.5x the time for 7 % less size (shared PERFORMANCE.md); and
/// after dictionary, delta and plain encodings have done their part, level 1 made the pgbench
/// log's files no larger than level 3 (5,470,301 against 5,483,198 bytes) in 3 % less ingest
/// time (BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 1;

/// What happened to a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    /// The object was created.
    Created,
    /// An identical object was already there: a replay, counted as success.
    Replayed,
}

/// A file the lake holds after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The object key, relative to the lake root.
    pub key: String,
    /// Rows in the file.
    pub rows: usize,
    /// Size in bytes.
    pub bytes: usize,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Whether it was created now or found identical.
    pub status: PutStatus,
}

/// Integer columns that grow along a file (positions in the source, event time): stored as
/// deltas (`DELTA_BINARY_PACKED`) rather than through a dictionary, where nearly every value is
/// new. On the benchmark log this took the two position columns from 8 bytes per row to under
/// one.
const DELTA_COLUMNS: [&str; 3] = ["source_offset", "source_line", "ts"];

/// String columns with many distinct values: stored plain, so that zstd sees the repeated
/// strings. Session ids come in short runs (dictionary indices of a few thousand values compress
/// worse); statements carry literals and are nearly all distinct, so a dictionary only costs a
/// hash per row until it overflows (plain took the pgbench log's files from 5.84 to 5.50 MB).
const PLAIN_COLUMNS: [&str; 2] = ["session_id", "statement"];

/// Free-text columns without min/max statistics: the bounds of SQL text or error messages prune
/// nothing a query asks for (every page holds statements from `ALTER` to `UPDATE`), and computing
/// them compared each pair of long statements byte by byte.
const NO_STATISTICS_COLUMNS: [&str; 2] = ["statement", "error_message"];

/// Encodes a batch as one zstd Parquet file with page statistics (not for free text),
/// dictionary encoding (delta encoding for the position and time columns) and the given key-value metadata. The output depends only
/// on the batch and the metadata.
pub fn encode_parquet(
    batch: &arrow_array::RecordBatch,
    metadata: Vec<(String, String)>,
) -> Result<Bytes, LakeError> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL)?;
    let mut builder = WriterProperties::builder();
    for column in PLAIN_COLUMNS {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    for column in NO_STATISTICS_COLUMNS {
        builder = builder.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    for column in DELTA_COLUMNS {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
    }
    let properties = builder
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(
            metadata.into_iter().map(|(key, value)| KeyValue::new(key, value)).collect(),
        ))
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// How often and how patiently a put is retried when the store fails in a way that may pass
/// (a 5xx, a timeout, a full disk). A retry of a create-only put that had landed comes back as
/// "already exists" and is settled by comparing bytes. Against S3 the client retries transport
/// errors and 5xx answers itself first (at most 3 times within 15 s, see `location.rs`), so these
/// attempts come on top of the client's: a lost answer is usually settled inside the client
/// (tests/store_faults.rs), and a store that stays down fails all of them within tens of seconds
/// (the partition then stalls and is retried later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each failure.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Whether an object store error may go away if the same request is made again.
pub(crate) fn is_transient(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::Generic { .. } | object_store::Error::JoinError { .. })
}

/// What a create-only put found.
#[derive(Debug)]
pub(crate) enum CreateOutcome {
    /// The object was created.
    Created,
    /// An object with the same bytes was there (a replay, or an earlier attempt that landed).
    Identical,
    /// An object with other bytes was there; it was not touched.
    Different {
        /// What is stored.
        stored: Bytes,
    },
}

/// Puts `bytes` at `key` with `PutMode::Create`, retrying transient failures; an existing object
/// is read and compared, never overwritten.
pub(crate) async fn put_create(
    store: &dyn ObjectStore,
    retry: &RetryPolicy,
    key: &str,
    bytes: &Bytes,
) -> Result<CreateOutcome, LakeError> {
    let location = ObjectPath::from(key);
    let store_error = |source| LakeError::Store { key: key.to_owned(), source };
    let mut attempt = 1;
    loop {
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        let result = store.put_opts(&location, PutPayload::from_bytes(bytes.clone()), options).await;
        match result {
            Ok(_) => return Ok(CreateOutcome::Created),
            // Azure reports a failed create as a precondition failure (RELIABILITY.md 2.2).
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                let stored = get_with_retry(store, retry, &location).await.map_err(store_error)?;
                if stored == *bytes {
                    return Ok(CreateOutcome::Identical);
                }
                return Ok(CreateOutcome::Different { stored });
            }
            Err(error) if is_transient(&error) && attempt < retry.attempts.max(1) => {
                let wait = retry.backoff(attempt);
                tracing::warn!(key, attempt, wait_ms = wait.as_millis(), %error, "put failed, retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(source) => return Err(store_error(source)),
        }
    }
}

/// Reads a whole object, retrying transient failures.
pub(crate) async fn get_with_retry(
    store: &dyn ObjectStore,
    retry: &RetryPolicy,
    location: &ObjectPath,
) -> Result<Bytes, object_store::Error> {
    let mut attempt = 1;
    loop {
        let result = match store.get(location).await {
            Ok(got) => got.bytes().await,
            Err(error) => Err(error),
        };
        match result {
            Err(error) if is_transient(&error) && attempt < retry.attempts.max(1) => {
                tokio::time::sleep(retry.backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Hex SHA-256 of some bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Puts `bytes` at `key` only if nothing is there. If something is, compares content: identical
/// is a replay, different is an integrity error. Never overwrites.
pub(crate) async fn put_once(
    store: &dyn ObjectStore,
    retry: &RetryPolicy,
    key: &str,
    bytes: Bytes,
    rows: usize,
) -> Result<WrittenFile, LakeError> {
    let sha256 = sha256_hex(&bytes);
    let size = bytes.len();
    let status = match put_create(store, retry, key, &bytes).await? {
        CreateOutcome::Created => PutStatus::Created,
        CreateOutcome::Identical => PutStatus::Replayed,
        CreateOutcome::Different { stored } => {
            let stored_sha256 = sha256_hex(&stored);
            tracing::error!(key, %stored_sha256, new_sha256 = %sha256, "integrity violation: object exists with other content");
            return Err(LakeError::Integrity { key: key.to_owned(), stored_sha256, new_sha256: sha256 });
        }
    };
    Ok(WrittenFile { key: key.to_owned(), rows, bytes: size, sha256, status })
}

/// Reads every `.parquet` object under `prefix`, in key order.
pub(crate) async fn read_all_batches(
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<Vec<arrow_array::RecordBatch>, LakeError> {
    let prefix_path = ObjectPath::from(prefix);
    let mut objects: Vec<_> = store.list(Some(&prefix_path)).try_collect().await?;
    objects.retain(|meta| meta.location.as_ref().ends_with(".parquet"));
    objects.sort_by(|left, right| left.location.cmp(&right.location));
    let mut batches = Vec::new();
    for meta in objects {
        let bytes = store.get(&meta.location).await?.bytes().await?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        for batch in reader {
            batches.push(batch?);
        }
    }
    Ok(batches)
}

/// Reads the event file at `key`, checks its SHA-256 against `sha256` and decodes its events.
pub(crate) async fn read_events_checked(
    store: &dyn ObjectStore,
    key: &str,
    sha256: &str,
) -> Result<Vec<rolewatch_event::AuditEvent>, LakeError> {
    let bytes = store
        .get(&ObjectPath::from(key))
        .await
        .map_err(|source| LakeError::Store { key: key.to_owned(), source })?
        .bytes()
        .await
        .map_err(|source| LakeError::Store { key: key.to_owned(), source })?;
    let found = hex::encode(Sha256::digest(&bytes));
    if found != sha256 {
        return Err(LakeError::Changed {
            key: key.to_owned(),
            recorded_sha256: sha256.to_owned(),
            found_sha256: found,
        });
    }
    let mut events = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
        events.extend(crate::batch_to_events(&batch?)?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn create_only_put_recognizes_replays_and_refuses_overwrites() {
        let store = Arc::new(InMemory::new());
        let put = |content: &'static [u8]| {
            let store = Arc::clone(&store);
            async move {
                put_once(
                    store.as_ref(),
                    &RetryPolicy::default(),
                    "events/x.parquet",
                    Bytes::from_static(content),
                    1,
                )
                .await
            }
        };
        assert_eq!(put(b"abc").await.unwrap().status, PutStatus::Created);
        assert_eq!(put(b"abc").await.unwrap().status, PutStatus::Replayed);
        let error = put(b"abd").await.unwrap_err();
        assert!(matches!(error, LakeError::Integrity { .. }), "{error}");
        let stored = store.get(&ObjectPath::from("events/x.parquet")).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored.as_ref(), b"abc", "the existing object must be untouched");
    }
}
