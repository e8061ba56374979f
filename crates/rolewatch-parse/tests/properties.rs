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
