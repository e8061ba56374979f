//! Raw audit log records to normalized [`AuditEvent`](rolewatch_event::AuditEvent)s, or a rejection with a reason.
//!
//! A parser is fed the **physical lines** of a log, one at a time, each with the
//! [`SourcePosition`] it was read at, and appends what it makes of them to a [`ParseOutput`]:
//!
//! * events, in the shape of the event model;
//! * rejections: lines it could not read, with the raw bytes, position and reason, so that the
//!   pipeline can keep them in a dead-letter store ("stored + dead-lettered = received");
//! * a count of skipped lines: server chatter that is well formed but not an audit record
//!   (checkpoints, autovacuum, `connection received`), counted by [`SkipReason`].
//!
//! Parsers are pure: no I/O, no wall clock. Some records span several lines (pgAudit logs one
//! line per relation of a statement) so a parser may hold an event back until the next line of
//! the same session, or until [`RecordParser::finish`] is called at the end of the input.
//!
//! ```
//! use rolewatch_event::{SourcePosition, StatementClass};
//! use rolewatch_parse::{parser_for, ParseOutput, ParserOptions};
//! use rolewatch_event::LogFormat;
//!
//! let line = br#"{"timestamp":"2026-11-26 10:00:00.123 UTC","user":"app_reader","dbname":"shop","pid":7,"session_id":"6565.7","error_severity":"LOG","message":"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,SELECT * FROM orders,<none>,20000"}"#;
//! let mut parser = parser_for(LogFormat::PgauditJsonlog, &ParserOptions::default());
//! let mut output = ParseOutput::default();
//! let position = SourcePosition::File { file: "pg.json".into(), line: 1, offset: 0 };
//! parser.parse_line(line, &position, &mut output);
//! parser.finish(&mut output);
//! let event = &output.events[0];
//! assert_eq!(event.class, StatementClass::Read);
//! assert_eq!(event.rows, Some(20_000));
//! assert_eq!(event.objects, ["public.orders"]);
//! ```

pub mod classify;
mod jsonlog;
mod output;
mod pgaudit;
mod pglog;
mod timestamp;

use rolewatch_event::LogFormat;
pub use rolewatch_event::SourcePosition;

pub use output::{ParseOutput, RejectReason, Rejected, SkipReason};
pub use timestamp::TimestampError;

/// The longest line a parser accepts; longer ones are rejected (and dead-lettered) whole.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Settings that apply to every record of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParserOptions {
    /// The server name to stamp on every event (`server` column), if the operator gave one.
    pub server: Option<String>,
}

/// A parser of one log format. See the crate docs for the contract.
pub trait RecordParser: Send {
    /// The format this parser reads.
    fn format(&self) -> LogFormat;

    /// Reads one physical line (without its line terminator).
    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput);

    /// Flushes every event held back waiting for more lines; call at the end of the input.
    fn finish(&mut self, output: &mut ParseOutput);
}

/// Whether a format can be parsed by this build. Formats are added issue by issue.
pub fn is_supported(format: LogFormat) -> bool {
    matches!(format, LogFormat::PgauditJsonlog)
}

/// A parser for `format`.
///
/// Formats this build does not read yet get a parser that rejects every line with
/// [`RejectReason::UnsupportedFormat`], so nothing is silently dropped; callers that want an
/// early error check [`is_supported`] first.
pub fn parser_for(format: LogFormat, options: &ParserOptions) -> Box<dyn RecordParser> {
    match format {
        LogFormat::PgauditJsonlog => Box::new(jsonlog::JsonlogParser::new(options.clone())),
        other => Box::new(output::UnsupportedParser(other)),
    }
}
