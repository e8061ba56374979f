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
//! line per relation of a statement, MariaDB a query's table records around it), so a parser
//! may hold an event back, or amend one it already appended, until the next line of the same
//! session, or until [`RecordParser::finish`] is called at the end of the input: take the
//! events only after `finish`.
//!
//! # Formats
//!
//! | `--format` | module | what it reads |
//! |---|---|---|
//! | `pgaudit-jsonlog` | `jsonlog` | PostgreSQL 15+ jsonlog; pgAudit's CSV record in `message` |
//! | `pgaudit-csvlog` | `csvlog` | csvlog rows of 23, 24 or 26 columns, over several lines when quoted |
//! | `pgaudit-stderr` | `stderr`, `prefix` | stderr lines after the compiled [`ParserOptions::log_line_prefix`] |
//! | `mariadb-audit` | `mariadb` | MariaDB server_audit, RDS MariaDB, the RDS for MySQL plugin, Aurora MySQL |
//! | `mysql-audit-json` | `mysqljson` | MySQL Enterprise Audit / Percona Audit Log Filter JSON, Percona legacy JSON |
//!
//! The three PostgreSQL carriers share `pglog`, which turns a log record into events the same
//! way whatever carried it: pgAudit records (merged per statement), `ERROR` + `STATEMENT` as a
//! failed statement, `FATAL` authentication failures and `connection authorized` as `CONNECT`.
//! Sources that carry no class get one from [`classify`]; failed statements (and MariaDB or
//! MySQL DDL and ROLE statements) that come without table names get them from sqlparser, behind
//! a cache (`objects`), never on the hot path of pgAudit records.
//!
//! For `--format auto`, [`sniff_format`] tells the format from the first lines and
//! [`sniff_log_line_prefix`] a well-known stderr prefix. [`try_parser_for`] checks the options
//! (an IANA [`ParserOptions::timezone`], a usable prefix) before any line is read.
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

mod bytes;
pub mod classify;
mod csvlog;
mod jsonlog;
mod jsonlog_scan;
mod mariadb;
mod mysqljson;
mod objects;
mod output;
mod pgaudit;
mod pglog;
mod prefix;
mod sniff;
mod stderr;
mod timestamp;

use rolewatch_event::LogFormat;
pub use rolewatch_event::SourcePosition;

pub use output::{ParseOutput, RejectReason, Rejected, SkipReason};
pub use prefix::{LOG_LINE_PREFIX_PRESETS, LogLinePrefix, PrefixError};
pub use sniff::{sniff_format, sniff_log_line_prefix};
pub use timestamp::TimestampError;

/// The longest line a parser accepts; longer ones are rejected (and dead-lettered) whole.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// About the most events a parser holds back at once (records that may still get more lines:
/// a MariaDB query's table records, MySQL table records waiting for their statement); past it the oldest are emitted, and
/// [`RecordParser::finish`] emits the rest. A reader that cuts chunks leaves this much room for
/// the flush at the cut. Also the most PostgreSQL sessions whose last statement still takes
/// further lines.
pub const MAX_HELD_BACK_EVENTS: usize = 4096;

/// Settings that apply to every record of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParserOptions {
    /// The server name to stamp on every event (`server` column), if the operator gave one.
    pub server: Option<String>,
    /// `pgaudit-stderr` only: the server's `log_line_prefix` (`--log-line-prefix`), or the name of
    /// a preset ([`LOG_LINE_PREFIX_PRESETS`]: `postgres`, `debian`, `rds`). `None` means
    /// PostgreSQL's default, `'%m [%p] '`.
    pub log_line_prefix: Option<String>,
    /// The IANA zone the source writes local times in (`--timezone`, e.g. `Europe/Berlin`):
    /// needed for PostgreSQL zone abbreviations other than UTC/GMT and for MariaDB's zone-less
    /// local times (read as UTC when this is `None`).
    pub timezone: Option<String>,
}

/// Options that cannot work, found before any line is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `timezone` is not an IANA zone name.
    #[error("unknown time zone {0:?}: expected an IANA name such as Europe/Berlin or UTC")]
    UnknownTimezone(String),
    /// `log_line_prefix` cannot be used to read a stderr log.
    #[error("log_line_prefix {prefix:?}: {source}")]
    LogLinePrefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        source: PrefixError,
    },
}

impl ParserOptions {
    /// The configured zone, parsed.
    pub(crate) fn zone(&self) -> Result<Option<chrono_tz::Tz>, OptionsError> {
        self.timezone
            .as_deref()
            .map(|name| {
                name.parse::<chrono_tz::Tz>().map_err(|_| OptionsError::UnknownTimezone(name.to_owned()))
            })
            .transpose()
    }

    /// The `log_line_prefix`, compiled (presets resolved, PostgreSQL's default when unset).
    pub fn compiled_log_line_prefix(&self) -> Result<LogLinePrefix, OptionsError> {
        let text = self.log_line_prefix.as_deref().unwrap_or(prefix::POSTGRES_DEFAULT_PREFIX);
        LogLinePrefix::compile(text)
            .map_err(|source| OptionsError::LogLinePrefix { prefix: text.to_owned(), source })
    }

    /// Checks the options `format` uses; [`try_parser_for`] calls this.
    pub fn validate(&self, format: LogFormat) -> Result<(), OptionsError> {
        self.zone()?;
        if format == LogFormat::PgauditStderr {
            self.compiled_log_line_prefix()?;
        }
        Ok(())
    }
}

/// A parser of one log format. See the crate docs for the contract.
pub trait RecordParser: Send {
    /// The format this parser reads.
    fn format(&self) -> LogFormat;

    /// Reads one physical line (without its line terminator).
    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput);

    /// Flushes every event held back waiting for more lines and closes the ones still open to
    /// them; call at the end of the input, and before taking events out of `output`.
    fn finish(&mut self, output: &mut ParseOutput);

    /// Prepares a cut of the events made so far when more input follows at once (a full
    /// chunk): like [`RecordParser::finish`], except that a record whose further lines may still
    /// come stays open, and its first line's position is returned. The cut then ends before
    /// that line, and the record goes with the next chunk. A stderr record is complete only
    /// when the next record starts, so a chunk filled by an event is cut just after the next
    /// record's first line: finishing there took an `ERROR` without its `STATEMENT` (the
    /// failed statement was lost) or a statement without its continuation lines (rejected).
    /// Likewise a pgAudit statement whose further relation lines may follow (its event is the
    /// last thing made) is held back rather than split into two events, one per chunk.
    /// The default finishes everything and keeps nothing.
    fn cut(&mut self, output: &mut ParseOutput) -> Option<SourcePosition> {
        self.finish(output);
        None
    }
}

/// Whether a format can be parsed by this build. Formats are added issue by issue.
pub fn is_supported(format: LogFormat) -> bool {
    match format {
        LogFormat::PgauditJsonlog
        | LogFormat::PgauditCsvlog
        | LogFormat::PgauditStderr
        | LogFormat::MariadbAudit
        | LogFormat::MysqlAuditJson => true,
    }
}

/// A parser for `format`, or the reason `options` cannot work for it (an unknown time zone, a
/// `log_line_prefix` without a time). The binary calls this, so that bad options are an error at
/// start-up rather than a rejection per line.
pub fn try_parser_for(
    format: LogFormat,
    options: &ParserOptions,
) -> Result<Box<dyn RecordParser>, OptionsError> {
    let zone = options.zone()?;
    Ok(match format {
        LogFormat::PgauditJsonlog => Box::new(jsonlog::JsonlogParser::new(options.clone(), zone)),
        LogFormat::PgauditCsvlog => Box::new(csvlog::CsvlogParser::new(options.clone(), zone)),
        LogFormat::PgauditStderr => {
            Box::new(stderr::StderrParser::new(options.clone(), zone, options.compiled_log_line_prefix()?))
        }
        LogFormat::MariadbAudit => Box::new(mariadb::MariadbParser::new(options.clone(), zone)),
        LogFormat::MysqlAuditJson => Box::new(mysqljson::MysqlJsonParser::new(options.clone())),
    })
}

/// A parser for `format`.
///
/// Options that cannot work (see [`try_parser_for`]) give a parser that rejects every line with
/// [`RejectReason::BadOptions`] and the reason, so nothing is silently dropped.
pub fn parser_for(format: LogFormat, options: &ParserOptions) -> Box<dyn RecordParser> {
    try_parser_for(format, options)
        .unwrap_or_else(|error| Box::new(output::RejectingParser { format, detail: error.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_an_error_up_front_and_rejections_otherwise() {
        let bad_zone = ParserOptions { timezone: Some("Mars/Olympus".into()), ..ParserOptions::default() };
        let error = try_parser_for(LogFormat::MariadbAudit, &bad_zone).err().unwrap();
        assert_eq!(error, OptionsError::UnknownTimezone("Mars/Olympus".into()));
        let no_time = ParserOptions { log_line_prefix: Some("[%p] ".into()), ..ParserOptions::default() };
        let error = try_parser_for(LogFormat::PgauditStderr, &no_time).err().unwrap();
        assert!(error.to_string().contains("no time escape"), "{error}");
        // The prefix matters to stderr only.
        assert!(try_parser_for(LogFormat::PgauditJsonlog, &no_time).is_ok());
        assert_eq!(no_time.validate(LogFormat::PgauditCsvlog), Ok(()));

        let mut parser = parser_for(LogFormat::PgauditStderr, &no_time);
        let mut output = ParseOutput::default();
        let position = SourcePosition::File { file: "x.log".into(), line: 1, offset: 0 };
        parser.parse_line(b"[7] LOG:  hello", &position, &mut output);
        assert_eq!(output.rejected.len(), 1);
        assert_eq!(output.rejected[0].reason, RejectReason::BadOptions);
        assert_eq!(parser.format(), LogFormat::PgauditStderr);
    }

    #[test]
    fn presets_and_defaults_compile() {
        assert_eq!(ParserOptions::default().compiled_log_line_prefix().unwrap().as_str(), "%m [%p] ");
        for (name, prefix) in LOG_LINE_PREFIX_PRESETS {
            let options = ParserOptions { log_line_prefix: Some(name.into()), ..ParserOptions::default() };
            assert_eq!(options.compiled_log_line_prefix().unwrap().as_str(), prefix);
        }
        assert!(LogFormat::ALL.into_iter().all(is_supported));
    }
}
