//! PostgreSQL `stderr` logs: `<log_line_prefix><SEVERITY>:  <message>` lines.
//!
//! One log record can span several physical lines:
//!
//! * a message with newlines (a multi-line statement in a pgAudit record) continues on lines
//!   that start with a tab, which PostgreSQL adds and which is not part of the message;
//! * `STATEMENT`, `DETAIL`, `HINT`, `CONTEXT`, `QUERY` and `LOCATION` lines of the same process
//!   follow the `ERROR`/`FATAL`/`LOG` line they belong to.
//!
//! So a record is held open until a line starts the next one (or the input ends), then handed to
//! the shared [`PgLogInterpreter`]. A line that neither matches the prefix nor continues a record
//! is rejected with [`RejectReason::BadPrefix`], which usually means `--log-line-prefix` does not
//! match the server's setting. One exception keeps hand-edited logs readable: while a pgAudit
//! record's quoted statement is still open, an untabbed line continues it.

use std::borrow::Cow;

use rolewatch_event::{LogFormat, SourcePosition};

use crate::output::{ParseOutput, RejectReason, SkipReason};
use crate::pglog::{PgLogInterpreter, PgLogRecord};
use crate::prefix::{Escape, LogLinePrefix, PrefixMatch, PrefixMemo, is_follow_up};
use crate::{MAX_LINE_BYTES, ParserOptions, RecordParser};

/// One message of the open record: its severity and byte range in the record's text.
#[derive(Debug, Clone, Copy)]
struct Segment {
    severity: &'static str,
    start: usize,
    end: usize,
    /// Whether continuation lines were appended: only then does the text hold a newline (and
    /// the tabs after it), so a one-line message is not searched for one.
    continued: bool,
}

/// The record being assembled.
struct OpenRecord {
    /// The prefix match of the first line (whose text starts the parser's buffer).
    found: PrefixMatch,
    /// The first line's length: it is `text[..first_line_len]`.
    first_line_len: usize,
    /// A line of the record could not be read; the whole record is rejected with this.
    poisoned: Option<Poison>,
}

/// Why an open record will be rejected, and its raw bytes (the first [`MAX_LINE_BYTES`]).
struct Poison {
    reason: RejectReason,
    detail: String,
    raw: Vec<u8>,
}

/// Reads `pgaudit-stderr`.
pub(crate) struct StderrParser {
    interpreter: PgLogInterpreter,
    prefix: LogLinePrefix,
    /// The last few lines' prefixes: a process's next line is matched by comparing bytes.
    memo: PrefixMemo,
    open: Option<OpenRecord>,
    /// Where the open record's first line was read; kept between records so that the file's
    /// shared name is not cloned and dropped per record.
    position: Option<SourcePosition>,
    /// The open record's physical lines, joined by `\n`, as read (tabs included).
    text: String,
    segments: Vec<Segment>,
}

/// `"abc\n\tdef"` -> `"abc\ndef"`: the tabs PostgreSQL puts after each newline of a message.
fn strip_continuation_tabs(text: &str) -> Cow<'_, str> {
    // Most messages are one line: one `memchr`, not a substring searcher set up per record.
    if memchr::memchr(b'\n', text.as_bytes()).is_some() && text.contains("\n\t") {
        Cow::Owned(text.replace("\n\t", "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A segment's text in the record, continuation tabs removed. A segment without continuation
/// lines is one line, borrowed as it is: searching every message for a newline was 3% of a
/// stderr parse.
fn segment_text<'t>(text: &'t str, segment: &Segment) -> Cow<'t, str> {
    let value = text.get(segment.start..segment.end).unwrap_or_default();
    if segment.continued { strip_continuation_tabs(value) } else { Cow::Borrowed(value) }
}

/// `%r`: `host(port)`, `[local]`, or a host alone.
fn split_host_port(value: &str) -> (Option<&str>, Option<u16>) {
    if let Some(inner) = value.strip_suffix(')')
        && let Some((host, port)) = crate::bytes::rsplit_once_byte(inner, b'(')
    {
        return (Some(host), crate::pgaudit::parse_number(port));
    }
    (Some(value), None)
}

impl StderrParser {
    pub(crate) fn new(options: ParserOptions, zone: Option<chrono_tz::Tz>, prefix: LogLinePrefix) -> Self {
        Self {
            interpreter: PgLogInterpreter::new(options, zone, LogFormat::PgauditStderr),
            prefix,
            memo: PrefixMemo::default(),
            open: None,
            position: None,
            text: String::new(),
            segments: Vec::new(),
        }
    }

    fn process_id<'t>(&self, found: &PrefixMatch, line: &'t str) -> Option<&'t str> {
        found.get(line, Escape::Pid).or_else(|| found.get(line, Escape::SessionId))
    }

    /// Whether a follow-up line (`STATEMENT`, `DETAIL`, ...) belongs to the open record.
    fn continues_open_record(&self, found: &PrefixMatch, line: &str) -> bool {
        let Some(open) = &self.open else { return false };
        let first_line = self.text.get(..open.first_line_len).unwrap_or_default();
        self.process_id(found, line) == self.process_id(&open.found, first_line)
    }

    /// Whether the open record is a pgAudit record whose quoted statement is not closed yet.
    fn inside_open_quote(&self) -> bool {
        let Some(first) = self.segments.first() else { return false };
        let Some(message) = self.text.get(first.start..first.end) else { return false };
        message.starts_with(crate::pgaudit::AUDIT_PREFIX)
            && bytecount_quotes(message.as_bytes()) % 2 == 1
            && self.segments.len() == 1
    }

    /// A line that continues the open record (a tabbed line, or an untabbed one inside an open
    /// pgAudit quote).
    fn continue_record(&mut self, line: &[u8]) {
        if self.poison_if_too_large(line) {
            return;
        }
        let Some(open) = &mut self.open else { return };
        if let Some(poison) = &mut open.poisoned {
            poison.raw.push(b'\n');
            poison.raw.extend_from_slice(line);
            return;
        }
        match crate::bytes::utf8(line) {
            Ok(text) => self.append_line(text),
            Err(error) => {
                let raw = [self.text.as_bytes(), b"\n", line].concat();
                open.poisoned =
                    Some(Poison { reason: RejectReason::InvalidUtf8, detail: error.to_string(), raw });
            }
        }
    }

    /// Poisons the open record if `line` would take it past [`MAX_LINE_BYTES`]; returns whether
    /// the line is to be dropped (the record is, or already was, too large).
    fn poison_if_too_large(&mut self, line: &[u8]) -> bool {
        let Some(open) = &mut self.open else { return false };
        let length = open.poisoned.as_ref().map_or(self.text.len(), |poison| poison.raw.len());
        if length + line.len() < MAX_LINE_BYTES {
            return false;
        }
        match &mut open.poisoned {
            Some(poison) if poison.reason == RejectReason::TooLarge => {}
            Some(poison) => poison.reason = RejectReason::TooLarge,
            None => {
                open.poisoned = Some(Poison {
                    reason: RejectReason::TooLarge,
                    detail: format!("record of more than {MAX_LINE_BYTES} bytes (raw bytes cut there)"),
                    raw: self.text.as_bytes().to_vec(),
                });
            }
        }
        true
    }

    fn append_line(&mut self, line: &str) {
        self.text.push('\n');
        self.text.push_str(line);
        if let Some(last) = self.segments.last_mut() {
            last.end = self.text.len();
            last.continued = true;
        }
    }

    fn start_record(&mut self, line: &str, found: PrefixMatch, position: &SourcePosition) {
        self.text.clear();
        self.text.push_str(line);
        self.segments.clear();
        self.segments.push(Segment {
            severity: found.severity,
            start: found.message_start,
            end: line.len(),
            continued: false,
        });
        match &mut self.position {
            Some(open_position) => open_position.clone_from(position),
            None => self.position = Some(position.clone()),
        }
        self.open = Some(OpenRecord { found, first_line_len: line.len(), poisoned: None });
    }

    /// Hands the open record, if any, to the interpreter.
    fn complete(&mut self, output: &mut ParseOutput) {
        let Some(open) = self.open.take() else { return };
        let Some(position) = &self.position else { return };
        let text = self.text.as_str();
        if let Some(poison) = open.poisoned {
            return output.reject(position, poison.reason, poison.detail, &poison.raw);
        }
        let first_line = text.get(..open.first_line_len).unwrap_or_default();
        let Some(timestamp) = self.prefix.time(&open.found, first_line) else {
            return output.reject(
                position,
                RejectReason::MissingField,
                "the line has no time (its prefix stopped at %q before the time escape)",
                text.as_bytes(),
            );
        };
        let Some(primary) = self.segments.first() else { return };
        let message = segment_text(text, primary);
        let statement = self
            .segments
            .iter()
            .find(|segment| segment.severity == "STATEMENT")
            .map(|segment| segment_text(text, segment));
        let found = &open.found;
        let (remote_host, remote_port) = match found.get(first_line, Escape::RemoteHostPort) {
            Some(value) => split_host_port(value),
            None => (found.get(first_line, Escape::RemoteHost), None),
        };
        let record = PgLogRecord {
            timestamp,
            user: found.get(first_line, Escape::User),
            dbname: found.get(first_line, Escape::Database),
            pid: found.get(first_line, Escape::Pid).and_then(crate::pgaudit::parse_number),
            remote_host,
            remote_port,
            session_id: found.get(first_line, Escape::SessionId),
            error_severity: primary.severity,
            state_code: found.get(first_line, Escape::SqlState),
            message: &message,
            statement: statement.as_deref(),
            application_name: found.get(first_line, Escape::Application),
        };
        self.interpreter.interpret(&record, position, text.as_bytes(), output);
    }
}

fn bytecount_quotes(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'"', bytes).count()
}

impl RecordParser for StderrParser {
    fn format(&self) -> LogFormat {
        LogFormat::PgauditStderr
    }

    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput) {
        if self.open.is_some() && line.first() == Some(&b'\t') {
            return self.continue_record(line);
        }
        if line.len() > MAX_LINE_BYTES {
            self.complete(output);
            output.reject_if_too_large(line, position);
            return;
        }
        let text = match crate::bytes::utf8(line) {
            Ok(text) => text,
            Err(error) => {
                self.complete(output);
                return output.reject(position, RejectReason::InvalidUtf8, error.to_string(), line);
            }
        };
        if let Some(found) = self.prefix.match_line_memo(text, &mut self.memo) {
            if is_follow_up(found.severity) {
                if self.continues_open_record(&found, text) {
                    if self.poison_if_too_large(line) {
                        return;
                    }
                    self.text.push('\n');
                    let line_start = self.text.len();
                    self.text.push_str(text);
                    self.segments.push(Segment {
                        severity: found.severity,
                        start: line_start + found.message_start,
                        end: self.text.len(),
                        continued: false,
                    });
                } else {
                    self.complete(output);
                    output.skip(SkipReason::ServerChatter);
                }
                return;
            }
            self.complete(output);
            return self.start_record(text, found, position);
        }
        if self.inside_open_quote() {
            return self.continue_record(line);
        }
        if text.trim().is_empty() {
            return output.skip(SkipReason::Blank);
        }
        self.complete(output);
        output.reject(
            position,
            RejectReason::BadPrefix,
            format!(
                "the line does not start with the log_line_prefix {:?} and a severity",
                self.prefix.as_str()
            ),
            line,
        );
    }

    fn finish(&mut self, output: &mut ParseOutput) {
        self.complete(output);
        self.interpreter.finish(output);
    }

    fn cut(&mut self, output: &mut ParseOutput) -> Option<SourcePosition> {
        // The interpreter keeps a statement held back (it started before the open record did)
        // or the open record, unless a line at or after its start amended an event: then the
        // open record is completed now.
        let open = self.open.as_ref().and_then(|_| self.position.clone());
        let had_open = open.is_some();
        let kept = self.interpreter.cut(output, open);
        if kept.is_none() && had_open {
            self.finish(output);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use rolewatch_event::StatementClass;

    use super::*;

    fn parse_all(prefix: &str, text: &str) -> ParseOutput {
        let prefix = LogLinePrefix::compile(prefix).unwrap();
        crate::output::parse_text(StderrParser::new(ParserOptions::default(), None, prefix), "t.log", text)
    }

    #[test]
    fn host_and_port_split_at_the_last_parenthesis() {
        assert_eq!(split_host_port("10.0.0.1(5432)"), (Some("10.0.0.1"), Some(5432)));
        assert_eq!(split_host_port("fe80::1%eth0(61000)"), (Some("fe80::1%eth0"), Some(61000)));
        assert_eq!(split_host_port("a(b)(12)"), (Some("a(b)"), Some(12)));
        assert_eq!(split_host_port("(12)"), (Some(""), Some(12)));
        assert_eq!(split_host_port("db.example(x)"), (Some("db.example"), None));
        assert_eq!(split_host_port("[local]"), (Some("[local]"), None));
        assert_eq!(split_host_port("10.0.0.1"), (Some("10.0.0.1"), None));
        assert_eq!(split_host_port("12)"), (Some("12)"), None));
    }

    #[test]
    fn reassembles_tabbed_continuations_and_statement_lines() {
        let text = "2020-11-13 08:06:24 UTC:10.0.1.123(50322):audit_user1@auditdb:[24298]:LOG:  AUDIT: SESSION,1,2,DDL,CREATE TABLE AS,,,\"CREATE TABLE t1 AS\n\tSELECT num  a\n\t;\",<none>\n2020-11-13 08:07:36 UTC:10.0.1.123(50322):audit_user1@auditdb:[24298]:ERROR:  permission denied for table t2\n2020-11-13 08:07:36 UTC:10.0.1.123(50322):audit_user1@auditdb:[24298]:STATEMENT:  SELECT *\n\tFROM t2;\n2020-11-13 08:07:37 UTC::@:[32064]:LOG:  checkpoint starting: time";
        let output = parse_all("rds", text);
        assert_eq!(output.rejected, vec![]);
        assert_eq!(output.events.len(), 2);
        // The pgAudit record waits for its session's next record, which is the ERROR.
        let ctas = &output.events[0];
        assert_eq!(ctas.statement.as_deref(), Some("CREATE TABLE t1 AS\nSELECT num  a\n;"));
        assert_eq!(ctas.command, "CREATE TABLE AS");
        assert_eq!(ctas.client_addr.as_deref(), Some("10.0.1.123"));
        assert_eq!(ctas.client_port, Some(50322));
        assert_eq!(ctas.source_line, Some(1));
        let denied = &output.events[1];
        assert!(!denied.success);
        assert_eq!(denied.statement.as_deref(), Some("SELECT *\nFROM t2;"));
        assert_eq!(denied.class, StatementClass::Read);
        assert_eq!(denied.source_line, Some(4));
        assert_eq!(output.skipped.get(&SkipReason::ServerChatter), Some(&1));
    }

    #[test]
    fn infers_the_code_of_authentication_failures_without_percent_e() {
        let text = "2026-11-26 17:41:54.133 UTC [4427] app_reader@shop FATAL:  password authentication failed for user \"app_reader\"\n2026-11-26 17:41:54.133 UTC [4427] app_reader@shop DETAIL:  Connection matched pg_hba.conf line 3";
        let output = parse_all("debian", text);
        let event = &output.events[0];
        assert_eq!((event.class, event.success), (StatementClass::Connect, false));
        assert_eq!(event.error_code.as_deref(), Some("28P01"));
        assert_eq!(event.role.as_deref(), Some("app_reader"));
    }

    #[test]
    fn rejects_lines_that_do_not_match_and_poisoned_records() {
        let text = "LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT 1;,<not logged>\n2025-05-29 07:17:55.026 GMT [183] LOG:  AUDIT: SESSION,2,1,READ,SELECT,,,\"SELECT\n\t1\",<none>";
        let output = parse_all("postgres", text);
        assert_eq!(output.rejected.len(), 1);
        assert_eq!(output.rejected[0].reason, RejectReason::BadPrefix);
        assert_eq!(output.events.len(), 1);
        assert_eq!(output.events[0].statement.as_deref(), Some("SELECT\n1"));

        let prefix = LogLinePrefix::compile("postgres").unwrap();
        let mut parser = StderrParser::new(ParserOptions::default(), None, prefix);
        let mut output = ParseOutput::default();
        let position = SourcePosition::File { file: "t.log".into(), line: 1, offset: 0 };
        parser.parse_line(
            b"2025-05-29 07:17:55.026 GMT [183] LOG:  AUDIT: SESSION,2,1,READ,SELECT,,,\"SELECT",
            &position,
            &mut output,
        );
        parser.parse_line(b"\t\xff\xfe\",<none>", &position, &mut output);
        parser.finish(&mut output);
        assert_eq!(output.rejected.len(), 1);
        assert_eq!(output.rejected[0].reason, RejectReason::InvalidUtf8);
        assert!(output.events.is_empty());
    }
}
