//! Against the real Apache Kafka broker of scripts/kafka.sh (started if it is not running):
//! consume, commit after "durability", resume after the durable offset, split a group.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{
    broker, consume_until, create_topic, payload, produce, produce_compressed, source_config, unique, within,
};
use rolewatch_event::SourcePosition;
use rolewatch_kafka::{
    AssignedPartition, DurablePositions, KafkaRecord, KafkaSource, KafkaSourceConfig, KafkaSourceError,
    MemoryPositions, RebalanceEvent, SourceEvent,
};
use tokio::sync::mpsc;

const PARTITIONS: i32 = 3;

fn assigned_events(events: &[SourceEvent]) -> Vec<AssignedPartition> {
    events
        .iter()
        .filter_map(|event| match event {
            SourceEvent::Rebalance(RebalanceEvent::Assigned(partitions)) => Some(partitions.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A fresh topic with `records_per_partition` records in each partition, a fresh group, and
/// nothing durable.
struct Fixture {
    brokers: String,
    topic: String,
    config: KafkaSourceConfig,
    positions: Arc<MemoryPositions>,
}

async fn fixture(label: &str, records_per_partition: usize) -> Fixture {
    let brokers = broker();
    let topic = unique(label);
    create_topic(&brokers, &topic, PARTITIONS).await;
    produce(&brokers, &topic, PARTITIONS, 0..records_per_partition).await;
    let config = source_config(&brokers, &topic, &unique(&format!("{label}-group")));
    Fixture { brokers, topic, config, positions: Arc::new(MemoryPositions::new()) }
}

/// Waits until Kafka reports `expected` (next offset) committed for every partition.
async fn wait_for_commits(source: &mut KafkaSource, topic: &str, expected: i64) {
    within("the commits to be visible", async {
        loop {
            let committed = source.committed_offsets(Duration::from_secs(5)).unwrap_or_default();
            let done = committed.len() == 3
                && committed.iter().all(|(t, _, offset)| t == topic && *offset == Some(expected));
            if done {
                return;
            }
            // Keep serving the consumer's callbacks (commit results) while waiting.
            let _ = tokio::time::timeout(Duration::from_millis(200), source.next()).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_consumer_resumes_after_the_durable_offset_without_duplicates() {
    let Fixture { brokers, topic, config, positions } = fixture("resume", 10).await;
    let mut first = KafkaSource::new(&config, positions.clone()).unwrap();
    let seen = consume_until(&mut first, |seen| seen.records().len() >= 30).await;

    // The assignment came first, with nothing durable; then every record exactly once, in
    // order, with its position and content.
    assert!(matches!(seen.events.first(), Some(SourceEvent::Rebalance(RebalanceEvent::Assigned(_)))));
    let assigned = assigned_events(&seen.events);
    assert_eq!(assigned.len(), 3, "{assigned:?}");
    assert!(assigned.iter().all(|partition| partition.durable_offset.is_none()));
    let expected: BTreeMap<i32, Vec<i64>> = (0..PARTITIONS).map(|p| (p, (0..10).collect())).collect();
    assert_eq!(seen.offsets_by_partition(), expected);
    for record in seen.records() {
        let sequence = usize::try_from(record.offset).unwrap();
        assert_eq!(record.payload, payload(&topic, record.partition, sequence).into_bytes());
        assert_eq!(
            record.position(),
            SourcePosition::Kafka {
                topic: topic.as_str().into(),
                partition: record.partition,
                offset: record.offset
            }
        );
    }

    // The "lake" makes offsets 0..=5 of each partition durable; then Kafka is told.
    for partition in 0..PARTITIONS {
        positions.set_durable(&topic, partition, 5);
        first.commit(&topic, partition, 5).unwrap();
    }
    wait_for_commits(&mut first, &topic, 6).await;
    assert!(matches!(first.commit(&topic, 7, 0), Err(KafkaSourceError::NotAssigned { partition: 7, .. })));
    drop(first);

    produce(&brokers, &topic, PARTITIONS, 10..11).await;
    let mut second = KafkaSource::new(&config, positions.clone()).unwrap();
    let seen = consume_until(&mut second, |seen| {
        let offsets = seen.offsets_by_partition();
        (0..PARTITIONS).all(|p| offsets.get(&p).is_some_and(|offsets| offsets.contains(&10)))
    })
    .await;
    let assigned = assigned_events(&seen.events);
    assert_eq!(assigned.len(), 3, "{assigned:?}");
    assert!(assigned.iter().all(|partition| partition.durable_offset == Some(5)), "{assigned:?}");
    // Nothing at or below the durable offset, nothing twice, nothing missing.
    let expected: BTreeMap<i32, Vec<i64>> = (0..PARTITIONS).map(|p| (p, (6..=10).collect())).collect();
    assert_eq!(seen.offsets_by_partition(), expected);
}

/// Shippers compress their batches (the rsyslog recipe uses zstd): every codec Kafka knows is
/// read back, each record whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_of_every_codec_are_read() {
    let brokers = broker();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("codec-{codec}"));
        create_topic(&brokers, &topic, 1).await;
        produce_compressed(&brokers, &topic, 1, 0..50, codec).await;
        let config = source_config(&brokers, &topic, &unique(&format!("codec-{codec}-group")));
        let mut source = KafkaSource::new(&config, Arc::new(MemoryPositions::new())).unwrap();
        let seen = consume_until(&mut source, |seen| seen.records().len() >= 50).await;
        let payloads: Vec<Vec<u8>> = seen.records().iter().map(|record| record.payload.clone()).collect();
        let expected: Vec<Vec<u8>> =
            (0..50).map(|sequence| payload(&topic, 0, sequence).into_bytes()).collect();
        assert_eq!(payloads, expected, "{codec}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_position_wins_over_the_kafka_commit() {
    // Kafka's committed offset lags the lake (a crash between manifest and commit): the
    // consumer must still start after the durable offset, not re-read from the commit.
    let Fixture { topic, config, positions, .. } = fixture("durable-wins", 4).await;
    let mut first = KafkaSource::new(&config, positions.clone()).unwrap();
    consume_until(&mut first, |seen| seen.records().len() >= 12).await;
    for partition in 0..PARTITIONS {
        first.commit(&topic, partition, 0).unwrap();
    }
    wait_for_commits(&mut first, &topic, 1).await;
    drop(first);
    for partition in 0..PARTITIONS {
        positions.set_durable(&topic, partition, 2);
    }

    let mut second = KafkaSource::new(&config, positions.clone()).unwrap();
    let seen = consume_until(&mut second, |seen| seen.records().len() >= 3).await;
    let expected: BTreeMap<i32, Vec<i64>> = (0..PARTITIONS).map(|p| (p, vec![3])).collect();
    assert_eq!(seen.offsets_by_partition(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_partition_waits_while_the_others_go_on() {
    let Fixture { brokers, topic, config, positions } = fixture("pause", 0).await;
    let mut source = KafkaSource::new(&config, positions).unwrap();
    consume_until(&mut source, |seen| assigned_events(&seen.events).len() == 3).await;
    source.pause(&topic, 0).unwrap();
    assert!(matches!(source.pause(&topic, 9), Err(KafkaSourceError::NotAssigned { .. })));

    produce(&brokers, &topic, PARTITIONS, 0..10).await;
    let seen = consume_until(&mut source, |seen| {
        let offsets = seen.offsets_by_partition();
        [1, 2].iter().all(|p| offsets.get(p).is_some_and(|offsets| offsets.len() == 10))
    })
    .await;
    // Paused before anything was produced: nothing of partition 0 was fetched.
    assert_eq!(seen.offsets_by_partition().get(&0), None);

    source.resume(&topic, 0).unwrap();
    let seen = consume_until(&mut source, |seen| seen.records().len() >= 10).await;
    let expected: BTreeMap<i32, Vec<i64>> = BTreeMap::from([(0, (0..10).collect())]);
    assert_eq!(seen.offsets_by_partition(), expected);
}

/// What a consumer task reports to the test.
#[derive(Debug)]
enum Report {
    Event(usize, SourceEvent),
}

/// Runs a consumer in a task: records become durable (and committed) as soon as they arrive,
/// like a sink that stores each record at once; everything is reported to the test.
fn spawn_member(
    id: usize,
    config: KafkaSourceConfig,
    positions: Arc<MemoryPositions>,
    reports: mpsc::UnboundedSender<Report>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut source = KafkaSource::new(&config, positions.clone() as Arc<dyn DurablePositions>).unwrap();
        loop {
            match source.next().await {
                Ok(SourceEvent::Record(record)) => {
                    positions.set_durable(&record.topic, record.partition, record.offset);
                    source.commit(&record.topic, record.partition, record.offset).unwrap();
                    if reports.send(Report::Event(id, SourceEvent::Record(record))).is_err() {
                        return;
                    }
                }
                Ok(event) => {
                    if reports.send(Report::Event(id, event)).is_err() {
                        return;
                    }
                }
                Err(error) => eprintln!("member {id}: {error}"),
            }
        }
    })
}

/// The partitions each member holds, from the rebalance events it reported.
#[derive(Debug, Default)]
struct Assignments {
    members: BTreeMap<usize, BTreeSet<i32>>,
}

impl Assignments {
    fn apply(&mut self, id: usize, event: &RebalanceEvent) {
        let held = self.members.entry(id).or_default();
        match event {
            RebalanceEvent::Assigned(partitions) => held.extend(partitions.iter().map(|p| p.partition)),
            RebalanceEvent::Revoked { partitions, .. } => {
                for (_, partition) in partitions {
                    held.remove(partition);
                }
            }
            RebalanceEvent::Failed { .. } => held.clear(),
        }
    }

    /// Both members hold partitions, none twice, all of them.
    fn is_split(&self) -> bool {
        let held: Vec<&BTreeSet<i32>> = self.members.values().collect();
        let total: usize = held.iter().map(|partitions| partitions.len()).sum();
        let union: BTreeSet<i32> = held.iter().flat_map(|partitions| partitions.iter().copied()).collect();
        held.len() == 2
            && held.iter().all(|partitions| !partitions.is_empty())
            && total == 3
            && union.len() == 3
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_in_one_group_split_the_partitions() {
    let Fixture { brokers, topic, config, positions } = fixture("split", 0).await;
    let (sender, mut reports) = mpsc::unbounded_channel();
    let mut assignments = Assignments::default();

    let first = spawn_member(1, config.clone(), positions.clone(), sender.clone());
    within("the first member to get every partition", async {
        while assignments.members.get(&1).is_none_or(|held| held.len() < 3) {
            let Some(Report::Event(id, SourceEvent::Rebalance(event))) = reports.recv().await else {
                continue;
            };
            assignments.apply(id, &event);
        }
    })
    .await;

    let second = spawn_member(2, config.clone(), positions.clone(), sender.clone());
    within("the group to split the partitions", async {
        while !assignments.is_split() {
            let Some(Report::Event(id, SourceEvent::Rebalance(event))) = reports.recv().await else {
                continue;
            };
            assignments.apply(id, &event);
        }
    })
    .await;

    produce(&brokers, &topic, PARTITIONS, 0..10).await;
    let mut received: Vec<(usize, KafkaRecord)> = Vec::new();
    within("every record", async {
        while received.len() < 30 {
            match reports.recv().await {
                Some(Report::Event(id, SourceEvent::Record(record))) => received.push((id, record)),
                Some(Report::Event(id, SourceEvent::Rebalance(event))) => assignments.apply(id, &event),
                None => panic!("both members stopped"),
            }
        }
    })
    .await;
    first.abort();
    second.abort();

    // Every record once, each from the member that held its partition.
    let positions_seen: BTreeSet<(i32, i64)> =
        received.iter().map(|(_, r)| (r.partition, r.offset)).collect();
    assert_eq!(positions_seen.len(), 30, "a record arrived twice: {received:?}");
    let expected: BTreeSet<(i32, i64)> = (0..PARTITIONS).flat_map(|p| (0..10).map(move |o| (p, o))).collect();
    assert_eq!(positions_seen, expected);
    assert!(assignments.is_split(), "the group rebalanced again during the test: {assignments:?}");
    for (id, record) in &received {
        assert!(assignments.members[id].contains(&record.partition), "member {id} got {record:?}");
    }
    let members_with_records: BTreeSet<usize> = received.iter().map(|(id, _)| *id).collect();
    assert_eq!(members_with_records.len(), 2);
}
