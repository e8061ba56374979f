//! A real MariaDB server with the server_audit plugin, started by `scripts/mariadb-sandbox.sh`:
//! its audit log reads as the workload in that script did.

// Helpers outside #[test] functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::process::Command;

use chrono::{TimeDelta, Utc};
use common::{capture_setting, parse_file, repo_root};
use rolewatch_event::{AuditEvent, LogFormat, StatementClass};
use rolewatch_parse::ParserOptions;

fn only<'a>(events: &'a [AuditEvent], what: &str, predicate: impl Fn(&AuditEvent) -> bool) -> &'a AuditEvent {
    let found: Vec<&AuditEvent> = events.iter().filter(|event| predicate(event)).collect();
    assert_eq!(found.len(), 1, "{what}: {found:#?}");
    found[0]
}

#[test]
fn live_mariadb_audit_log_reads_as_the_workload_ran() {
    let started = Utc::now();
    let directory = tempfile::tempdir().unwrap();
    let script = repo_root().join("scripts/mariadb-sandbox.sh");
    let status = Command::new(&script).arg(directory.path()).status().unwrap();
    assert!(status.success(), "{} failed: {status}", script.display());
    let zone = capture_setting(&directory.path().join("capture.env"), "SERVER_TZ").unwrap();
    let options = ParserOptions { timezone: Some(zone), ..ParserOptions::default() };
    let output = parse_file(LogFormat::MariadbAudit, &options, &directory.path().join("server_audit.log"));
    assert_eq!(output.rejected, vec![]);
    let events = &output.events;

    // Local times in the server's zone come out in UTC, when the test ran.
    for event in events {
        assert!(event.ts >= started - TimeDelta::seconds(2) && event.ts <= Utc::now(), "{}", event.ts);
    }

    let insert = only(events, "multi-line insert", |event| {
        event.command == "INSERT" && event.role.as_deref() == Some("app_writer")
    });
    assert_eq!(
        insert.statement.as_deref(),
        Some(
            "INSERT INTO orders (customer, amount, note)\nVALUES ('Acme, Inc.', 1234.56,\n\t'multi-line note, with a comma, a \\'quote\\', a \"double quote\", a back\\\\slash\nand a second line')"
        )
    );
    assert_eq!(
        (insert.class, insert.objects.as_slice()),
        (StatementClass::Write, &[rolewatch_event::Text::from("shop.orders")][..])
    );
    assert_eq!(
        (insert.role.as_deref(), insert.client_addr.as_deref()),
        (Some("app_writer"), Some("127.0.0.1"))
    );
    assert_eq!(insert.database.as_deref(), Some("shop"));

    let read =
        only(events, "read", |event| event.statement.as_deref() == Some("SELECT * FROM orders WHERE id = 1"));
    assert_eq!(
        (read.class, read.success, read.objects.as_slice()),
        (StatementClass::Read, true, &[rolewatch_event::Text::from("shop.orders")][..])
    );

    let denied =
        only(events, "denied read", |event| event.statement.as_deref() == Some("SELECT * FROM salaries"));
    assert_eq!(
        (denied.class, denied.success, denied.error_code.as_deref()),
        (StatementClass::Read, false, Some("1142"))
    );
    assert_eq!(denied.role.as_deref(), Some("app_reader"));
    // Denied statements have no table records: the table comes from parsing the statement.
    assert_eq!(denied.objects, ["shop.salaries"]);

    let failed_logins: Vec<&AuditEvent> =
        events.iter().filter(|event| event.class == StatementClass::Connect && !event.success).collect();
    assert_eq!(failed_logins.len(), 3);
    for login in failed_logins {
        assert_eq!((login.role.as_deref(), login.error_code.as_deref()), (Some("app_reader"), Some("1045")));
    }

    let ctas = only(events, "CTAS", |event| event.command == "CREATE TABLE AS");
    assert_eq!((ctas.class, ctas.role.as_deref()), (StatementClass::Ddl, Some("app_writer")));
    assert_eq!(ctas.objects, ["shop.orders", "shop.orders_copy"]);

    let escalation = only(events, "CREATE USER", |event| event.command == "CREATE USER" && !event.success);
    assert_eq!((escalation.class, escalation.error_code.as_deref()), (StatementClass::Role, Some("1227")));
    assert_eq!(escalation.statement.as_deref(), Some("CREATE USER sneaky@'%' IDENTIFIED BY *****"));

    // Every session that connected also ended.
    let connects = events.iter().filter(|event| event.class == StatementClass::Connect).count();
    let disconnects = events.iter().filter(|event| event.class == StatementClass::Disconnect).count();
    assert_eq!(connects, disconnects);
    // No table record was left without its query: only connection events have no statement.
    for event in events {
        let connection = matches!(event.class, StatementClass::Connect | StatementClass::Disconnect);
        assert_eq!(event.statement.is_none(), connection, "{event:?}");
    }
}
