//! Kafka consumer for rolewatch: the application owns the offsets.
//!
//! A [`KafkaSource`] is one member of a consumer group. Progress lives in the sink (the lake's
//! manifests), not in Kafka, as in kafka-delta-ingest:
//!
//! - **Assignment starts after the durable position.** When the group hands this consumer a
//!   partition, the consumer asks the caller's [`DurablePositions`] for the last durable offset
//!   and assigns the partition at the offset after it. With nothing durable it starts at
//!   [`StartPosition`] (earliest by default).
//! - **Duplicates are dropped.** Records at or below the durable offset, records already handed
//!   out during the assignment, and records of partitions no longer assigned never leave
//!   [`KafkaSource::next`].
//! - **Rebalances are messages.** The librdkafka rebalance callback only turns the change into
//!   a [`RebalanceEvent`] on a channel; [`KafkaSource::next`] hands those out in order with the
//!   records, so the run loop drops buffered data of revoked partitions before it sees any
//!   record of the new assignment.
//! - **Commits follow durability.** Auto-commit and the automatic offset store are off;
//!   [`KafkaSource::commit`] is called by the caller after its manifest exists, and only serves
//!   lag tools.
//! - **Backpressure by pausing partitions** ([`KafkaSource::pause`], [`KafkaSource::resume`]):
//!   memory stays bounded, and a partition whose data cannot be stored stalls alone.
//! - **Secrets stay secret.** Client settings pass through to librdkafka; values of settings
//!   named like `password`, `secret`, `sasl` or `key` can come from environment variables or
//!   files, and [`KafkaSourceConfig`]'s `Debug` and this crate's errors never show them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use rolewatch_kafka::{KafkaSource, KafkaSourceConfig, MemoryPositions, SourceEvent};
//!
//! # async fn run() -> Result<(), rolewatch_kafka::KafkaSourceError> {
//! let positions = Arc::new(MemoryPositions::new());
//! let config = KafkaSourceConfig::new("127.0.0.1:9092", &["pgaudit"], "rolewatch");
//! let mut source = KafkaSource::new(&config, positions.clone())?;
//! loop {
//!     match source.next().await? {
//!         SourceEvent::Record(record) => {
//!             // ... parse, store; once the manifest covering it exists:
//!             positions.set_durable(&record.topic, record.partition, record.offset);
//!             source.commit(&record.topic, record.partition, record.offset)?;
//!         }
//!         SourceEvent::Rebalance(event) => tracing::info!(?event, "rebalance"),
//!     }
//! }
//! # }
//! ```

mod batch;
mod config;
mod context;
mod error;
mod positions;
mod source;

pub use batch::{DEFAULT_BATCH_RECORDS, RecordBatch, RecordRef};
pub use config::{KafkaSourceConfig, SettingValue, StartPosition, is_secret_setting};
pub use context::{AssignedPartition, RebalanceEvent};
pub use error::KafkaSourceError;
pub use positions::{DurablePositions, MemoryPositions};
pub use source::{KafkaRecord, KafkaSource, Polled, Readiness, SourceEvent};
