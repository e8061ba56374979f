//! A batch of records: what one poll of the consumer hands out, copied into one reusable
//! buffer instead of one allocation per key and value.

use std::ops::Range;
use std::sync::Arc;

use rolewatch_event::SourcePosition;

use crate::KafkaRecord;

/// The most records a batch holds unless told otherwise: enough that the per-poll costs
/// (waking the task, one `select!` in the run loop) vanish, few enough that the run loop
/// answers a signal or a timer within a few milliseconds.
pub const DEFAULT_BATCH_RECORDS: usize = 4096;

/// Records of one poll, oldest first, their keys and values back to back in one buffer.
///
/// Filled by [`KafkaSource::next_batch`](crate::KafkaSource::next_batch), which clears it first:
/// keep one batch and pass it again, so that its buffers are allocated once. Topics are shared
/// (`Arc<str>`), not copied per record.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    bytes: Vec<u8>,
    records: Vec<BatchedRecord>,
    max_records: usize,
}

#[derive(Debug, Clone)]
struct BatchedRecord {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    key: Option<Range<usize>>,
    payload: Range<usize>,
    timestamp_millis: Option<i64>,
}

/// One record of a [`RecordBatch`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'batch> {
    /// The topic, shared by every record of it.
    pub topic: &'batch Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's key, if it has one.
    pub key: Option<&'batch [u8]>,
    /// The record's value (empty for a tombstone).
    pub payload: &'batch [u8],
    /// The producer's or broker's timestamp, in milliseconds since the epoch, if any.
    pub timestamp_millis: Option<i64>,
}

impl RecordRef<'_> {
    /// The record's position, as stored with every event (`source_topic`, ...).
    pub fn position(&self) -> SourcePosition {
        SourcePosition::Kafka {
            topic: Arc::clone(self.topic),
            partition: self.partition,
            offset: self.offset,
        }
    }

    /// An owned copy of the record.
    pub fn to_record(&self) -> KafkaRecord {
        KafkaRecord {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
            key: self.key.map(<[u8]>::to_vec),
            payload: self.payload.to_vec(),
            timestamp_millis: self.timestamp_millis,
        }
    }
}

impl Default for RecordBatch {
    fn default() -> Self {
        Self::new(DEFAULT_BATCH_RECORDS)
    }
}

impl RecordBatch {
    /// An empty batch that takes at most `max_records` records per poll (at least one).
    pub fn new(max_records: usize) -> Self {
        Self { bytes: Vec::new(), records: Vec::new(), max_records: max_records.max(1) }
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether the batch holds as many records as it may.
    pub fn is_full(&self) -> bool {
        self.records.len() >= self.max_records
    }

    /// Bytes of keys and values held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The records, oldest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> {
        self.records.iter().map(|record| RecordRef {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            key: record.key.clone().and_then(|range| self.bytes.get(range)),
            payload: self.bytes.get(record.payload.clone()).unwrap_or_default(),
            timestamp_millis: record.timestamp_millis,
        })
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    /// Appends a record (copying its key and value). The source does this for each record it
    /// admits; tests and other sources may too. A batch grows past its `max_records` if told to.
    pub fn push(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: &[u8],
        timestamp_millis: Option<i64>,
    ) {
        let key = key.map(|key| self.append(key));
        let payload = self.append(payload);
        self.records.push(BatchedRecord {
            topic: Arc::clone(topic),
            partition,
            offset,
            key,
            payload,
            timestamp_millis,
        });
    }

    /// Appends an owned record.
    pub fn push_record(&mut self, record: &KafkaRecord) {
        let topic: Arc<str> = match self.records.last() {
            Some(last) if *last.topic == *record.topic => Arc::clone(&last.topic),
            _ => Arc::from(record.topic.as_str()),
        };
        self.push(
            &topic,
            record.partition,
            record.offset,
            record.key.as_deref(),
            &record.payload,
            record.timestamp_millis,
        );
    }

    /// Keeps only the records for which `keep(topic, partition)` is true, in order, and the
    /// bytes of their keys and values.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, i32) -> bool) {
        let before = self.records.len();
        self.records.retain(|record| keep(&record.topic, record.partition));
        if self.records.len() == before {
            return;
        }
        // Kept bytes move down in place: records are in buffer order, a key before its value.
        let mut end = 0;
        for record in &mut self.records {
            if let Some(key) = &mut record.key {
                *key = move_down(&mut self.bytes, key.clone(), &mut end);
            }
            record.payload = move_down(&mut self.bytes, record.payload.clone(), &mut end);
        }
        self.bytes.truncate(end);
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }
}

/// Copies `bytes[range]` to `end` (at or below its start) and returns where it is now.
fn move_down(bytes: &mut [u8], range: Range<usize>, end: &mut usize) -> Range<usize> {
    let start = *end;
    *end += range.len();
    bytes.copy_within(range, start);
    start..*end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, offset: i64, key: Option<&[u8]>, payload: &[u8]) -> KafkaRecord {
        KafkaRecord {
            topic: topic.to_owned(),
            partition: 3,
            offset,
            key: key.map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            timestamp_millis: Some(offset * 10),
        }
    }

    #[test]
    fn records_come_back_in_order_with_their_keys_and_values() {
        let records = [
            record("a", 7, Some(b"k1"), b"first"),
            record("a", 8, None, b""),
            record("b", 9, Some(b""), b"third"),
        ];
        let mut batch = RecordBatch::new(2);
        for record in &records {
            batch.push_record(record);
        }
        assert_eq!(batch.len(), 3);
        assert!(batch.is_full());
        let back: Vec<KafkaRecord> = batch.iter().map(|record| record.to_record()).collect();
        assert_eq!(back, records);
        let first = batch.iter().next().unwrap();
        assert_eq!(first.position(), SourcePosition::Kafka { topic: "a".into(), partition: 3, offset: 7 });
        let topics: Vec<&Arc<str>> = batch.iter().map(|record| record.topic).collect();
        assert!(Arc::ptr_eq(topics[0], topics[1]), "records of one topic share it");

        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.byte_len(), 0);
        assert_eq!(batch.iter().count(), 0);
    }

    #[test]
    fn retain_keeps_the_chosen_records_with_their_bytes_and_nothing_else() {
        let mut records = Vec::new();
        for (offset, partition) in (0..12).zip([0, 1, 2].into_iter().cycle()) {
            let key = format!("key-{offset}");
            let mut kept = record(if offset % 4 == 0 { "b" } else { "a" }, offset, None, b"");
            kept.partition = partition;
            kept.key = (offset % 3 != 0).then(|| key.into_bytes());
            kept.payload = format!("value {offset} of partition {partition}").into_bytes();
            records.push(kept);
        }
        let mut batch = RecordBatch::default();
        for record in &records {
            batch.push_record(record);
        }
        batch.retain(|topic, partition| !(topic == "a" && partition == 1));
        let expected: Vec<KafkaRecord> =
            records.iter().filter(|r| !(r.topic == "a" && r.partition == 1)).cloned().collect();
        let back: Vec<KafkaRecord> = batch.iter().map(|record| record.to_record()).collect();
        assert_eq!(back, expected);
        let bytes: usize =
            expected.iter().map(|r| r.payload.len() + r.key.as_ref().map_or(0, Vec::len)).sum();
        assert_eq!(batch.byte_len(), bytes, "the dropped records' bytes are gone");

        batch.retain(|_, _| true);
        assert_eq!(batch.iter().map(|record| record.to_record()).collect::<Vec<_>>(), expected);
        batch.retain(|_, _| false);
        assert!(batch.is_empty());
        assert_eq!(batch.byte_len(), 0);
    }
}
