//! The Kafka side of `rolewatch run`: one parser and one buffer per assigned partition.
//!
//! Each record's value is one or more log lines (a shipper sends one line per record, but a
//! batch of lines is read as such); every event keeps the record's topic, partition and offset.
//! A partition's buffer is cut into a chunk when it holds enough events or is old enough; the
//! chunk's span is the offsets it accounts for, so that committing it makes exactly those
//! offsets durable. Buffers of revoked partitions are dropped unstored: the new owner reads
//! them again from the durable position.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rolewatch_event::{LogFormat, SourcePosition};
use rolewatch_kafka::RecordRef;
use rolewatch_lake::StreamId;
use rolewatch_parse::{ParseOutput, ParserOptions, RecordParser};
use serde::Deserialize;

use crate::input::{Chunk, InputCounts, Span, SpareEvents, first_chunk_output, trim_line_end};

/// `(topic, partition)`.
pub type PartitionKey = (String, i32);

/// Splits a Kafka chunk after offset `after`: the records up to it, and those after it (`None`
/// when there are none). An event belongs to the offset of its first line's record.
pub fn split_chunk(chunk: Chunk, after: i64) -> (Chunk, Option<Chunk>) {
    let Span::Offsets { topic, partition, first, last } = &chunk.span else { return (chunk, None) };
    if after >= *last || after < *first {
        return (chunk, None);
    }
    let (topic, partition, first, last) = (topic.clone(), *partition, *first, *last);
    let in_head = |offset: Option<i64>| offset.is_none_or(|offset| offset <= after);
    let (events, later_events) = chunk.events.into_iter().partition(|event| in_head(event.source_offset));
    let (rejected, later_rejected) = chunk.rejected.into_iter().partition(|record| match record.position {
        SourcePosition::Kafka { offset, .. } => in_head(Some(offset)),
        SourcePosition::File { .. } => true,
    });
    let head = Chunk {
        events,
        rejected,
        span: Span::Offsets { topic: topic.clone(), partition, first, last: after },
    };
    let tail = Chunk {
        events: later_events,
        rejected: later_rejected,
        span: Span::Offsets { topic, partition, first: after + 1, last },
    };
    (head, Some(tail))
}

/// `[source.kafka]`: the consumer group and how its records are read. `Debug` shows client
/// settings the way the Kafka crate does: secret values redacted.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// Bootstrap brokers, `host:port` each.
    pub brokers: Vec<String>,
    /// The topics to consume.
    pub topics: Vec<String>,
    /// The consumer group; every rolewatch instance of a deployment uses the same one, and
    /// partitions are shared among them.
    pub group_id: String,
    /// The log format of the records (`pgaudit-jsonlog`, ...).
    pub format: LogFormat,
    /// Formats of topics that differ from `format`, e.g. `{ "mariadb-audit" = "mariadb-audit" }`.
    #[serde(default)]
    pub topic_formats: BTreeMap<String, LogFormat>,
    /// The server name stamped on every event (`server` column).
    #[serde(default)]
    pub server: Option<String>,
    /// pgaudit-stderr topics: the servers' `log_line_prefix`, or a preset (`postgres`,
    /// `debian`, `rds`; default `postgres`).
    #[serde(default)]
    pub log_line_prefix: Option<String>,
    /// The IANA zone the sources write local times in (e.g. `Europe/Berlin`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Where a partition with nothing durable yet starts: `earliest` (default) or `latest`.
    #[serde(default)]
    pub start_without_durable: rolewatch_kafka::StartPosition,
    /// librdkafka settings passed through (SASL, TLS, timeouts). Secret values may be
    /// `{ env = "NAME" }` or `{ file = "/path" }`; they are never logged.
    #[serde(default)]
    pub client: BTreeMap<String, rolewatch_kafka::SettingValue>,
    /// The longest a record waits before it is stored and checked. Default `"5s"`.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: String,
    /// Events buffered per partition before a chunk is cut. Default 65536.
    #[serde(default = "default_chunk_events")]
    pub chunk_events: usize,
}

impl std::fmt::Debug for KafkaSection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KafkaSection")
            .field("consumer", &self.consumer_config())
            .field("format", &self.format)
            .field("topic_formats", &self.topic_formats)
            .field("flush_interval", &self.flush_interval)
            .field("chunk_events", &self.chunk_events)
            .finish_non_exhaustive()
    }
}

fn default_flush_interval() -> String {
    "5s".to_owned()
}

fn default_chunk_events() -> usize {
    65_536
}

impl KafkaSection {
    /// The consumer's settings.
    pub fn consumer_config(&self) -> rolewatch_kafka::KafkaSourceConfig {
        let mut config = rolewatch_kafka::KafkaSourceConfig::new(
            self.brokers.join(","),
            &self.topics.iter().map(String::as_str).collect::<Vec<_>>(),
            self.group_id.clone(),
        );
        config.brokers.clone_from(&self.brokers);
        config.start_without_durable = self.start_without_durable;
        config.client.clone_from(&self.client);
        config
    }

    /// The parser settings of the records.
    pub fn parser_options(&self) -> ParserOptions {
        ParserOptions {
            server: self.server.clone(),
            log_line_prefix: self.log_line_prefix.clone(),
            timezone: self.timezone.clone(),
        }
    }

    /// Checks, without I/O, that every topic's format can be read with these settings.
    pub fn validate(&self) -> anyhow::Result<()> {
        for topic in &self.topics {
            let format = self.format_of(topic);
            rolewatch_parse::try_parser_for(format, &self.parser_options())
                .map_err(|error| anyhow::anyhow!("[source.kafka] topic {topic} ({format}): {error}"))?;
        }
        Ok(())
    }

    /// The format of `topic`.
    pub fn format_of(&self, topic: &str) -> LogFormat {
        self.topic_formats.get(topic).copied().unwrap_or(self.format)
    }
}

struct PartitionBuffer {
    parser: Box<dyn RecordParser>,
    output: ParseOutput,
    /// The position handed to the parser: built once, only its offset changes per record.
    position: SourcePosition,
    first: Option<i64>,
    last: i64,
    since: Instant,
}

/// The buffers of the partitions this member holds.
pub struct KafkaBuffers {
    section: KafkaSection,
    options: ParserOptions,
    /// By topic, then partition: a record finds its buffer without building a key. foldhash,
    /// not std's SipHash, for the lookup every record makes.
    partitions: HashMap<String, BTreeMap<i32, PartitionBuffer>, foldhash::quality::RandomState>,
    /// A stored chunk's event vector, for the next cut of any partition (see
    /// [`KafkaBuffers::recycle`]).
    spare: SpareEvents,
    counts: InputCounts,
}

impl KafkaBuffers {
    /// Buffers for the records of `section`'s topics.
    pub fn new(section: KafkaSection) -> Self {
        let options = section.parser_options();
        Self {
            section,
            options,
            partitions: HashMap::default(),
            spare: SpareEvents::default(),
            counts: InputCounts::default(),
        }
    }

    /// Parses a record into its partition's buffer. Returns true when the partition's buffer
    /// holds a full chunk.
    pub fn add(&mut self, record: RecordRef<'_>) -> bool {
        let topic_buffers = match self.partitions.get_mut(&**record.topic) {
            Some(topic_buffers) => topic_buffers,
            None => self.partitions.entry(record.topic.to_string()).or_default(),
        };
        let buffer = topic_buffers.entry(record.partition).or_insert_with(|| PartitionBuffer {
            parser: rolewatch_parse::parser_for(self.section.format_of(record.topic), &self.options),
            output: first_chunk_output(self.section.chunk_events),
            position: record.position(),
            first: None,
            last: record.offset,
            since: Instant::now(),
        });
        if buffer.first.is_none() {
            buffer.first = Some(record.offset);
            buffer.since = Instant::now();
        }
        buffer.last = record.offset;
        if let SourcePosition::Kafka { offset, .. } = &mut buffer.position {
            *offset = record.offset;
        }
        self.counts.lines += 1;
        self.counts.bytes += record.payload.len() as u64;
        // Usually one line a record; `memchr` finds the line ends of the others (a byte-by-byte
        // split was 5% of a Kafka run).
        let mut rest = record.payload;
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let (line, after) = rest.split_at(end);
            rest = after.get(1..).unwrap_or_default();
            let line = trim_line_end(line);
            if !line.is_empty() {
                buffer.parser.parse_line(line, &buffer.position, &mut buffer.output);
            }
        }
        buffer.output.events.len() >= self.section.chunk_events
    }

    /// Cuts the partition's buffer into a chunk: the parser emits what it holds back, and the
    /// chunk accounts for every offset since the last cut. `None` when nothing was buffered.
    pub fn cut(&mut self, key: &PartitionKey) -> Option<(StreamId, Chunk)> {
        self.cut_at_record_end(key, false)
    }

    /// Cuts a full partition buffer while more records follow ([`KafkaBuffers::add`] said it
    /// is full): like [`KafkaBuffers::cut`], except that a log record the parser still has open
    /// (a stderr `ERROR` whose `STATEMENT` line is in the next Kafka record) goes with the next
    /// chunk, which starts at the Kafka record of its first line. When that Kafka record also
    /// holds lines already made into events, the open record is completed instead, so that no
    /// offset is in two chunks.
    pub fn cut_full(&mut self, key: &PartitionKey) -> Option<(StreamId, Chunk)> {
        self.cut_at_record_end(key, true)
    }

    fn cut_at_record_end(&mut self, key: &PartitionKey, keep_open: bool) -> Option<(StreamId, Chunk)> {
        let chunk_events = self.section.chunk_events;
        let spare = &mut self.spare;
        let buffer = self.partitions.get_mut(&key.0)?.get_mut(&key.1)?;
        let first = buffer.first.take()?;
        let kept = if keep_open {
            buffer.parser.cut(&mut buffer.output)
        } else {
            buffer.parser.finish(&mut buffer.output);
            None
        };
        let output = &buffer.output;
        let keep_from = match kept {
            Some(SourcePosition::Kafka { offset, .. })
                if offset > first
                    && offset <= buffer.last
                    && output.events.last().and_then(|event| event.source_offset) < Some(offset)
                    && output.rejected.last().is_none_or(|rejected| {
                        matches!(rejected.position, SourcePosition::Kafka { offset: at, .. } if at < offset)
                    }) =>
            {
                Some(offset)
            }
            // Nothing to cut before the open record: it is completed as at a flush.
            Some(_) => {
                buffer.parser.finish(&mut buffer.output);
                None
            }
            None => None,
        };
        let last = keep_from.map_or(buffer.last, |offset| offset - 1);
        if let Some(offset) = keep_from {
            buffer.first = Some(offset);
            buffer.since = Instant::now();
        }
        let next = spare.take(buffer.output.events.len(), chunk_events);
        let chunk = Chunk {
            events: std::mem::replace(&mut buffer.output.events, next),
            rejected: std::mem::take(&mut buffer.output.rejected),
            span: Span::Offsets { topic: key.0.clone(), partition: key.1, first, last },
        };
        let skipped = std::mem::take(&mut buffer.output.skipped);
        self.counts.events += chunk.events.len() as u64;
        for rejected in &chunk.rejected {
            *self.counts.rejected.entry(rejected.reason).or_default() += 1;
        }
        for (reason, count) in skipped {
            *self.counts.skipped.entry(reason).or_default() += count;
        }
        Some((StreamId::for_kafka(&key.0, key.1), chunk))
    }

    /// Puts a cut chunk back at the front of its partition's buffer, as if it had not been cut
    /// (`KafkaRun::recut`). Dropped when the partition has no buffer here any more (revoked
    /// since): its new owner reads it again.
    pub fn put_back(&mut self, key: &PartitionKey, chunk: Chunk) {
        let Span::Offsets { first, last, .. } = chunk.span else { return };
        let Some(buffer) = self.partitions.get_mut(&key.0).and_then(|topic| topic.get_mut(&key.1)) else {
            return;
        };
        // Counted at the cut; they are counted again at the next one.
        self.counts.events = self.counts.events.saturating_sub(chunk.events.len() as u64);
        for rejected in &chunk.rejected {
            if let Some(count) = self.counts.rejected.get_mut(&rejected.reason) {
                *count = count.saturating_sub(1);
            }
        }
        if buffer.first.is_none() {
            buffer.since = Instant::now();
        }
        buffer.first = Some(first);
        buffer.last = buffer.last.max(last);
        let mut events = chunk.events;
        events.append(&mut buffer.output.events);
        buffer.output.events = events;
        let mut rejected = chunk.rejected;
        rejected.append(&mut buffer.output.rejected);
        buffer.output.rejected = rejected;
    }

    /// The last offset buffered for `key`, if anything is.
    pub fn buffered_last(&self, key: &PartitionKey) -> Option<i64> {
        let buffer = self.partitions.get(&key.0)?.get(&key.1)?;
        buffer.first.map(|_| buffer.last)
    }

    /// Hands back a chunk once it is stored: the next cut of any partition fills its vector
    /// instead of faulting in fresh memory. One spare is shared by all partitions (chunks are
    /// stored one at a time), so the event vectors alive are one per partition plus one, where a
    /// spare per partition made it two per partition (six vectors of 28 MB for three partitions).
    pub fn recycle(&mut self, chunk: Chunk) {
        self.spare.keep(chunk.events);
    }

    /// The partitions with something buffered for which `include` holds, sorted.
    fn buffered(&self, include: impl Fn(&PartitionBuffer) -> bool) -> Vec<PartitionKey> {
        let mut keys: Vec<PartitionKey> = self
            .partitions
            .iter()
            .flat_map(|(topic, topic_buffers)| {
                topic_buffers
                    .iter()
                    .filter(|(_, buffer)| buffer.first.is_some() && include(buffer))
                    .map(|(partition, _)| (topic.clone(), *partition))
            })
            .collect();
        keys.sort();
        keys
    }

    /// The partitions whose oldest buffered record waited `flush_interval` or longer.
    pub fn due(&self, flush_interval: Duration) -> Vec<PartitionKey> {
        self.buffered(|buffer| buffer.since.elapsed() >= flush_interval)
    }

    /// Every partition with something buffered.
    pub fn pending(&self) -> Vec<PartitionKey> {
        self.buffered(|_| true)
    }

    /// Drops the buffers of partitions this member no longer holds.
    pub fn revoke(&mut self, partitions: &[PartitionKey]) {
        for (topic, partition) in partitions {
            if let Some(topic_buffers) = self.partitions.get_mut(topic) {
                topic_buffers.remove(partition);
            }
        }
        self.partitions.retain(|_, topic_buffers| !topic_buffers.is_empty());
    }

    /// Takes the read counts accumulated since the last call (for metrics).
    pub fn take_counts(&mut self) -> InputCounts {
        std::mem::take(&mut self.counts)
    }
}

#[cfg(test)]
mod tests {
    use rolewatch_kafka::{KafkaRecord, RecordBatch};

    use super::*;

    fn section(chunk_events: usize) -> KafkaSection {
        toml::from_str(&format!(
            "brokers = [\"127.0.0.1:9092\"]\ntopics = [\"pg\"]\ngroup_id = \"rw\"\nformat = \"pgaudit-jsonlog\"\nchunk_events = {chunk_events}\n"
        ))
        .unwrap()
    }

    /// Adds each record to `buffers` through a batch, as the run loop does; returns what the
    /// last `add` said.
    fn add(buffers: &mut KafkaBuffers, records: &[KafkaRecord]) -> bool {
        let mut batch = RecordBatch::default();
        records.iter().for_each(|record| batch.push_record(record));
        batch.iter().map(|record| buffers.add(record)).last().unwrap_or(false)
    }

    fn record(offset: i64, statement_id: u32) -> KafkaRecord {
        KafkaRecord {
            topic: "pg".into(),
            partition: 2,
            offset,
            key: None,
            payload: format!(
                r#"{{"timestamp":"2026-11-26 10:00:00.123 UTC","user":"app_reader","dbname":"shop","pid":7,"session_id":"6565.7","error_severity":"LOG","message":"AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,public.orders,SELECT * FROM orders,<none>,20000"}}"#
            )
            .into_bytes(),
            timestamp_millis: None,
        }
    }

    #[test]
    fn a_cut_accounts_for_every_offset_and_keeps_kafka_positions() {
        let mut buffers = KafkaBuffers::new(section(100));
        assert!(!add(&mut buffers, &[record(40, 1)]));
        let mut garbage = record(41, 2);
        garbage.payload = b"not json".to_vec();
        add(&mut buffers, &[garbage, record(42, 3)]);
        let key = ("pg".to_owned(), 2);
        let (stream, chunk) = buffers.cut(&key).unwrap();
        assert_eq!(stream, StreamId::for_kafka("pg", 2));
        assert_eq!(chunk.span, Span::Offsets { topic: "pg".into(), partition: 2, first: 40, last: 42 });
        assert_eq!(chunk.events.len(), 2);
        assert_eq!(chunk.rejected.len(), 1);
        let event = &chunk.events[0];
        assert_eq!(
            (event.source_topic.as_deref(), event.source_partition, event.source_offset),
            (Some("pg"), Some(2), Some(40))
        );
        assert!(buffers.cut(&key).is_none(), "nothing buffered since the cut");
        assert_eq!(buffers.take_counts().lines, 3);
    }

    /// Adds `lines` to `buffers` as the records at offsets 0, 1, ... of partition 2, cutting
    /// every full buffer as the run loop does and the rest at the end. Checks that nothing was
    /// rejected and that every offset is in exactly one chunk; returns how many chunks there
    /// were and their events.
    fn read_in_chunks(
        buffers: &mut KafkaBuffers,
        lines: &[&str],
    ) -> (usize, Vec<rolewatch_event::AuditEvent>) {
        let key = ("pg".to_owned(), 2);
        let mut chunks = Vec::new();
        for (offset, line) in lines.iter().enumerate() {
            let mut record = record(offset as i64, 0);
            record.payload = line.as_bytes().to_vec();
            if add(buffers, &[record]) {
                chunks.extend(buffers.cut_full(&key));
            }
        }
        chunks.extend(buffers.cut(&key));
        let (count, mut events, mut next) = (chunks.len(), Vec::new(), 0);
        for (_, chunk) in chunks {
            assert_eq!(chunk.rejected, vec![], "rejected at a cut");
            let Span::Offsets { first, last, .. } = chunk.span else { panic!("{:?}", chunk.span) };
            assert_eq!(first, next, "offsets in two chunks or in none");
            next = last + 1;
            events.extend(chunk.events);
        }
        assert_eq!(next, lines.len() as i64);
        (count, events)
    }

    fn offsets(chunk: &Chunk) -> (Vec<Option<i64>>, Vec<String>) {
        let events = chunk.events.iter().map(|event| event.source_offset).collect();
        let rejected = chunk.rejected.iter().map(|record| record.position.to_string()).collect();
        (events, rejected)
    }

    /// A chunk cut as another member declared it: split after the declared end, the rest put
    /// back, and the next cut is that rest followed by what was read since, counted once.
    #[test]
    fn a_chunk_split_after_a_declared_end_and_put_back_is_cut_again_whole() {
        let mut buffers = KafkaBuffers::new(section(100));
        let mut garbage = record(43, 4);
        garbage.payload = b"not json".to_vec();
        add(&mut buffers, &[record(40, 1), record(41, 2), record(42, 3), garbage, record(44, 5)]);
        let key = ("pg".to_owned(), 2);
        let (_, chunk) = buffers.cut(&key).unwrap();

        let (head, tail) = split_chunk(chunk.clone(), 41);
        assert_eq!(head.span, Span::Offsets { topic: "pg".into(), partition: 2, first: 40, last: 41 });
        assert_eq!(offsets(&head), (vec![Some(40), Some(41)], vec![]));
        let tail = tail.expect("records after the declared end");
        assert_eq!(tail.span, Span::Offsets { topic: "pg".into(), partition: 2, first: 42, last: 44 });
        assert_eq!(offsets(&tail).0, [Some(42), Some(44)]);
        assert_eq!(tail.rejected.len(), 1);
        assert!(split_chunk(chunk.clone(), 44).1.is_none(), "nothing after the chunk's end");
        assert!(split_chunk(chunk.clone(), 90).1.is_none());

        assert_eq!(buffers.buffered_last(&key), None);
        buffers.put_back(&key, tail.clone());
        assert_eq!(buffers.buffered_last(&key), Some(44));
        add(&mut buffers, &[record(45, 6)]);
        let (_, again) = buffers.cut(&key).unwrap();
        assert_eq!(again.span, Span::Offsets { topic: "pg".into(), partition: 2, first: 42, last: 45 });
        assert_eq!(offsets(&again).0, [Some(42), Some(44), Some(45)]);
        assert_eq!(offsets(&again).1, offsets(&tail).1);
        let counts = buffers.take_counts();
        // Five events and one reject were made: the put-back ones are not counted twice.
        assert_eq!((counts.events, counts.rejected_total(), counts.lines), (5, 1, 6));
    }

    #[test]
    fn a_chunk_put_back_for_a_revoked_partition_is_dropped() {
        let mut buffers = KafkaBuffers::new(section(100));
        add(&mut buffers, &[record(40, 1), record(41, 2)]);
        let key = ("pg".to_owned(), 2);
        let (_, chunk) = buffers.cut(&key).unwrap();
        buffers.revoke(std::slice::from_ref(&key));
        buffers.put_back(&key, chunk);
        assert!(buffers.pending().is_empty());
    }

    /// A shipper may put several lines in one record (CRLF, blank lines, no final newline):
    /// each line is a record of the log, all at the record's offset.
    #[test]
    fn every_line_of_a_multi_line_record_is_read() {
        let mut buffers = KafkaBuffers::new(section(100));
        let lines: Vec<Vec<u8>> = (1..=3).map(|statement_id| record(7, statement_id).payload).collect();
        let mut multi = record(7, 0);
        multi.payload = [&lines[0][..], b"\r\n\n", &lines[1][..], b"\n", &lines[2][..]].concat();
        add(&mut buffers, &[multi]);
        let (_, chunk) = buffers.cut(&("pg".to_owned(), 2)).unwrap();
        let ids: Vec<Option<u64>> = chunk.events.iter().map(|event| event.statement_id).collect();
        assert_eq!(ids, [Some(1), Some(2), Some(3)]);
        assert!(chunk.events.iter().all(|event| event.source_offset == Some(7)));
        assert!(chunk.rejected.is_empty(), "{:?}", chunk.rejected);
    }

    /// A stderr topic with one log line per Kafka record: a full buffer is cut before the log
    /// record still open, so an `ERROR` keeps its `STATEMENT` (in the next Kafka record) and a
    /// statement its continuation lines; the chunks' offsets follow on from each other.
    #[test]
    fn a_full_buffer_is_cut_before_the_log_record_still_open() {
        let section: KafkaSection = toml::from_str(
            "brokers = [\"127.0.0.1:9092\"]\ntopics = [\"pg\"]\ngroup_id = \"rw\"\nformat = \"pgaudit-stderr\"\nlog_line_prefix = \"%m [%p] %q%u@%d %r %a %c \"\nchunk_events = 2\n",
        )
        .unwrap();
        let mut buffers = KafkaBuffers::new(section);
        let mut lines = Vec::new();
        for statement_id in 1..=9 {
            let prefix = format!(
                "2026-11-26 10:00:{statement_id:02}.123 UTC [100] app@shop 10.0.0.1(5000) psql 6565.64 "
            );
            if statement_id % 3 == 0 {
                lines.push(format!("{prefix}ERROR:  permission denied for table secrets"));
                lines.push(format!("{prefix}STATEMENT:  SELECT *"));
                lines.push(format!("\tFROM secrets WHERE id = {statement_id};"));
            } else {
                lines.push(format!("{prefix}LOG:  AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,public.t,\"SELECT {statement_id}"));
                lines.push("\tFROM t\",<none>".to_owned());
            }
        }
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (chunks, events) = read_in_chunks(&mut buffers, &lines);
        assert!(chunks >= 4, "{chunks}");
        let statements: Vec<(bool, String)> =
            events.iter().map(|event| (event.success, event.statement.clone().unwrap_or_default())).collect();
        let expected: Vec<(bool, String)> = (1..=9)
            .map(|statement_id| {
                if statement_id % 3 == 0 {
                    (false, format!("SELECT *\nFROM secrets WHERE id = {statement_id};"))
                } else {
                    (true, format!("SELECT {statement_id}\nFROM t"))
                }
            })
            .collect();
        assert_eq!(statements, expected);
    }

    /// The committed capture of a real server (`examples/logs`), a line per Kafka record, in
    /// chunks of two to seven events and whole: the same events whatever the chunk size, and
    /// every offset in exactly one chunk. A statement on several relations that a cut fell
    /// between became two events, one per chunk.
    #[test]
    fn the_chunk_size_does_not_change_the_events() {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/logs");
        for (format, name) in [("pgaudit-jsonlog", "postgresql.json"), ("pgaudit-stderr", "postgresql.log")] {
            let text = std::fs::read_to_string(directory.join(name)).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let read = |chunk_events: usize| {
                let section: KafkaSection = toml::from_str(&format!(
                    "brokers = [\"127.0.0.1:9092\"]\ntopics = [\"pg\"]\ngroup_id = \"rw\"\nformat = \"{format}\"\nlog_line_prefix = \"%m [%p] %q%u@%d %r %a %c \"\nchunk_events = {chunk_events}\n"
                ))
                .unwrap();
                read_in_chunks(&mut KafkaBuffers::new(section), &lines).1
            };
            let whole = read(1 << 20);
            assert!(whole.iter().filter(|event| event.objects.len() > 1).count() >= 2, "{name}");
            for chunk_events in 2..=7 {
                assert!(read(chunk_events) == whole, "{name} in chunks of {chunk_events}");
            }
        }
    }

    #[test]
    fn full_buffers_are_reported_and_revoked_ones_dropped() {
        let mut buffers = KafkaBuffers::new(section(2));
        add(&mut buffers, &[record(0, 1), record(1, 2)]);
        assert!(add(&mut buffers, &[record(2, 3)]), "two events completed, a third held back");
        assert_eq!(buffers.pending(), [("pg".to_owned(), 2)]);
        assert_eq!(buffers.due(Duration::ZERO), [("pg".to_owned(), 2)]);
        buffers.revoke(&[("pg".to_owned(), 2)]);
        assert!(buffers.pending().is_empty());
    }

    /// The spare is shared: a chunk stored from one partition lends its memory to the next cut
    /// of another, so the vectors alive are one per partition plus one.
    #[test]
    fn a_stored_chunk_lends_its_vector_to_another_partitions_cut() {
        let mut buffers = KafkaBuffers::new(section(2));
        let mut other = record(0, 1);
        other.partition = 3;
        add(&mut buffers, &[record(0, 1), record(1, 2), record(2, 3), other]);
        let (_, stored) = buffers.cut_full(&("pg".to_owned(), 2)).unwrap();
        let lent = stored.events.as_ptr();
        buffers.recycle(stored);
        add(
            &mut buffers,
            &[{
                let mut next = record(1, 2);
                next.partition = 3;
                next
            }],
        );
        let (_, chunk) = buffers.cut(&("pg".to_owned(), 3)).unwrap();
        assert_eq!(chunk.events.len(), 2);
        let after = buffers.partitions["pg"][&3].output.events.as_ptr();
        assert_eq!(after, lent, "partition 3's next chunk fills the vector partition 2 stored");
    }
}
