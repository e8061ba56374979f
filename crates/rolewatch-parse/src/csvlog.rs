//! PostgreSQL `csvlog`: one CSV row per log record, with pgAudit's own CSV nested in `message`.
//!
//! Columns (`src/backend/utils/error/csvlog.c`): `log_time, user_name, database_name,
//! process_id, connection_from, session_id, session_line_num, command_tag, session_start_time,
//! virtual_transaction_id, transaction_id, error_severity, sql_state_code, message, detail, hint,
//! internal_query, internal_query_pos, context, query, query_pos, location, application_name`,
//! then `backend_type` (PostgreSQL 13+), `leader_pid` and `query_id` (14+): 23, 24 or 26
//! columns. Fields are quoted with `"` doubled, and quoted fields may hold newlines, so a row can
//! span physical lines: lines are gathered until the quotes balance.

use std::borrow::Cow;

use rolewatch_event::{LogFormat, SourcePosition};

use crate::output::{ParseOutput, RejectReason, SkipReason};
use crate::pgaudit::csv_field;
use crate::pglog::{PgLogInterpreter, PgLogRecord};
use crate::{MAX_LINE_BYTES, ParserOptions, RecordParser};

/// The fewest columns a csvlog row has (PostgreSQL 12 and older).
const MIN_COLUMNS: usize = 23;

const LOG_TIME: usize = 0;
const USER_NAME: usize = 1;
const DATABASE_NAME: usize = 2;
const PROCESS_ID: usize = 3;
const CONNECTION_FROM: usize = 4;
const SESSION_ID: usize = 5;
const ERROR_SEVERITY: usize = 11;
const SQL_STATE_CODE: usize = 12;
const MESSAGE: usize = 13;
const QUERY: usize = 19;
const APPLICATION_NAME: usize = 22;

/// A row still waiting for the line that closes its quoted field.
struct PartialRow {
    position: SourcePosition,
    text: String,
    quotes: usize,
}

/// Reads `pgaudit-csvlog`.
pub(crate) struct CsvlogParser {
    interpreter: PgLogInterpreter,
    partial: Option<PartialRow>,
}

/// `host:port` (IPv6 hosts contain colons too: the port is after the last one), or `[local]`.
fn split_connection_from(value: &str) -> (Option<&str>, Option<u16>) {
    match crate::bytes::rsplit_once_byte(value, b':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()) => {
            (Some(host), port.parse().ok())
        }
        _ => (Some(value), None),
    }
}

fn split_row(row: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut fields = Vec::with_capacity(26);
    let mut rest = row;
    loop {
        let (field, after) = csv_field(rest)?;
        fields.push(field);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None => return Ok(fields),
        }
    }
}

impl CsvlogParser {
    pub(crate) fn new(options: ParserOptions, zone: Option<chrono_tz::Tz>) -> Self {
        Self { interpreter: PgLogInterpreter::new(options, zone, LogFormat::PgauditCsvlog), partial: None }
    }

    fn parse_row(&mut self, row: &str, position: &SourcePosition, output: &mut ParseOutput) {
        let fields = match split_row(row) {
            Ok(fields) => fields,
            Err(detail) => return output.reject(position, RejectReason::BadRecord, detail, row.as_bytes()),
        };
        if fields.len() < MIN_COLUMNS {
            return output.reject(
                position,
                RejectReason::BadRecord,
                format!("csvlog row of {} columns, expected 23, 24 or 26", fields.len()),
                row.as_bytes(),
            );
        }
        let field =
            |index: usize| fields.get(index).map(AsRef::as_ref).filter(|value: &&str| !value.is_empty());
        let (remote_host, remote_port) = field(CONNECTION_FROM).map_or((None, None), split_connection_from);
        let record = PgLogRecord {
            timestamp: field(LOG_TIME).unwrap_or_default(),
            user: field(USER_NAME),
            dbname: field(DATABASE_NAME),
            pid: field(PROCESS_ID).and_then(|pid| pid.parse().ok()),
            remote_host,
            remote_port,
            session_id: field(SESSION_ID),
            error_severity: field(ERROR_SEVERITY).unwrap_or_default(),
            state_code: field(SQL_STATE_CODE),
            message: field(MESSAGE).unwrap_or_default(),
            statement: field(QUERY),
            application_name: field(APPLICATION_NAME),
        };
        self.interpreter.interpret(&record, position, row.as_bytes(), output);
    }
}

impl RecordParser for CsvlogParser {
    fn format(&self) -> LogFormat {
        LogFormat::PgauditCsvlog
    }

    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput) {
        let pending_length = self.partial.as_ref().map_or(0, |partial| partial.text.len());
        if pending_length + line.len() > MAX_LINE_BYTES {
            let raw = match self.partial.take() {
                Some(partial) => partial.text.into_bytes(),
                None => line.to_vec(),
            };
            return output.reject(
                position,
                RejectReason::TooLarge,
                format!("record of more than {MAX_LINE_BYTES} bytes"),
                &raw,
            );
        }
        let text = match crate::bytes::utf8(line) {
            Ok(text) => text,
            Err(error) => {
                let (start, raw) = match self.partial.take() {
                    Some(partial) => (partial.position, [partial.text.as_bytes(), b"\n", line].concat()),
                    None => (position.clone(), line.to_vec()),
                };
                return output.reject(&start, RejectReason::InvalidUtf8, error.to_string(), &raw);
            }
        };
        let quotes = memchr::memchr_iter(b'"', line).count();
        if let Some(mut partial) = self.partial.take() {
            partial.text.push('\n');
            partial.text.push_str(text);
            partial.quotes += quotes;
            if partial.quotes % 2 == 1 {
                self.partial = Some(partial);
                return;
            }
            return self.parse_row(&partial.text, &partial.position, output);
        }
        if quotes % 2 == 1 {
            self.partial = Some(PartialRow { position: position.clone(), text: text.to_owned(), quotes });
            return;
        }
        if text.trim().is_empty() {
            return output.skip(SkipReason::Blank);
        }
        self.parse_row(text, position, output);
    }

    fn finish(&mut self, output: &mut ParseOutput) {
        if let Some(partial) = self.partial.take() {
            output.reject(
                &partial.position,
                RejectReason::BadRecord,
                "unterminated quoted field at the end of the input",
                partial.text.as_bytes(),
            );
        }
        self.interpreter.finish(output);
    }

    fn cut(&mut self, output: &mut ParseOutput) -> Option<SourcePosition> {
        // A row whose quoted field goes on in lines still to come stays open too, unless the
        // interpreter says the cut cannot go before it.
        let partial = self.partial.as_ref().map(|partial| partial.position.clone());
        let had_partial = partial.is_some();
        let kept = self.interpreter.cut(output, partial);
        if kept.is_none() && had_partial {
            self.finish(output);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use rolewatch_event::StatementClass;

    use super::*;

    fn parse_all(text: &str) -> ParseOutput {
        crate::output::parse_text(CsvlogParser::new(ParserOptions::default(), None), "t.csv", text)
    }

    #[test]
    fn connection_from_splits_at_the_last_colon() {
        assert_eq!(split_connection_from("10.0.0.1:5432"), (Some("10.0.0.1"), Some(5432)));
        assert_eq!(split_connection_from("fe80::1:61000"), (Some("fe80::1"), Some(61000)));
        assert_eq!(split_connection_from("10.0.0.1:"), (Some("10.0.0.1"), None));
        assert_eq!(split_connection_from(":5432"), (Some(":5432"), None));
        assert_eq!(split_connection_from("host:x1"), (Some("host:x1"), None));
        assert_eq!(split_connection_from("[local]"), (Some("[local]"), None));
    }

    #[test]
    fn reads_multi_line_rows_and_nested_audit_csv() {
        let text = r#"2026-11-26 17:41:53.942 UTC,"app_writer","shop",4404,"127.0.0.1:59430",6b086f61.1134,9,"INSERT",2026-11-26 17:41:53 UTC,3/9,0,LOG,00000,"AUDIT: SESSION,7,1,WRITE,INSERT,TABLE,public.orders,""INSERT INTO orders (note)
VALUES ('a """"quote"""", and a comma')"",<none>,1",,,,,,,,,"billing","client backend",,0
2026-11-26 17:41:54.118 UTC,"app_reader","shop",4423,"[::1]:59514",6b086f62.1147,4,"SELECT",2026-11-26 17:41:54 UTC,3/41,0,ERROR,42501,"permission denied for table salaries",,,,,,"SELECT * FROM hr.salaries",,,"webapp","client backend",,0
"#;
        let output = parse_all(text);
        assert_eq!(output.rejected, vec![]);
        assert_eq!(output.skipped.get(&SkipReason::Blank), Some(&1));
        let insert = &output.events[0];
        assert_eq!(
            insert.statement.as_deref(),
            Some("INSERT INTO orders (note)\nVALUES ('a \"quote\", and a comma')")
        );
        assert_eq!(insert.objects, ["public.orders"]);
        assert_eq!(insert.client_port, Some(59430));
        assert_eq!(insert.application.as_deref(), Some("billing"));
        let denied = &output.events[1];
        assert_eq!((denied.class, denied.success), (StatementClass::Read, false));
        assert_eq!(denied.client_addr.as_deref(), Some("[::1]"));
        assert_eq!(denied.error_code.as_deref(), Some("42501"));
    }

    #[test]
    fn rejects_short_rows_and_unterminated_quotes() {
        let output = parse_all("2026-11-26 17:41:53.942 UTC,a,b\n2026-11-26 17:41:53.942 UTC,\"open");
        let reasons: Vec<RejectReason> = output.rejected.iter().map(|rejected| rejected.reason).collect();
        assert_eq!(reasons, [RejectReason::BadRecord, RejectReason::BadRecord]);
    }
}
