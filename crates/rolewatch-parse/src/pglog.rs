//! What a PostgreSQL log record means, whatever carried it (jsonlog, csvlog, stderr).
//!
//! Each carrier reads its lines into a [`PgLogRecord`]; [`PgLogInterpreter`] turns records into
//! events:
//!
//! * `AUDIT:` messages are pgAudit records. pgAudit writes one line per relation of a statement
//!   (with `pgaudit.log_relation`) and a second line when object auditing also matches; lines
//!   with the same session, statement id and sub-statement id become **one** event whose
//!   `objects` lists every relation.
//! * `ERROR` records with their statement become failed statement events (pgAudit logs only
//!   statements that succeed), classified from the statement text, with the tables it names
//!   (parsed with sqlparser, see [`crate::objects`]).
//! * `FATAL` authentication failures and `connection authorized` become `CONNECT` events, failed
//!   or not; `disconnection` becomes `DISCONNECT`.
//! * Everything else is server chatter: skipped and counted.

use std::borrow::Cow;

use rolewatch_event::{AuditEvent, LogFormat, Source, SourcePosition, StatementClass};

use crate::ParserOptions;
use crate::classify::classify;
use crate::objects::{ObjectFinder, SqlDialect};
use crate::output::{ParseOutput, RejectReason, SkipReason};
use crate::pgaudit::{AUDIT_PREFIX, parse_audit_record};
use crate::timestamp::parse_pg_timestamp_in;

/// The fields of one PostgreSQL log record that rolewatch uses, borrowed from the carrier.
#[derive(Debug, Default)]
pub(crate) struct PgLogRecord<'a> {
    pub(crate) timestamp: &'a str,
    pub(crate) user: Option<&'a str>,
    pub(crate) dbname: Option<&'a str>,
    pub(crate) pid: Option<i64>,
    pub(crate) remote_host: Option<&'a str>,
    pub(crate) remote_port: Option<u16>,
    pub(crate) session_id: Option<&'a str>,
    pub(crate) error_severity: &'a str,
    pub(crate) state_code: Option<&'a str>,
    pub(crate) message: &'a str,
    pub(crate) statement: Option<&'a str>,
    pub(crate) application_name: Option<&'a str>,
}

/// The key that ties the lines of one pgAudit statement together.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatementKey {
    session: String,
    statement_id: u64,
    substatement_id: u64,
}

/// Events held back until the session's next record shows the statement is complete.
/// Bounded: past this many open sessions the oldest is flushed.
const MAX_PENDING_SESSIONS: usize = 4096;

pub(crate) struct PgLogInterpreter {
    options: ParserOptions,
    zone: Option<chrono_tz::Tz>,
    format: LogFormat,
    pending: Vec<(StatementKey, AuditEvent)>,
    /// Tables of failed statements, which pgAudit does not log.
    objects: ObjectFinder,
}

fn non_empty(field: Option<&str>) -> Option<String> {
    field.filter(|text| !text.is_empty()).map(str::to_owned)
}

/// `password authentication failed for user "app_reader"` -> `app_reader`.
fn user_in_message(message: &str) -> Option<&str> {
    let start = message.find("user \"")? + "user \"".len();
    let rest = message.get(start..)?;
    rest.get(..rest.find('"')?)
}

/// The SQLSTATE of a `FATAL` authentication failure, from PostgreSQL's (untranslated) message,
/// for carriers that do not carry the code (stderr without `%e`): `28P01` for a wrong password,
/// `28000` for the other authentication failures.
fn auth_failure_code(message: &str) -> Option<&'static str> {
    if message.starts_with("password authentication failed for user ") {
        Some("28P01")
    } else if message.contains(" authentication failed for user ")
        || message.starts_with("no pg_hba.conf entry for ")
        || message.starts_with("pg_hba.conf rejects connection for ")
        || (message.starts_with("role \"") && message.ends_with("\" does not exist"))
        || (message.starts_with("role \"") && message.ends_with("\" is not permitted to log in"))
    {
        Some("28000")
    } else {
        None
    }
}

impl PgLogInterpreter {
    pub(crate) fn new(options: ParserOptions, zone: Option<chrono_tz::Tz>, format: LogFormat) -> Self {
        Self { options, zone, format, pending: Vec::new(), objects: ObjectFinder::new(SqlDialect::Postgres) }
    }

    fn session_of<'r>(record: &PgLogRecord<'r>) -> Cow<'r, str> {
        match (record.session_id, record.pid) {
            (Some(session), _) => Cow::Borrowed(session),
            (None, Some(pid)) => Cow::Owned(format!("pid:{pid}")),
            (None, None) => Cow::Borrowed(""),
        }
    }

    fn base_event(
        &self,
        record: &PgLogRecord<'_>,
        ts: chrono::DateTime<chrono::Utc>,
        position: &SourcePosition,
    ) -> AuditEvent {
        let mut event = AuditEvent::new(ts, Source::Postgres, self.format);
        event.server.clone_from(&self.options.server);
        event.database = non_empty(record.dbname);
        event.role = non_empty(record.user);
        event.client_addr = non_empty(record.remote_host.filter(|host| *host != "[local]"));
        event.client_port = record.remote_port;
        event.application = non_empty(record.application_name);
        event.session_id = non_empty(record.session_id);
        event.set_position(position);
        event
    }

    /// Moves the held-back event of `session`, if any, to the output.
    fn flush_session(&mut self, session: &str, output: &mut ParseOutput) {
        if let Some(index) = self.pending.iter().position(|(key, _)| key.session == session) {
            let (_, event) = self.pending.swap_remove(index);
            output.events.push(event);
        }
    }

    pub(crate) fn interpret(
        &mut self,
        record: &PgLogRecord<'_>,
        position: &SourcePosition,
        raw: &[u8],
        output: &mut ParseOutput,
    ) {
        let ts = match parse_pg_timestamp_in(record.timestamp, self.zone) {
            Ok(ts) => ts,
            Err(error) => return output.reject(position, RejectReason::BadTimestamp, error.to_string(), raw),
        };
        let session = Self::session_of(record);
        if let Some(audit) = record.message.strip_prefix(AUDIT_PREFIX) {
            return self.interpret_audit(record, audit, session, ts, position, raw, output);
        }
        let event = match record.error_severity {
            "ERROR" if record.statement.is_some() => {
                let statement = record.statement.unwrap_or_default();
                let mut event = self.base_event(record, ts, position);
                let classified = classify(statement);
                event.command = classified.command;
                event.class = classified.class;
                event.objects = self.objects.objects(statement);
                event.statement = Some(statement.to_owned());
                event.success = false;
                event.error_code = non_empty(record.state_code);
                event.error_message = Some(record.message.to_owned());
                event
            }
            "FATAL"
                if record.state_code.map_or_else(
                    || auth_failure_code(record.message).is_some(),
                    |code| code.starts_with("28"),
                ) =>
            {
                let mut event = self.base_event(record, ts, position);
                if event.role.is_none() {
                    event.role = user_in_message(record.message).map(str::to_owned);
                }
                event.command = "CONNECT".to_owned();
                event.class = StatementClass::Connect;
                event.success = false;
                event.error_code = non_empty(record.state_code)
                    .or_else(|| auth_failure_code(record.message).map(str::to_owned));
                event.error_message = Some(record.message.to_owned());
                event
            }
            _ if record.message.starts_with("connection authorized: ") => {
                let mut event = self.base_event(record, ts, position);
                event.command = "CONNECT".to_owned();
                event.class = StatementClass::Connect;
                event
            }
            _ if record.message.starts_with("disconnection: ") => {
                let mut event = self.base_event(record, ts, position);
                event.command = "DISCONNECT".to_owned();
                event.class = StatementClass::Disconnect;
                event
            }
            _ => return output.skip(SkipReason::ServerChatter),
        };
        self.flush_session(&session, output);
        output.events.push(event);
    }

    #[allow(clippy::too_many_arguments)]
    fn interpret_audit(
        &mut self,
        record: &PgLogRecord<'_>,
        audit: &str,
        session: Cow<'_, str>,
        ts: chrono::DateTime<chrono::Utc>,
        position: &SourcePosition,
        raw: &[u8],
        output: &mut ParseOutput,
    ) {
        let audit = match parse_audit_record(audit) {
            Ok(audit) => audit,
            Err(detail) => return output.reject(position, RejectReason::BadAuditRecord, detail, raw),
        };
        let same_statement = |key: &StatementKey| {
            key.statement_id == audit.statement_id
                && key.substatement_id == audit.substatement_id
                && key.session == session
        };
        if let Some((_, event)) = self.pending.iter_mut().find(|(pending_key, _)| same_statement(pending_key))
        {
            // Another line of the same statement: one more relation, or the OBJECT-audit twin.
            if let Some(object) = audit.object_name
                && !event.objects.iter().any(|known| *known == object)
            {
                event.objects.push(object.into_owned());
            }
            if event.statement.is_none() {
                event.statement = audit.statement.map(|statement| statement.into_owned());
            }
            if event.parameters.is_none() {
                event.parameters = audit.parameters;
            }
            event.rows = event.rows.or(audit.rows);
            return;
        }
        self.flush_session(&session, output);
        let key = StatementKey {
            session: session.into_owned(),
            statement_id: audit.statement_id,
            substatement_id: audit.substatement_id,
        };
        let mut event = self.base_event(record, ts, position);
        event.command = audit.command.into_owned();
        event.class = audit.class;
        event.objects = audit.object_name.map(|object| vec![object.into_owned()]).unwrap_or_default();
        event.statement = audit.statement.map(|statement| statement.into_owned());
        event.parameters = audit.parameters;
        event.rows = audit.rows;
        event.statement_id = Some(audit.statement_id);
        event.substatement_id = Some(audit.substatement_id);
        if self.pending.len() >= MAX_PENDING_SESSIONS {
            let (_, oldest) = self.pending.remove(0);
            output.events.push(oldest);
        }
        self.pending.push((key, event));
    }

    /// Flushes every held-back event, in the order their records were read.
    pub(crate) fn finish(&mut self, output: &mut ParseOutput) {
        let mut pending: Vec<AuditEvent> = self.pending.drain(..).map(|(_, event)| event).collect();
        pending.sort_by_key(|event| (event.source_file.clone(), event.source_offset));
        output.events.extend(pending);
    }
}
