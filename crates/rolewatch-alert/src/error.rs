//! The crate's one error type.
//!
//! No variant ever carries a secret or a destination URL: destinations are named by their
//! configured `name`, secrets by the environment variable or file they come from.

use std::path::PathBuf;

/// Everything that can go wrong while configuring the dispatcher or writing the outbox.
///
/// Delivery failures are not errors of this type: they are retried, dead-lettered and counted
/// (see [`crate::DeliveryReport`] and [`crate::AlertMetrics`]).
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The `[alerts]` configuration is inconsistent.
    #[error("invalid alerts configuration: {message}")]
    Config {
        /// What is wrong, naming the destination and the key.
        message: String,
    },
    /// A secret's environment variable is not set (or not valid UTF-8).
    #[error("destination {destination}: environment variable {variable} is not set")]
    MissingSecretEnv {
        /// The destination's name.
        destination: String,
        /// The environment variable that should hold the secret.
        variable: String,
    },
    /// A secret file could not be read.
    #[error("destination {destination}: cannot read secret file {path}: {source}")]
    SecretFile {
        /// The destination's name.
        destination: String,
        /// The file that should hold the secret.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A secret was found but is malformed. The value itself is never echoed.
    #[error("destination {destination}: invalid secret: {reason}")]
    InvalidSecret {
        /// The destination's name.
        destination: String,
        /// What is wrong with it, without the value.
        reason: &'static str,
    },
    /// The destination URL is malformed or uses a refused scheme. The URL is never echoed.
    #[error("destination {destination}: invalid url: {reason}")]
    InvalidUrl {
        /// The destination's name.
        destination: String,
        /// What is wrong with it, without the URL.
        reason: String,
    },
    /// The destination is a loopback, private, link-local or metadata address and
    /// `allow_private_destinations` is false.
    #[error("destination {destination}: refused private or internal address ({reason})")]
    ForbiddenDestination {
        /// The destination's name.
        destination: String,
        /// The class of address, e.g. `loopback`.
        reason: &'static str,
    },
    /// The outbox could not be read or written.
    #[error("outbox {path}: {source}")]
    Outbox {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An outbox file is not what rolewatch writes; it was left in place.
    #[error("outbox file {path} is corrupt: {message}")]
    OutboxCorrupt {
        /// The file.
        path: PathBuf,
        /// What could not be decoded.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("destination {destination}: cannot build the http client: {message}")]
    HttpClient {
        /// The destination's name.
        destination: String,
        /// The cause, without any URL.
        message: String,
    },
    /// A blocking outbox task panicked or was cancelled.
    #[error("outbox task failed: {0}")]
    Task(String),
}

impl AlertError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config { message: message.into() }
    }

    pub(crate) fn outbox(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Outbox { path: path.into(), source }
    }
}
