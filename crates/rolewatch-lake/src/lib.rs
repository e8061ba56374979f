//! The write-once Parquet lake of audit events.
//!
//! [`Lake`] stores [`AuditEvent`]s as zstd Parquet files under Hive-style time partitions,
//! `events/date=YYYY-MM-DD/hour=HH/`, through `object_store` (a local directory with fsync by
//! default). What it guarantees:
//!
//! * **Write-once.** Every object is written with `PutMode::Create` in a single put (never a
//!   multipart upload, which has no create-only mode). An existing object is never overwritten.
//! * **Deterministic names.** A file's name derives from the data it holds: the [`StreamId`]
//!   (a file's content fingerprint, or a Kafka topic and partition) and the first and last source
//!   offsets, zero-padded. Writing the same events again produces the same name and the same
//!   bytes, so a replay is recognized: `AlreadyExists` with identical content counts as success
//!   ([`PutStatus::Replayed`]); different content is an integrity error and the existing object is
//!   left untouched.
//! * **Nothing lost.** Records the parser rejected are stored as [`DeadLetter`]s under
//!   `dead_letters/`, raw bytes included, with the same naming and write-once rules.
//!
//! ```no_run
//! # async fn example(events: Vec<rolewatch_event::AuditEvent>) -> Result<(), rolewatch_lake::LakeError> {
//! use rolewatch_lake::{Lake, StreamId};
//!
//! let lake = Lake::open_local("./rolewatch-data".as_ref())?;
//! let stream = StreamId::for_file_prefix(b"first bytes of the log file");
//! for written in lake.write_events(&stream, &events).await? {
//!     println!("{} rows -> {} ({:?})", written.rows, written.key, written.status);
//! }
//! # Ok(()) }
//! ```

mod batch;
mod dead_letter;
mod error;
mod naming;
mod scan;
mod store;
mod unbatch;

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use rolewatch_event::AuditEvent;

pub use batch::events_to_batch;
pub use dead_letter::{DeadLetter, dead_letter_schema};
pub use error::LakeError;
pub use naming::{FINGERPRINT_BYTES, StreamId, event_file_key};
pub use scan::StoredHour;
pub use store::{PutStatus, WrittenFile, encode_parquet};
pub use unbatch::batch_to_events;

/// The prefix of event files in the lake.
pub const EVENTS_PREFIX: &str = "events";
/// The prefix of dead-letter files in the lake.
pub const DEAD_LETTERS_PREFIX: &str = "dead_letters";

/// A lake: an object store holding event and dead-letter files.
#[derive(Debug, Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
}

impl Lake {
    /// Opens (creating it if needed) a lake in a local directory, with fsync on every write.
    pub fn open_local(path: &Path) -> Result<Self, LakeError> {
        std::fs::create_dir_all(path)
            .map_err(|source| LakeError::Open { location: path.display().to_string(), source })?;
        let store = LocalFileSystem::new_with_prefix(path)?.with_fsync(true);
        Ok(Self::with_store(Arc::new(store)))
    }

    /// A lake on any object store (S3-compatible, in-memory for tests, a fault injector).
    pub fn with_store(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Writes events read from `stream`: one Parquet file per hour partition the events fall in.
    ///
    /// The events are one chunk of the stream, in source order; the caller chunks the stream the
    /// same way on every run so that a replay yields the same files.
    pub async fn write_events(
        &self,
        stream: &StreamId,
        events: &[AuditEvent],
    ) -> Result<Vec<WrittenFile>, LakeError> {
        let mut written = Vec::new();
        for (partition, group) in naming::group_by_hour(events) {
            let key = event_file_key(stream, &partition, &group)?;
            let rows = group.len();
            let group: Vec<AuditEvent> = group.into_iter().cloned().collect();
            let metadata = vec![
                (
                    "rolewatch.schema_version".to_owned(),
                    rolewatch_event::schema::EVENT_SCHEMA_VERSION.to_owned(),
                ),
                ("rolewatch.stream".to_owned(), stream.as_str().to_owned()),
            ];
            let bytes = tokio::task::spawn_blocking(move || {
                let batch = events_to_batch(&group)?;
                encode_parquet(&batch, metadata)
            })
            .await
            .map_err(|error| LakeError::Task(error.to_string()))??;
            written.push(store::put_once(self.store.as_ref(), &key, bytes, rows).await?);
        }
        Ok(written)
    }

    /// Writes the records the parser rejected from one chunk of `stream`, if there are any.
    pub async fn write_dead_letters(
        &self,
        stream: &StreamId,
        dead_letters: &[DeadLetter],
    ) -> Result<Option<WrittenFile>, LakeError> {
        let Some(key) = dead_letter::dead_letter_key(stream, dead_letters) else {
            return Ok(None);
        };
        let rows = dead_letters.len();
        let batch = dead_letter::dead_letters_to_batch(dead_letters)?;
        let bytes =
            encode_parquet(&batch, vec![("rolewatch.stream".to_owned(), stream.as_str().to_owned())])?;
        Ok(Some(store::put_once(self.store.as_ref(), &key, bytes, rows).await?))
    }

    /// Reads every event file back as record batches (in key order). For tests and backtests
    /// over small lakes; `rolewatch query` is the way to read a large one.
    pub async fn read_event_batches(&self) -> Result<Vec<arrow_array::RecordBatch>, LakeError> {
        store::read_all_batches(self.store.as_ref(), EVENTS_PREFIX).await
    }
}
