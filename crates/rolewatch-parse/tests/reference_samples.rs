//! Every realistic sample of `../shared/reference/log-formats/` (copied into `tests/data`, see
//! `tests/data/SOURCES.md`) parses as that folder's `FORMATS.md` describes.

// Helpers outside #[test] functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::parse_bytes;
use rolewatch_event::{AuditEvent, LogFormat, StatementClass, Text, format_rfc3339};
use rolewatch_parse::{ParseOutput, ParserOptions, RejectReason, SkipReason};

fn data(name: &str) -> Vec<u8> {
    std::fs::read(manifest_dir().join("tests/data").join(name)).unwrap()
}

fn options(prefix: Option<&str>, timezone: Option<&str>) -> ParserOptions {
    ParserOptions {
        log_line_prefix: prefix.map(str::to_owned),
        timezone: timezone.map(str::to_owned),
        ..ParserOptions::default()
    }
}

/// Lines `from..=to` (1-based) of a sample, joined again.
fn lines(bytes: &[u8], from: usize, to: usize) -> Vec<u8> {
    bytes.split(|byte| *byte == b'\n').skip(from - 1).take(to + 1 - from).collect::<Vec<_>>().join(&b'\n')
}

fn reasons(output: &ParseOutput) -> Vec<(RejectReason, u64)> {
    output
        .rejected
        .iter()
        .map(|rejected| match &rejected.position {
            rolewatch_event::SourcePosition::File { line, .. } => (rejected.reason, *line),
            other => panic!("{other}"),
        })
        .collect()
}

/// `(command, class, success, error_code, objects)` of an event, for compact expectations.
type Summary = (Text, StatementClass, bool, Option<Text>, Vec<Text>);

fn summary(events: &[AuditEvent]) -> Vec<Summary> {
    events
        .iter()
        .map(|event| {
            (
                event.command.clone(),
                event.class,
                event.success,
                event.error_code.clone(),
                event.objects.clone(),
            )
        })
        .collect()
}

fn row(
    command: &str,
    class: StatementClass,
    success: bool,
    error_code: Option<&str>,
    objects: &[&str],
) -> Summary {
    (
        command.into(),
        class,
        success,
        error_code.map(Text::from),
        objects.iter().map(|object| Text::from(*object)).collect(),
    )
}

#[test]
fn pgaudit_stderr_sample_reads_with_each_lines_prefix() {
    let sample = data("pgaudit_stderr.log");
    // Lines 1-5 and 7: PostgreSQL's default prefix. Line 6 is another prefix: bad_prefix here.
    let output = parse_bytes(LogFormat::PgauditStderr, &options(None, None), "s.log", &lines(&sample, 1, 7));
    assert_eq!(reasons(&output), [(RejectReason::BadPrefix, 6)]);
    let events = &output.events;
    assert_eq!(
        summary(events),
        [
            row("SELECT", StatementClass::Read, true, None, &[]),
            // Failed statements get the tables they name from sqlparser.
            row("INSERT", StatementClass::Write, false, None, &["employees"]),
            row("SELECT", StatementClass::Read, false, None, &["employeeseueu"]),
            row("INSERT", StatementClass::Write, true, None, &[]),
        ]
    );
    assert_eq!(
        events[1].statement.as_deref(),
        Some("INSERT INTO employees (name, salary) VALUES ('Alice', 50000);")
    );
    assert_eq!(events[1].error_message.as_deref(), Some("permission denied for table employees"));
    assert_eq!(format_rfc3339(&events[0].ts), "2025-05-29T07:17:55.026000Z");
    assert_eq!(events[3].parameters, None, "<not logged>");
    assert!(events[3].statement.as_deref().unwrap().contains("'127.0.0.1', 'some context')"));

    // Line 6: `%t [%p] user=%u db=%d app=%a client=%h ` in CEST: ambiguous without a zone.
    let line_6 = lines(&sample, 6, 6);
    let prefix = Some("%t [%p] user=%u db=%d app=%a client=%h ");
    let output = parse_bytes(LogFormat::PgauditStderr, &options(prefix, None), "s.log", &line_6);
    assert_eq!(reasons(&output), [(RejectReason::BadTimestamp, 1)]);
    assert!(output.rejected[0].detail.contains("ambiguous"), "{}", output.rejected[0].detail);
    let output =
        parse_bytes(LogFormat::PgauditStderr, &options(prefix, Some("Europe/Berlin")), "s.log", &line_6);
    let event = &output.events[0];
    assert_eq!(format_rfc3339(&event.ts), "2024-05-14T08:08:56.000000Z");
    assert_eq!((event.role.as_deref(), event.database.as_deref()), (Some("postgres"), Some("postgres")));
    assert_eq!((event.application.as_deref(), event.client_addr.as_deref()), (Some("psql"), None));
    assert_eq!(event.objects, ["public.account"]);

    // Lines 8-10: the RDS prefix, with a statement over tabbed continuation lines.
    let output =
        parse_bytes(LogFormat::PgauditStderr, &options(Some("rds"), None), "s.log", &lines(&sample, 8, 16));
    assert_eq!(output.rejected, vec![]);
    let events = &output.events;
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].command, "CREATE TABLE AS");
    assert_eq!(
        events[0].statement.as_deref(),
        Some(
            "CREATE TABLE t1 AS\nSELECT num                         a \n      ,'1'                         b \n      ,to_char(num,'FM00000')      c \n      ,current_timestamp      d \nFROM   generate_series(1,10000000) num\n;"
        )
    );
    assert_eq!((events[0].client_addr.as_deref(), events[0].client_port), (Some("10.0.1.123"), Some(50322)));
    assert_eq!(events[0].source_line, Some(1));
    assert_eq!(events[2].role, None, "background process: empty user");

    // Lines 17-24 were pasted without any prefix: every one is reported, none is dropped.
    let output =
        parse_bytes(LogFormat::PgauditStderr, &options(None, None), "s.log", &lines(&sample, 17, 24));
    assert_eq!(output.rejected.len(), 8);
    assert!(output.rejected.iter().all(|rejected| rejected.reason == RejectReason::BadPrefix));
}

#[test]
fn pgaudit_csvlog_sample_with_23_columns() {
    let sample = data("pgaudit_csvlog.csv");
    let output = parse_bytes(LogFormat::PgauditCsvlog, &options(None, None), "a.csv", &sample);
    // EST and ACST are abbreviations: refused without the server's zone.
    assert_eq!(
        reasons(&output),
        [(RejectReason::BadTimestamp, 1), (RejectReason::BadTimestamp, 6), (RejectReason::BadTimestamp, 7)]
    );
    assert_eq!(summary(&output.events), [row("SET", StatementClass::MiscSet, false, Some("42501"), &[])]);
    assert_eq!(output.events[0].application.as_deref(), Some("DBeaver 21.0.1 - SQLEditor <xy.sql>"));
    assert_eq!(output.events[0].client_port, Some(23672));

    // Row 1 (three physical lines) in its zone, EST: a pgAudit record with a CSV parameter list.
    let output =
        parse_bytes(LogFormat::PgauditCsvlog, &options(None, Some("EST")), "a.csv", &lines(&sample, 1, 3));
    assert_eq!(output.rejected, vec![]);
    let event = &output.events[0];
    assert_eq!(format_rfc3339(&event.ts), "2019-05-28T17:23:15.168000Z");
    assert_eq!((event.class, event.statement_id), (StatementClass::Write, Some(91_403_522)));
    assert!(event.statement.as_deref().unwrap().starts_with("insert into pgaudit.log_event (session_id,"));
    assert!(event.statement.as_deref().unwrap().contains("query_pos,\ninternal_query,"));
    let parameters = event.parameters.as_ref().unwrap();
    assert_eq!(parameters.len(), 17);
    assert_eq!(parameters[..3], ["5cec92b3.165a", "2019-05-28 11:15:40.658-05", "84846193"]);
    assert_eq!(event.client_addr, None, "[local]");

    // Rows 4-5 in Australia/Adelaide (ACST in June): duration lines are chatter.
    let output = parse_bytes(
        LogFormat::PgauditCsvlog,
        &options(None, Some("Australia/Adelaide")),
        "a.csv",
        &lines(&sample, 6, 7),
    );
    assert_eq!((output.rejected.len(), output.events.len(), output.skipped_total()), (0, 0, 2));
}

#[test]
fn pg15_csvlog_sample_with_26_columns() {
    let sample = data("pg15_csvlog.csv");
    let output =
        parse_bytes(LogFormat::PgauditCsvlog, &options(None, Some("America/New_York")), "b.csv", &sample);
    assert_eq!(output.rejected, vec![]);
    assert_eq!(
        summary(&output.events),
        [
            row("CONNECT", StatementClass::Connect, true, None, &[]),
            row("DISCONNECT", StatementClass::Disconnect, true, None, &[])
        ]
    );
    assert_eq!(format_rfc3339(&output.events[0].ts), "2025-04-21T07:27:13.529000Z");
    assert_eq!(output.skipped_total(), 4);
}

/// server_audit lines from MariaDB's test suite have their variable parts masked. This puts a
/// time, a host and ids back: table records take the id of the `QUERY` record after them (as the
/// server writes them), except the lines in `orphans` (1-based), whose query is not in the
/// excerpt; a masked retcode becomes `1` (some error).
fn unmask_mariadb_test_log(bytes: &[u8], orphans: &[usize]) -> Vec<u8> {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut query_id = 100;
    let mut unmasked = String::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.splitn(9, ',').collect();
        let operation = fields[6];
        let mut fields: Vec<String> = fields.iter().map(|field| (*field).to_owned()).collect();
        fields[0] = "20240101 10:00:00".to_owned();
        fields[1] = "mtr-host".to_owned();
        if matches!(fields[4].as_str(), "ID" | "CONNECTION_ID") {
            fields[4] = "7".to_owned();
        }
        if matches!(fields[5].as_str(), "ID" | "QUERY_ID") {
            let is_connection = operation.contains("CONNECT");
            fields[5] = if is_connection {
                "0".to_owned()
            } else if orphans.contains(&(index + 1)) {
                (query_id + 1000).to_string()
            } else {
                query_id.to_string()
            };
        }
        if operation == "QUERY" {
            query_id += 1;
        }
        let mut line = fields.join(",");
        if let Some(masked) = line.strip_suffix(",ID") {
            line = format!("{masked},1");
        }
        unmasked.push_str(&line);
        unmasked.push('\n');
    }
    unmasked.into_bytes()
}

#[test]
fn mariadb_test_suite_log_groups_table_records_with_their_query() {
    let sample = unmask_mariadb_test_log(&data("mariadb_server_audit_mtr_masked.log"), &[]);
    let output = parse_bytes(LogFormat::MariadbAudit, &options(None, None), "audit.log", &sample);
    assert_eq!(output.rejected, vec![]);
    use StatementClass::{Connect, Ddl, Disconnect, Misc, MiscSet, Read, Role, Write};
    assert_eq!(
        summary(&output.events),
        [
            row("SET", MiscSet, true, None, &[]),
            row("CONNECT", Connect, true, None, &[]),
            row("DISCONNECT", Disconnect, true, None, &[]),
            row("CONNECT", Connect, false, Some("1"), &[]),
            row("DISCONNECT", Disconnect, true, None, &[]),
            row("SET", MiscSet, true, None, &[]),
            row("CREATE TABLE", Ddl, true, None, &["test.t2"]),
            row("INSERT", Write, true, None, &["test.t1"]),
            row("SELECT", Read, true, None, &["test.t1"]),
            row(
                "ALTER TABLE",
                Ddl,
                true,
                None,
                &[
                    "test.t1",
                    "mysql.table_stats",
                    "mysql.column_stats",
                    "mysql.index_stats",
                    "test.renamed_t1"
                ]
            ),
            row("SELECT", Read, true, None, &[]),
            row("SELECT", Read, false, Some("1"), &["test.t_doesnt_exist"]),
            row("SYNTAX_ERROR_QUERY", Misc, false, Some("1"), &[]),
            row("DROP TABLE", Ddl, true, None, &["sa_db.sa_t1"]),
            row("CREATE USER", Role, true, None, &["mysql.user", "mysql.db"]),
            row("GRANT", Role, true, None, &[]),
            row("SET PASSWORD", Role, true, None, &[]),
            row("SET PASSWORD", Role, false, Some("1"), &[]),
            row("DROP USER", Role, true, None, &[]),
            row("SET", MiscSet, true, None, &[]),
            row("SELECT", Read, true, None, &[]),
            row("SELECT", Read, true, None, &[]),
            row("DROP DATABASE", Ddl, true, None, &[]),
        ]
    );
    let statements: Vec<&str> = output.events.iter().filter_map(|event| event.statement.as_deref()).collect();
    assert!(statements.contains(&"set global server_audit_incl_users='odin, root, dva, tri'"));
    assert!(statements.contains(&"select 'A', "));
    assert!(statements.contains(&"CREATE USER u1 IDENTIFIED BY *****"));
    let failed_login = &output.events[3];
    assert_eq!(
        (failed_login.role.as_deref(), failed_login.database.as_deref()),
        (Some("no_such_user"), None)
    );
}

#[test]
fn mariadb_12_host_port_and_escaped_newlines() {
    let sample = unmask_mariadb_test_log(&data("mariadb_server_audit_mtr_host_port.log"), &[6, 10]);
    let output = parse_bytes(LogFormat::MariadbAudit, &options(None, None), "audit.log", &sample);
    assert_eq!(output.rejected, vec![]);
    let event = &output.events[0];
    assert_eq!((event.client_addr.as_deref(), event.client_port), (Some("localhost"), None));
    assert_eq!(
        output.events[1].statement.as_deref(),
        Some("set global server_audit_incl_users= repeat(\"'root',\", 10000)")
    );
    let insert = output.events.iter().find(|event| event.command == "INSERT").unwrap();
    assert_eq!(insert.objects, ["test.t1", "mysql.table_stats"]);
    // The CREATE and RENAME records' queries are not in the excerpt: they become events alone,
    // at the end of the input.
    let create = &output.events[output.events.len() - 2];
    assert_eq!((create.command.as_str(), create.class), ("CREATE", StatementClass::Ddl));
    assert_eq!(create.objects, ["test.t2"]);
    let last = output.events.last().unwrap();
    assert_eq!(
        (last.command.as_str(), last.objects.clone()),
        ("RENAME", vec![Text::from("test.t1"), Text::from("test.renamed_t1")])
    );
    let multi_line = output
        .events
        .iter()
        .find(|event| event.statement.as_deref().is_some_and(|text| text.starts_with("select 1")))
        .unwrap();
    assert_eq!(multi_line.statement.as_deref(), Some("select 1,\n2,\n# comment\n3"));

    let sample = unmask_mariadb_test_log(&data("mariadb_server_audit_mtr_newline_escapes.log"), &[]);
    let output = parse_bytes(LogFormat::MariadbAudit, &options(None, None), "audit.log", &sample);
    assert_eq!(output.rejected, vec![]);
    let ids: Vec<Option<u64>> = output.events.iter().map(|event| event.statement_id).collect();
    assert_eq!(
        ids,
        [38, 39, 40, 43, 45, 48, 47, 46, 58, 57, 64].map(Some),
        "nested statements keep their order"
    );
    assert_eq!(
        output.events[2].statement.as_deref(),
        Some(
            "CREATE TABLE source (\nid bigint(20) NOT NULL AUTO_INCREMENT,\nPRIMARY KEY (id)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )
    );
    assert_eq!(output.events[3].command, "CREATE TRIGGER");
    assert_eq!(
        output.events[8].statement.as_deref(),
        Some("INSERT INTO source VALUES ( NAME_CONST('id',NULL)), (NULL)")
    );
    assert_eq!(output.events[9].class, StatementClass::Function);
}

#[test]
fn mariadb_custom_timestamp_formats_are_rejected_not_misread() {
    let output = parse_bytes(
        LogFormat::MariadbAudit,
        &options(None, None),
        "audit.log",
        &data("mariadb_server_audit_mtr_timestamp_format.log"),
    );
    assert_eq!(output.events, vec![]);
    assert_eq!(output.rejected.len(), 5);
    assert!(output.rejected.iter().all(|rejected| rejected.reason == RejectReason::BadTimestamp));
}

#[test]
fn mariadb_documentation_and_rds_samples() {
    let output = parse_bytes(
        LogFormat::MariadbAudit,
        &options(None, None),
        "docs.log",
        &data("mariadb_server_audit_docs.log"),
    );
    assert_eq!(output.rejected, vec![]);
    use StatementClass::{Connect, Disconnect, Read, Role, Write};
    assert_eq!(
        summary(&output.events),
        [
            row("CONNECT", Connect, true, None, &[]),
            row("DISCONNECT", Disconnect, true, None, &[]),
            row("CONNECT", Connect, false, Some("1045"), &[]),
            row("DISCONNECT", Disconnect, true, None, &[]),
        ]
    );
    assert_eq!(output.events[0].client_addr.as_deref(), Some("localhost"), "the stray space is trimmed");
    assert_eq!(output.events[0].server.as_deref(), Some("localhost.localdomain"));

    let output = parse_bytes(
        LogFormat::MariadbAudit,
        &options(None, Some("UTC")),
        "rds.log",
        &data("mariadb_server_audit_rds.log"),
    );
    assert_eq!(output.rejected, vec![]);
    let events = &output.events;
    assert_eq!(
        summary(events),
        [
            row("CONNECT", Connect, true, None, &[]),
            row("DISCONNECT", Disconnect, true, None, &[]),
            row("CONNECT", Connect, false, Some("1158"), &[]),
            row("CONNECT", Connect, false, Some("1045"), &[]),
            row("INSERT", Write, true, None, &[]),
            row("SELECT", Read, true, None, &[]),
            row("SELECT", Read, true, None, &[]),
            row("INSERT", Write, true, None, &[]),
            row("ALTER USER", Role, true, None, &[]),
            row("INSERT", Write, true, None, &[]),
        ]
    );
    assert_eq!(events[2].role, None, "a port scanner sends no user");
    assert_eq!(events[2].client_addr.as_deref(), Some("167.94.138.120"));
    assert_eq!(format_rfc3339(&events[3].ts), "2022-05-27T12:21:14.000000Z");
    assert_eq!(
        events[5].statement.as_deref(),
        Some("SELECT \n    fruits\nFROM \n    Works\nGROUP BY \n    fruits\nLIMIT 0, 1000")
    );
    assert!(events[7].statement.as_deref().unwrap().contains("\t\t(001, 5000, '16-02-20'),\n"));
    // Cut at server_audit_query_log_limit; the literal `\n` inside the data is `\\n` in the log.
    let truncated = events[9].statement.as_deref().unwrap();
    assert!(
        truncated
            .starts_with("INSERT INTO `Employee` VALUES ('Veniam','1','640 Damon Junction\\nEast Mathew")
    );
    assert!(truncated.ends_with("(\'Dolores\',"), "{truncated}");
}

#[test]
fn rds_mysql_audit_plugin_with_extra_fields() {
    let sample = unmask_mariadb_test_log(&data("rds_mysql_audit_plugin_mtr_masked.log"), &[]);
    let output = parse_bytes(LogFormat::MariadbAudit, &options(None, None), "rds.log", &sample);
    assert_eq!(output.rejected, vec![]);
    use StatementClass::{Connect, Disconnect, Misc, MiscSet, Read, Role};
    assert_eq!(
        summary(&output.events),
        [
            row("SET", MiscSet, true, None, &[]),
            row("SET", MiscSet, false, Some("1231"), &[]),
            row("CONNECT", Connect, true, None, &[]),
            row("DISCONNECT", Disconnect, true, None, &[]),
            row("CONNECT", Connect, false, Some("1045"), &[]),
            row("SELECT", Read, true, None, &[]),
            row("SELECT", Read, false, Some("1146"), &["t_doesnt_exist"]),
            row("SYNTAX_ERROR_QUERY", Misc, false, Some("1064"), &[]),
            row("CONNECT", Connect, true, None, &[]),
            row("USE", Misc, true, None, &[]),
            row("CREATE USER", Role, true, None, &[]),
            row("GRANT", Role, false, Some("1064"), &[]),
            row("SET PASSWORD", Role, true, None, &[]),
            row("DISCONNECT", Disconnect, true, None, &[]),
        ]
    );
    assert_eq!(
        output.events[10].statement.as_deref(),
        Some("CREATE USER 'u1_empty'@'%' IDENTIFIED BY <secret>")
    );
}

#[test]
fn mysql_enterprise_audit_json() {
    let output = parse_bytes(
        LogFormat::MysqlAuditJson,
        &options(None, None),
        "audit.json",
        &data("mysql_enterprise_audit.json"),
    );
    assert_eq!(output.rejected, vec![]);
    use StatementClass::{Connect, Ddl, Disconnect, Misc, Read, Role, Write};
    assert_eq!(
        summary(&output.events),
        [
            row("CONNECT", Connect, true, None, &[]),
            row("SELECT", Read, true, None, &[]),
            row("GRANT", Role, false, Some("1064"), &[]),
            row("CREATE USER", Role, false, Some("1396"), &[]),
            row("GRANT", Role, true, None, &[]),
            row("CONNECT", Connect, true, None, &[]),
            row("ERROR", Misc, true, None, &[]),
            row("CREATE TABLE", Ddl, true, None, &["audit_test_table"]),
            // The INSERT's table access has no statement record in the sample: an event alone,
            // emitted when the next statement of the connection shows it will not come.
            row("INSERT", Write, true, None, &["audit_test.audit_test_table"]),
            row("SELECT", Read, true, None, &["audit_test.audit_test_table"]),
            row("DISCONNECT", Disconnect, true, None, &[]),
        ]
    );
    assert_eq!(output.skipped_total(), 2, "startup and shutdown");
    let events = &output.events;
    assert_eq!(
        events[3].statement.as_deref(),
        Some("CREATE USER 'audit_test_user'@'localhost' IDENTIFIED BY <secret>")
    );
    assert_eq!(
        (events[5].role.as_deref(), events[5].client_addr.as_deref()),
        (Some("audit_test_user2"), Some("192.168.2.5"))
    );
    assert_eq!(events[5].session_id.as_deref(), Some("16"));
    assert_eq!(format_rfc3339(&events[1].ts), "2020-10-19T19:25:51.000000Z");
}

#[test]
fn percona_audit_log_filter_and_legacy_json() {
    let output = parse_bytes(
        LogFormat::MysqlAuditJson,
        &options(None, None),
        "filter.json",
        &data("percona_audit_log_filter.json"),
    );
    assert_eq!(output.rejected, vec![]);
    assert_eq!(summary(&output.events), [row("CREATE TABLE", StatementClass::Ddl, true, None, &["t1"])]);
    assert_eq!(output.events[0].role.as_deref(), Some("root"));
    assert_eq!(output.events[0].source_line, Some(56), "the line the pretty-printed object starts on");
    assert_eq!(
        output.skipped.get(&SkipReason::ServerChatter),
        Some(&6),
        "audit, command and query records, general/log"
    );

    let output = parse_bytes(
        LogFormat::MysqlAuditJson,
        &options(None, None),
        "legacy.json",
        &data("percona_audit_log_plugin.json"),
    );
    assert_eq!(output.rejected, vec![]);
    let event = &output.events[0];
    assert_eq!((event.command.as_str(), event.class), ("SHOW", StatementClass::Read));
    assert_eq!((event.role.as_deref(), event.session_id.as_deref()), (Some("root"), Some("2")));
    assert_eq!(format_rfc3339(&event.ts), "2021-06-30T15:07:58.000000Z");
}

/// The package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for test
/// processes): a binary compiled in another checkout that shares the target directory must
/// not read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), std::path::PathBuf::from)
}
