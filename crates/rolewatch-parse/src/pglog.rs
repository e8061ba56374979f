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
use std::collections::HashMap;

use rolewatch_event::{AuditEvent, LogFormat, Source, SourcePosition, StatementClass, Text};

use crate::ParserOptions;
use crate::classify::classify;
use crate::objects::{ObjectFinder, SqlDialect};
use crate::output::{ParseOutput, RejectReason, SkipReason, position_offset};
use crate::pgaudit::{AUDIT_PREFIX, parse_audit_record};
use crate::timestamp::PgTimestampCache;

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

/// A session's open statement: where its event is in the output, and the ids that tie
/// further lines of the same statement to it.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// The event's index in `ParseOutput::events`.
    index: usize,
    statement_id: u64,
    substatement_id: u64,
}

/// The event a pgAudit line last made or amended.
#[derive(Debug, Clone, Copy)]
struct LastAudit {
    /// The event's index in `ParseOutput::events`.
    index: usize,
    /// How many rejections the output held when the event was made.
    rejected: usize,
    /// The line's offset (byte offset in a file, or Kafka offset: the lines of one Kafka
    /// record share it).
    offset: i64,
}

/// The open statements by session id.
type OpenMap = HashMap<Text, Open, foldhash::fast::RandomState>;

/// At this many open sessions the map is cleared: their statements' further lines, if any
/// come, become events of their own. Clearing all at once keeps the cost off the per-record
/// path of a server with more sessions than this.
const MAX_OPEN_SESSIONS: usize = crate::MAX_HELD_BACK_EVENTS;

pub(crate) struct PgLogInterpreter {
    /// `ParserOptions::server`, as the events carry it.
    server: Option<Text>,
    zone: Option<chrono_tz::Tz>,
    format: LogFormat,
    /// Each session's last statement, by session id, whose event is already in the output
    /// and still takes the statement's further lines (amended in place, so an event is
    /// written once and never moved: holding it back in the map and moving it out cost a
    /// tenth of a Kafka run). One lookup per record, O(1) however many sessions are open.
    /// foldhash, not SipHash: hashing the session id was 2% of a jsonlog parse; the hasher is
    /// still seeded per process, so crafted session ids cannot pick collisions.
    open: OpenMap,
    /// Tables of failed statements, which pgAudit does not log.
    objects: ObjectFinder,
    /// The record times' last whole second.
    timestamps: PgTimestampCache,
    /// The event last made or amended by a pgAudit line (see [`PgLogInterpreter::cut`]).
    last_audit: Option<LastAudit>,
    /// The last offset of a pgAudit line that made or amended another event than
    /// `last_audit`'s, since the last cut: a cut before that offset would leave the event in
    /// the chunk with a line from after the cut.
    touched_before: Option<i64>,
    /// The open statement a cut held back, with its session and the offset of its last line:
    /// it goes back into the output, at its end, before anything else is interpreted or
    /// finished.
    held: Option<(Text, Box<AuditEvent>, i64)>,
}

fn non_empty(field: Option<&str>) -> Option<Text> {
    field.filter(|text| !text.is_empty()).map(Text::from)
}

/// Fills in who and from where a record's event is, and where it was read; what it did is left
/// to the caller. The event is filled where it lies: a new one is 432 bytes, and returning a
/// filled one by value was a copy per record.
fn fill_base(
    event: &mut AuditEvent,
    server: Option<&Text>,
    record: &PgLogRecord<'_>,
    position: &SourcePosition,
) {
    event.server = server.cloned();
    event.database = non_empty(record.dbname);
    event.role = non_empty(record.user);
    event.client_addr = non_empty(record.remote_host.filter(|host| *host != "[local]"));
    event.client_port = record.remote_port;
    event.application = non_empty(record.application_name);
    event.session_id = non_empty(record.session_id);
    event.set_position(position);
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
        Self {
            server: options.server.as_deref().map(Text::from),
            zone,
            format,
            open: HashMap::default(),
            objects: ObjectFinder::new(SqlDialect::Postgres),
            timestamps: PgTimestampCache::default(),
            last_audit: None,
            touched_before: None,
            held: None,
        }
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
        fill_base(&mut event, self.server.as_ref(), record, position);
        event
    }

    pub(crate) fn interpret(
        &mut self,
        record: &PgLogRecord<'_>,
        position: &SourcePosition,
        raw: &[u8],
        output: &mut ParseOutput,
    ) {
        if self.held.is_some() {
            self.restore(output);
        }
        let ts = match self.timestamps.parse(record.timestamp, self.zone) {
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
                    event.role = user_in_message(record.message).map(Text::from);
                }
                event.command = Text::const_new("CONNECT");
                event.class = StatementClass::Connect;
                event.success = false;
                event.error_code = non_empty(record.state_code)
                    .or_else(|| auth_failure_code(record.message).map(Text::from));
                event.error_message = Some(record.message.to_owned());
                event
            }
            _ if record.message.starts_with("connection authorized: ") => {
                let mut event = self.base_event(record, ts, position);
                event.command = Text::const_new("CONNECT");
                event.class = StatementClass::Connect;
                event
            }
            _ if record.message.starts_with("disconnection: ") => {
                let mut event = self.base_event(record, ts, position);
                event.command = Text::const_new("DISCONNECT");
                event.class = StatementClass::Disconnect;
                event
            }
            _ => return output.skip(SkipReason::ServerChatter),
        };
        // The session's statement before this record takes no more lines.
        self.open.remove(session.as_ref());
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
        let Self { open, server, format, last_audit, touched_before, .. } = self;
        let offset = position_offset(position);
        // `rejected` counts the rejections when the event was made: a rejection since then
        // came after its first line.
        let mut touch = |index: usize, rejected: usize| {
            let rejected = match *last_audit {
                Some(previous) if previous.index == index => previous.rejected,
                Some(previous) => {
                    *touched_before = (*touched_before).max(Some(previous.offset));
                    rejected
                }
                None => rejected,
            };
            *last_audit = Some(LastAudit { index, rejected, offset });
        };
        let (statement_id, substatement_id) = (audit.statement_id, audit.substatement_id);
        // The session's entry: looked up once, amended or replaced below.
        let slot = open.get_mut(session.as_ref());
        let same = slot
            .as_deref()
            .filter(|open| open.statement_id == statement_id && open.substatement_id == substatement_id);
        // The event is where the map says unless the caller took the events since (then the
        // statement's further lines start an event of their own).
        let amended = same.and_then(|open| Some((open.index, output.events.get_mut(open.index)?))).filter(
            |(_, event)| {
                event.statement_id == Some(statement_id)
                    && event.substatement_id == Some(substatement_id)
                    && event.session_id.as_deref() == record.session_id.filter(|id| !id.is_empty())
            },
        );
        if let Some((index, event)) = amended {
            touch(index, output.rejected.len());
            // Another line of the same statement: one more relation, or the OBJECT-audit twin.
            if let Some(object) = audit.object_name
                && !event.objects.iter().any(|known| known.as_str() == object.as_ref())
            {
                event.objects.push(Text::from(object.as_ref()));
            }
            if event.statement.is_none() {
                event.statement = audit.statement.map(|statement| statement.into_owned());
            }
            // The lines of one statement name the commands of its parts: `CREATE TABLE` with an
            // identity column writes `CREATE SEQUENCE` first, then `CREATE TABLE`, `CREATE
            // INDEX` (its key) and `ALTER SEQUENCE`. The event takes the statement's own.
            if event.command.as_str() != audit.command.as_ref()
                && event
                    .statement
                    .as_deref()
                    .is_some_and(|statement| classify(statement).command.as_str() == audit.command.as_ref())
            {
                event.command = Text::from(audit.command.as_ref());
                event.class = audit.class;
            }
            if event.parameters.is_none() {
                event.parameters = audit.parameters;
            }
            event.rows = event.rows.or(audit.rows);
            return;
        }
        let now_open = Open { index: output.events.len(), statement_id, substatement_id };
        touch(now_open.index, output.rejected.len());
        // Made and filled where it lies: an event is 432 bytes, and moving one into the vector
        // was a copy per record. `push` builds its argument aside before it may grow the
        // vector; `resize_with` grows first and writes the new event in place.
        let filled = output.events.len() + 1;
        output.events.resize_with(filled, || AuditEvent::new(ts, Source::Postgres, *format));
        if let Some(event) = output.events.last_mut() {
            fill_base(event, server.as_ref(), record, position);
            event.command = Text::from(audit.command.as_ref());
            event.class = audit.class;
            event.objects =
                audit.object_name.map(|object| vec![Text::from(object.as_ref())]).unwrap_or_default();
            event.statement = audit.statement.map(|statement| statement.into_owned());
            event.parameters = audit.parameters;
            event.rows = audit.rows;
            event.statement_id = Some(statement_id);
            event.substatement_id = Some(substatement_id);
        }
        match slot {
            // The session's previous statement is complete: this one takes its place.
            Some(previous) => *previous = now_open,
            None => {
                if open.len() >= MAX_OPEN_SESSIONS {
                    open.clear();
                }
                open.insert(Text::from(session), now_open);
            }
        }
    }

    /// Closes every open statement: the caller may take the events now.
    pub(crate) fn finish(&mut self, output: &mut ParseOutput) {
        self.restore(output);
        self.open.clear();
        self.last_audit = None;
        self.touched_before = None;
    }

    /// Prepares a cut while more lines follow ([`crate::RecordParser::cut`]). pgAudit writes a
    /// statement's lines (one per relation) one after another, so a cut that falls between
    /// them would split the statement into two events, one per chunk. So when the output's
    /// last event is a statement still open, and nothing came at or after its first line's
    /// offset but its own lines (no other event, no rejection, no line of another statement),
    /// it is taken out of the output and held, and its first line's position is returned: the
    /// chunk ends before that line, and the event, with the lines still to come, goes with the
    /// next one. Otherwise `open`, the carrier's record still open (a stderr record, a csvlog
    /// row), is returned if no line at or after its offset made or amended an event; `None`
    /// tells the carrier to finish that record now. Every other statement is closed, as at
    /// [`Self::finish`]. If the caller finishes instead, the held event goes back where it was.
    pub(crate) fn cut(
        &mut self,
        output: &mut ParseOutput,
        open: Option<SourcePosition>,
    ) -> Option<SourcePosition> {
        self.restore(output);
        let last_audit = self.last_audit.take();
        let touched_before = self.touched_before.take();
        let last = output.events.len().checked_sub(1);
        let held = match (last_audit, last) {
            (Some(audit), Some(last)) if audit.index == last && audit.rejected == output.rejected.len() => {
                output.events.get(last).and_then(|event| {
                    let first_line = position_offset(&event.position()?);
                    if touched_before.is_some_and(|touched| touched >= first_line) {
                        return None;
                    }
                    self.open
                        .iter()
                        .find(|(_, open)| {
                            open.index == last
                                && event.statement_id == Some(open.statement_id)
                                && event.substatement_id == Some(open.substatement_id)
                        })
                        .map(|(session, open)| (session.clone(), *open))
                })
            }
            _ => None,
        };
        self.open.clear();
        if let Some((session, open)) = held
            && let Some(audit) = last_audit
            && let Some(event) = output.events.pop()
        {
            match event.position() {
                Some(position) => {
                    self.open.insert(session.clone(), open);
                    self.held = Some((session, Box::new(event), audit.offset));
                    return Some(position);
                }
                // Nowhere to cut before it (checked above): it stays, closed.
                None => output.events.push(event),
            }
        }
        let touched = touched_before.max(last_audit.map(|audit| audit.offset));
        open.filter(|open| touched.is_none_or(|touched| touched < position_offset(open)))
    }

    /// Puts a held statement back at the end of the output, still open, and the last pgAudit
    /// line as the one that last amended it (lines of the next chunk that come after it, for
    /// another statement, make it depend on them). A rejection already in the output came
    /// after its first line: it is not held back again then.
    fn restore(&mut self, output: &mut ParseOutput) {
        let Some((session, event, offset)) = self.held.take() else { return };
        let index = output.events.len();
        if let Some(open) = self.open.get_mut(&session) {
            open.index = index;
        }
        output.events.push(*event);
        let rejected = if output.rejected.is_empty() { 0 } else { usize::MAX };
        self.last_audit = Some(LastAudit { index, rejected, offset });
    }
}

#[cfg(test)]
mod tests {
    use rolewatch_event::LogFormat;

    use crate::{ParseOutput, ParserOptions, SourcePosition, parser_for};

    fn audit_line(session: usize, statement_id: u32) -> String {
        format!(
            r#"{{"timestamp":"2026-11-26 10:00:00.123 UTC","user":"app_reader","dbname":"shop","pid":7,"session_id":"s{session}","error_severity":"LOG","message":"AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,public.orders,SELECT 1,<none>,1"}}"#
        )
    }

    /// Events come out in the order their first lines were read, whatever the sessions: a
    /// replay writes the same bytes.
    #[test]
    fn events_come_out_in_read_order() {
        let mut parser = parser_for(LogFormat::PgauditJsonlog, &ParserOptions::default());
        let mut output = ParseOutput::default();
        let position = SourcePosition::Kafka { topic: "pg".into(), partition: 0, offset: 9 };
        for session in [5, 3, 9, 1, 7, 2] {
            parser.parse_line(audit_line(session, 1).as_bytes(), &position, &mut output);
        }
        parser.parse_line(audit_line(9, 1).as_bytes(), &position, &mut output);
        parser.finish(&mut output);
        let sessions: Vec<String> = output
            .events
            .iter()
            .filter_map(|event| event.session_id.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(sessions, ["s5", "s3", "s9", "s1", "s7", "s2"]);
    }

    /// At MAX_OPEN_SESSIONS open sessions the map is cleared: nothing is lost or reordered, a
    /// statement still open after the clear takes its further lines, one closed by the clear
    /// gets an event of its own for them.
    #[test]
    fn open_sessions_are_bounded() {
        let mut parser = parser_for(LogFormat::PgauditJsonlog, &ParserOptions::default());
        let mut output = ParseOutput::default();
        let sessions = super::MAX_OPEN_SESSIONS + 2;
        for session in 0..sessions {
            let position = SourcePosition::File {
                file: "pg.json".into(),
                line: session as u64 + 1,
                offset: session as u64,
            };
            parser.parse_line(audit_line(session, 1).as_bytes(), &position, &mut output);
        }
        let position = SourcePosition::File { file: "pg.json".into(), line: 0, offset: 0 };
        parser.parse_line(audit_line(sessions - 1, 1).as_bytes(), &position, &mut output);
        assert_eq!(output.events.len(), sessions, "a statement opened after the clear takes its lines");
        parser.parse_line(audit_line(0, 1).as_bytes(), &position, &mut output);
        assert_eq!(output.events.len(), sessions + 1, "one closed by the clear does not");
        parser.finish(&mut output);
        let offsets: Vec<i64> =
            output.events.iter().filter_map(|event| event.source_offset).take(sessions).collect();
        assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]), "read order kept");

        // Lines of a statement join it after other sessions' lines came in between, and the
        // events may be taken at `finish`.
        let mut output = ParseOutput::default();
        parser.parse_line(audit_line(7, 3).as_bytes(), &position, &mut output);
        parser.parse_line(audit_line(8, 1).as_bytes(), &position, &mut output);
        parser.parse_line(audit_line(7, 3).as_bytes(), &position, &mut output);
        parser.finish(&mut output);
        assert_eq!(output.events.len(), 2, "the two lines of s7's statement 3 are one event");
    }

    fn relation_line(session: usize, statement_id: u32, relation: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-11-26 10:00:00.123 UTC","user":"app_reader","dbname":"shop","pid":7,"session_id":"s{session}","error_severity":"LOG","message":"AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,{relation},SELECT * FROM orders JOIN customers USING (id),<none>,1"}}"#
        )
    }

    fn kafka_at(offset: i64) -> SourcePosition {
        SourcePosition::Kafka { topic: "pg".into(), partition: 0, offset }
    }

    fn objects(event: &rolewatch_event::AuditEvent) -> Vec<String> {
        event.objects.iter().map(ToString::to_string).collect()
    }

    /// A cut that falls between the relation lines of one statement holds the statement back
    /// for the next chunk, which starts at its first line: one event with both relations, not
    /// one per chunk.
    #[test]
    fn a_cut_holds_back_the_statement_still_open() {
        let mut parser = parser_for(LogFormat::PgauditJsonlog, &ParserOptions::default());
        let mut output = ParseOutput::default();
        parser.parse_line(relation_line(1, 1, "public.a").as_bytes(), &kafka_at(10), &mut output);
        parser.parse_line(relation_line(1, 2, "public.orders").as_bytes(), &kafka_at(11), &mut output);
        assert_eq!(parser.cut(&mut output), Some(kafka_at(11)));
        assert_eq!(output.events.len(), 1, "statement 2 is held back");
        assert_eq!(output.events[0].statement_id, Some(1));

        let mut next = ParseOutput::default();
        parser.parse_line(relation_line(1, 2, "public.customers").as_bytes(), &kafka_at(12), &mut next);
        parser.parse_line(relation_line(2, 1, "public.b").as_bytes(), &kafka_at(13), &mut next);
        parser.finish(&mut next);
        assert_eq!(next.events.len(), 2);
        assert_eq!(next.events[0].statement_id, Some(2));
        assert_eq!(next.events[0].source_offset, Some(11), "the event is where its first line is");
        assert_eq!(objects(&next.events[0]), ["public.orders", "public.customers"]);
    }

    /// A statement whose lines name the commands of its parts is the event of the statement's
    /// own command, with every relation (lines as PostgreSQL 15 with pgAudit 1.7 wrote them for
    /// a table with an identity column, in `examples/logs/postgresql.json`).
    #[test]
    fn a_statement_is_its_own_command_whatever_its_parts() {
        let mut parser = parser_for(LogFormat::PgauditJsonlog, &ParserOptions::default());
        let mut output = ParseOutput::default();
        for (command, kind, relation) in [
            ("CREATE SEQUENCE", "SEQUENCE", "public.orders_id_seq"),
            ("CREATE TABLE", "TABLE", "public.orders"),
            ("CREATE INDEX", "INDEX", "public.orders_pkey"),
            ("ALTER SEQUENCE", "SEQUENCE", "public.orders_id_seq"),
        ] {
            let line = format!(
                r#"{{"timestamp":"2026-11-26 17:41:53.873 UTC","user":"postgres","dbname":"shop","pid":4401,"session_id":"6b086f61.1131","error_severity":"LOG","message":"AUDIT: SESSION,6,1,DDL,{command},{kind},{relation},\"CREATE TABLE public.orders (\n    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY\n);\",<not logged>"}}"#
            );
            parser.parse_line(line.as_bytes(), &kafka_at(24), &mut output);
        }
        parser.finish(&mut output);
        assert_eq!(output.rejected, vec![]);
        assert_eq!(output.events.len(), 1);
        assert_eq!(output.events[0].command, "CREATE TABLE");
        assert_eq!(output.events[0].class, rolewatch_event::StatementClass::Ddl);
        assert_eq!(
            objects(&output.events[0]),
            ["public.orders_id_seq", "public.orders", "public.orders_pkey"]
        );
    }

    /// Nothing is held back when something came after the statement's last line (a rejected
    /// line here: it belongs to the chunk being cut), and a caller that finishes after a cut
    /// gets the held statement back at the end of its output.
    #[test]
    fn a_cut_holds_back_only_the_last_thing_made() {
        let mut parser = parser_for(LogFormat::PgauditJsonlog, &ParserOptions::default());
        let mut output = ParseOutput::default();
        parser.parse_line(relation_line(1, 1, "public.a").as_bytes(), &kafka_at(1), &mut output);
        parser.parse_line(b"{not json", &kafka_at(2), &mut output);
        assert_eq!(parser.cut(&mut output), None);
        assert_eq!((output.events.len(), output.rejected.len()), (1, 1));

        let mut output = ParseOutput::default();
        parser.parse_line(relation_line(1, 2, "public.a").as_bytes(), &kafka_at(3), &mut output);
        parser.parse_line(relation_line(1, 3, "public.b").as_bytes(), &kafka_at(4), &mut output);
        assert_eq!(parser.cut(&mut output), Some(kafka_at(4)));
        parser.finish(&mut output);
        let ids: Vec<Option<u64>> = output.events.iter().map(|event| event.statement_id).collect();
        assert_eq!(ids, [Some(2), Some(3)]);
        // Finished: a further line of statement 3 is an event of its own.
        parser.parse_line(relation_line(1, 3, "public.c").as_bytes(), &kafka_at(5), &mut output);
        assert_eq!(output.events.len(), 3);

        // Session 2's statement took a line after session 1's statement began: cutting before
        // session 1's would leave session 2's event in this chunk with a line of the next.
        let mut output = ParseOutput::default();
        parser.parse_line(relation_line(2, 1, "public.a").as_bytes(), &kafka_at(6), &mut output);
        parser.parse_line(relation_line(1, 4, "public.a").as_bytes(), &kafka_at(7), &mut output);
        parser.parse_line(relation_line(2, 1, "public.b").as_bytes(), &kafka_at(8), &mut output);
        parser.parse_line(relation_line(1, 4, "public.b").as_bytes(), &kafka_at(9), &mut output);
        assert_eq!(parser.cut(&mut output), None);
        assert_eq!(output.events.len(), 2);
    }

    /// A caller that takes the events without `finish` does not make a later line amend
    /// another session's event that now sits at the remembered index.
    #[test]
    fn taken_events_are_not_amended() {
        let mut parser = parser_for(LogFormat::PgauditJsonlog, &ParserOptions::default());
        let mut output = ParseOutput::default();
        let position = SourcePosition::File { file: "pg.json".into(), line: 1, offset: 0 };
        parser.parse_line(audit_line(1, 4).as_bytes(), &position, &mut output);
        output.events.clear();
        parser.parse_line(audit_line(2, 4).as_bytes(), &position, &mut output);
        parser.parse_line(audit_line(1, 4).as_bytes(), &position, &mut output);
        let sessions: Vec<String> = output
            .events
            .iter()
            .filter_map(|event| event.session_id.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(sessions, ["s2", "s1"]);
    }
}
