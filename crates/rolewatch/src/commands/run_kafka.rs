//! The Kafka part of `rolewatch run`: records into per-partition buffers, chunks into the
//! lake, offsets made durable and then committed, stalled partitions paused and retried.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rolewatch_kafka::{
    AssignedPartition, KafkaSource, MemoryPositions, RebalanceEvent, RecordBatch, RecordRef,
};
use rolewatch_lake::{CoveredRange, Lake, StreamId};

use crate::input::{Chunk, Span};
use crate::kafka::{KafkaBuffers, KafkaSection, PartitionKey};
use crate::metrics::Metrics;

/// How often consumer lag is refreshed (a broker round trip per partition).
const LAG_INTERVAL: Duration = Duration::from_secs(10);

/// While no broker is reachable, how often one is asked for metadata (see
/// [`KafkaSource::probe`]), and how long the run loop waits for the answer.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The `source` label of the Kafka source's metrics.
pub const KAFKA_SOURCE: &str = "kafka";

/// The wait before the first retry of a chunk the lake refused; it doubles with every further
/// failure up to [`RETRY_MAX`], so a store that keeps refusing (a revoked permission, a full
/// disk) costs an encode and a put every few seconds, not on every tick.
const RETRY_FIRST: Duration = Duration::from_millis(200);

/// The longest wait between retries of a stalled chunk.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// The wait before retrying a chunk that failed `failures` times in a row (at least once).
fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// A chunk the lake refused, waiting for its retry.
struct Stalled {
    stream: StreamId,
    chunk: Chunk,
    retry_at: Instant,
}

/// The consumer, its buffers, and the partitions stalled on a chunk that cannot be stored.
pub struct KafkaRun {
    pub source: KafkaSource,
    /// The records of the last poll (reused from poll to poll).
    pub batch: RecordBatch,
    pub buffers: KafkaBuffers,
    positions: Arc<MemoryPositions>,
    topics: Vec<String>,
    stalled: BTreeMap<PartitionKey, Stalled>,
    /// Failures in a row per partition, for the retry backoff; cleared once a chunk is stored.
    failures: BTreeMap<PartitionKey, u32>,
    flush_interval: Duration,
    lag_checked: Instant,
    /// When a broker was last probed for readiness.
    probed: Instant,
    /// Partitions whose next chunk was declared in the lake by a run that did not commit it
    /// (a crash before its manifest): the last offset it covers. Such a partition is cut there
    /// and nowhere else, so the files that run left are written again (a replay) and committed.
    declared: BTreeMap<PartitionKey, i64>,
}

/// A chunk ready to be stored, and what to do once it is.
pub struct ReadyChunk {
    pub key: PartitionKey,
    pub stream: StreamId,
    pub chunk: Chunk,
}

impl KafkaRun {
    /// Starts the consumer. Durable positions come from the lake: a partition resumes after the
    /// last offset stored for it.
    pub async fn start(section: KafkaSection, lake: &Lake) -> anyhow::Result<Self> {
        let flush_interval = humantime::parse_duration(&section.flush_interval).with_context(|| {
            format!("[source.kafka] flush_interval = {:?} is not a duration", section.flush_interval)
        })?;
        section.validate()?;
        let positions = Arc::new(MemoryPositions::new());
        for (topic, partition, offset) in stored_kafka_offsets(lake, &section.topics).await? {
            positions.set_durable(&topic, partition, offset);
        }
        let topics = section.topics.clone();
        let consumer_config = section.consumer_config();
        consumer_config.validate().context("invalid [source.kafka]")?;
        let source = KafkaSource::new(&consumer_config, positions.clone())
            .context("cannot start the Kafka consumer")?;
        Ok(Self {
            source,
            batch: RecordBatch::default(),
            buffers: KafkaBuffers::new(section),
            positions,
            topics,
            stalled: BTreeMap::new(),
            failures: BTreeMap::new(),
            flush_interval,
            lag_checked: Instant::now(),
            probed: Instant::now(),
            declared: BTreeMap::new(),
        })
    }

    /// How often buffers are checked against the flush interval: a tenth of it, between 10 ms
    /// and 1 s, so that no record waits much longer than the interval.
    pub fn tick_interval(&self) -> Duration {
        (self.flush_interval / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Reads the lake's manifests again and raises the durable positions to what they cover:
    /// after a rebalance, other consumers of the group may have stored partitions this one
    /// now owns. (Records the consumer re-reads below those positions are dropped by the
    /// pipeline before they are stored.)
    pub async fn refresh_positions(&self, lake: &Lake) -> anyhow::Result<()> {
        lake.reload().await;
        for (topic, partition, offset) in stored_kafka_offsets(lake, &self.topics).await? {
            self.positions.set_durable(&topic, partition, offset);
        }
        Ok(())
    }

    /// Looks up, for newly assigned partitions, a chunk declared after their durable position
    /// (see [`KafkaRun::declared`]); call after [`KafkaRun::refresh_positions`].
    pub async fn adopt_declared_chunks(&mut self, lake: &Lake, partitions: &[AssignedPartition]) {
        for assigned in partitions {
            let (topic, partition) = (assigned.topic.as_str(), assigned.partition);
            let durable =
                rolewatch_kafka::DurablePositions::durable_offset(self.positions.as_ref(), topic, partition);
            let stream = StreamId::for_kafka(topic, partition);
            let from = durable.map_or(0, |offset| u64::try_from(offset.saturating_add(1)).unwrap_or(0));
            match lake.next_declared_chunk(&stream, from).await {
                Ok(Some(CoveredRange::Kafka { first_offset, last_offset, .. })) => {
                    tracing::info!(
                        topic,
                        partition,
                        first_offset,
                        last_offset,
                        "a chunk was declared but not committed before the last stop: cutting it the same way"
                    );
                    self.declared.insert((topic.to_owned(), partition), last_offset);
                }
                Ok(_) => {}
                // Cutting elsewhere loses nothing; it may leave the earlier files unlisted.
                Err(error) => {
                    tracing::warn!(topic, partition, %error, "cannot read the lake's chunk declarations")
                }
            }
        }
    }

    /// Before `record` is added: a partition whose declared chunk ended before this offset
    /// (its last records are gone from the topic, or were never records: offsets have gaps)
    /// is cut now.
    pub fn cut_before(&mut self, record: RecordRef<'_>) -> Option<ReadyChunk> {
        if self.declared.is_empty() {
            return None;
        }
        let key = (record.topic.to_string(), record.partition);
        let last = *self.declared.get(&key)?;
        if record.offset <= last {
            return None;
        }
        self.declared.remove(&key);
        self.cut(&key)
    }

    /// Parses one record into its partition's buffer; returns a chunk when the buffer is full
    /// (none while the partition is stalled: its stalled chunk goes first), or when it reached
    /// the end of a declared chunk. Call [`KafkaRun::cut_before`] first.
    pub fn add(&mut self, record: RecordRef<'_>) -> Option<ReadyChunk> {
        let full = self.buffers.add(record);
        if !self.declared.is_empty() {
            let key = (record.topic.to_string(), record.partition);
            if let Some(&last) = self.declared.get(&key) {
                // A declared chunk ends at its declared offset, full or not.
                if record.offset < last {
                    return None;
                }
                self.declared.remove(&key);
                return self.cut(&key);
            }
        }
        if !full {
            return None;
        }
        let key = (record.topic.to_string(), record.partition);
        if self.stalled.contains_key(&key) {
            return None;
        }
        let (stream, chunk) = self.buffers.cut_full(&key)?;
        Some(ReadyChunk { key, stream, chunk })
    }

    /// Handles a change of the assignment: buffers of revoked partitions are dropped unstored.
    pub fn rebalance(&mut self, event: RebalanceEvent, metrics: &Metrics) {
        match event {
            RebalanceEvent::Assigned(partitions) => {
                tracing::info!(partitions = partitions.len(), "kafka partitions assigned");
            }
            RebalanceEvent::Revoked { partitions, lost } => {
                tracing::info!(
                    partitions = partitions.len(),
                    lost,
                    "kafka partitions revoked; their unstored buffers are dropped"
                );
                self.buffers.revoke(&partitions);
                for key in &partitions {
                    self.declared.remove(key);
                    self.stalled.remove(key);
                    self.failures.remove(key);
                    let labels = [key.0.as_str(), &key.1.to_string()];
                    let _ = metrics.kafka_lag.remove_label_values(&labels);
                    let _ = metrics.kafka_stalled.remove_label_values(&labels);
                }
            }
            RebalanceEvent::Failed { reason } => {
                tracing::warn!(%reason, "kafka group protocol failed; waiting for a new assignment");
                return;
            }
        }
        metrics.kafka_assigned.set(i64::try_from(self.source.assignment().len()).unwrap_or(i64::MAX));
    }

    /// Chunks due: stalled ones whose retry time has come first, then buffers older than the
    /// flush interval (never of a partition still stalled: its chunk goes first). `all` (at
    /// shutdown) takes every stalled chunk and every buffer now.
    ///
    /// None while the consumer has served a rebalance the run loop has not handled yet: a poll
    /// that the run loop's `select!` dropped for a tick may have run librdkafka's revocation
    /// callback, which gave the partitions up to the group at once. Cutting their buffers now
    /// would store records another member is already reading (its chunk of them, cut
    /// elsewhere, left unlisted by the lake's overlap check). The next poll hands the
    /// rebalance out first; the chunks wait for the next tick.
    pub fn due(&mut self, all: bool) -> Vec<ReadyChunk> {
        if self.source.has_pending_rebalance() {
            return Vec::new();
        }
        let now = Instant::now();
        let retry: Vec<PartitionKey> = self
            .stalled
            .iter()
            .filter(|(_, stalled)| all || stalled.retry_at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        let mut ready: Vec<ReadyChunk> = retry
            .into_iter()
            .filter_map(|key| {
                let Stalled { stream, chunk, .. } = self.stalled.remove(&key)?;
                Some(ReadyChunk { key, stream, chunk })
            })
            .collect();
        let keys = if all { self.buffers.pending() } else { self.buffers.due(self.flush_interval) };
        for key in keys {
            // A declared chunk waits for its last record, at shutdown too (it is read again).
            if ready.iter().all(|chunk| chunk.key != key)
                && !self.stalled.contains_key(&key)
                && !self.declared.contains_key(&key)
            {
                ready.extend(self.cut(&key));
            }
        }
        ready
    }

    /// The partitions stalled on a chunk that could not be stored.
    pub fn stalled_partitions(&self) -> Vec<PartitionKey> {
        self.stalled.keys().cloned().collect()
    }

    fn cut(&mut self, key: &PartitionKey) -> Option<ReadyChunk> {
        let (stream, chunk) = self.buffers.cut(key)?;
        Some(ReadyChunk { key: key.clone(), stream, chunk })
    }

    /// After a chunk is stored: its offsets are durable, then committed to Kafka for lag
    /// tools, and a paused partition resumes.
    /// The chunk's memory goes back to the buffers for a later cut.
    pub fn stored(&mut self, ready: ReadyChunk, metrics: &Metrics) {
        self.failures.remove(&ready.key);
        if let Span::Offsets { topic, partition, last, .. } = &ready.chunk.span {
            self.made_durable(topic, *partition, *last, metrics);
        }
        self.buffers.recycle(ready.chunk);
    }

    /// A chunk [`crate::pipeline::Pipeline::process`] did not store because another chunk was
    /// declared at its start ([`DeclaredOtherwise`](crate::pipeline::DeclaredOtherwise)): the
    /// partition is cut as declared. A chunk longer than the declared one is split: the
    /// declared part is returned, to be stored now, and the rest goes back to the front of the
    /// partition's buffer. A shorter one goes back whole, and the partition is cut when it
    /// reaches the declared end, as after a restart that found the declaration on assignment.
    pub fn recut(&mut self, ready: ReadyChunk, declared_last: i64, metrics: &Metrics) -> Option<ReadyChunk> {
        let ReadyChunk { key, stream, chunk } = ready;
        let (head, tail) = crate::kafka::split_chunk(chunk, declared_last);
        if let Some(tail) = tail {
            self.buffers.put_back(&key, tail);
            return Some(ReadyChunk { key, stream, chunk: head });
        }
        self.buffers.put_back(&key, head);
        // A stalled partition was paused: it must read on to the declared end.
        self.unpause(&key.0, key.1, metrics);
        if self.buffers.buffered_last(&key).is_some_and(|last| last >= declared_last) {
            return self.cut(&key);
        }
        self.declared.insert(key, declared_last);
        None
    }

    fn made_durable(&mut self, topic: &str, partition: i32, last: i64, metrics: &Metrics) {
        self.positions.set_durable(topic, partition, last);
        if let Err(error) = self.source.commit(topic, partition, last) {
            tracing::warn!(%topic, partition, %error, "cannot commit the offset to Kafka (progress is in the lake)");
        }
        self.unpause(topic, partition, metrics);
    }

    /// Resumes a partition paused on a stalled chunk.
    fn unpause(&mut self, topic: &str, partition: i32, metrics: &Metrics) {
        let labels = [topic, &partition.to_string()];
        if metrics.kafka_stalled.with_label_values(&labels).get() == 1 {
            metrics.kafka_stalled.with_label_values(&labels).set(0);
            if let Err(error) = self.source.resume(topic, partition) {
                tracing::warn!(%topic, partition, %error, "cannot resume the partition");
            }
        }
    }

    /// A chunk could not be stored: the partition is paused and the chunk kept for a retry;
    /// nothing after it is stored first.
    pub fn stall(&mut self, ready: ReadyChunk, error: &anyhow::Error, metrics: &Metrics) {
        let failures = self.failures.entry(ready.key.clone()).or_default();
        *failures += 1;
        let wait = retry_delay(*failures);
        tracing::error!(topic = %ready.key.0, partition = ready.key.1, error = %format!("{error:#}"),
            failures = *failures, retry_in = ?wait,
            "cannot store a chunk; the partition is paused and the chunk retried");
        metrics.kafka_stalled.with_label_values(&[ready.key.0.as_str(), &ready.key.1.to_string()]).set(1);
        if let Err(error) = self.source.pause(&ready.key.0, ready.key.1) {
            tracing::warn!(topic = %ready.key.0, partition = ready.key.1, %error, "cannot pause the partition");
        }
        let retry_at = Instant::now() + wait;
        self.stalled.insert(ready.key, Stalled { stream: ready.stream, chunk: ready.chunk, retry_at });
    }

    /// Refreshes readiness (probing a broker now and then while none is reachable) and, every
    /// few seconds, consumer lag.
    pub fn update_metrics(&mut self, metrics: &Metrics) {
        if !self.source.readiness().is_ready() && self.probed.elapsed() >= PROBE_INTERVAL {
            self.probed = Instant::now();
            tokio::task::block_in_place(|| self.source.probe(PROBE_TIMEOUT));
        }
        metrics.ready.set(i64::from(self.source.readiness().is_ready()));
        if self.lag_checked.elapsed() < LAG_INTERVAL {
            return;
        }
        self.lag_checked = Instant::now();
        for (topic, partition) in self.source.assignment() {
            let high = tokio::task::block_in_place(|| {
                self.source.fetch_high_watermark(&topic, partition, Duration::from_secs(1)).ok()
            });
            let Some(high) = high else { continue };
            let durable =
                rolewatch_kafka::DurablePositions::durable_offset(self.positions.as_ref(), &topic, partition);
            let lag = high - 1 - durable.unwrap_or(-1);
            metrics.kafka_lag.with_label_values(&[topic.as_str(), &partition.to_string()]).set(lag.max(0));
        }
    }
}

/// The last Kafka offset made durable per `(topic, partition)` of `topics`: what the lake's
/// manifests cover for each partition's stream.
async fn stored_kafka_offsets(lake: &Lake, topics: &[String]) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let durable = lake.durable_positions().await.context("cannot read the lake's manifests")?;
    Ok(durable
        .into_values()
        .filter_map(|range| match range {
            CoveredRange::Kafka { topic, partition, last_offset, .. } if topics.contains(&topic) => {
                Some((topic, partition, last_offset))
            }
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused chunk is retried soon, then ever less often, never less than every RETRY_MAX.
    #[test]
    fn retries_back_off_exponentially_up_to_a_bound() {
        let waits: Vec<Duration> = (1..=8).map(retry_delay).collect();
        assert_eq!(waits[0], RETRY_FIRST);
        assert!(waits.windows(2).all(|pair| pair[1] >= pair[0]), "{waits:?}");
        assert_eq!(waits[1], RETRY_FIRST * 2);
        assert_eq!(waits[7], RETRY_MAX);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
        assert_eq!(retry_delay(0), RETRY_FIRST);
    }

    /// The race behind an unlisted file in a two-member rebalance: the run loop's `select!`
    /// drops a poll for its flush tick after librdkafka ran the revocation callback inside
    /// it (the callback gave the partition up to the group; its event waits in the channel).
    /// The flush by age must not cut the revoked partition's buffer then.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_chunk_is_cut_by_age_while_a_revocation_waits() {
        use futures::FutureExt;
        use rdkafka::ClientConfig;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        use rolewatch_kafka::Polled;

        let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
        cluster.create_topic("audit", 1, 1).unwrap();
        let brokers = cluster.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        for n in 0..3 {
            let line = format!(
                r#"{{"timestamp":"2026-11-26 10:00:0{n}.000 UTC","user":"app","dbname":"shop","pid":7,"session_id":"65.7","error_severity":"LOG","message":"AUDIT: SESSION,{n},1,READ,SELECT,TABLE,public.orders,SELECT 1,<none>"}}"#
            );
            producer.send(BaseRecord::to("audit").key("s").payload(&line)).unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();

        let client = [
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "100"),
            ("partition.assignment.strategy", "range"),
        ];
        let mut section: KafkaSection = toml::from_str(&format!(
            "brokers = [\"{brokers}\"]\ntopics = [\"audit\"]\ngroup_id = \"g\"\n\
             format = \"pgaudit-jsonlog\"\nflush_interval = \"50ms\"\nchunk_events = 250\n"
        ))
        .unwrap();
        for (key, value) in client {
            section.client.insert(key.to_owned(), rolewatch_kafka::SettingValue::Inline(value.to_owned()));
        }
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        let metrics = Metrics::new();
        let mut kafka = KafkaRun::start(section, &lake).await.unwrap();
        let wait = Duration::from_secs(30);

        // This member takes the partition and buffers its three records (not a full chunk).
        let mut buffered = 0;
        tokio::time::timeout(wait, async {
            while buffered < 3 {
                let mut batch = std::mem::take(&mut kafka.batch);
                match kafka.source.next_batch(&mut batch).await.unwrap() {
                    Polled::Rebalance(event) => kafka.rebalance(event, &metrics),
                    Polled::Records => {
                        for record in batch.iter() {
                            assert!(kafka.add(record).is_none(), "three records are not a full chunk");
                            buffered += 1;
                        }
                    }
                }
                kafka.batch = batch;
            }
        })
        .await
        .expect("the records were not read");

        // A second member joins: the group takes the partition back (eager protocol).
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let other = {
            let stop = stop.clone();
            let mut config = ClientConfig::new();
            config.set("bootstrap.servers", &brokers).set("group.id", "g");
            for (key, value) in client {
                config.set(key, value);
            }
            let consumer: BaseConsumer = config.create().unwrap();
            std::thread::spawn(move || {
                consumer.subscribe(&["audit"]).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = consumer.poll(Duration::from_millis(50));
                }
            })
        };

        // Polls dropped after one try, as the run loop's select! drops one when a tick wins,
        // until one of them served the revocation.
        tokio::time::timeout(wait, async {
            loop {
                let polled = kafka.source.next_batch(&mut kafka.batch).now_or_never();
                assert!(polled.is_none(), "the poll returned {polled:?}: nothing more was produced");
                if kafka.source.has_pending_rebalance() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the revocation was never served");

        tokio::time::sleep(Duration::from_millis(200)).await;
        let cut: Vec<PartitionKey> = kafka.due(false).into_iter().map(|ready| ready.key).collect();
        assert!(cut.is_empty(), "cut by age while the revocation waited: {cut:?}");

        // The next poll hands the revocation out; the buffer goes, unstored.
        let polled = kafka.source.next_batch(&mut kafka.batch).await.unwrap();
        let Polled::Rebalance(event @ RebalanceEvent::Revoked { .. }) = polled else {
            panic!("not the revocation: {polled:?}");
        };
        kafka.rebalance(event, &metrics);
        assert!(kafka.buffers.pending().is_empty(), "the revoked partition's buffer is still there");
        assert!(kafka.due(true).is_empty());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        other.join().unwrap();
    }
}
