//! The MariaDB `server_audit` file format and its relatives: RDS for MariaDB, the AWS port used
//! by RDS for MySQL, and Aurora MySQL's advanced auditing.
//!
//! `timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode`
//! (`server_audit.c`, `log_header()`), where
//!
//! * `timestamp` is server local time `20220527 12:21:14` (read in `--timezone`, UTC when
//!   unset), or on Aurora MySQL epoch microseconds;
//! * `host` is `host` or, from MariaDB 12, `host:port` (`localhost:unavailable`);
//! * a `QUERY` record's `object` is the statement in single quotes with `\'`, `\\`, `\n`, `\t`,
//!   `\r`, `\b` and `\f` escapes, and unescaped commas, so the line is read field by field rather
//!   than split. Statements cut at `server_audit_query_log_limit` still end with a quote;
//! * table records (`READ`, `WRITE`, `CREATE`, `ALTER`, `DROP`, `RENAME`) name one table (`RENAME`:
//!   `old|db.new`) and have an empty retcode; they are written *before* the `QUERY` record with
//!   the same connection and query id, and become that event's `objects`. A table record whose
//!   query never comes (the `QUERY` event is filtered out) is an event of its own, emitted when
//!   the connection ends, when it has waited for [`MAX_PENDING_AGE`] records, or at the end;
//! * a `QUERY` without table records that failed, or is DDL or ROLE, gets the tables its
//!   statement names from sqlparser ([`crate::objects`]); denied statements have no table records;
//! * the AWS plugin adds fields after `retcode` (the connection type, two empty fields on
//!   `QUERY`); fields after `retcode` are ignored.

use std::borrow::Cow;
use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use rolewatch_event::{AuditEvent, LogFormat, Source, SourcePosition, StatementClass, Text};

use crate::classify::classify;
use crate::objects::{ObjectFinder, SqlDialect};
use crate::output::{ParseOutput, RejectReason, SkipReason, position_offset};
use crate::timestamp::{from_epoch_micros, local_to_utc, parse_naive_prefix};
use crate::{ParserOptions, RecordParser};

/// Records a table record may wait for its `QUERY` record before it becomes an event alone.
const MAX_PENDING_AGE: u64 = 10_000;
/// Queries whose table records may wait at once; past this the oldest become events alone.
const MAX_PENDING_QUERIES: usize = crate::MAX_HELD_BACK_EVENTS;

/// The table operations of server_audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableOperation {
    Read,
    Write,
    Create,
    Alter,
    Drop,
    Rename,
}

impl TableOperation {
    fn parse(operation: &str) -> Option<Self> {
        Some(match operation {
            "READ" => Self::Read,
            "WRITE" => Self::Write,
            "CREATE" => Self::Create,
            "ALTER" => Self::Alter,
            "DROP" => Self::Drop,
            "RENAME" => Self::Rename,
            _ => return None,
        })
    }

    fn changes_schema(self) -> bool {
        matches!(self, Self::Create | Self::Alter | Self::Drop | Self::Rename)
    }

    fn class(self) -> StatementClass {
        match self {
            Self::Read => StatementClass::Read,
            Self::Write => StatementClass::Write,
            Self::Create | Self::Alter | Self::Drop | Self::Rename => StatementClass::Ddl,
        }
    }
}

/// The table records of one query, waiting for its `QUERY` record.
struct PendingQuery {
    connection_id: String,
    query_id: String,
    first_record: u64,
    /// One event per table record, each ready to be emitted alone.
    tables: Vec<(TableOperation, AuditEvent)>,
}

/// Reads `mariadb-audit`.
pub(crate) struct MariadbParser {
    options: ParserOptions,
    zone: Option<chrono_tz::Tz>,
    pending: VecDeque<PendingQuery>,
    records_read: u64,
    /// Tables of statements that come without table records and matter: failed ones, DDL, ROLE.
    objects: ObjectFinder,
    /// The `QUERY` events in the output that took table records, by index, with the offset of
    /// their first table record (see [`RecordParser::cut`]).
    merged: Vec<(usize, i64)>,
    /// Events a cut took out of the output, read after a table record still waiting for its
    /// query, each with the offset of its first record: they go back, in order, before
    /// anything else is parsed or finished.
    held: Vec<(AuditEvent, i64)>,
}

/// The eight fields before `object`.
struct Header<'a> {
    timestamp: &'a str,
    server_host: &'a str,
    user: &'a str,
    host: &'a str,
    connection_id: &'a str,
    query_id: &'a str,
    operation: &'a str,
    database: &'a str,
}

fn split_header(line: &str) -> Option<(Header<'_>, &str)> {
    let mut parts = line.splitn(9, ',');
    let mut next = || parts.next();
    let header = Header {
        timestamp: next()?,
        server_host: next()?,
        user: next()?,
        host: next()?,
        connection_id: next()?,
        query_id: next()?,
        operation: next()?,
        database: next()?,
    };
    Some((header, next()?))
}

/// Reads the single-quoted statement at the start of `text`; returns it unescaped and the text
/// after the closing quote (which starts with the comma before `retcode`).
fn quoted_statement(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let body = text.strip_prefix('\'')?;
    let bytes = body.as_bytes();
    let mut index = 0;
    let mut has_escape = false;
    while let Some(byte) = bytes.get(index) {
        match byte {
            b'\\' => {
                has_escape = true;
                index += 2;
            }
            b'\'' => {
                let after = body.get(index + 1..)?;
                if after.is_empty() || after.starts_with(',') {
                    let inner = body.get(..index)?;
                    return Some((
                        if has_escape { Cow::Owned(unescape(inner)) } else { Cow::Borrowed(inner) },
                        after,
                    ));
                }
                index += 1;
            }
            _ => index += 1,
        }
    }
    // The statement was cut inside an escape (`...\` then the closing quote): the last `',`
    // followed by a retcode ends it.
    let end = body.rfind("',")?;
    let inner = body.get(..end)?;
    Some((Cow::Owned(unescape(inner)), body.get(end + 1..)?))
}

/// Undoes server_audit's escaping: `\'`, `\\`, and `\n`, `\t`, `\r`, `\b`, `\f` for control
/// characters. Any other backslash pair is kept as written.
fn unescape(text: &str) -> String {
    let mut unescaped = String::with_capacity(text.len());
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            unescaped.push(character);
            continue;
        }
        match characters.next() {
            Some('n') => unescaped.push('\n'),
            Some('t') => unescaped.push('\t'),
            Some('r') => unescaped.push('\r'),
            Some('b') => unescaped.push('\u{8}'),
            Some('f') => unescaped.push('\u{c}'),
            Some(escaped @ ('\'' | '\\')) => unescaped.push(escaped),
            Some(other) => {
                unescaped.push('\\');
                unescaped.push(other);
            }
            // A lone backslash at the end is half an escape cut by the query log limit.
            None => {}
        }
    }
    unescaped
}

/// `host`, `host:port` (MariaDB 12+, `localhost:unavailable`), `[v6]:port`, or a bare IPv6.
fn split_host(host: &str) -> (Option<&str>, Option<u16>) {
    let host = host.trim();
    if host.is_empty() {
        return (None, None);
    }
    if let Some(bracketed) = host.strip_prefix('[')
        && let Some((address, port)) = bracketed.split_once("]:")
    {
        return (Some(address), port.parse().ok());
    }
    match host.split_once(':') {
        Some((address, port)) if !port.contains(':') && !address.is_empty() => {
            (Some(address), port.parse().ok())
        }
        _ => (Some(host), None),
    }
}

/// `name` in `database` unless it names its own (`db.table`).
fn qualified(database: &str, name: &str) -> Text {
    if database.is_empty() || name.contains('.') {
        Text::from(name)
    } else {
        let mut qualified = Text::from(database);
        qualified.push('.');
        qualified.push_str(name);
        qualified
    }
}

fn non_empty(text: &str) -> Option<Text> {
    let text = text.trim();
    (!text.is_empty()).then(|| Text::from(text))
}

impl MariadbParser {
    pub(crate) fn new(options: ParserOptions, zone: Option<chrono_tz::Tz>) -> Self {
        Self {
            options,
            zone,
            pending: VecDeque::new(),
            records_read: 0,
            objects: ObjectFinder::new(SqlDialect::MySql),
            merged: Vec::new(),
            held: Vec::new(),
        }
    }

    fn timestamp(&self, text: &str) -> Result<DateTime<Utc>, String> {
        let malformed = || format!("malformed timestamp {:?}", text.chars().take(40).collect::<String>());
        if text.len() >= 13 && text.bytes().all(|byte| byte.is_ascii_digit()) {
            return text.parse::<i64>().ok().and_then(from_epoch_micros).ok_or_else(malformed);
        }
        match parse_naive_prefix(text.as_bytes()) {
            Some((naive, [])) => local_to_utc(naive, self.zone).map_err(|error| error.to_string()),
            _ => Err(malformed()),
        }
    }

    fn base_event(&self, header: &Header<'_>, ts: DateTime<Utc>, position: &SourcePosition) -> AuditEvent {
        let mut event = AuditEvent::new(ts, Source::Mariadb, LogFormat::MariadbAudit);
        event.server =
            self.options.server.as_deref().map(Text::from).or_else(|| non_empty(header.server_host));
        event.role = non_empty(header.user);
        let (client_addr, client_port) = split_host(header.host);
        event.client_addr = client_addr.map(Text::from);
        event.client_port = client_port;
        event.session_id = non_empty(header.connection_id);
        event.database = non_empty(header.database);
        event.set_position(position);
        event
    }

    /// Emits every table record still waiting whose predicate holds, as events alone.
    fn flush_pending(&mut self, output: &mut ParseOutput, predicate: impl Fn(&PendingQuery) -> bool) {
        let (flushed, kept): (Vec<PendingQuery>, Vec<PendingQuery>) =
            self.pending.drain(..).partition(predicate);
        self.pending = kept.into();
        output.events.extend(flushed.into_iter().flat_map(|query| query.tables).map(|(_, event)| event));
    }

    fn flush_old(&mut self, output: &mut ParseOutput) {
        while let Some(oldest) = self.pending.front() {
            let too_old = self.records_read.saturating_sub(oldest.first_record) > MAX_PENDING_AGE;
            if !too_old && self.pending.len() <= MAX_PENDING_QUERIES {
                break;
            }
            if let Some(query) = self.pending.pop_front() {
                output.events.extend(query.tables.into_iter().map(|(_, event)| event));
            }
        }
    }

    fn table_record(
        &mut self,
        header: &Header<'_>,
        operation: TableOperation,
        object: &str,
        ts: DateTime<Utc>,
        position: &SourcePosition,
    ) {
        let mut event = self.base_event(header, ts, position);
        event.command = Text::from(header.operation);
        event.class = operation.class();
        event.objects = object
            .split('|')
            .filter(|name| !name.is_empty())
            .map(|name| qualified(header.database, name))
            .collect();
        match self
            .pending
            .iter_mut()
            .find(|query| query.connection_id == header.connection_id && query.query_id == header.query_id)
        {
            Some(query) => query.tables.push((operation, event)),
            None => self.pending.push_back(PendingQuery {
                connection_id: header.connection_id.to_owned(),
                query_id: header.query_id.to_owned(),
                first_record: self.records_read,
                tables: vec![(operation, event)],
            }),
        }
    }

    fn query_record(
        &mut self,
        header: &Header<'_>,
        statement: &str,
        retcode: Option<i64>,
        ts: DateTime<Utc>,
        position: &SourcePosition,
    ) -> (AuditEvent, Option<i64>) {
        let mut event = self.base_event(header, ts, position);
        let mut first_table = None;
        let classified = classify(statement);
        event.command = classified.command;
        event.class = classified.class;
        event.statement = Some(statement.to_owned());
        event.statement_id = header.query_id.parse().ok();
        set_result(&mut event, retcode);
        if let Some(index) = self.pending.iter().position(|query| {
            query.connection_id == header.connection_id && query.query_id == header.query_id
        }) && let Some(query) = self.pending.remove(index)
        {
            first_table = query.tables.iter().filter_map(|(_, table_event)| table_event.source_offset).min();
            for (operation, table_event) in query.tables {
                if operation.changes_schema() && event.class != StatementClass::Role {
                    event.class = StatementClass::Ddl;
                }
                for object in table_event.objects {
                    if !event.objects.contains(&object) {
                        event.objects.push(object);
                    }
                }
            }
        }
        let worth_parsing =
            !event.success || matches!(event.class, StatementClass::Ddl | StatementClass::Role);
        if event.objects.is_empty() && worth_parsing {
            event.objects = self
                .objects
                .objects(statement)
                .into_iter()
                .map(|name| qualified(header.database, &name))
                .collect();
        }
        (event, first_table)
    }

    fn parse_record(
        &mut self,
        line: &str,
        position: &SourcePosition,
        output: &mut ParseOutput,
    ) -> Result<(), String> {
        let Some((header, rest)) = split_header(line) else {
            return Err("fewer than 10 fields".to_owned());
        };
        let ts = self.timestamp(header.timestamp).map_err(|detail| format!("bad timestamp: {detail}"))?;
        if header.operation == "QUERY" {
            let (statement, after) =
                quoted_statement(rest).ok_or("the QUERY statement is not single-quoted")?;
            let retcode = retcode(after.strip_prefix(',').unwrap_or(after))?;
            let (event, first_table) = self.query_record(&header, &statement, retcode, ts, position);
            if let Some(first_table) = first_table {
                self.merged.push((output.events.len(), first_table));
            }
            output.events.push(event);
            return Ok(());
        }
        let (object, after) = rest.split_once(',').unwrap_or((rest, ""));
        if let Some(operation) = TableOperation::parse(header.operation) {
            self.table_record(&header, operation, object, ts, position);
            return Ok(());
        }
        let retcode = retcode(after)?;
        let (command, class) = match header.operation {
            "CONNECT" | "FAILED_CONNECT" => ("CONNECT", StatementClass::Connect),
            "CHANGE_USER" => ("CHANGE_USER", StatementClass::Connect),
            "DISCONNECT" => {
                let connection_id = header.connection_id;
                self.flush_pending(output, |query| query.connection_id == connection_id);
                ("DISCONNECT", StatementClass::Disconnect)
            }
            "AUDIT_CONFIG" => {
                output.skip(SkipReason::ServerChatter);
                return Ok(());
            }
            other => {
                return Err(format!("unknown operation {:?}", other.chars().take(32).collect::<String>()));
            }
        };
        let mut event = self.base_event(&header, ts, position);
        event.command = Text::from(command);
        event.class = class;
        set_result(&mut event, retcode);
        if header.operation == "FAILED_CONNECT" {
            event.success = false;
        }
        output.events.push(event);
        Ok(())
    }
}

/// The retcode field (the first of `fields`); empty means none.
fn retcode(fields: &str) -> Result<Option<i64>, String> {
    let code = fields.split(',').next().unwrap_or_default().trim();
    if code.is_empty() {
        return Ok(None);
    }
    code.parse()
        .map(Some)
        .map_err(|_| format!("retcode {:?} is not a number", code.chars().take(16).collect::<String>()))
}

fn set_result(event: &mut AuditEvent, retcode: Option<i64>) {
    if let Some(code) = retcode.filter(|code| *code != 0) {
        event.success = false;
        event.error_code = Some(Text::from(code.to_string()));
    }
}

impl RecordParser for MariadbParser {
    fn format(&self) -> LogFormat {
        LogFormat::MariadbAudit
    }

    fn parse_line(&mut self, line: &[u8], position: &SourcePosition, output: &mut ParseOutput) {
        if !self.held.is_empty() {
            self.restore(output);
        }
        if output.reject_if_too_large(line, position) {
            return;
        }
        let text = match crate::bytes::utf8(line) {
            Ok(text) => text,
            Err(error) => return output.reject(position, RejectReason::InvalidUtf8, error.to_string(), line),
        };
        if text.trim().is_empty() {
            return output.skip(SkipReason::Blank);
        }
        self.records_read += 1;
        self.flush_old(output);
        if let Err(detail) = self.parse_record(text, position, output) {
            let reason = if detail.starts_with("bad timestamp") {
                RejectReason::BadTimestamp
            } else {
                RejectReason::BadRecord
            };
            output.reject(position, reason, detail, line);
        }
    }

    fn finish(&mut self, output: &mut ParseOutput) {
        self.restore(output);
        self.flush_pending(output, |_| true);
        self.merged.clear();
    }

    /// Table records come before their `QUERY` record, and other connections' records may
    /// come in between. Finishing at a cut made the table records still waiting events alone
    /// in this chunk, and their query, in the next, lost its tables. So the cut goes before
    /// the first waiting table record instead: it keeps waiting, and the events read after it
    /// go with the next chunk too. That is only done when none of those events took a table
    /// record from before the cut and no line after it was rejected (those stay in this chunk);
    /// otherwise everything is finished, as at the end of the input.
    fn cut(&mut self, output: &mut ParseOutput) -> Option<SourcePosition> {
        self.restore(output);
        let first_waiting = self
            .pending
            .iter()
            .filter_map(|query| query.tables.first().and_then(|(_, event)| event.position()))
            .min_by_key(position_offset);
        let Some(first_waiting) = first_waiting else {
            self.finish(output);
            return None;
        };
        let from = position_offset(&first_waiting);
        let offset_of = |event: &AuditEvent| event.source_offset.unwrap_or(i64::MIN);
        // Events are in read order, except table records made events alone when their query
        // did not come in time: older than the events around them, they stay.
        let split =
            output.events.iter().position(|event| offset_of(event) >= from).unwrap_or(output.events.len());
        let takes_earlier_table = self.merged.iter().any(|&(index, first_table)| {
            index >= split
                && output.events.get(index).is_some_and(|event| offset_of(event) >= from)
                && first_table < from
        });
        let rejected_after =
            output.rejected.iter().any(|rejected| position_offset(&rejected.position) >= from);
        if takes_earlier_table || rejected_after {
            self.finish(output);
            return None;
        }
        let first_tables: std::collections::HashMap<usize, i64> = self.merged.drain(..).collect();
        let mut kept_older = Vec::new();
        for (index, event) in output.events.drain(split..).enumerate() {
            if offset_of(&event) < from {
                kept_older.push(event);
            } else {
                let first = first_tables.get(&(split + index)).copied().unwrap_or(offset_of(&event));
                self.held.push((event, first));
            }
        }
        output.events.extend(kept_older);
        Some(first_waiting)
    }
}

impl MariadbParser {
    /// Puts the events a cut held back at the end of the output, in order.
    fn restore(&mut self, output: &mut ParseOutput) {
        for (event, first) in self.held.drain(..) {
            if event.source_offset.is_some_and(|offset| first < offset) {
                self.merged.push((output.events.len(), first));
            }
            output.events.push(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> ParseOutput {
        crate::output::parse_text(MariadbParser::new(ParserOptions::default(), None), "audit.log", text)
    }

    #[test]
    fn unescapes_statements_with_commas_and_quotes() {
        let (statement, rest) = quoted_statement(r"'select \'a,b\', 1,\n2 \\ x\tz',1064,,").unwrap();
        assert_eq!(statement, "select 'a,b', 1,\n2 \\ x\tz");
        assert_eq!(rest, ",1064,,");
        // Cut by server_audit_query_log_limit inside an escape.
        let (statement, rest) = quoted_statement(r"'insert into t values (\'abc\',0").unwrap();
        assert_eq!(statement, "insert into t values ('abc");
        assert_eq!(rest, ",0");
    }

    #[test]
    fn table_records_become_objects_of_their_query() {
        let output = parse_all(
            "20240101 10:00:00,db1,root,10.0.0.9:51234,7,40,CREATE,test,t2,\n\
             20240101 10:00:00,db1,root,10.0.0.9:51234,7,40,READ,test,t1,\n\
             20240101 10:00:00,db1,root,10.0.0.9:51234,7,40,QUERY,test,'create table t2 as select * from t1',0\n\
             20240101 10:00:01,db1,root,10.0.0.9:51234,7,41,RENAME,test,t2|test.t3,\n\
             20240101 10:00:02,db1,root,10.0.0.9:51234,7,0,DISCONNECT,test,,0\n",
        );
        assert_eq!(output.rejected, vec![]);
        let ctas = &output.events[0];
        assert_eq!((ctas.class, ctas.command.as_str()), (StatementClass::Ddl, "CREATE TABLE AS"));
        assert_eq!(ctas.objects, ["test.t2", "test.t1"]);
        assert_eq!(ctas.client_addr.as_deref(), Some("10.0.0.9"));
        assert_eq!(ctas.client_port, Some(51234));
        assert_eq!(ctas.server.as_deref(), Some("db1"));
        let rename = &output.events[1];
        assert_eq!((rename.class, rename.command.as_str()), (StatementClass::Ddl, "RENAME"));
        assert_eq!(rename.objects, ["test.t2", "test.t3"]);
        assert_eq!(output.events[2].class, StatementClass::Disconnect);
    }

    /// A cut while a table record waits for its query (another connection's query came in
    /// between) goes before that table record: the events read after it go with the next
    /// chunk, and the query there still takes the table.
    #[test]
    fn a_cut_goes_before_a_table_record_still_waiting() {
        let mut parser = MariadbParser::new(ParserOptions::default(), None);
        let at = |offset: i64| SourcePosition::Kafka { topic: "db".into(), partition: 0, offset };
        let line = |connection: u32, query: u32, rest: &str| {
            format!("20240101 10:00:00,db1,root,10.0.0.9:51234,{connection},{query},{rest}")
        };
        let mut output = ParseOutput::default();
        parser.parse_line(line(9, 1, "QUERY,test,'select 0',0").as_bytes(), &at(0), &mut output);
        parser.parse_line(line(7, 40, "READ,test,t1,").as_bytes(), &at(1), &mut output);
        parser.parse_line(line(8, 5, "QUERY,test,'select 1',0").as_bytes(), &at(2), &mut output);
        assert_eq!(parser.cut(&mut output), Some(at(1)));
        let statements = |output: &ParseOutput| -> Vec<String> {
            output.events.iter().map(|event| event.statement.clone().unwrap_or_default()).collect()
        };
        assert_eq!(statements(&output), ["select 0"]);

        let mut next = ParseOutput::default();
        parser.parse_line(line(7, 40, "QUERY,test,'select 2',0").as_bytes(), &at(3), &mut next);
        parser.finish(&mut next);
        assert_eq!(statements(&next), ["select 1", "select 2"]);
        assert_eq!(next.events[1].objects, ["test.t1"]);
        assert_eq!(next.events[0].source_offset, Some(2));

        // A query after the cut point that took a table record from before it cannot move:
        // the cut finishes everything, as at the end of the input.
        let mut output = ParseOutput::default();
        parser.parse_line(line(7, 41, "READ,test,t2,").as_bytes(), &at(4), &mut output);
        parser.parse_line(line(9, 2, "QUERY,test,'select 3',0").as_bytes(), &at(5), &mut output);
        parser.parse_line(line(8, 6, "READ,test,t3,").as_bytes(), &at(6), &mut output);
        parser.parse_line(line(7, 41, "QUERY,test,'select 4',0").as_bytes(), &at(7), &mut output);
        assert_eq!(parser.cut(&mut output), None);
        assert_eq!(statements(&output), ["select 3", "select 4", ""], "t3 alone");
    }

    #[test]
    fn failed_statements_and_logins_carry_the_error_number() {
        let output = parse_all(
            "1616096245123456,ip-1,admin,1.2.3.4,5,0,FAILED_CONNECT,,,1045\n\
             20240101 10:00:00,h,root,localhost,8,9,QUERY,,'select * from t_doesnt_exist',1146,,\n\
             20240101 10:00:00,h,root,localhost,8,0,CONNECT,mysql,,0,SOCKET\n",
        );
        assert_eq!(output.rejected, vec![]);
        let failed_login = &output.events[0];
        assert_eq!(rolewatch_event::format_rfc3339(&failed_login.ts), "2021-03-18T19:37:25.123456Z");
        assert_eq!((failed_login.class, failed_login.success), (StatementClass::Connect, false));
        assert_eq!(failed_login.error_code.as_deref(), Some("1045"));
        assert_eq!(output.events[1].error_code.as_deref(), Some("1146"));
        assert!(output.events[2].success);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        let output = parse_all(
            "TIME,HOSTNAME,root,localhost,ID,ID,QUERY,test,'x',0\n\
             20240101 10:00:00,h,root,localhost,8,9,QUERY,,unquoted,0\n\
             20240101 10:00:00,h,root,localhost,8,9,BOGUS,,,0\n\
             20240101 10:00:00,h,root\n",
        );
        let reasons: Vec<RejectReason> = output.rejected.iter().map(|rejected| rejected.reason).collect();
        assert_eq!(
            reasons,
            [
                RejectReason::BadTimestamp,
                RejectReason::BadRecord,
                RejectReason::BadRecord,
                RejectReason::BadRecord
            ]
        );
    }
}
