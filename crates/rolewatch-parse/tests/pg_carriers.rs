//! The three PostgreSQL carriers of the same server's log yield the same events.
//!
//! Two captures are checked: the one committed in `examples/logs` (made by
//! `scripts/capture-pg-sample.sh` with the sandbox's prefix, which has no `%e`), and a fresh one
//! made by this test from a real PostgreSQL 15 + pgAudit server with `%e` in the prefix.

// Helpers outside #[test] functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_same_events, capture_setting, carrier_neutral, parse_file, repo_root};
use rolewatch_event::{AuditEvent, LogFormat, StatementClass};
use rolewatch_parse::{ParseOutput, ParserOptions};

struct Carriers {
    jsonlog: ParseOutput,
    csvlog: ParseOutput,
    stderr: ParseOutput,
}

fn parse_capture(directory: &Path) -> Carriers {
    let prefix = capture_setting(&directory.join("capture.env"), "LOG_LINE_PREFIX").unwrap();
    let options = ParserOptions { log_line_prefix: Some(prefix), ..ParserOptions::default() };
    let carriers = Carriers {
        jsonlog: parse_file(LogFormat::PgauditJsonlog, &options, &directory.join("postgresql.json")),
        csvlog: parse_file(LogFormat::PgauditCsvlog, &options, &directory.join("postgresql.csv")),
        stderr: parse_file(LogFormat::PgauditStderr, &options, &directory.join("postgresql.log")),
    };
    for (name, output) in
        [("jsonlog", &carriers.jsonlog), ("csvlog", &carriers.csvlog), ("stderr", &carriers.stderr)]
    {
        assert_eq!(output.rejected, vec![], "{name} rejected lines");
        assert!(!output.events.is_empty(), "{name} has no events");
    }
    carriers
}

fn neutral(output: &ParseOutput) -> Vec<AuditEvent> {
    output.events.iter().map(carrier_neutral).collect()
}

fn find(events: &[AuditEvent], predicate: impl Fn(&AuditEvent) -> bool) -> Vec<&AuditEvent> {
    events.iter().filter(|event| predicate(event)).collect()
}

/// What `examples/workload` plants, as `examples/workload/EXPECTED.md` describes it.
fn assert_workload_events(events: &[AuditEvent], with_error_codes: bool) {
    let export = find(events, |event| {
        event.statement.as_deref() == Some("SELECT * FROM orders")
            && event.role.as_deref() == Some("app_reader")
    });
    assert_eq!(export.len(), 1);
    assert_eq!((export[0].rows, export[0].class), (Some(20_000), StatementClass::Read));
    assert_eq!(export[0].objects, ["public.orders"]);
    assert_eq!(export[0].application.as_deref(), Some("webapp"));
    assert_eq!(export[0].client_addr.as_deref(), Some("127.0.0.1"));

    let multi_line =
        find(events, |event| event.statement.as_deref().is_some_and(|text| text.contains("Acme, Inc.")));
    assert_eq!(multi_line.len(), 1);
    assert_eq!(
        multi_line[0].statement.as_deref(),
        Some(
            "INSERT INTO orders (customer, amount, note)\nVALUES ('Acme, Inc.', 1234.56,\n        'multi-line note, with a comma, a \"double quote\"\nand a second line');"
        )
    );

    let prepared = find(events, |event| event.parameters.as_deref() == Some(&["7".to_owned()][..]));
    assert_eq!(prepared.len(), 1);
    assert!(prepared[0].statement.as_deref().unwrap().starts_with("PREPARE q(int) AS"));

    let ctas = find(events, |event| event.command == "CREATE TABLE AS");
    assert_eq!(ctas.len(), 1);
    assert_eq!((ctas[0].class, ctas[0].role.as_deref()), (StatementClass::Ddl, Some("app_writer")));
    assert_eq!(ctas[0].objects, ["public.orders_copy"]);

    let copy = find(events, |event| event.command == "COPY");
    assert_eq!((copy.len(), copy[0].rows), (1, Some(0)));

    let denied = find(events, |event| !event.success && event.class != StatementClass::Connect);
    let denied: Vec<(&str, StatementClass, Option<&str>, &[rolewatch_event::Text])> = denied
        .iter()
        .map(|event| {
            (
                event.statement.as_deref().unwrap(),
                event.class,
                event.error_code.as_deref(),
                &event.objects[..],
            )
        })
        .collect();
    let code = |code| with_error_codes.then_some(code);
    let salaries = [rolewatch_event::Text::from("hr.salaries")];
    assert_eq!(
        denied,
        [
            ("SELECT * FROM hr.salaries", StatementClass::Read, code("42501"), &salaries[..]),
            ("CREATE ROLE sneaky LOGIN", StatementClass::Role, code("42501"), &[][..]),
        ]
    );

    let failed_logins = find(events, |event| event.class == StatementClass::Connect && !event.success);
    assert_eq!(failed_logins.len(), 6);
    for login in failed_logins {
        assert_eq!((login.role.as_deref(), login.error_code.as_deref()), (Some("app_reader"), Some("28P01")));
    }
    let superuser_tcp = find(events, |event| {
        event.class == StatementClass::Connect
            && event.role.as_deref() == Some("postgres")
            && event.client_addr.is_some()
    });
    assert_eq!(superuser_tcp.len(), 1);
    assert_eq!(superuser_tcp[0].application, None, "application_name is set after authorization");
}

#[test]
fn committed_capture_reads_the_same_through_every_carrier() {
    let carriers = parse_capture(&repo_root().join("examples/logs"));
    let jsonlog = neutral(&carriers.jsonlog);
    assert_same_events("jsonlog", &jsonlog, "csvlog", &neutral(&carriers.csvlog));
    // The committed stderr log's prefix has no %e: failed statements have no SQLSTATE there.
    let with_codes_cleared = |events: Vec<AuditEvent>| -> Vec<AuditEvent> {
        events
            .into_iter()
            .map(|mut event| {
                if event.class != StatementClass::Connect {
                    event.error_code = None;
                }
                event
            })
            .collect()
    };
    assert_same_events(
        "jsonlog",
        &with_codes_cleared(jsonlog.clone()),
        "stderr",
        &with_codes_cleared(neutral(&carriers.stderr)),
    );
    assert_workload_events(&jsonlog, true);
    assert_workload_events(&neutral(&carriers.stderr), false);
}

#[test]
fn live_postgres_capture_reads_the_same_through_every_carrier() {
    let directory = tempfile::tempdir().unwrap();
    let script = repo_root().join("scripts/capture-pg-sample.sh");
    let status = Command::new(&script)
        .arg(directory.path())
        .env("ROLEWATCH_PG_LOG_LINE_PREFIX", "%m [%p] %q%u@%d %r %a %c %e ")
        .status()
        .unwrap_or_else(|error| panic!("{}: {error}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    assert_eq!(
        capture_setting(&directory.path().join("capture.env"), "LOG_LINE_PREFIX").as_deref(),
        Some("%m [%p] %q%u@%d %r %a %c %e ")
    );
    let carriers = parse_capture(directory.path());
    let jsonlog = neutral(&carriers.jsonlog);
    assert_same_events("jsonlog", &jsonlog, "csvlog", &neutral(&carriers.csvlog));
    assert_same_events("jsonlog", &jsonlog, "stderr", &neutral(&carriers.stderr));
    assert_workload_events(&jsonlog, true);
    for (name, output) in
        [("jsonlog", &carriers.jsonlog), ("csvlog", &carriers.csvlog), ("stderr", &carriers.stderr)]
    {
        assert!(output.skipped_total() > 0, "{name}: server chatter is counted as skipped");
    }
}
