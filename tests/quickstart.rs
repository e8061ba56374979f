//! The quick start, end to end, on fresh logs from a real PostgreSQL 15 with pgAudit: capture
//! them with the repo's script, run the real `rolewatch ingest` binary with the bundled config
//! plus a real webhook receiver, then read the lake back with the Arrow Parquet reader and
//! check that the planted risky actions (examples/workload/EXPECTED.md) became the expected
//! events and alerts, and that the legitimate admin work raised none.

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rolewatch_e2e::{
    Receiver, StoredEvent, capture_pg_sample, parquet_files, read_parquet, run_rolewatch, stored_events,
};
use serde_json::Value;

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config_with_webhook() -> String {
    let example =
        std::fs::read_to_string(rolewatch_e2e::repo_root().join("examples/rolewatch.toml")).unwrap();
    format!(
        "{example}
[alerts]
allow_private_destinations = true

[[alerts.webhook]]
name = \"soc\"
url_env = \"E2E_WEBHOOK_URL\"
secret_env = \"E2E_WEBHOOK_SECRET\"
"
    )
}

fn alerts_of(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

fn has_alert(alerts: &[Value], detector: &str, role: &str) -> bool {
    alerts.iter().any(|alert| alert["detector"] == detector && alert["role"] == role)
}

fn events_where(events: &[StoredEvent], predicate: impl Fn(&StoredEvent) -> bool) -> Vec<&StoredEvent> {
    events.iter().filter(|event| predicate(event)).collect()
}

fn lake_snapshot(lake: &Path) -> Vec<(String, Vec<u8>)> {
    parquet_files(lake)
        .into_iter()
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect()
}

#[test]
fn quick_start_stores_the_planted_actions_and_alerts_on_them() {
    let work = tempfile::tempdir().unwrap();
    capture_pg_sample(&work.path().join("capture"));
    std::fs::write(work.path().join("rolewatch.toml"), config_with_webhook()).unwrap();
    let receiver = Receiver::start();
    let webhook_url = receiver.url();
    let env = [("E2E_WEBHOOK_URL", webhook_url.as_str()), ("E2E_WEBHOOK_SECRET", WEBHOOK_SECRET)];
    let args = ["ingest", "--config", "rolewatch.toml", "capture/postgresql.json"];

    let output = run_rolewatch(work.path(), &args, &env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ingest failed:\n{stderr}");

    // Alerts: NDJSON on stdout, one object per alert with the documented keys.
    let alerts = alerts_of(&output.stdout);
    for alert in &alerts {
        for key in ["id", "detector", "severity", "role", "ts", "summary"] {
            assert!(!alert[key].is_null(), "alert without {key}: {alert}");
        }
    }
    assert!(has_alert(&alerts, "large_export", "app_reader"), "one-statement export: {alerts:#?}");
    assert!(has_alert(&alerts, "large_export", "report_reader"), "chunked export: {alerts:#?}");
    assert!(has_alert(&alerts, "ddl_by_non_admin", "app_writer"), "writer DDL: {alerts:#?}");
    let admin_alerts: Vec<&Value> = alerts
        .iter()
        .filter(|alert| {
            alert["role"] == "dba_admin"
                || alert["detector"] == "ddl_by_non_admin" && alert["role"] == "postgres"
        })
        .collect();
    assert!(admin_alerts.is_empty(), "legitimate admin DDL alerted: {admin_alerts:#?}");

    // Events: read the lake back with the Arrow reader.
    let lake = work.path().join("rolewatch-data");
    let files = parquet_files(&lake.join("events"));
    assert!(!files.is_empty(), "no event files under {}", lake.display());
    for file in &files {
        let relative = file.strip_prefix(&lake).unwrap().to_string_lossy().into_owned();
        assert!(relative.starts_with("events/date=") && relative.contains("/hour="), "{relative}");
    }
    let batches = read_parquet(&files);
    let ts_type = batches[0].schema().field_with_name("ts").unwrap().data_type().clone();
    assert_eq!(ts_type.to_string(), "Timestamp(µs, \"UTC\")");
    let events = stored_events(&batches);

    let one_statement_export = events_where(&events, |event| {
        event.role.as_deref() == Some("app_reader") && event.command == "SELECT" && event.rows == Some(20_000)
    });
    assert_eq!(one_statement_export.len(), 1, "{one_statement_export:#?}");
    assert_eq!(one_statement_export[0].objects, ["public.orders"]);
    assert_eq!(one_statement_export[0].class, "READ");

    let chunks = events_where(&events, |event| {
        event.role.as_deref() == Some("report_reader") && event.rows == Some(4_000)
    });
    assert_eq!(chunks.len(), 3, "{chunks:#?}");

    let writer_ddl =
        events_where(&events, |event| event.role.as_deref() == Some("app_writer") && event.class == "DDL");
    let writer_ddl_commands: BTreeSet<&str> = writer_ddl.iter().map(|event| event.command.as_str()).collect();
    assert_eq!(writer_ddl_commands, BTreeSet::from(["ALTER TABLE", "CREATE TABLE AS"]));

    let denied_read = events_where(&events, |event| {
        event.role.as_deref() == Some("app_reader")
            && !event.success
            && event.statement.as_deref() == Some("SELECT * FROM hr.salaries")
    });
    assert_eq!(denied_read.len(), 1);
    assert_eq!(denied_read[0].error_code.as_deref(), Some("42501"));

    let failed_logins = events_where(&events, |event| {
        event.role.as_deref() == Some("app_reader") && event.class == "CONNECT" && !event.success
    });
    assert_eq!(failed_logins.len(), 6);
    assert!(failed_logins.iter().all(|event| event.error_code.as_deref() == Some("28P01")));

    let denied_role = events_where(&events, |event| {
        event.role.as_deref() == Some("app_writer") && event.command == "CREATE ROLE" && !event.success
    });
    assert_eq!(denied_role.len(), 1);

    let admin_ddl =
        events_where(&events, |event| event.role.as_deref() == Some("dba_admin") && event.class == "DDL");
    assert_eq!(admin_ddl.len(), 2, "the admin's legitimate DDL is stored: {admin_ddl:#?}");

    for event in &events {
        assert!(event.source_file.as_deref().is_some_and(|file| file.ends_with("capture/postgresql.json")));
        assert!(event.source_offset.is_some());
    }

    // Delivery: the webhook received every alert, signed per Standard Webhooks.
    let received = receiver.received();
    assert!(!received.is_empty(), "nothing reached the webhook:\n{stderr}");
    let mut delivered_ids = BTreeSet::new();
    for request in &received {
        rolewatch_alert::verify(
            &request.headers,
            &request.body,
            &[WEBHOOK_SECRET],
            Duration::from_secs(300),
            SystemTime::now(),
        )
        .expect("a valid Standard Webhooks signature");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        for alert in body["alerts"].as_array().unwrap() {
            delivered_ids.insert(alert["id"].as_str().unwrap().to_owned());
        }
    }
    let printed_ids: BTreeSet<String> =
        alerts.iter().map(|alert| alert["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(delivered_ids, printed_ids);
    assert!(!String::from_utf8_lossy(&output.stderr).contains(WEBHOOK_SECRET));
    assert!(!String::from_utf8_lossy(&output.stderr).contains(&webhook_url));

    // A backtest over the lake gives the same alerts, ids included: detection is deterministic
    // and the lake gives back exactly the events that were stored.
    let backtest = run_rolewatch(
        work.path(),
        &["detect", "--config", "rolewatch.toml", "--lake", "rolewatch-data"],
        &[],
    );
    assert!(backtest.status.success(), "{}", String::from_utf8_lossy(&backtest.stderr));
    assert_eq!(alerts_of(&backtest.stdout), alerts);

    // A second ingest of the same file stores nothing new and rewrites nothing.
    let before = lake_snapshot(&lake);
    let again = run_rolewatch(work.path(), &args, &env);
    let again_stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "second ingest failed:\n{again_stderr}");
    assert!(again_stderr.contains(" 0 files created"), "{again_stderr}");
    assert!(again_stderr.contains(" 0 chunks committed, 1 already durable (skipped)"), "{again_stderr}");
    assert!(again_stderr.contains("rolewatch: 0 alerts"), "alerts raised again on a replay:\n{again_stderr}");
    assert_eq!(lake_snapshot(&lake), before);
}

#[test]
fn unknown_config_keys_and_strict_mode_fail_with_the_file_named() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("bad.toml"),
        "[lake]\npath = \"x\"\n[detectors.large_export]\nrowz = 1\n",
    )
    .unwrap();
    let log = rolewatch_e2e::repo_root().join("examples/logs/postgresql.json");
    let log = log.to_str().unwrap();
    let output = run_rolewatch(work.path(), &["ingest", "--config", "bad.toml", log], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("bad.toml") && stderr.contains("rowz"), "{stderr}");

    let mut broken = std::fs::read(log).unwrap();
    broken.extend_from_slice(b"{\"timestamp\": not json\n");
    std::fs::write(work.path().join("broken.json"), &broken).unwrap();
    let strict = run_rolewatch(work.path(), &["parse", "--strict", "broken.json"], &[]);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(!strict.status.success());
    assert!(stderr.contains("broken.json:140") && stderr.contains("invalid_json"), "{stderr}");

    // Without --strict the same line is counted and kept as a dead letter; the rest is stored.
    let lenient = run_rolewatch(work.path(), &["ingest", "--lake", "lake", "broken.json"], &[]);
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert!(lenient.status.success(), "{stderr}");
    assert!(stderr.contains("1 rejected") && stderr.contains("1 dead letters"), "{stderr}");
    let dead_letters = read_parquet(&parquet_files(&work.path().join("lake/dead_letters")));
    assert_eq!(dead_letters.iter().map(|batch| batch.num_rows()).sum::<usize>(), 1);
}
