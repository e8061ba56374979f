//! Detection scenarios on logs from real servers: every planted attack alerts exactly once per
//! dedup window, and the normal work around it (including the administrators' own DDL and
//! grants, and a few mistyped passwords below the burst threshold) raises nothing.
//!
//! PostgreSQL 15 + pgAudit runs examples/workload (scripts/capture-pg-sample.sh); MariaDB with
//! server_audit runs the workload of scripts/mariadb-sandbox.sh. Both are ingested by the real
//! binary.

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use rolewatch_e2e::{capture_pg_sample, run_rolewatch, run_script};
use serde_json::Value;

/// `(detector, role)` of every alert that is not a folded follow-up, sorted.
fn first_alerts(stdout: &[u8]) -> Vec<(String, String)> {
    let mut alerts: Vec<(String, String)> = String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|alert| alert["labels"].get("repeat_of").is_none())
        .map(|alert| {
            (alert["detector"].as_str().unwrap().to_owned(), alert["role"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    alerts.sort();
    alerts
}

fn expected(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> =
        pairs.iter().map(|(detector, role)| ((*detector).to_owned(), (*role).to_owned())).collect();
    pairs.sort();
    pairs
}

#[test]
fn postgresql_planted_attacks_alert_once_and_normal_work_is_quiet() {
    let work = tempfile::tempdir().unwrap();
    capture_pg_sample(&work.path().join("capture"));
    let config = rolewatch_e2e::repo_root().join("examples/rolewatch.toml");
    let output = run_rolewatch(
        work.path(),
        &["ingest", "--config", config.to_str().unwrap(), "capture/postgresql.json"],
        &[],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        first_alerts(&output.stdout),
        expected(&[
            ("large_export", "app_reader"),       // SELECT * FROM orders: 20000 rows at once
            ("large_export", "report_reader"),    // 3 x 4000 rows in one session
            ("ddl_by_non_admin", "app_writer"),   // CTAS + ALTER TABLE (folded into one)
            ("sensitive_access", "app_reader"),   // denied SELECT on hr.salaries
            ("auth_failure_burst", "app_reader"), // 6 wrong passwords within a minute
            ("auth_failure_burst", "app_reader"), // ... then a successful login
            ("admin_from_service_origin", "postgres"), // the superuser behind api-server
            ("export_command", "app_reader"),     // COPY orders TO STDOUT (no row count)
            ("privilege_change_by_non_admin", "app_writer"), // denied CREATE ROLE
        ])
    );
}

#[test]
fn mariadb_planted_attacks_alert_once_and_normal_work_is_quiet() {
    let work = tempfile::tempdir().unwrap();
    run_script("scripts/mariadb-sandbox.sh", &[&work.path().join("capture")]);
    std::fs::write(
        work.path().join("rolewatch.toml"),
        "[roles]\nadmin = [\"root\"]\nreader = [\"app_reader\"]\nwriter = [\"app_writer\"]\n\n[sensitive]\ntables = [\"shop.salaries\"]\n",
    )
    .unwrap();
    // The sandbox runs the server in Asia/Kolkata; server_audit writes zone-less local times.
    let output = run_rolewatch(
        work.path(),
        &["ingest", "--config", "rolewatch.toml", "--timezone", "Asia/Kolkata", "capture/server_audit.log"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("(mariadb-audit)") && stderr.contains(" 0 rejected"), "{stderr}");
    // root's CREATE DATABASE/TABLE/USER and GRANTs, the writer's INSERT, the reader's SELECT
    // and 3 mistyped passwords (below the burst threshold of 5) raise nothing.
    assert_eq!(
        first_alerts(&output.stdout),
        expected(&[
            ("sensitive_access", "app_reader"), // denied SELECT on shop.salaries
            ("ddl_by_non_admin", "app_writer"), // CREATE TABLE ... AS SELECT
            ("privilege_change_by_non_admin", "app_writer"), // denied CREATE USER
        ])
    );
}
