use std::collections::BTreeMap;
use std::fmt;

use rolewatch_event::{AuditEvent, LogFormat, SourcePosition};

use crate::RecordParser;

/// Why a line was rejected. The names are stable: they label dead letters and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The bytes are not UTF-8.
    InvalidUtf8,
    /// The line is not the JSON object the format requires.
    InvalidJson,
    /// A field the event model needs is missing.
    MissingField,
    /// The timestamp could not be read, or its zone is ambiguous.
    BadTimestamp,
    /// The pgAudit record inside the message is malformed.
    BadAuditRecord,
    /// The line is longer than [`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES).
    TooLarge,
    /// This build cannot read the format yet.
    UnsupportedFormat,
    /// A stderr line that does not start with the configured `log_line_prefix`.
    BadPrefix,
    /// A record whose fields cannot be read: a csvlog row, a MariaDB or MySQL audit record.
    BadRecord,
    /// The parser's options cannot work (unknown time zone, unusable `log_line_prefix`).
    BadOptions,
}

impl RejectReason {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidUtf8 => "invalid_utf8",
            Self::InvalidJson => "invalid_json",
            Self::MissingField => "missing_field",
            Self::BadTimestamp => "bad_timestamp",
            Self::BadAuditRecord => "bad_audit_record",
            Self::TooLarge => "too_large",
            Self::UnsupportedFormat => "unsupported_format",
            Self::BadPrefix => "bad_prefix",
            Self::BadRecord => "bad_record",
            Self::BadOptions => "bad_options",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a well-formed line produced no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Server chatter that is not an audit record (checkpoints, autovacuum, startup, ...).
    ServerChatter,
    /// An empty or whitespace-only line.
    Blank,
}

impl SkipReason {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerChatter => "server_chatter",
            Self::Blank => "blank",
        }
    }
}

/// A line the parser could not read, kept whole for the dead-letter store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Where the line was read.
    pub position: SourcePosition,
    /// Why it was rejected.
    pub reason: RejectReason,
    /// A human-readable detail (never the whole line).
    pub detail: String,
    /// The raw bytes of the line.
    pub raw: Vec<u8>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}: {}", self.position, self.reason, self.detail)
    }
}

/// What parsers append to. Callers take `events` and `rejected` after
/// [`RecordParser::finish`](crate::RecordParser::finish).
#[derive(Debug, Default)]
pub struct ParseOutput {
    /// Normalized events, in the order they were completed.
    pub events: Vec<AuditEvent>,
    /// Rejected lines.
    pub rejected: Vec<Rejected>,
    /// Lines skipped, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
}

impl ParseOutput {
    pub(crate) fn reject(
        &mut self,
        position: &SourcePosition,
        reason: RejectReason,
        detail: impl Into<String>,
        raw: &[u8],
    ) {
        self.rejected.push(Rejected {
            position: position.clone(),
            reason,
            detail: detail.into(),
            raw: raw.to_vec(),
        });
    }

    /// Rejects `line` when it is longer than [`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES); returns
    /// whether it did.
    /// Rejects a record serde_json refused: invalid UTF-8 when it is not text, invalid JSON
    /// otherwise, with serde_json's words (which say where).
    pub(crate) fn reject_json(&mut self, position: &SourcePosition, error: &serde_json::Error, raw: &[u8]) {
        let reason = if std::str::from_utf8(raw).is_err() {
            RejectReason::InvalidUtf8
        } else {
            RejectReason::InvalidJson
        };
        self.reject(position, reason, error.to_string(), raw);
    }

    pub(crate) fn reject_if_too_large(&mut self, line: &[u8], position: &SourcePosition) -> bool {
        let too_large = line.len() > crate::MAX_LINE_BYTES;
        if too_large {
            self.reject(position, RejectReason::TooLarge, format!("line of {} bytes", line.len()), line);
        }
        too_large
    }

    pub(crate) fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_insert(0) += 1;
    }

    /// The number of skipped lines, all reasons together.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Rejects every line, for options that cannot work: nothing is silently dropped.
pub(crate) struct RejectingParser {
    pub(crate) format: LogFormat,
    pub(crate) detail: String,
}

impl RecordParser for RejectingParser {
    fn format(&self) -> LogFormat {
        self.format
    }

    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput) {
        output.reject(position, RejectReason::BadOptions, self.detail.clone(), line);
    }

    fn finish(&mut self, _output: &mut ParseOutput) {}
}

/// A position's byte offset (files) or Kafka offset (the lines of one Kafka record share it):
/// positions of one input in read order.
pub(crate) fn position_offset(position: &SourcePosition) -> i64 {
    match position {
        SourcePosition::File { offset, .. } => i64::try_from(*offset).unwrap_or(i64::MAX),
        SourcePosition::Kafka { offset, .. } => *offset,
    }
}

/// Feeds `text` to `parser` line by line, as a file named `file`, and finishes.
#[cfg(test)]
pub(crate) fn parse_text(mut parser: impl RecordParser, file: &str, text: &str) -> ParseOutput {
    let mut output = ParseOutput::default();
    let mut offset = 0u64;
    for (index, line) in text.split('\n').enumerate() {
        let position = SourcePosition::File { file: file.into(), line: index as u64 + 1, offset };
        parser.parse_line(line.as_bytes(), &position, &mut output);
        offset += line.len() as u64 + 1;
    }
    parser.finish(&mut output);
    output
}
