//! The crate's one error type.

use std::path::PathBuf;

use rdkafka::error::KafkaError;

/// What can go wrong configuring or running a Kafka source.
///
/// No variant ever carries the value of a secret setting: client errors are redacted before they
/// are stored (see [`crate::KafkaSourceConfig`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaSourceError {
    /// The configuration is incomplete or contradicts itself.
    #[error("invalid kafka source config: {reason}")]
    Config {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A client setting that rolewatch manages itself was given in the pass-through table.
    #[error("client setting {key} is managed by rolewatch and cannot be set")]
    ReservedSetting {
        /// The librdkafka property name.
        key: String,
    },
    /// A setting's value should come from an environment variable that is not set.
    #[error("client setting {key}: environment variable {variable} is not set or not UTF-8")]
    SettingFromEnv {
        /// The librdkafka property name.
        key: String,
        /// The environment variable's name.
        variable: String,
    },
    /// A setting's value should come from a file that cannot be read.
    #[error("client setting {key}: cannot read {}: {source}", path.display())]
    SettingFromFile {
        /// The librdkafka property name.
        key: String,
        /// The file named in the config.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// librdkafka refused the configuration or could not create the consumer.
    #[error("cannot create the kafka consumer: {message}")]
    Client {
        /// librdkafka's message, with the values of secret settings replaced by `[redacted]`.
        message: String,
    },
    /// Subscribing to the topics failed.
    #[error("cannot subscribe to topics {topics:?}: {source}")]
    Subscribe {
        /// The configured topics.
        topics: Vec<String>,
        /// The client's error.
        source: KafkaError,
    },
    /// Reading from the broker failed. Transient: librdkafka reconnects by itself, so the run
    /// loop logs it and keeps calling [`crate::KafkaSource::next`].
    #[error("kafka consume error: {source}")]
    Consume {
        /// The client's error.
        source: KafkaError,
    },
    /// The caller named a partition this consumer does not own (any more).
    #[error("partition {topic}[{partition}] is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// An offset commit could not be sent.
    #[error("cannot commit offset {offset} of {topic}[{partition}]: {source}")]
    Commit {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset of the last durable record.
        offset: i64,
        /// The client's error.
        source: KafkaError,
    },
    /// Pausing or resuming a partition failed.
    #[error("cannot {action} {topic}[{partition}]: {source}")]
    FlowControl {
        /// `pause` or `resume`.
        action: &'static str,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The client's error.
        source: KafkaError,
    },
}

impl KafkaSourceError {
    /// Whether retrying (calling `next` again) can succeed without operator action.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Consume { .. } | Self::Commit { .. } | Self::FlowControl { .. })
    }
}
