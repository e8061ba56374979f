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

/// What parsers append to. Callers drain `events` and `rejected` as they go.
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

    pub(crate) fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_insert(0) += 1;
    }

    /// The number of skipped lines, all reasons together.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Rejects every line of a format this build cannot read.
pub(crate) struct UnsupportedParser(pub(crate) LogFormat);

impl RecordParser for UnsupportedParser {
    fn format(&self) -> LogFormat {
        self.0
    }

    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput) {
        output.reject(
            position,
            RejectReason::UnsupportedFormat,
            format!("format {} is not supported by this build", self.0),
            line,
        );
    }

    fn finish(&mut self, _output: &mut ParseOutput) {}
}
