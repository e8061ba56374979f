/// Everything that can go wrong in the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake location could not be opened.
    #[error("cannot open lake at {location}: {source}")]
    Open {
        /// The path or URL.
        location: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The object store failed; `transient` says whether retrying may help.
    #[error("object store error on {key}: {source}")]
    Store {
        /// The object key.
        key: String,
        /// The cause.
        source: object_store::Error,
    },
    /// An object already exists at a key with different content: a hostile or stale writer,
    /// or tampering. The existing object was left untouched.
    #[error(
        "integrity violation: {key} already exists with different content (stored sha256 {stored_sha256}, new sha256 {new_sha256})"
    )]
    Integrity {
        /// The object key.
        key: String,
        /// SHA-256 of the object already stored.
        stored_sha256: String,
        /// SHA-256 of what we would have written.
        new_sha256: String,
    },
    /// A stored object read back does not hash to what was recorded when it was written.
    #[error("{key} changed since it was written (recorded sha256 {recorded_sha256}, found {found_sha256})")]
    Changed {
        /// The object key.
        key: String,
        /// SHA-256 recorded when it was written.
        recorded_sha256: String,
        /// SHA-256 of what is stored now.
        found_sha256: String,
    },
    /// Events without a source offset cannot be named deterministically.
    #[error("event at {ts} has no source offset: cannot name its file deterministically")]
    MissingOffset {
        /// The event's time.
        ts: String,
    },
    /// A manifest could not be read or written.
    #[error("manifest {key}: {reason}")]
    Manifest {
        /// The manifest's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another object sits at the key of the next manifest and does not extend the chain: a
    /// hostile writer, or a writer that forked the chain. Nothing was overwritten.
    #[error("manifest conflict at {key}: {reason}")]
    ManifestConflict {
        /// The manifest key.
        key: String,
        /// Why the existing object cannot be built on.
        reason: String,
    },
    /// A commit was asked for that would make the lake wrong.
    #[error("invalid commit: {reason}")]
    InvalidCommit {
        /// Why.
        reason: String,
    },
    /// A commit covers part of a stream that is already durable: committing it would duplicate
    /// records. Resume from `resume_at` instead.
    #[error(
        "stream {stream} is durable up to {resume_at}; a commit starting at {start} would duplicate records"
    )]
    Overlap {
        /// The stream.
        stream: String,
        /// Where the durable part ends (next offset or byte).
        resume_at: u64,
        /// Where the rejected range starts.
        start: u64,
    },
    /// A signing key could not be loaded or read. Never contains the key.
    #[error("signing key: {reason}")]
    Key {
        /// Why.
        reason: String,
    },
    /// The lake location (path or URL) or its S3 settings are not usable.
    #[error("lake location {location}: {reason}")]
    Location {
        /// The path or URL.
        location: String,
        /// Why.
        reason: String,
    },
    /// A SQL query failed.
    #[error("query: {0}")]
    Query(String),
    /// Arrow could not build a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Parquet could not encode or decode a file.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The object store could not be configured.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// A background task failed.
    #[error("background task failed: {0}")]
    Task(String),
}
