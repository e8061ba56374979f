//! Records the parser could not read, kept whole: "stored + dead-lettered = received".

use std::sync::{Arc, LazyLock};

use arrow_array::{ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rolewatch_event::SourcePosition;

use crate::naming::StreamId;
use crate::{DEAD_LETTERS_PREFIX, LakeError};

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where it was read.
    pub position: SourcePosition,
    /// The stable reason name (e.g. `invalid_json`).
    pub reason: String,
    /// What the parser said about it.
    pub detail: String,
    /// The raw bytes.
    pub raw: Vec<u8>,
}

impl DeadLetter {
    pub(crate) fn offset(&self) -> i64 {
        match &self.position {
            SourcePosition::File { offset, .. } => i64::try_from(*offset).unwrap_or(i64::MAX),
            SourcePosition::Kafka { offset, .. } => *offset,
        }
    }
}

static DEAD_LETTER_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source_file", DataType::Utf8, true),
        Field::new("source_line", DataType::Int64, true),
        Field::new("source_topic", DataType::Utf8, true),
        Field::new("source_partition", DataType::Int32, true),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
        Field::new("raw", DataType::Binary, false),
    ]))
});

/// The schema of the `dead_letters` table.
pub fn dead_letter_schema() -> SchemaRef {
    Arc::clone(&DEAD_LETTER_SCHEMA)
}

/// `dead_letters/<stream>-<first offset:020>-<last offset:020>.parquet`, or `None` if empty.
pub(crate) fn dead_letter_key(stream: &StreamId, dead_letters: &[DeadLetter]) -> Option<String> {
    let first = dead_letters.iter().map(DeadLetter::offset).min()?;
    let last = dead_letters.iter().map(DeadLetter::offset).max()?;
    Some(format!("{DEAD_LETTERS_PREFIX}/{stream}-{first:020}-{last:020}.parquet"))
}

pub(crate) fn dead_letters_to_batch(dead_letters: &[DeadLetter]) -> Result<RecordBatch, LakeError> {
    let file = |letter: &DeadLetter| match &letter.position {
        SourcePosition::File { file, line, .. } => {
            (Some(file.clone()), i64::try_from(*line).ok(), None, None)
        }
        SourcePosition::Kafka { topic, partition, .. } => (None, None, Some(topic.clone()), Some(*partition)),
    };
    let parts: Vec<_> = dead_letters.iter().map(file).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(parts.iter().map(|part| part.0.as_deref()).collect::<StringArray>()),
        Arc::new(parts.iter().map(|part| part.1).collect::<Int64Array>()),
        Arc::new(parts.iter().map(|part| part.2.as_deref()).collect::<StringArray>()),
        Arc::new(parts.iter().map(|part| part.3).collect::<Int32Array>()),
        Arc::new(dead_letters.iter().map(|letter| Some(letter.offset())).collect::<Int64Array>()),
        Arc::new(dead_letters.iter().map(|letter| Some(letter.reason.as_str())).collect::<StringArray>()),
        Arc::new(dead_letters.iter().map(|letter| Some(letter.detail.as_str())).collect::<StringArray>()),
        Arc::new(dead_letters.iter().map(|letter| Some(letter.raw.as_slice())).collect::<BinaryArray>()),
    ];
    Ok(RecordBatch::try_new(dead_letter_schema(), columns)?)
}
