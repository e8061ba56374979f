//! The consumer the run loop drives: records and rebalances in one ordered stream, commits
//! after durability, pause and resume for backpressure.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rolewatch_event::SourcePosition;
use tokio::sync::mpsc;

use crate::config::redact;
use crate::context::SourceContext;
use crate::{DurablePositions, KafkaSourceConfig, KafkaSourceError, RebalanceEvent, RecordBatch};

/// One record read from Kafka, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's key, if it has one.
    pub key: Option<Vec<u8>>,
    /// The record's value (empty for a tombstone).
    pub payload: Vec<u8>,
    /// The producer's or broker's timestamp, in milliseconds since the epoch, if any. Not event
    /// time: the audit record carries its own.
    pub timestamp_millis: Option<i64>,
}

impl KafkaRecord {
    fn from_message(message: &BorrowedMessage<'_>) -> Self {
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            timestamp_millis: message.timestamp().to_millis(),
        }
    }

    /// The record's position, as stored with every event (`source_topic`, ...).
    pub fn position(&self) -> SourcePosition {
        SourcePosition::Kafka {
            topic: self.topic.as_str().into(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// What [`KafkaSource::next`] hands the run loop, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// A record of an assigned partition, above its durable position, never handed out before
    /// during this assignment.
    Record(KafkaRecord),
    /// The set of partitions changed.
    Rebalance(RebalanceEvent),
}

/// What [`KafkaSource::next_batch`] handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// The batch holds one or more records, in the order received.
    Records,
    /// The set of partitions changed; the batch is empty. Records received after the change
    /// come in later batches.
    Rebalance(RebalanceEvent),
}

/// Per assigned partition, the highest offset that must not be handed out: the durable offset
/// at assignment, then each delivered record's. Records at or below it are duplicates (a
/// re-fetch, a late record from before a rebalance) and are dropped.
///
/// Every record looks up its topic and then its partition here: foldhash, not std's SipHash,
/// whose two hashes a record were 1.6% of a Kafka run's instructions.
#[derive(Debug, Default)]
pub(crate) struct PartitionFloors {
    floors: FastMap<String, FastMap<i32, i64>>,
}

type FastMap<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

impl PartitionFloors {
    /// Applies a rebalance: assigned partitions start at their durable offset, revoked ones
    /// are forgotten, a failure forgets everything.
    pub(crate) fn apply(&mut self, event: &RebalanceEvent) {
        match event {
            RebalanceEvent::Assigned(partitions) => {
                for assigned in partitions {
                    self.floors
                        .entry(assigned.topic.clone())
                        .or_default()
                        .insert(assigned.partition, assigned.durable_offset.unwrap_or(-1));
                }
            }
            RebalanceEvent::Revoked { partitions, .. } => {
                for (topic, partition) in partitions {
                    if let Some(topic_floors) = self.floors.get_mut(topic) {
                        topic_floors.remove(partition);
                    }
                }
                self.floors.retain(|_, topic_floors| !topic_floors.is_empty());
            }
            RebalanceEvent::Failed { .. } => self.floors.clear(),
        }
    }

    /// Whether a record may be handed out; if so, it becomes the partition's new floor.
    pub(crate) fn admit(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let Some(floor) =
            self.floors.get_mut(topic).and_then(|topic_floors| topic_floors.get_mut(&partition))
        else {
            return false;
        };
        if offset <= *floor {
            return false;
        }
        *floor = offset;
        true
    }

    pub(crate) fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        self.floors.get(topic).is_some_and(|topic_floors| topic_floors.contains_key(&partition))
    }

    pub(crate) fn partitions(&self) -> Vec<(String, i32)> {
        let mut partitions: Vec<(String, i32)> = self
            .floors
            .iter()
            .flat_map(|(topic, topic_floors)| {
                topic_floors.keys().map(move |partition| (topic.clone(), *partition))
            })
            .collect();
        partitions.sort();
        partitions
    }
}

/// Whether the consumer currently reaches a broker; cheap to clone and read (for `/ready`).
#[derive(Debug, Clone)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// True while at least one broker connection is up (from librdkafka's statistics, once a
    /// second, and its "all brokers down" error).
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A Kafka consumer-group member whose offsets the application owns.
///
/// See the crate documentation for the contract. The run loop calls [`KafkaSource::next`]
/// continuously: librdkafka serves rebalances, statistics and commit results from inside it.
pub struct KafkaSource {
    consumer: StreamConsumer<SourceContext>,
    rebalances: mpsc::UnboundedReceiver<RebalanceEvent>,
    floors: PartitionFloors,
    /// Events received from the callbacks but not yet handed out, oldest first.
    pending_events: VecDeque<RebalanceEvent>,
    /// A record received together with rebalance events, handed out after them.
    pending_record: Option<KafkaRecord>,
    /// An error met after a batch had taken records, returned by the next call.
    pending_error: Option<KafkaSourceError>,
    ready: Arc<AtomicBool>,
    /// The subscribed topics, shared by the records of each batch.
    topics: Vec<Arc<str>>,
}

impl KafkaSource {
    /// Creates the consumer and subscribes to the configured topics. No partition is assigned
    /// until the group coordinator says so, during [`KafkaSource::next`].
    pub fn new(
        config: &KafkaSourceConfig,
        durable: Arc<dyn DurablePositions>,
    ) -> Result<Self, KafkaSourceError> {
        let (client_config, secrets) = config.client_config()?;
        Self::with_client_config(config, &client_config, &secrets, durable)
    }

    fn with_client_config(
        config: &KafkaSourceConfig,
        client_config: &ClientConfig,
        secrets: &[String],
        durable: Arc<dyn DurablePositions>,
    ) -> Result<Self, KafkaSourceError> {
        let (sender, rebalances) = mpsc::unbounded_channel();
        let ready = Arc::new(AtomicBool::new(false));
        let context = SourceContext {
            durable,
            start_without_durable: config.start_without_durable,
            rebalances: sender,
            ready: Arc::clone(&ready),
            stats_unreadable: AtomicBool::new(false),
        };
        let consumer: StreamConsumer<SourceContext> = client_config
            .create_with_context(context)
            .map_err(|error| KafkaSourceError::Client { message: redact(&error.to_string(), secrets) })?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| KafkaSourceError::Subscribe { topics: config.topics.clone(), source })?;
        tracing::info!(topics = ?config.topics, group_id = %config.group_id, "kafka source subscribed");
        Ok(Self {
            consumer,
            rebalances,
            floors: PartitionFloors::default(),
            pending_events: VecDeque::new(),
            pending_record: None,
            pending_error: None,
            ready,
            topics: config.topics.iter().map(|topic| Arc::from(topic.as_str())).collect(),
        })
    }

    /// The next record or rebalance, in order. Cancel-safe: dropping the future loses nothing.
    ///
    /// One record per call, copied out: simple, for tests and tools. The run loop uses
    /// [`KafkaSource::next_batch`], which hands out everything one poll finds.
    ///
    /// Records at or below a partition's durable offset, or of partitions no longer assigned,
    /// are dropped here. An error is transient (see [`KafkaSourceError::is_transient`]): log
    /// it and call `next` again.
    pub async fn next(&mut self) -> Result<SourceEvent, KafkaSourceError> {
        let mut single = RecordBatch::new(1);
        match self.next_batch(&mut single).await? {
            Polled::Rebalance(event) => Ok(SourceEvent::Rebalance(event)),
            Polled::Records => match single.iter().next() {
                Some(record) => Ok(SourceEvent::Record(record.to_record())),
                None => Err(KafkaSourceError::Config { reason: "an empty batch of records".to_owned() }),
            },
        }
    }

    /// The next rebalance, or the records librdkafka holds right now: waits for the first,
    /// then takes, without waiting, what was already fetched, until `batch` is full
    /// ([`RecordBatch::new`]'s `max_records`). Cancel-safe: the only wait is before anything
    /// is taken.
    ///
    /// `batch` is cleared first. On [`Polled::Records`] it holds at least one record, oldest
    /// first; on [`Polled::Rebalance`] it is empty. The order is the consumer's: a batch ends
    /// where a rebalance happened, so records received after a rebalance are handed out after
    /// it, and records taken before it of the partitions it revoked are dropped (another member
    /// may own them already; see [`KafkaSource::has_pending_rebalance`]). Records at or below a
    /// partition's durable offset, records already handed out during the assignment, and
    /// records of partitions no longer assigned are dropped here too. An error
    /// is transient (see [`KafkaSourceError::is_transient`]): log it and call again. An error
    /// met after some records were taken is returned by the next call, after those records.
    pub async fn next_batch(&mut self, batch: &mut RecordBatch) -> Result<Polled, KafkaSourceError> {
        batch.clear();
        loop {
            self.drain_rebalances();
            if let Some(event) = self.pending_events.pop_front() {
                self.floors.apply(&event);
                return Ok(Polled::Rebalance(event));
            }
            if let Some(error) = self.pending_error.take() {
                return Err(error);
            }
            if let Some(record) = self.pending_record.take() {
                if self.floors.admit(&record.topic, record.partition, record.offset) {
                    batch.push_record(&record);
                } else {
                    tracing::debug!(position = %record.position(), "dropped a record at or below the durable position");
                }
            }
            if batch.is_empty() {
                tokio::select! {
                    biased;
                    event = self.rebalances.recv() => {
                        self.pending_events.extend(event);
                    }
                    message = self.consumer.recv() => {
                        let message = message.map_err(|source| KafkaSourceError::Consume { source })?;
                        // Rebalance callbacks may have run inside recv(), before this message:
                        // their events go first (the top of the loop), then this record.
                        self.pending_record = Some(KafkaRecord::from_message(&message));
                    }
                }
                continue;
            }
            self.take_ready(batch);
            // A rebalance served during the take: records of partitions it revoked stay in.
            self.drain_rebalances();
            drop_revoked(batch, &self.pending_events);
            if batch.is_empty() {
                continue;
            }
            return Ok(Polled::Records);
        }
    }

    /// Whether a rebalance was served while the last batch was taken: its events are handed
    /// out by the next call, at once. Handle them before anything else that could store a
    /// partition (a flush by age): until then the caller may hold buffers of partitions the
    /// group already gave to another member.
    pub fn has_pending_rebalance(&mut self) -> bool {
        self.drain_rebalances();
        !self.pending_events.is_empty()
    }

    /// Takes the records librdkafka already fetched, without waiting, until `batch` is full,
    /// nothing more is queued, a rebalance was served, or an error came (kept for the next call).
    fn take_ready(&mut self, batch: &mut RecordBatch) {
        let mut stream = self.consumer.stream();
        while !batch.is_full() {
            // `None`: nothing is queued, or librdkafka served a callback (a rebalance).
            let Some(Some(message)) = stream.next().now_or_never() else { break };
            let message = match message {
                Ok(message) => message,
                Err(source) => {
                    self.pending_error = Some(KafkaSourceError::Consume { source });
                    break;
                }
            };
            if !self.rebalances.is_empty() {
                // A rebalance was served before this message: its events go first.
                self.pending_record = Some(KafkaRecord::from_message(&message));
                break;
            }
            let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
            if !self.floors.admit(topic, partition, offset) {
                tracing::debug!(
                    topic,
                    partition,
                    offset,
                    "dropped a record at or below the durable position"
                );
                continue;
            }
            let topic = match self.topics.iter().find(|known| ***known == *topic) {
                Some(known) => Arc::clone(known),
                None => Arc::from(topic),
            };
            batch.push(
                &topic,
                partition,
                offset,
                message.key(),
                message.payload().unwrap_or_default(),
                message.timestamp().to_millis(),
            );
        }
    }

    fn drain_rebalances(&mut self) {
        while let Ok(event) = self.rebalances.try_recv() {
            self.pending_events.push_back(event);
        }
    }

    /// Tells Kafka that every record of `topic[partition]` up to `durable_offset` is durable
    /// (commits `durable_offset + 1`, Kafka's "next to read"). Call it only after the manifest
    /// covering that offset exists. Asynchronous: failures are logged by the commit callback,
    /// and only lag tools read these commits; restarts seek from the durable positions.
    pub fn commit(&self, topic: &str, partition: i32, durable_offset: i64) -> Result<(), KafkaSourceError> {
        if !self.floors.is_assigned(topic, partition) {
            return Err(KafkaSourceError::NotAssigned { topic: topic.to_owned(), partition });
        }
        let commit_error = |source| KafkaSourceError::Commit {
            topic: topic.to_owned(),
            partition,
            offset: durable_offset,
            source,
        };
        let next = durable_offset.saturating_add(1);
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(topic, partition, Offset::Offset(next)).map_err(commit_error)?;
        self.consumer.commit(&offsets, CommitMode::Async).map_err(commit_error)
    }

    /// Stops fetching `topic[partition]` (backpressure, or a partition stalled on a store
    /// that refuses its data) until [`KafkaSource::resume`]. Records already fetched may still
    /// arrive. A partition re-assigned by a rebalance starts unpaused.
    pub fn pause(&self, topic: &str, partition: i32) -> Result<(), KafkaSourceError> {
        self.flow_control("pause", topic, partition)
    }

    /// Fetches `topic[partition]` again after [`KafkaSource::pause`].
    pub fn resume(&self, topic: &str, partition: i32) -> Result<(), KafkaSourceError> {
        self.flow_control("resume", topic, partition)
    }

    fn flow_control(
        &self,
        action: &'static str,
        topic: &str,
        partition: i32,
    ) -> Result<(), KafkaSourceError> {
        if !self.floors.is_assigned(topic, partition) {
            return Err(KafkaSourceError::NotAssigned { topic: topic.to_owned(), partition });
        }
        let flow_error =
            |source| KafkaSourceError::FlowControl { action, topic: topic.to_owned(), partition, source };
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(topic, partition);
        let result = if action == "pause" {
            self.consumer.pause(&partitions)
        } else {
            self.consumer.resume(&partitions)
        };
        result.map_err(flow_error)?;
        // pause/resume report per-partition errors in the list, not in the result.
        for element in partitions.elements() {
            if let Err(source) = element.error() {
                return Err(flow_error(source));
            }
        }
        Ok(())
    }

    /// The partitions assigned to this consumer, as handed out through [`SourceEvent::Rebalance`].
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.floors.partitions()
    }

    /// The partition's high watermark (the offset the next produced record will get), asked of
    /// the broker: blocks up to `timeout`, so call it off the hot path (the run loop does, every
    /// few seconds, for consumer-lag metrics). Lag is `high watermark - 1 - durable offset`.
    pub fn fetch_high_watermark(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<i64, KafkaSourceError> {
        let (_, high) = self
            .consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|source| KafkaSourceError::Consume { source })?;
        Ok(high)
    }

    /// Asks a broker for the first subscribed topic's metadata, waiting up to `timeout`, and
    /// returns whether one answered (which makes the source ready). For use while the source is
    /// not ready: librdkafka connects only to brokers it needs, and a member whose partitions
    /// were revoked while the brokers were down may wait long before it tries again on its own;
    /// a request makes it connect now. Blocks: call it off the hot path.
    pub fn probe(&self, timeout: Duration) -> bool {
        let topic = self.topics.first().map(|topic| &**topic);
        match self.consumer.fetch_metadata(topic, timeout) {
            Ok(_) => {
                self.consumer.context().set_ready(true);
                true
            }
            Err(error) => {
                tracing::debug!(%error, "no broker answered a metadata request");
                false
            }
        }
    }

    /// A handle on whether the broker is reachable, for `/ready`.
    pub fn readiness(&self) -> Readiness {
        Readiness(Arc::clone(&self.ready))
    }

    /// The offsets this group committed to Kafka for the subscribed topics' assigned partitions,
    /// as `(topic, partition, next offset)`. Blocks up to `timeout` (call it off the hot path).
    pub fn committed_offsets(
        &self,
        timeout: Duration,
    ) -> Result<Vec<(String, i32, Option<i64>)>, KafkaSourceError> {
        let committed =
            self.consumer.committed(timeout).map_err(|source| KafkaSourceError::Consume { source })?;
        Ok(committed
            .elements()
            .iter()
            .filter(|element| self.topics.iter().any(|topic| **topic == *element.topic()))
            .map(|element| (element.topic().to_owned(), element.partition(), element.offset().to_raw()))
            .collect())
    }
}

/// Takes out of `batch` the records of partitions that `pending` rebalances (served while the
/// batch was taken) revoked, or all of them if the group protocol failed. They were fetched
/// under the old assignment, and another member may own their partitions by now: storing them
/// would race it (and leave files in the lake that no manifest lists). The new owner reads
/// them again from the durable position.
fn drop_revoked(batch: &mut RecordBatch, pending: &VecDeque<RebalanceEvent>) {
    let mut revoked: Vec<&(String, i32)> = Vec::new();
    for event in pending {
        match event {
            RebalanceEvent::Revoked { partitions, .. } => revoked.extend(partitions),
            RebalanceEvent::Failed { .. } => {
                batch.clear();
                return;
            }
            RebalanceEvent::Assigned(_) => {}
        }
    }
    if revoked.is_empty() {
        return;
    }
    let before = batch.len();
    batch.retain(|topic, partition| {
        !revoked.iter().any(|(revoked_topic, revoked_partition)| {
            *revoked_partition == partition && revoked_topic == topic
        })
    });
    if batch.len() < before {
        tracing::debug!(
            dropped = before - batch.len(),
            "dropped records of partitions revoked while they were taken"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AssignedPartition;

    fn assigned(topic: &str, partition: i32, durable_offset: Option<i64>) -> AssignedPartition {
        AssignedPartition { topic: topic.to_owned(), partition, durable_offset }
    }

    #[test]
    fn records_at_or_below_the_durable_offset_are_dropped() {
        let mut floors = PartitionFloors::default();
        floors.apply(&RebalanceEvent::Assigned(vec![assigned("t", 0, Some(5)), assigned("t", 1, None)]));
        assert!(!floors.admit("t", 0, 4));
        assert!(!floors.admit("t", 0, 5));
        assert!(floors.admit("t", 0, 6));
        assert!(!floors.admit("t", 0, 6), "a re-delivered record is a duplicate");
        assert!(floors.admit("t", 1, 0), "nothing durable: offset 0 is new");
        assert!(!floors.admit("t", 2, 100), "not assigned");
        assert!(!floors.admit("other", 0, 100), "not assigned");
    }

    #[test]
    fn revoked_partitions_admit_nothing_until_assigned_again() {
        let mut floors = PartitionFloors::default();
        floors.apply(&RebalanceEvent::Assigned(vec![assigned("t", 0, None), assigned("t", 1, None)]));
        floors.apply(&RebalanceEvent::Revoked { partitions: vec![("t".to_owned(), 0)], lost: false });
        assert!(!floors.admit("t", 0, 10));
        assert!(floors.admit("t", 1, 10));
        assert_eq!(floors.partitions(), vec![("t".to_owned(), 1)]);
        floors.apply(&RebalanceEvent::Assigned(vec![assigned("t", 0, Some(12))]));
        assert!(!floors.admit("t", 0, 12));
        assert!(floors.admit("t", 0, 13));
        floors.apply(&RebalanceEvent::Failed { reason: "x".to_owned() });
        assert!(floors.partitions().is_empty());
    }

    #[test]
    fn records_of_partitions_revoked_during_the_take_leave_the_batch() {
        let topic: Arc<str> = Arc::from("t");
        let other: Arc<str> = Arc::from("u");
        let fill = |batch: &mut RecordBatch| {
            batch.clear();
            for offset in 0..9 {
                let partition = i32::try_from(offset % 3).unwrap_or(0);
                batch.push(&topic, partition, offset, None, format!("t{offset}").as_bytes(), None);
                batch.push(&other, partition, offset, None, format!("u{offset}").as_bytes(), None);
            }
        };
        let positions = |batch: &RecordBatch| -> Vec<(String, i32, i64)> {
            batch.iter().map(|r| (r.topic.to_string(), r.partition, r.offset)).collect()
        };
        let mut batch = RecordBatch::default();

        fill(&mut batch);
        drop_revoked(&mut batch, &VecDeque::new());
        assert_eq!(batch.len(), 18, "no rebalance: every record stays");
        drop_revoked(&mut batch, &VecDeque::from([RebalanceEvent::Assigned(vec![assigned("t", 3, None)])]));
        assert_eq!(batch.len(), 18, "an assignment takes nothing away");

        let revoke = |partitions: &[(&str, i32)]| RebalanceEvent::Revoked {
            partitions: partitions.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect(),
            lost: false,
        };
        let pending = VecDeque::from([revoke(&[("t", 1)]), revoke(&[("u", 2), ("t", 0)])]);
        drop_revoked(&mut batch, &pending);
        let kept = positions(&batch);
        assert_eq!(kept.len(), 9);
        assert!(kept.iter().all(|(t, p, _)| (t == "t" && *p == 2) || (t == "u" && *p != 2)), "{kept:?}");
        let payloads: Vec<&[u8]> = batch.iter().map(|r| r.payload).collect();
        let expected: Vec<String> = kept.iter().map(|(t, _, offset)| format!("{t}{offset}")).collect();
        assert_eq!(payloads, expected.iter().map(String::as_bytes).collect::<Vec<_>>());

        fill(&mut batch);
        drop_revoked(&mut batch, &VecDeque::from([RebalanceEvent::Failed { reason: "x".to_owned() }]));
        assert!(batch.is_empty(), "a failed group protocol leaves no partition assigned");
    }
}
