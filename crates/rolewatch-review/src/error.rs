//! The review crate's one error type.

/// What can go wrong in an access review. Messages never carry a password: catalog URLs are
/// shown redacted.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The catalog URL cannot be used.
    #[error("invalid catalog URL {url}: {reason}")]
    CatalogUrl {
        /// The URL with its password replaced by `***`.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// Connecting to the catalog or reading it failed.
    #[error("catalog {url}: {step}: {source}")]
    Catalog {
        /// The URL with its password replaced by `***`.
        url: String,
        /// What rolewatch was doing: `connect`, `read pg_roles`, ...
        step: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The server did not confirm that the review session is read-only, so nothing was read.
    #[error("catalog {url}: the session is not read-only ({detail}); refusing to read")]
    NotReadOnly {
        /// The URL with its password replaced by `***`.
        url: String,
        /// What the server answered.
        detail: String,
    },
    /// A lake file or directory cannot be read.
    #[error("cannot read the lake at {path}: {source}")]
    LakeIo {
        /// The file or directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A lake file is not Parquet in the events schema.
    #[error("cannot decode lake file {path}: {reason}")]
    LakeFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pattern of the review policy (a role glob, a network) is invalid.
    #[error("invalid review setting {key}: {reason}")]
    Policy {
        /// The config key, e.g. `origins.service_networks`.
        key: String,
        /// Why.
        reason: String,
    },
}
