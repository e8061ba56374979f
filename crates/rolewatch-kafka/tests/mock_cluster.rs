//! Fault injection with librdkafka's mock cluster (in-process brokers): what the real broker
//! cannot easily do on demand.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use common::{consume_until, payload, produce, within};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rolewatch_kafka::{KafkaSource, KafkaSourceConfig, MemoryPositions, Readiness, SettingValue};

/// Polls `readiness` every 50 ms until it equals `wanted` (bounded by `within`).
async fn wait_for_readiness(readiness: &Readiness, wanted: bool) {
    within(if wanted { "readiness" } else { "unreadiness" }, async {
        while readiness.is_ready() != wanted {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker_going_down_and_up() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit", 3, 1).unwrap();
    let mut config = KafkaSourceConfig::new(cluster.bootstrap_servers(), &["audit"], "rolewatch");
    for (key, value) in [
        ("statistics.interval.ms", "200"),
        ("session.timeout.ms", "6000"),
        ("reconnect.backoff.max.ms", "500"),
    ] {
        config.client.insert(key.to_owned(), SettingValue::Inline(value.to_owned()));
    }
    let mut source = KafkaSource::new(&config, Arc::new(MemoryPositions::new())).unwrap();
    let readiness = source.readiness();
    assert!(!readiness.is_ready(), "not ready before any broker answered");
    // The run loop: librdkafka serves statistics and errors from inside next().
    let driver = tokio::spawn(async move {
        loop {
            if let Err(error) = source.next().await {
                eprintln!("transient: {error}");
            }
        }
    });

    wait_for_readiness(&readiness, true).await;
    cluster.broker_down(-1).unwrap();
    wait_for_readiness(&readiness, false).await;
    cluster.broker_up(-1).unwrap();
    wait_for_readiness(&readiness, true).await;

    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_fetch_and_commit_errors_neither_lose_nor_duplicate_records() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit", 3, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, "audit", 3, 0..10).await;
    use RDKafkaRespErr::{
        RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
    };
    cluster.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR__TRANSPORT,
        ],
    );
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS],
    );

    let positions = Arc::new(MemoryPositions::new());
    let mut config = KafkaSourceConfig::new(brokers, &["audit"], "rolewatch");
    config.client.insert("session.timeout.ms".to_owned(), SettingValue::Inline("6000".to_owned()));
    let mut source = KafkaSource::new(&config, positions.clone()).unwrap();
    let seen = consume_until(&mut source, |seen| seen.records().len() >= 30).await;
    for record in seen.records() {
        positions.set_durable(&record.topic, record.partition, record.offset);
        // Commit failures are asynchronous and only logged: the durable positions decide.
        source.commit(&record.topic, record.partition, record.offset).unwrap();
    }
    let expected: BTreeMap<i32, Vec<i64>> = (0..3).map(|p| (p, (0..10).collect())).collect();
    assert_eq!(seen.offsets_by_partition(), expected);
    for record in seen.records() {
        let sequence = usize::try_from(record.offset).unwrap();
        assert_eq!(record.payload, payload("audit", record.partition, sequence).into_bytes());
    }
}
