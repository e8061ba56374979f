//! MySQL Enterprise Audit and Percona Audit Log Filter JSON, and Percona's legacy `audit_log`
//! JSON records.
//!
//! The Enterprise/Filter file is a JSON **array**: `[`, objects separated by `,` (one per line,
//! or pretty-printed over several lines), `]` (missing when the file was rotated while open).
//! So objects are framed by their braces, not by lines, and the framing characters between them
//! are skipped. Percona's legacy plugin writes one `{"audit_record":{...}}` per line.
//!
//! Events:
//! * `general` / `status` (the statement finished, with its `status` errno): a statement event,
//!   classified from the query; `general` `log`/`result`/`error` and the `query` and `command`
//!   classes describe the same statement again and are skipped;
//! * `table_access` (`read`, `insert`, `update`, `delete`): the table becomes an object of the
//!   connection's next `general` `status` event with the same query, or an event of its own when
//!   there is none (the connection ends, or the input ends);
//! * `connection` `connect` (failed when `connection_data.status` is not 0), `change_user` and
//!   `disconnect`: connection events;
//! * legacy `Query`, `Execute`, `Prepare`: statements; `Connect`, `Change user`, `Quit`:
//!   connections. `audit` records (startup, shutdown, `NoAudit`) are skipped.
//!
//! Timestamps are UTC (`2020-10-19 19:25:51`, legacy `2021-06-30T15:07:58 UTC`). Percona writes
//! the account as `user[priv_user] @ host [ip]`; the role is the part before `[`.

use std::borrow::Cow;

use rolewatch_event::{AuditEvent, LogFormat, Source, SourcePosition, StatementClass, Text};
use serde::Deserialize;

use crate::classify::classify;
use crate::objects::{ObjectFinder, SqlDialect};
use crate::output::{ParseOutput, RejectReason, SkipReason};
use crate::timestamp::parse_pg_timestamp_in;
use crate::{MAX_LINE_BYTES, ParserOptions, RecordParser};

/// Table records that may wait for their statement at once; past this the oldest become
/// events alone.
const MAX_PENDING_TABLES: usize = crate::MAX_HELD_BACK_EVENTS;

#[derive(Deserialize)]
#[serde(untagged)]
enum Id<'a> {
    Number(i64),
    Text(#[serde(borrow)] Cow<'a, str>),
}

impl Id<'_> {
    fn to_text(&self) -> Text {
        match self {
            Self::Number(number) => Text::from(number.to_string()),
            Self::Text(text) => Text::from(text.as_ref()),
        }
    }
}

#[derive(Deserialize, Default)]
struct Account<'a> {
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct Login<'a> {
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct GeneralData<'a> {
    #[serde(borrow, default)]
    command: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sql_command: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    query: Option<Cow<'a, str>>,
    #[serde(default)]
    status: Option<i64>,
}

#[derive(Deserialize)]
struct TableAccessData<'a> {
    #[serde(borrow, default)]
    db: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    table: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    query: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ConnectionData<'a> {
    #[serde(default)]
    status: Option<i64>,
    #[serde(borrow, default)]
    db: Option<Cow<'a, str>>,
}

/// MySQL 8.0.30+ optional per-query statistics.
#[derive(Deserialize)]
struct QueryStatistics {
    #[serde(default)]
    rows_sent: Option<u64>,
}

#[derive(Deserialize)]
struct LegacyRecord<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    connection_id: Option<Id<'a>>,
    #[serde(default)]
    status: Option<i64>,
    #[serde(borrow, default)]
    sqltext: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    db: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    class: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    connection_id: Option<Id<'a>>,
    #[serde(borrow, default)]
    account: Option<Account<'a>>,
    #[serde(borrow, default)]
    login: Option<Login<'a>>,
    #[serde(borrow, default)]
    general_data: Option<GeneralData<'a>>,
    #[serde(borrow, default)]
    table_access_data: Option<TableAccessData<'a>>,
    #[serde(borrow, default)]
    connection_data: Option<ConnectionData<'a>>,
    #[serde(default)]
    query_statistics: Option<QueryStatistics>,
    #[serde(borrow, default)]
    audit_record: Option<LegacyRecord<'a>>,
}

/// A table access waiting for its statement.
struct PendingTable {
    connection_id: Option<Text>,
    query: Option<String>,
    event: AuditEvent,
}

/// Splits the input into JSON objects by brace depth, across lines.
#[derive(Default)]
struct Framer {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The text of an object that started on an earlier line.
    buffer: Vec<u8>,
    start: Option<SourcePosition>,
}

/// Reads `mysql-audit-json`.
pub(crate) struct MysqlJsonParser {
    options: ParserOptions,
    framer: Framer,
    pending: Vec<PendingTable>,
    /// Tables of failed, DDL and ROLE statements that come without table accesses.
    objects: ObjectFinder,
}

fn non_empty(text: Option<&str>) -> Option<Text> {
    text.map(str::trim).filter(|text| !text.is_empty()).map(Text::from)
}

/// `root[root] @ localhost []` (Percona) -> `root`; a plain name stays as it is.
fn account_user(user: &str) -> &str {
    user.split_once('[').map_or(user, |(name, _)| name).trim()
}

fn set_status(event: &mut AuditEvent, status: Option<i64>) {
    if let Some(code) = status.filter(|code| *code != 0) {
        event.success = false;
        event.error_code = Some(Text::from(code.to_string()));
    }
}

fn statement_event(event: &mut AuditEvent, query: Option<&str>, fallback_command: Option<&str>) {
    match query {
        Some(query) => {
            let classified = classify(query);
            event.command = classified.command;
            event.class = classified.class;
            event.statement = Some(query.to_owned());
        }
        None => {
            event.command =
                Text::from(fallback_command.unwrap_or("UNKNOWN").to_ascii_uppercase().replace('_', " "));
            event.class = StatementClass::Misc;
        }
    }
}

impl MysqlJsonParser {
    pub(crate) fn new(options: ParserOptions) -> Self {
        Self {
            options,
            framer: Framer::default(),
            pending: Vec::new(),
            objects: ObjectFinder::new(SqlDialect::MySql),
        }
    }

    fn base_event(&self, ts: chrono::DateTime<chrono::Utc>, position: &SourcePosition) -> AuditEvent {
        let mut event = AuditEvent::new(ts, Source::Mysql, LogFormat::MysqlAuditJson);
        event.server = self.options.server.as_deref().map(Text::from);
        event.set_position(position);
        event
    }

    /// Emits the waiting table accesses of `connection_id` that `keep` does not claim.
    fn flush_connection(&mut self, connection_id: Option<&str>, output: &mut ParseOutput) {
        let (flushed, kept): (Vec<PendingTable>, Vec<PendingTable>) =
            self.pending.drain(..).partition(|table| table.connection_id.as_deref() == connection_id);
        self.pending = kept;
        output.events.extend(flushed.into_iter().map(|table| table.event));
    }

    fn parse_object(&mut self, object: &[u8], position: &SourcePosition, output: &mut ParseOutput) {
        let record: Record<'_> = match serde_json::from_slice(object) {
            Ok(record) => record,
            Err(error) => return output.reject_json(position, &error, object),
        };
        if let Some(legacy) = &record.audit_record {
            return self.legacy_record(legacy, object, position, output);
        }
        let Some(timestamp) = record.timestamp.as_deref() else {
            return output.reject(position, RejectReason::MissingField, "no \"timestamp\" key", object);
        };
        let ts = match parse_pg_timestamp_in(timestamp, None) {
            Ok(ts) => ts,
            Err(error) => {
                return output.reject(position, RejectReason::BadTimestamp, error.to_string(), object);
            }
        };
        let mut event = self.base_event(ts, position);
        let account = record.account.unwrap_or_default();
        let login = record.login.unwrap_or_default();
        event.role = non_empty(account.user.as_deref().map(account_user))
            .or_else(|| non_empty(login.user.as_deref().map(account_user)));
        event.client_addr = non_empty(login.ip.as_deref()).or_else(|| non_empty(account.host.as_deref()));
        let connection_id = record.connection_id.as_ref().map(Id::to_text);
        event.session_id.clone_from(&connection_id);
        match (record.class.as_deref(), record.event.as_deref()) {
            (Some("general"), Some("status")) => {
                let Some(general) = record.general_data else {
                    return output.reject(
                        position,
                        RejectReason::MissingField,
                        "no \"general_data\" key",
                        object,
                    );
                };
                let query = general.query.as_deref();
                statement_event(
                    &mut event,
                    query,
                    general.sql_command.as_deref().or(general.command.as_deref()),
                );
                set_status(&mut event, general.status);
                event.rows = record.query_statistics.and_then(|statistics| statistics.rows_sent);
                self.attach_tables(&mut event, connection_id.as_deref(), query, output);
                let worth_parsing =
                    !event.success || matches!(event.class, StatementClass::Ddl | StatementClass::Role);
                if let Some(query) = query.filter(|_| event.objects.is_empty() && worth_parsing) {
                    event.objects = self.objects.objects(query);
                }
                output.events.push(event);
            }
            (Some("table_access"), Some(kind)) => {
                let Some(table) = record.table_access_data else {
                    return output.reject(
                        position,
                        RejectReason::MissingField,
                        "no \"table_access_data\" key",
                        object,
                    );
                };
                event.command = Text::from(kind).to_ascii_uppercase();
                event.class = if kind == "read" { StatementClass::Read } else { StatementClass::Write };
                event.database = non_empty(table.db.as_deref());
                event.statement = table.query.as_deref().map(str::to_owned);
                event.objects = match (table.db.as_deref(), table.table.as_deref()) {
                    (Some(db), Some(name)) if !db.is_empty() => vec![Text::from(format!("{db}.{name}"))],
                    (_, Some(name)) => vec![Text::from(name)],
                    _ => Vec::new(),
                };
                if self.pending.len() >= MAX_PENDING_TABLES {
                    let oldest = self.pending.remove(0);
                    output.events.push(oldest.event);
                }
                let query = event.statement.clone();
                self.pending.push(PendingTable { connection_id, query, event });
            }
            (Some("connection"), Some(kind @ ("connect" | "change_user" | "disconnect"))) => {
                if kind == "disconnect" {
                    self.flush_connection(connection_id.as_deref(), output);
                }
                let (command, class) = match kind {
                    "connect" => ("CONNECT", StatementClass::Connect),
                    "change_user" => ("CHANGE_USER", StatementClass::Connect),
                    _ => ("DISCONNECT", StatementClass::Disconnect),
                };
                event.command = Text::from(command);
                event.class = class;
                if let Some(data) = record.connection_data {
                    event.database = non_empty(data.db.as_deref());
                    set_status(&mut event, data.status);
                }
                output.events.push(event);
            }
            (Some(_), _) => output.skip(SkipReason::ServerChatter),
            (None, _) => output.reject(position, RejectReason::MissingField, "no \"class\" key", object),
        }
    }

    /// Makes the waiting table accesses of the statement `event`'s objects.
    fn attach_tables(
        &mut self,
        event: &mut AuditEvent,
        connection_id: Option<&str>,
        query: Option<&str>,
        output: &mut ParseOutput,
    ) {
        if !self.pending.iter().any(|table| table.connection_id.as_deref() == connection_id) {
            return;
        }
        let (mine, kept): (Vec<PendingTable>, Vec<PendingTable>) =
            self.pending.drain(..).partition(|table| table.connection_id.as_deref() == connection_id);
        self.pending = kept;
        for table in mine {
            if table.query.as_deref() == query {
                for object in table.event.objects {
                    if !event.objects.contains(&object) {
                        event.objects.push(object);
                    }
                }
            } else {
                output.events.push(table.event);
            }
        }
    }

    fn legacy_record(
        &mut self,
        legacy: &LegacyRecord<'_>,
        object: &[u8],
        position: &SourcePosition,
        output: &mut ParseOutput,
    ) {
        let Some(timestamp) = legacy.timestamp.as_deref() else {
            return output.reject(position, RejectReason::MissingField, "no \"timestamp\" key", object);
        };
        let ts = match parse_pg_timestamp_in(timestamp, None) {
            Ok(ts) => ts,
            Err(error) => {
                return output.reject(position, RejectReason::BadTimestamp, error.to_string(), object);
            }
        };
        let mut event = self.base_event(ts, position);
        event.role = non_empty(legacy.user.as_deref().map(account_user));
        event.client_addr = non_empty(legacy.ip.as_deref()).or_else(|| non_empty(legacy.host.as_deref()));
        event.session_id = legacy.connection_id.as_ref().map(Id::to_text);
        event.database = non_empty(legacy.db.as_deref());
        match legacy.name.as_deref() {
            Some("Query" | "Execute" | "Prepare") => {
                statement_event(&mut event, legacy.sqltext.as_deref(), None)
            }
            Some("Connect") => {
                (event.command, event.class) = (Text::const_new("CONNECT"), StatementClass::Connect)
            }
            Some("Change user") => {
                (event.command, event.class) = (Text::const_new("CHANGE_USER"), StatementClass::Connect);
            }
            Some("Quit") => {
                (event.command, event.class) = (Text::const_new("DISCONNECT"), StatementClass::Disconnect)
            }
            Some(_) => return output.skip(SkipReason::ServerChatter),
            None => return output.reject(position, RejectReason::MissingField, "no \"name\" key", object),
        }
        set_status(&mut event, legacy.status);
        output.events.push(event);
    }
}

/// What the framer found in one line.
enum Piece {
    /// A whole object inside the line, as a byte range.
    Inline(usize, usize),
    /// An object that started on an earlier line and ends here, with where it started.
    Buffered(Vec<u8>, SourcePosition),
    /// Bytes outside any object that are not array framing.
    Junk(usize),
}

impl Framer {
    fn scan(&mut self, line: &[u8], position: &SourcePosition, pieces: &mut Vec<Piece>) {
        let mut object_start = 0;
        let mut continuing = self.depth > 0;
        for (index, byte) in line.iter().enumerate() {
            if self.depth == 0 {
                match byte {
                    b'{' => {
                        self.depth = 1;
                        object_start = index;
                    }
                    b'[' | b']' | b',' | b' ' | b'\t' | b'\r' => {}
                    _ => {
                        pieces.push(Piece::Junk(index));
                        return;
                    }
                }
                continue;
            }
            if self.in_string {
                match (self.escaped, byte) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth > 0 {
                        continue;
                    }
                    if continuing {
                        continuing = false;
                        let mut object = std::mem::take(&mut self.buffer);
                        object.extend_from_slice(line.get(..=index).unwrap_or_default());
                        let start = self.start.take().unwrap_or_else(|| position.clone());
                        pieces.push(Piece::Buffered(object, start));
                    } else {
                        pieces.push(Piece::Inline(object_start, index + 1));
                    }
                }
                _ => {}
            }
        }
        if self.depth > 0 {
            let from = if continuing { 0 } else { object_start };
            self.buffer.extend_from_slice(line.get(from..).unwrap_or_default());
            self.buffer.push(b'\n');
            if self.start.is_none() {
                self.start = Some(position.clone());
            }
        }
    }
}

impl RecordParser for MysqlJsonParser {
    fn format(&self) -> LogFormat {
        LogFormat::MysqlAuditJson
    }

    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput) {
        if line.len() + self.framer.buffer.len() > MAX_LINE_BYTES {
            let raw = if self.framer.buffer.is_empty() {
                line.to_vec()
            } else {
                std::mem::take(&mut self.framer.buffer)
            };
            let start = self.framer.start.take().unwrap_or_else(|| position.clone());
            self.framer = Framer::default();
            return output.reject(
                &start,
                RejectReason::TooLarge,
                format!("record of more than {MAX_LINE_BYTES} bytes"),
                &raw,
            );
        }
        if self.framer.depth == 0
            && line.iter().all(|byte| matches!(byte, b'[' | b']' | b',' | b' ' | b'\t' | b'\r'))
        {
            return output.skip(SkipReason::Blank);
        }
        let mut pieces = Vec::new();
        self.framer.scan(line, position, &mut pieces);
        for piece in pieces {
            match piece {
                Piece::Inline(start, end) => {
                    self.parse_object(line.get(start..end).unwrap_or_default(), position, output);
                }
                Piece::Buffered(object, start) => self.parse_object(&object, &start, output),
                Piece::Junk(at) => {
                    self.framer = Framer::default();
                    let detail = format!("text outside a JSON object at byte {at} of the line");
                    output.reject(position, RejectReason::InvalidJson, detail, line);
                }
            }
        }
    }

    fn finish(&mut self, output: &mut ParseOutput) {
        if let Some(start) = self.framer.start.take() {
            let mut raw = std::mem::take(&mut self.framer.buffer);
            // The newline the framer added after the last line it kept was not in the input.
            if raw.last() == Some(&b'\n') {
                raw.pop();
            }
            output.reject(
                &start,
                RejectReason::InvalidJson,
                "unterminated JSON object at the end of the input",
                &raw,
            );
        }
        self.framer = Framer::default();
        let pending = std::mem::take(&mut self.pending);
        output.events.extend(pending.into_iter().map(|table| table.event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> ParseOutput {
        crate::output::parse_text(MysqlJsonParser::new(ParserOptions::default()), "audit.json", text)
    }

    #[test]
    fn frames_pretty_printed_and_single_line_objects() {
        let text = "[\n  {\n    \"timestamp\": \"2023-03-29 11:17:05\",\n    \"class\": \"general\", \"event\": \"status\", \"connection_id\": 11,\n    \"account\": { \"user\": \"root[root] @ localhost []\", \"host\": \"localhost\" },\n    \"general_data\": { \"query\": \"SELECT '}{' FROM t\", \"status\": 1146 }\n  },\n{ \"timestamp\": \"2023-03-29 11:17:06\", \"class\": \"connection\", \"event\": \"disconnect\", \"connection_id\": 11 },{ \"timestamp\": \"2023-03-29 11:17:07\", \"class\": \"audit\", \"event\": \"shutdown\" }\n";
        let output = parse_all(text);
        assert_eq!(output.rejected, vec![]);
        assert_eq!(output.events.len(), 2);
        let query = &output.events[0];
        assert_eq!(query.statement.as_deref(), Some("SELECT '}{' FROM t"));
        assert_eq!(query.role.as_deref(), Some("root"));
        assert_eq!(query.error_code.as_deref(), Some("1146"));
        assert_eq!(query.source_line, Some(2));
        assert_eq!(output.events[1].class, StatementClass::Disconnect);
        assert_eq!(output.skipped.get(&SkipReason::ServerChatter), Some(&1));
    }

    #[test]
    fn rejects_junk_and_unterminated_objects() {
        let output = parse_all("not json\n{\"timestamp\": \"2023-03-29 11:17:05\",");
        let reasons: Vec<RejectReason> = output.rejected.iter().map(|rejected| rejected.reason).collect();
        assert_eq!(reasons, [RejectReason::InvalidJson, RejectReason::InvalidJson]);
    }
}
