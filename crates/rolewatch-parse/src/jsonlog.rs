//! PostgreSQL `jsonlog` (PG 15+): one JSON object per line, pgAudit's record in `message`.
//!
//! Keys follow `src/backend/utils/error/jsonlog.c`: string fields with null values are left out,
//! `pid`, `remote_port`, `line_num`, `txid` and `query_id` are numbers, and more keys may be added
//! in the future, so unknown keys are ignored.

use std::borrow::Cow;

use rolewatch_event::{LogFormat, SourcePosition};
use serde::Deserialize;

use crate::jsonlog_scan::scan_jsonlog;
use crate::output::{ParseOutput, RejectReason, SkipReason};
use crate::pglog::{PgLogInterpreter, PgLogRecord};
use crate::{ParserOptions, RecordParser};

/// The keys of a jsonlog line that rolewatch reads.
#[derive(Deserialize, Debug, Default, PartialEq, Eq)]
pub(crate) struct JsonlogLine<'a> {
    #[serde(borrow, default)]
    pub(crate) timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) dbname: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) pid: Option<i64>,
    #[serde(borrow, default)]
    pub(crate) remote_host: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) remote_port: Option<u16>,
    #[serde(borrow, default)]
    pub(crate) session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) error_severity: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) state_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) statement: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) application_name: Option<Cow<'a, str>>,
}

/// Reads `pgaudit-jsonlog`.
pub(crate) struct JsonlogParser {
    interpreter: PgLogInterpreter,
}

impl JsonlogParser {
    pub(crate) fn new(options: ParserOptions, zone: Option<chrono_tz::Tz>) -> Self {
        Self { interpreter: PgLogInterpreter::new(options, zone, LogFormat::PgauditJsonlog) }
    }
}

impl RecordParser for JsonlogParser {
    fn format(&self) -> LogFormat {
        LogFormat::PgauditJsonlog
    }

    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput) {
        if output.reject_if_too_large(line, position) {
            return;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return output.skip(SkipReason::Blank);
        }
        let mut parsed = JsonlogLine::default();
        if scan_jsonlog(line, &mut parsed).is_none() {
            parsed = match serde_json::from_slice(line) {
                Ok(parsed) => parsed,
                Err(error) => return output.reject_json(position, &error, line),
            };
        }
        let (Some(timestamp), Some(message)) = (parsed.timestamp.as_deref(), parsed.message.as_deref())
        else {
            let missing = if parsed.timestamp.is_none() { "timestamp" } else { "message" };
            return output.reject(position, RejectReason::MissingField, format!("no {missing:?} key"), line);
        };
        let record = PgLogRecord {
            timestamp,
            user: parsed.user.as_deref(),
            dbname: parsed.dbname.as_deref(),
            pid: parsed.pid,
            remote_host: parsed.remote_host.as_deref(),
            remote_port: parsed.remote_port,
            session_id: parsed.session_id.as_deref(),
            error_severity: parsed.error_severity.as_deref().unwrap_or_default(),
            state_code: parsed.state_code.as_deref(),
            message,
            statement: parsed.statement.as_deref(),
            application_name: parsed.application_name.as_deref(),
        };
        self.interpreter.interpret(&record, position, line, output);
    }

    fn finish(&mut self, output: &mut ParseOutput) {
        self.interpreter.finish(output);
    }

    fn cut(&mut self, output: &mut ParseOutput) -> Option<SourcePosition> {
        self.interpreter.cut(output, None)
    }
}

#[cfg(test)]
mod tests {
    use rolewatch_event::StatementClass;

    use super::*;

    fn parse_all(text: &str) -> ParseOutput {
        crate::output::parse_text(
            JsonlogParser::new(
                ParserOptions { server: Some("pg-1".into()), ..ParserOptions::default() },
                None,
            ),
            "t.json",
            text,
        )
    }

    #[test]
    fn reads_the_shared_pg15_sample() {
        let output = parse_all(include_str!("../tests/data/pg15_jsonlog_pgaudit.json"));
        assert_eq!(output.rejected, vec![]);
        assert_eq!(output.events.len(), 3);
        let first = &output.events[0];
        assert_eq!(rolewatch_event::format_rfc3339(&first.ts), "2023-05-13T21:09:08.502000Z");
        assert_eq!(first.role.as_deref(), Some("postgres"));
        assert_eq!(first.database.as_deref(), Some("postgres"));
        assert_eq!(first.client_addr.as_deref(), Some("172.22.0.1"));
        assert_eq!(first.client_port, Some(58300));
        assert_eq!(first.session_id.as_deref(), Some("645ffc74.8a"));
        assert_eq!(first.command, "CREATE TABLE");
        assert_eq!(first.class, StatementClass::Ddl);
        assert_eq!(first.server.as_deref(), Some("pg-1"));
        assert!(
            first
                .statement
                .as_deref()
                .unwrap()
                .starts_with("create table if not exists audit_trail (id VARCHAR,")
        );
        assert_eq!(first.parameters, None);
        assert_eq!(output.events[1].class, StatementClass::Write);
        assert_eq!(output.events[2].source_line, Some(3));
    }

    #[test]
    fn merges_relation_lines_of_one_statement() {
        let line = |statement_id: u32, object: &str, session: &str| {
            format!(
                r#"{{"timestamp":"2026-01-01 00:00:00.000 UTC","user":"u","session_id":"{session}","error_severity":"LOG","message":"AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,{object},select * from a join b on true,<none>,5"}}"#
            )
        };
        let text = [
            line(1, "public.a", "s1"),
            line(7, "public.z", "s2"),
            line(1, "public.b", "s1"),
            line(2, "public.a", "s1"),
        ]
        .join("\n");
        let output = parse_all(&text);
        let summary: Vec<(Option<u64>, Vec<rolewatch_event::Text>)> =
            output.events.iter().map(|event| (event.statement_id, event.objects.clone())).collect();
        assert_eq!(
            summary,
            vec![
                (Some(1), vec!["public.a".into(), "public.b".into()]),
                (Some(7), vec!["public.z".into()]),
                (Some(2), vec!["public.a".into()]),
            ]
        );
        assert_eq!(output.events[0].rows, Some(5));
    }

    #[test]
    fn reads_failures_connections_and_skips_chatter() {
        let text = [
            r#"{"timestamp":"2026-01-01 00:00:01.000 UTC","user":"app_reader","dbname":"shop","remote_host":"127.0.0.1","remote_port":5000,"session_id":"a.1","error_severity":"ERROR","state_code":"42501","message":"permission denied for table salaries","statement":"SELECT * FROM hr.salaries;","application_name":"webapp"}"#,
            r#"{"timestamp":"2026-01-01 00:00:02.000 UTC","user":"app_reader","dbname":"shop","remote_host":"127.0.0.1","remote_port":5001,"session_id":"a.2","error_severity":"FATAL","state_code":"28P01","message":"password authentication failed for user \"app_reader\""}"#,
            r#"{"timestamp":"2026-01-01 00:00:03.000 UTC","user":"app_reader","dbname":"shop","remote_host":"127.0.0.1","remote_port":5002,"session_id":"a.3","error_severity":"LOG","message":"connection authorized: user=app_reader database=shop application_name=webapp"}"#,
            r#"{"timestamp":"2026-01-01 00:00:04.000 UTC","pid":9,"error_severity":"LOG","message":"checkpoint starting: time"}"#,
            r#"{"timestamp":"2026-01-01 00:00:05.000 UTC","user":"app_reader","session_id":"a.3","error_severity":"LOG","message":"disconnection: session time: 0:00:00.003 user=app_reader database=shop host=127.0.0.1 port=5002"}"#,
            "",
        ]
        .join("\n");
        let output = parse_all(&text);
        assert_eq!(output.rejected, vec![]);
        let denied = &output.events[0];
        assert!(!denied.success);
        assert_eq!((denied.class, denied.command.as_str()), (StatementClass::Read, "SELECT"));
        assert_eq!(denied.error_code.as_deref(), Some("42501"));
        assert_eq!(denied.application.as_deref(), Some("webapp"));
        let failed_login = &output.events[1];
        assert_eq!((failed_login.class, failed_login.success), (StatementClass::Connect, false));
        assert_eq!(failed_login.error_code.as_deref(), Some("28P01"));
        assert_eq!((output.events[2].class, output.events[2].success), (StatementClass::Connect, true));
        assert_eq!(output.events[3].class, StatementClass::Disconnect);
        assert_eq!(output.events.len(), 4);
        assert_eq!(output.skipped.get(&SkipReason::ServerChatter), Some(&1));
        assert_eq!(output.skipped.get(&SkipReason::Blank), Some(&1));
    }

    #[test]
    fn rejects_bad_lines_with_position_and_reason() {
        let text = [
            "not json",
            r#"{"message":"AUDIT: SESSION,1,1,READ,SELECT,,,x,<none>"}"#,
            r#"{"timestamp":"2026-01-01 00:00:00 IST","message":"x"}"#,
            r#"{"timestamp":"2026-01-01 00:00:00 UTC","message":"AUDIT: SESSION,1"}"#,
        ]
        .join("\n");
        let output = parse_all(&text);
        let reasons: Vec<(RejectReason, u64)> = output
            .rejected
            .iter()
            .map(|rejected| match &rejected.position {
                SourcePosition::File { line, .. } => (rejected.reason, *line),
                SourcePosition::Kafka { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                (RejectReason::InvalidJson, 1),
                (RejectReason::MissingField, 2),
                (RejectReason::BadTimestamp, 3),
                (RejectReason::BadAuditRecord, 4),
            ]
        );
        assert_eq!(output.rejected[0].raw, b"not json");
        assert!(output.rejected[2].detail.contains("ambiguous"), "{}", output.rejected[2].detail);
        assert!(output.events.is_empty());
    }
}
