//! Durable positions: what the lake has stored, per partition. The consumer's only input from
//! the sink, and the reason it never needs Kafka's committed offsets to be right.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The last offset per partition whose record is durably stored (covered by a manifest).
///
/// The lake implements this from its manifests. It is called from inside the consumer's
/// rebalance callback, once per newly assigned partition, so it must answer quickly from memory
/// and must not call back into the consumer.
pub trait DurablePositions: Send + Sync {
    /// The offset of the last durable record of `topic[partition]`, or `None` if nothing of
    /// that partition is stored yet.
    fn durable_offset(&self, topic: &str, partition: i32) -> Option<i64>;
}

/// Durable positions held in memory: for tests, and for sinks that keep their own map.
#[derive(Debug, Default)]
pub struct MemoryPositions {
    offsets: Mutex<HashMap<(String, i32), i64>>,
}

impl MemoryPositions {
    /// An empty map: nothing is durable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that every record of `topic[partition]` up to `offset` is durable. Positions
    /// only move forward: a lower offset than the one recorded is ignored.
    pub fn set_durable(&self, topic: &str, partition: i32, offset: i64) {
        let mut offsets = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = offsets.entry((topic.to_owned(), partition)).or_insert(offset);
        *entry = (*entry).max(offset);
    }
}

impl DurablePositions for MemoryPositions {
    fn durable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let offsets = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        offsets.get(&(topic.to_owned(), partition)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_only_move_forward() {
        let positions = MemoryPositions::new();
        assert_eq!(positions.durable_offset("t", 0), None);
        positions.set_durable("t", 0, 7);
        positions.set_durable("t", 0, 3);
        assert_eq!(positions.durable_offset("t", 0), Some(7));
        assert_eq!(positions.durable_offset("t", 1), None);
    }
}
