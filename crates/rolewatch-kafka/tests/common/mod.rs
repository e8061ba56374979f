//! Shared by the integration tests: the real broker (started through scripts/kafka.sh), topics,
//! a producer, and bounded waits.

#![allow(dead_code)] // each test binary uses part of this module
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rolewatch_kafka::{KafkaRecord, KafkaSource, KafkaSourceConfig, SettingValue, SourceEvent};

/// Bound on every wait: more than the session timeout plus a rebalance (RELIABILITY.md 5.3).
pub const WAIT: Duration = Duration::from_secs(60);

/// The address of the real broker, started by `scripts/kafka.sh start` unless it is running.
pub fn broker() -> String {
    static BROKER: OnceLock<String> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            let script = manifest_dir().join("../../scripts/kafka.sh");
            let started = Instant::now();
            let status =
                Command::new("bash").arg(&script).arg("start").status().expect("run scripts/kafka.sh");
            assert!(status.success(), "scripts/kafka.sh start failed: {status}");
            eprintln!("kafka broker ready after {:.1} s", started.elapsed().as_secs_f64());
            let port = std::env::var("ROLEWATCH_KAFKA_PORT").unwrap_or_else(|_| "9092".to_owned());
            format!("127.0.0.1:{port}")
        })
        .clone()
}

/// A name no other test run uses (the broker is shared by runs and worktrees).
pub fn unique(label: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("rw-test-{label}-{}-{nanos}", std::process::id())
}

pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &options)
        .await
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

/// The payload the tests produce for `topic[partition]`, record number `sequence`.
pub fn payload(topic: &str, partition: i32, sequence: usize) -> String {
    format!("{topic}/{partition}/{sequence}")
}

/// Produces records `sequences` to each of `partitions`, waiting for every acknowledgement.
pub async fn produce(brokers: &str, topic: &str, partitions: i32, sequences: std::ops::Range<usize>) {
    produce_compressed(brokers, topic, partitions, sequences, "none").await;
}

/// [`produce`] with the producer's batches compressed with `codec` (`gzip`, `snappy`, `lz4`,
/// `zstd`), as shippers configure it.
pub async fn produce_compressed(
    brokers: &str,
    topic: &str,
    partitions: i32,
    sequences: std::ops::Range<usize>,
    codec: &str,
) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.codec", codec)
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    for sequence in sequences {
        for partition in 0..partitions {
            let value = payload(topic, partition, sequence);
            let producer = producer.clone();
            let topic = topic.to_owned();
            deliveries.push(async move {
                let record = FutureRecord::<(), _>::to(&topic).partition(partition).payload(&value);
                producer.send(record, Duration::from_secs(30)).await.map_err(|(error, _)| error)
            });
        }
    }
    for delivery in futures::future::join_all(deliveries).await {
        delivery.unwrap();
    }
}

pub fn source_config(brokers: &str, topic: &str, group: &str) -> KafkaSourceConfig {
    let mut config = KafkaSourceConfig::new(brokers, &[topic], group);
    for (key, value) in [("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500")] {
        config.client.insert(key.to_owned(), SettingValue::Inline(value.to_owned()));
    }
    config
}

/// Awaits `future`, failing the test with `what` if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Everything a source handed out, in order.
#[derive(Debug, Default)]
pub struct Seen {
    pub events: Vec<SourceEvent>,
}

impl Seen {
    pub fn records(&self) -> Vec<&KafkaRecord> {
        self.events
            .iter()
            .filter_map(|event| match event {
                SourceEvent::Record(record) => Some(record),
                SourceEvent::Rebalance(_) => None,
            })
            .collect()
    }

    /// Offsets handed out per partition, in order.
    pub fn offsets_by_partition(&self) -> BTreeMap<i32, Vec<i64>> {
        let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for record in self.records() {
            offsets.entry(record.partition).or_default().push(record.offset);
        }
        offsets
    }
}

/// Drives `source` until `done` holds for what it handed out (bounded by [`WAIT`]).
pub async fn consume_until(source: &mut KafkaSource, mut done: impl FnMut(&Seen) -> bool) -> Seen {
    let mut seen = Seen::default();
    within("records", async {
        while !done(&seen) {
            match source.next().await {
                Ok(event) => seen.events.push(event),
                Err(error) if error.is_transient() => eprintln!("transient: {error}"),
                Err(error) => panic!("source failed: {error}"),
            }
        }
    })
    .await;
    seen
}

/// The package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for test
/// processes): a binary compiled in another checkout that shares the target directory must
/// not read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), std::path::PathBuf::from)
}
