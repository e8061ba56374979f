//! When to close a chunk of a stream and commit it: a named predicate, as Kafka Connect's and
//! kafka-delta-ingest's sinks have one.
//!
//! A replay must cut the stream at the same records to produce the same file names, so the
//! predicate looks only at the records (their count, their bytes, and their own timestamps),
//! never at the wall clock. Wall-clock flushing (a quiet stream still becomes durable) belongs
//! to the caller's idle timer, which commits what it has; that cut is not reproducible, which
//! is safe only because durable positions make the replay skip what was committed.

use std::num::NonZeroU64;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Limits on one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollPolicy {
    /// Records (events and dead letters) per chunk.
    pub max_records: NonZeroU64,
    /// Raw input bytes per chunk. Keep the resulting Parquet files well under the store's
    /// single-put limit: a multipart upload cannot be create-only.
    pub max_bytes: NonZeroU64,
    /// The span of record time a chunk may cover.
    pub max_record_span: Duration,
}

impl Default for RollPolicy {
    fn default() -> Self {
        Self {
            max_records: NonZeroU64::new(500_000).unwrap_or(NonZeroU64::MIN),
            max_bytes: NonZeroU64::new(128 * 1024 * 1024).unwrap_or(NonZeroU64::MIN),
            max_record_span: Duration::from_secs(15 * 60),
        }
    }
}

/// What a chunk holds so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkSoFar {
    /// Records in it.
    pub records: u64,
    /// Raw input bytes in it.
    pub bytes: u64,
    /// The time of its first record with a time, if any.
    pub first_record_at: Option<DateTime<Utc>>,
}

impl ChunkSoFar {
    /// Adds a record of `bytes` raw bytes read at record time `at` (if it has one).
    pub fn add(&mut self, bytes: u64, at: Option<DateTime<Utc>>) {
        self.records = self.records.saturating_add(1);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.first_record_at.is_none() {
            self.first_record_at = at;
        }
    }
}

/// Whether the chunk must be closed before a record of `next_bytes` bytes at record time
/// `next_at` is added to it. An empty chunk never rolls, so every record finds a chunk.
pub fn should_roll_file(
    policy: &RollPolicy,
    chunk: &ChunkSoFar,
    next_bytes: u64,
    next_at: Option<DateTime<Utc>>,
) -> bool {
    if chunk.records == 0 {
        return false;
    }
    if chunk.records >= policy.max_records.get()
        || chunk.bytes.saturating_add(next_bytes) > policy.max_bytes.get()
    {
        return true;
    }
    match (chunk.first_record_at, next_at, chrono::Duration::from_std(policy.max_record_span)) {
        (Some(first), Some(next), Ok(span)) => next - first >= span,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RollPolicy {
        RollPolicy {
            max_records: NonZeroU64::new(3).unwrap(),
            max_bytes: NonZeroU64::new(100).unwrap(),
            max_record_span: Duration::from_secs(60),
        }
    }

    #[test]
    fn rolls_on_count_size_and_record_time_only() {
        let at = |seconds: i64| Some(DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap());
        let mut chunk = ChunkSoFar::default();
        assert!(!should_roll_file(&policy(), &chunk, 1_000, at(0)), "an empty chunk takes any record");
        chunk.add(10, at(0));
        assert!(!should_roll_file(&policy(), &chunk, 10, at(59)));
        assert!(should_roll_file(&policy(), &chunk, 10, at(60)), "record time span");
        assert!(should_roll_file(&policy(), &chunk, 91, at(1)), "size");
        assert!(
            !should_roll_file(&policy(), &chunk, 10, None),
            "a record without time does not roll by time"
        );
        chunk.add(10, at(1));
        chunk.add(10, at(2));
        assert!(should_roll_file(&policy(), &chunk, 1, at(3)), "count");
    }
}
