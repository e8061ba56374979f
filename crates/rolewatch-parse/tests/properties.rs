//! Properties over generated input: no parser panics or grows without bound on any bytes, and
//! statements survive the escaping each format applies (a round trip through the writer's
//! rules and our reader).

// Helpers outside #[test] functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{check_output, parse_bytes};
use proptest::prelude::*;
use rolewatch_event::{LogFormat, SourcePosition};
use rolewatch_parse::{MAX_LINE_BYTES, ParseOutput, ParserOptions, RejectReason, parser_for};

/// Real lines of each format, to mutate.
const SEEDS: [(LogFormat, &str); 5] = [
    (
        LogFormat::PgauditJsonlog,
        r#"{"timestamp":"2026-11-26 17:41:54.118 UTC","user":"app_reader","dbname":"shop","pid":4423,"remote_host":"127.0.0.1","remote_port":59514,"session_id":"6b086f62.1147","error_severity":"LOG","message":"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,\"SELECT *\nFROM orders\",<none>,20000","application_name":"webapp"}"#,
    ),
    (
        LogFormat::PgauditCsvlog,
        "2026-11-26 17:41:53.942 UTC,\"app_writer\",\"shop\",4404,\"127.0.0.1:59430\",6b086f61.1134,9,\"INSERT\",2026-11-26 17:41:53 UTC,3/9,0,LOG,00000,\"AUDIT: SESSION,7,1,WRITE,INSERT,TABLE,public.orders,\"\"INSERT INTO t\nVALUES ('a, b')\"\",<none>,1\",,,,,,,,,\"billing\",\"client backend\",,0",
    ),
    (
        LogFormat::PgauditStderr,
        "2026-11-26 17:41:53.942 UTC [4404] app_writer@shop LOG:  AUDIT: SESSION,7,1,WRITE,INSERT,TABLE,public.orders,\"INSERT INTO t\n\tVALUES ('a, b')\",<none>,1\n2026-11-26 17:41:54.118 UTC [4423] app_reader@shop ERROR:  permission denied for table salaries\n2026-11-26 17:41:54.118 UTC [4423] app_reader@shop STATEMENT:  SELECT * FROM hr.salaries",
    ),
    (
        LogFormat::MariadbAudit,
        "20220531 08:17:22,ip-10-19-0-190,admin,136.185.152.250,29,12623,READ,ORG,Works,\n20220531 08:17:22,ip-10-19-0-190,admin,136.185.152.250:3306,29,12623,QUERY,ORG,'SELECT \\n    fruits\\nFROM \\n    Works, \\'x\\'',0,,",
    ),
    (
        LogFormat::MysqlAuditJson,
        "[\n{ \"timestamp\": \"2020-10-19 19:32:05\", \"id\": 0, \"class\": \"table_access\", \"event\": \"read\", \"connection_id\": 16, \"table_access_data\": { \"db\": \"a\", \"table\": \"t\", \"query\": \"select 1\" } },\n  {\n \"timestamp\": \"2020-10-19 19:32:05\", \"class\": \"general\", \"event\": \"status\", \"connection_id\": 16,\n \"general_data\": { \"query\": \"select 1\", \"status\": 0 } },\n{\"audit_record\":{\"name\":\"Query\",\"timestamp\":\"2021-06-30T15:07:58 UTC\",\"connection_id\":\"2\",\"status\":0,\"sqltext\":\"show databases\",\"user\":\"root[root] @ localhost []\"}}\n]",
    ),
];

fn options() -> ParserOptions {
    ParserOptions {
        log_line_prefix: Some("%m [%p] %q%u@%d ".to_owned()),
        timezone: Some("Europe/Berlin".to_owned()),
        ..ParserOptions::default()
    }
}

/// A seed line with bytes changed, inserted or removed at generated places.
fn mutated(seed: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8);
    edits.prop_map(move |edits| {
        let mut bytes = seed.as_bytes().to_vec();
        for (index, byte, kind) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_parser_panics_on_any_bytes(input in prop::collection::vec(any::<u8>(), 0..2048), index in 0usize..5) {
        let format = LogFormat::ALL[index];
        let output = parse_bytes(format, &options(), "fuzz", &input);
        check_output(&input, &output);
    }

    #[test]
    fn no_parser_panics_on_mutated_real_lines(
        (format, input) in prop::sample::select(SEEDS.to_vec())
            .prop_flat_map(|(format, seed)| (Just(format), mutated(seed)))
    ) {
        let output = parse_bytes(format, &options(), "fuzz", &input);
        check_output(&input, &output);
    }

    #[test]
    fn unmutated_seeds_parse_cleanly(index in 0usize..5) {
        let (format, seed) = SEEDS[index];
        let output = parse_bytes(format, &options(), "seed", seed.as_bytes());
        prop_assert_eq!(output.rejected.clone(), vec![]);
        prop_assert!(!output.events.is_empty());
    }

    /// pgAudit's CSV quoting, inside each PostgreSQL carrier, gives the statement back.
    #[test]
    fn pgaudit_statements_round_trip_through_every_carrier(
        statement in "[^\r\u{0}]{0,120}".prop_filter("a sentinel", |text| !text.starts_with('<'))
    ) {
        let field = if statement.contains([',', '"', '\n']) {
            format!("\"{}\"", statement.replace('"', "\"\""))
        } else {
            statement.clone()
        };
        let message = format!("AUDIT: SESSION,1,1,READ,SELECT,,,{field},<none>,3");
        let jsonlog = serde_json::json!({
            "timestamp": "2026-01-01 00:00:00.000 UTC", "pid": 7, "error_severity": "LOG", "message": message,
        })
        .to_string();
        let csvlog = format!(
            "2026-01-01 00:00:00.000 UTC,,,7,,1.7,1,,2026-01-01 00:00:00 UTC,,0,LOG,00000,\"{}\",,,,,,,,,\"\",\"client backend\",,0",
            message.replace('"', "\"\"")
        );
        let stderr = format!("2026-01-01 00:00:00.000 UTC [7] LOG:  {}", message.replace('\n', "\n\t"));
        for (format, input) in
            [(LogFormat::PgauditJsonlog, jsonlog), (LogFormat::PgauditCsvlog, csvlog), (LogFormat::PgauditStderr, stderr)]
        {
            let output = parse_bytes(format, &ParserOptions::default(), "rt", input.as_bytes());
            prop_assert_eq!(output.rejected.clone(), vec![], "{}", format);
            prop_assert_eq!(output.events.len(), 1, "{}", format);
            prop_assert_eq!(output.events[0].statement.as_deref(), Some(statement.as_str()), "{}", format);
            prop_assert_eq!(output.events[0].rows, Some(3));
        }
    }

    /// server_audit's escaping (`esc_map` in `server_audit.c`) gives the statement back.
    #[test]
    fn server_audit_statements_round_trip(statement in "[^\u{0}]{0,160}") {
        let mut escaped = String::new();
        for character in statement.chars() {
            match character {
                '\\' => escaped.push_str("\\\\"),
                '\'' => escaped.push_str("\\'"),
                '\n' => escaped.push_str("\\n"),
                '\t' => escaped.push_str("\\t"),
                '\r' => escaped.push_str("\\r"),
                '\u{8}' => escaped.push_str("\\b"),
                '\u{c}' => escaped.push_str("\\f"),
                other => escaped.push(other),
            }
        }
        let line = format!("20240101 10:00:00,h,u,10.0.0.1,5,6,QUERY,db,'{escaped}',0");
        let output = parse_bytes(LogFormat::MariadbAudit, &ParserOptions::default(), "rt", line.as_bytes());
        prop_assert_eq!(output.rejected.clone(), vec![]);
        prop_assert_eq!(output.events[0].statement.as_deref(), Some(statement.as_str()));
    }
}

/// A record that never ends is cut at the size limit and rejected, and reading goes on.
#[test]
fn unterminated_records_are_bounded() {
    let chunk = "x".repeat(64 * 1024);
    for (format, opening) in [
        (LogFormat::PgauditCsvlog, "2026-01-01 00:00:00.000 UTC,\"open".to_owned()),
        (LogFormat::MysqlAuditJson, "{\"timestamp\": \"open".to_owned()),
        (LogFormat::PgauditStderr, "2026-01-01 00:00:00.000 UTC [7] LOG:  AUDIT: x".to_owned()),
    ] {
        let mut parser = parser_for(format, &ParserOptions::default());
        let mut output = ParseOutput::default();
        let position = SourcePosition::File { file: "big".into(), line: 1, offset: 0 };
        parser.parse_line(opening.as_bytes(), &position, &mut output);
        let continuation =
            if format == LogFormat::PgauditStderr { format!("\t{chunk}") } else { chunk.clone() };
        for _ in 0..(2 * MAX_LINE_BYTES / chunk.len()) {
            parser.parse_line(continuation.as_bytes(), &position, &mut output);
        }
        parser.finish(&mut output);
        let too_large =
            output.rejected.iter().filter(|rejected| rejected.reason == RejectReason::TooLarge).count();
        assert!(
            too_large >= 1,
            "{format}: {:?}",
            output.rejected.iter().map(|r| r.reason).collect::<Vec<_>>()
        );
        assert!(
            output.rejected.iter().all(|rejected| rejected.raw.len() <= MAX_LINE_BYTES + chunk.len() + 1),
            "{format}"
        );
    }
}

/// A pgAudit line in `format`: relation `relation` of statement `statement` of session
/// `session`. stderr lines follow [`CUT_PREFIX`].
fn relation_line(format: LogFormat, session: u8, statement: u32, relation: usize) -> String {
    let audit =
        format!("AUDIT: SESSION,{statement},1,READ,SELECT,TABLE,public.t{relation},SELECT 1,<none>,1");
    match format {
        LogFormat::PgauditStderr => {
            format!("2026-11-26 10:00:00.123 UTC [7] app@shop 5{session}.7 LOG:  {audit}")
        }
        LogFormat::PgauditCsvlog => format!(
            "2026-11-26 10:00:00.123 UTC,\"app\",\"shop\",7,\"127.0.0.1:5000\",5{session}.7,1,\"SELECT\",2026-11-26 10:00:00 UTC,3/9,0,LOG,00000,\"{audit}\",,,,,,,,,\"psql\",\"client backend\",,0"
        ),
        _ => format!(
            r#"{{"timestamp":"2026-11-26 10:00:00.123 UTC","user":"app","dbname":"shop","pid":7,"session_id":"5{session}.7","error_severity":"LOG","message":"{audit}"}}"#
        ),
    }
}

/// The `log_line_prefix` of the stderr lines of [`relation_line`].
const CUT_PREFIX: &str = "%m [%p] %u@%d %c ";

/// Kafka records built from generated steps: each step's line goes into the last record while
/// that has room, else into a new record of the step's number of lines.
#[derive(Default)]
struct Records {
    records: Vec<Vec<String>>,
    room: usize,
}

impl Records {
    /// Adds `line` as a step's line (a new record holds `lines` lines); returns its offset.
    fn push(&mut self, line: String, lines: usize) -> i64 {
        if self.room == 0 {
            self.records.push(Vec::new());
            self.room = lines;
        }
        self.room -= 1;
        self.push_after(line);
        self.records.len() as i64 - 1
    }

    /// Adds `line` to the last record, beside the step's line and not counted in its room.
    fn push_after(&mut self, line: String) {
        if let Some(record) = self.records.last_mut() {
            record.push(line);
        }
    }
}

/// Reads `records` (the Kafka records at offsets 0, 1, ..., each of one or more lines) as the
/// daemon does, cutting a chunk each time `chunk_events` events are buffered after a record
/// (`KafkaBuffers::cut_full`: the chunk ends before the position `cut` returns when that is
/// after the chunk's first record and no event of the chunk is at or after it; otherwise
/// everything is finished). Returns each chunk's first and last offset with its events.
///
/// With `kafka` false the cuts are those of `LineFeeder::cut_full_chunk` for a file, whose lines
/// each have their own offset: it checks only that the position is inside the chunk.
fn read_in_chunks(
    format: LogFormat,
    records: &[Vec<String>],
    chunk_events: usize,
    kafka: bool,
) -> Vec<(i64, i64, ParseOutput)> {
    let options = ParserOptions { log_line_prefix: Some(CUT_PREFIX.to_owned()), ..ParserOptions::default() };
    let mut parser = parser_for(format, &options);
    let (mut chunks, mut output, mut first) = (Vec::new(), ParseOutput::default(), 0);
    for (offset, lines) in records.iter().enumerate() {
        let offset = offset as i64;
        let position = SourcePosition::Kafka { topic: "pg".into(), partition: 0, offset };
        for line in lines {
            parser.parse_line(line.as_bytes(), &position, &mut output);
        }
        if output.events.len() < chunk_events {
            continue;
        }
        let kept = match parser.cut(&mut output) {
            Some(SourcePosition::Kafka { offset: kept, .. })
                if kept > first
                    && kept <= offset
                    && (!kafka
                        || output.events.last().and_then(|event| event.source_offset) < Some(kept)
                            && output.rejected.last().is_none_or(|rejected| {
                                matches!(rejected.position, SourcePosition::Kafka { offset: at, .. } if at < kept)
                            })) =>
            {
                kept
            }
            Some(_) => {
                parser.finish(&mut output);
                offset + 1
            }
            None => offset + 1,
        };
        chunks.push((first, kept - 1, std::mem::take(&mut output)));
        first = kept;
    }
    parser.finish(&mut output);
    chunks.push((first, records.len() as i64 - 1, output));
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// pgAudit statements on several relations, from interleaved sessions, in Kafka records of
    /// one or several lines, with lines that are rejected here and there, in each PostgreSQL
    /// carrier, read in chunks of any size. Every rejected line is in exactly one chunk, and
    /// every relation line in exactly one event; that chunk, and the event's, is the one whose
    /// offsets hold the line's record (a restart from any cut reads again exactly what the
    /// stored chunks do not hold). When sessions do not interleave, a record is a line and no
    /// line is rejected, the events are those of reading the whole input at once: no
    /// statement is split by a cut.
    #[test]
    fn chunk_cuts_lose_repeat_and_split_nothing(
        steps in prop::collection::vec((0u8..3, any::<bool>(), 1usize..4, prop::bool::weighted(0.1)), 1..60),
        chunk_events in 2usize..7,
        interleave in any::<bool>(),
        several_lines_a_record in any::<bool>(),
        format in prop::sample::select(vec![
            LogFormat::PgauditJsonlog,
            LogFormat::PgauditCsvlog,
            LogFormat::PgauditStderr,
        ]),
    ) {
        // Each step is a session, whether it starts a new statement or adds a relation to its
        // current one, and (when records carry several lines) how many lines its record holds.
        // Without interleaving, all of a session's steps come together.
        let mut steps = steps;
        if !interleave {
            steps.sort_by_key(|(session, _, _, _)| *session);
        }
        let mut current: [(u32, usize); 3] = [(0, 0); 3];
        let mut records = Records::default();
        let mut line_of = std::collections::HashMap::new();
        let garbage_lines = steps.iter().filter(|step| step.3).count();
        for (session, new_statement, record_lines, garbage) in steps {
            let (statement, relations) = &mut current[usize::from(session)];
            if new_statement || *statement == 0 {
                (*statement, *relations) = (*statement + 1, 0);
            }
            let lines = if several_lines_a_record { record_lines } else { 1 };
            let offset = records.push(relation_line(format, session, *statement, *relations), lines);
            line_of.insert((session, *statement, *relations), offset);
            *relations += 1;
            if garbage {
                // A line that is rejected, after this step's line in the same record.
                let bad = if format == LogFormat::PgauditJsonlog { "{x" } else { "x" };
                records.push_after(bad.to_owned());
            }
        }
        let records = records.records;
        let whole = read_in_chunks(format, &records, usize::MAX, true);
        // A file's lines each have their own offset: read so only when a record is a line.
        for kafka in [true, false].into_iter().filter(|kafka| *kafka || !several_lines_a_record) {
            let chunks = read_in_chunks(format, &records, chunk_events, kafka);
            let mut seen = Vec::new();
            let mut rejected = 0;
            for (first, last, output) in &chunks {
                for record in &output.rejected {
                    let SourcePosition::Kafka { offset, .. } = record.position else {
                        panic!("{:?}", record.position)
                    };
                    prop_assert!(
                        (*first..=*last).contains(&offset),
                        "rejected record {} in the chunk {}..={}", offset, first, last
                    );
                    rejected += 1;
                }
                for event in &output.events {
                    let session: u8 = event.session_id.as_deref().unwrap()[1..2].parse().unwrap();
                    let statement = u32::try_from(event.statement_id.unwrap()).unwrap();
                    for object in &event.objects {
                        let relation: usize = object.as_str()["public.t".len()..].parse().unwrap();
                        let line = line_of[&(session, statement, relation)];
                        prop_assert!(
                            (*first..=*last).contains(&line),
                            "record {} in the chunk {}..={}", line, first, last
                        );
                        seen.push(line);
                    }
                }
            }
            let mut expected: Vec<i64> = line_of.values().copied().collect();
            expected.sort_unstable();
            seen.sort_unstable();
            prop_assert_eq!(seen, expected);
            prop_assert_eq!(rejected, garbage_lines);
            if !interleave && !several_lines_a_record && garbage_lines == 0 {
                let events = |chunks: &[(i64, i64, ParseOutput)]| -> Vec<rolewatch_event::AuditEvent> {
                    chunks.iter().flat_map(|(_, _, output)| output.events.clone()).collect()
                };
                prop_assert!(events(&chunks) == events(&whole));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// server_audit table records and their queries, from interleaved connections, in Kafka
    /// records of one or several lines, with rejected lines here and there, read in chunks of
    /// any size. Every table record is among the objects of exactly one event, every query is
    /// exactly one event, and every rejected line is in exactly one chunk; each in the chunk
    /// whose offsets hold its record (a restart from any cut reads again exactly what the
    /// stored chunks do not hold). Without interleaving, with a line per record and no
    /// rejected line, the events are those of reading the whole input at once (in order of
    /// their records).
    #[test]
    fn server_audit_chunk_cuts_lose_repeat_and_split_nothing(
        steps in prop::collection::vec((0u8..3, any::<bool>(), 1usize..4, prop::bool::weighted(0.1)), 1..60),
        chunk_events in 2usize..7,
        interleave in any::<bool>(),
        several_lines_a_record in any::<bool>(),
    ) {
        let mut steps = steps;
        if !interleave {
            steps.sort_by_key(|(connection, _, _, _)| *connection);
        }
        let mut query_ids = [1u32; 3];
        let (mut tables, mut queries) = (Vec::new(), Vec::new());
        let mut records = Records::default();
        let garbage_lines = steps.iter().filter(|step| step.3).count();
        for (connection, is_query, record_lines, garbage) in steps {
            let lines = if several_lines_a_record { record_lines } else { 1 };
            let query_id = &mut query_ids[usize::from(connection)];
            let prefix = format!("20240101 10:00:00,db1,root,10.0.0.9:51234,{connection},{query_id}");
            if is_query {
                queries.push(records.push(format!("{prefix},QUERY,test,'select {}',0", queries.len()), lines));
                *query_id += 1;
            } else {
                tables.push(records.push(format!("{prefix},READ,test,t{},", tables.len()), lines));
            }
            if garbage {
                records.push_after("x".to_owned());
            }
        }
        let records = records.records;
        let whole = read_in_chunks(LogFormat::MariadbAudit, &records, usize::MAX, true);
        // A file's lines each have their own offset: read so only when a record is a line.
        for kafka in [true, false].into_iter().filter(|kafka| *kafka || !several_lines_a_record) {
            let chunks = read_in_chunks(LogFormat::MariadbAudit, &records, chunk_events, kafka);
            let (mut seen_tables, mut seen_queries, mut rejected) = (Vec::new(), Vec::new(), 0);
            for (first, last, output) in &chunks {
                let in_chunk = |offset: i64| (*first..=*last).contains(&offset);
                for record in &output.rejected {
                    let SourcePosition::Kafka { offset, .. } = record.position else {
                        panic!("{:?}", record.position)
                    };
                    prop_assert!(
                        in_chunk(offset),
                        "rejected record {} in the chunk {}..={}", offset, first, last
                    );
                    rejected += 1;
                }
                for event in &output.events {
                    for object in &event.objects {
                        let table: usize = object.as_str()["test.t".len()..].parse().unwrap();
                        prop_assert!(
                            in_chunk(tables[table]),
                            "table record {} in the chunk {}..={}", tables[table], first, last
                        );
                        seen_tables.push(table);
                    }
                    if let Some(statement) = &event.statement {
                        let query: usize = statement["select ".len()..].parse().unwrap();
                        prop_assert!(
                            in_chunk(queries[query]),
                            "query record {} in the chunk {}..={}", queries[query], first, last
                        );
                        seen_queries.push(query);
                    }
                }
            }
            seen_tables.sort_unstable();
            seen_queries.sort_unstable();
            prop_assert_eq!(seen_tables, (0..tables.len()).collect::<Vec<_>>());
            prop_assert_eq!(seen_queries, (0..queries.len()).collect::<Vec<_>>());
            prop_assert_eq!(rejected, garbage_lines);
            if !interleave && !several_lines_a_record && garbage_lines == 0 {
                // A table record whose query never came is an event alone when the parser gives
                // up waiting: at the end of the input, or at a cut it cannot put before it. So
                // the events are compared in order of their records.
                let events = |chunks: &[(i64, i64, ParseOutput)]| {
                    let mut events: Vec<_> = chunks
                        .iter()
                        .flat_map(|(_, _, output)| &output.events)
                        .map(|event| (event.source_offset, event.statement.clone(), format!("{event:?}")))
                        .collect();
                    events.sort();
                    events
                };
                prop_assert_eq!(events(&chunks), events(&whole));
            }
        }
    }
}
