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
//! * **Exactly once.** [`Lake::ingest_chunk`] writes a chunk's files and then a [`Manifest`] in
//!   `_manifests/<seq:020>.json` listing them with the source range they cover. A range is
//!   durable once its manifest exists ([`Lake::durable_positions`]); ingesting it again writes
//!   nothing ([`CommitOutcome::AlreadyDurable`]). A writer that cuts chunks by wall clock
//!   declares each chunk's range first ([`Lake::declare_chunk`], under `_chunks/`), so that a
//!   restart after a crash before the manifest cuts the same chunk again
//!   ([`Lake::next_declared_chunk`]) and commits the files the crash left.
//! * **Tamper-evident.** Each manifest carries the previous one's SHA-256 (and optionally an
//!   Ed25519 signature), heartbeats mark quiet periods ([`Lake::heartbeat_if_idle`]), and
//!   [`verify`] walks the whole chain and every file and names every problem.
//! * **Queryable.** [`query`] runs DataFusion SQL over `events` and `dead_letters`; DuckDB and
//!   pyarrow read the folders as they are. `docs/lake.md` documents the format.
//!
//! ```no_run
//! # async fn example(events: Vec<rolewatch_event::AuditEvent>) -> Result<(), rolewatch_lake::LakeError> {
//! use rolewatch_lake::{CoveredRange, Lake, StreamId, VerifyOptions, query, verify};
//!
//! let lake = Lake::open("./rolewatch-data")?; // or "s3://bucket/prefix"
//! let stream = StreamId::for_file_prefix(b"first bytes of the log file");
//! let resume = lake.durable_positions().await?.get(&stream).map_or(0, CoveredRange::resume_at);
//! let range = CoveredRange::File { path: "audit.json".into(), start_byte: resume, end_byte: resume + 4096 };
//! let now = chrono::Utc::now();
//! lake.ingest_chunk(&stream, &events, &[], range, now).await?;
//! let report = verify(&lake, &VerifyOptions::new(now)).await?;
//! println!("{report}");
//! let batches = query(&lake, "SELECT role, count(*) FROM events GROUP BY role").await?;
//! # Ok(()) }
//! ```

mod batch;
mod chain;
mod dead_letter;
mod declared;
mod error;
mod location;
mod manifest;
mod naming;
mod query;
mod read_only;
mod roll;
mod scan;
mod signing;
mod store;
mod ts_pruning;
mod unbatch;
mod verify;

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use rolewatch_event::AuditEvent;

pub use batch::events_to_batch;
pub use chain::{CommitOutcome, incident_of};
pub use dead_letter::{DeadLetter, dead_letter_schema};
pub use declared::CHUNKS_PREFIX;
/// The public key type of [`VerifyOptions::trusted_keys`] (read one with [`parse_public_key`]).
pub use ed25519_dalek::VerifyingKey;
pub use error::LakeError;
pub use location::{LakeLocation, S3Options};
pub use manifest::{
    CoveredRange, FileKind, Incident, MANIFEST_FORMAT, MANIFESTS_PREFIX, Manifest, ManifestFile,
    ManifestKind, ManifestRef, PreviousManifest, manifest_key, parse_manifest_key,
};
pub use naming::{FINGERPRINT_BYTES, HourPartition, StreamId, event_file_key};
pub use query::{QueryTable, query, query_context};
pub use roll::{ChunkSoFar, RollPolicy, should_roll_file};
pub use scan::StoredHour;
pub use signing::{
    KeySource, ManifestSignature, ManifestSigner, SIGNATURE_ALGORITHM, key_id, parse_public_key,
};
pub use store::{PutStatus, RetryPolicy, WrittenFile, encode_parquet};
pub use unbatch::batch_to_events;
pub use verify::{Problem, VerifyOptions, VerifyReport, verify};

/// The prefix of event files in the lake.
pub const EVENTS_PREFIX: &str = "events";
/// The prefix of dead-letter files in the lake.
pub const DEAD_LETTERS_PREFIX: &str = "dead_letters";

/// A lake: an object store holding event and dead-letter files and the manifest chain.
///
/// Clones share one view of the chain, so one process appends to it through any clone.
#[derive(Debug, Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    location: Option<LakeLocation>,
    retry: RetryPolicy,
    signer: Option<Arc<ManifestSigner>>,
    chain: Arc<tokio::sync::Mutex<Option<chain::ChainState>>>,
}

impl Lake {
    /// Opens (creating it if needed) a lake in a local directory, with fsync on every write.
    pub fn open_local(path: &Path) -> Result<Self, LakeError> {
        Self::open_location(LakeLocation::Local(path.to_path_buf()))
    }

    /// Opens a lake by path or URL: a local directory, `file:///dir`, or `s3://bucket/prefix`
    /// with the S3 settings from the environment ([`S3Options::from_env`]).
    pub fn open(location: &str) -> Result<Self, LakeError> {
        Self::open_location(LakeLocation::parse(location, S3Options::from_env())?)
    }

    /// Opens a lake at a parsed location.
    pub fn open_location(location: LakeLocation) -> Result<Self, LakeError> {
        let store = location.build_store()?;
        let mut lake = Self::with_store(store);
        lake.location = Some(location);
        Ok(lake)
    }

    /// A lake on any object store (S3-compatible, in-memory for tests, a fault injector).
    /// [`query`] needs a lake opened by location instead.
    pub fn with_store(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            location: None,
            retry: RetryPolicy::default(),
            signer: None,
            chain: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// Signs every manifest this lake writes from now on.
    #[must_use]
    pub fn with_signer(mut self, signer: ManifestSigner) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// Retries puts and reads by `retry` instead of the default policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Where the lake is, if it was opened by location.
    pub fn location(&self) -> Option<&LakeLocation> {
        self.location.as_ref()
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
            // The batch is built here, from references; only the encoding (the costly part)
            // moves to a blocking thread, with the batch's shared buffers.
            let batch = events_to_batch(&group)?;
            let metadata = vec![
                (
                    "rolewatch.schema_version".to_owned(),
                    rolewatch_event::schema::EVENT_SCHEMA_VERSION.to_owned(),
                ),
                ("rolewatch.stream".to_owned(), stream.as_str().to_owned()),
            ];
            let bytes = tokio::task::spawn_blocking(move || encode_parquet(&batch, metadata))
                .await
                .map_err(|error| LakeError::Task(error.to_string()))??;
            written.push(store::put_once(self.store.as_ref(), &self.retry, &key, bytes, rows).await?);
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
        Ok(Some(store::put_once(self.store.as_ref(), &self.retry, &key, bytes, rows).await?))
    }

    /// Reads one event file back as events, checking that it still hashes to `sha256` (hex, as
    /// a manifest or [`WrittenFile`] records it).
    pub async fn read_event_file(&self, key: &str, sha256: &str) -> Result<Vec<AuditEvent>, LakeError> {
        store::read_events_checked(self.store.as_ref(), key, sha256).await
    }

    /// Reads every event file back as record batches (in key order). For tests and backtests
    /// over small lakes; `rolewatch query` is the way to read a large one.
    pub async fn read_event_batches(&self) -> Result<Vec<arrow_array::RecordBatch>, LakeError> {
        store::read_all_batches(self.store.as_ref(), EVENTS_PREFIX).await
    }
}
