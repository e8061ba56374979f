//! `rolewatch run` following the live log of a real PostgreSQL with pgAudit: the daemon reads
//! the jsonlog file while the server writes it, stores and checks every record, delivers the
//! alerts to a real webhook receiver, serves metrics, and on SIGTERM stores what it holds and
//! exits 0. What it stored must be exactly what a one-shot parse of the final file yields.

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rolewatch_e2e::{
    Daemon, Receiver, committed_files, http_get, metric_value, parquet_files, read_parquet, run_rolewatch,
    run_script, stored_events, wait_until,
};

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GENEROUS: Duration = Duration::from_secs(60);

struct Sandbox<'a>(&'a Path);

impl Drop for Sandbox<'_> {
    fn drop(&mut self) {
        let _ = Command::new(rolewatch_e2e::repo_root().join("scripts/pg-sandbox.sh"))
            .arg("stop")
            .arg(self.0)
            .status();
    }
}

#[test]
fn run_follows_a_live_pgaudit_log_and_stops_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let pg_dir = work.path().join("pg");
    run_script("scripts/pg-sandbox.sh", &[Path::new("start"), &pg_dir]);
    let sandbox = Sandbox(&pg_dir);
    let log = pg_dir.join("log/postgresql.json");

    let receiver = Receiver::start();
    let example =
        std::fs::read_to_string(rolewatch_e2e::repo_root().join("examples/rolewatch.toml")).unwrap();
    let config = format!(
        "{example}
[source.files]
paths = [\"{}\"]
format = \"pgaudit-jsonlog\"
poll_interval = \"200ms\"
flush_interval = \"1s\"

[metrics]
listen = \"127.0.0.1:0\"

{}",
        log.display(),
        rolewatch_e2e::WEBHOOK_ALERTS
    );
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();

    let webhook_url = receiver.url();
    let env = [("E2E_WEBHOOK_URL", webhook_url.as_str()), ("E2E_WEBHOOK_SECRET", WEBHOOK_SECRET)];
    let daemon = Daemon::start(work.path(), &env, GENEROUS);
    let address = daemon.address.clone();
    assert_eq!(http_get(&address, "/healthz").unwrap().0, 200);
    assert!(wait_until(GENEROUS, || http_get(&address, "/ready").is_ok_and(|(status, _)| status == 200)));

    // The workload runs while the daemon follows the log; stopping the server flushes the log.
    run_script("scripts/pg-workload.sh", &[&pg_dir]);
    run_script("scripts/pg-sandbox.sh", &[Path::new("stop"), &pg_dir]);
    drop(sandbox);
    let log_size = std::fs::metadata(&log).unwrap().len() as f64;
    let everything_read = wait_until(GENEROUS, || {
        metric_value(&daemon.scrape(), "rolewatch_source_bytes_total{source=\"files\"}") == Some(log_size)
    });
    let metrics = daemon.scrape();
    assert!(everything_read, "the daemon did not read the whole log ({log_size} bytes):\n{metrics}");
    for series in [
        "rolewatch_lake_events_stored_total",
        "rolewatch_lake_flush_duration_seconds_count",
        "rolewatch_alert_messages_delivered_total{destination=\"soc\"}",
        "rolewatch_alert_outbox_entries{destination=\"soc\"}",
    ] {
        assert!(metric_value(&metrics, series).is_some(), "{series} not served:\n{metrics}");
    }
    assert!(
        !metrics.contains("app_reader") && !metrics.contains("127.0.0.1:"),
        "unbounded labels:\n{metrics}"
    );

    // SIGTERM: the daemon stores what it holds, delivers, and exits 0.
    let stderr_text = daemon.stop(GENEROUS);

    // Exactly the events of a one-shot parse of the final file, each stored once.
    let parsed =
        run_rolewatch(work.path(), &["parse", "--format", "pgaudit-jsonlog", log.to_str().unwrap()], &[]);
    assert!(parsed.status.success());
    let expected: BTreeSet<(i64, String)> = String::from_utf8_lossy(&parsed.stdout)
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            (event["source_offset"].as_i64().unwrap(), event["command"].as_str().unwrap().to_owned())
        })
        .collect();
    let stored = stored_events(&read_parquet(&parquet_files(&work.path().join("rolewatch-data/events"))));
    let stored_keys: Vec<(i64, String)> =
        stored.iter().map(|event| (event.source_offset.unwrap(), event.command.clone())).collect();
    assert_eq!(stored_keys.len(), expected.len(), "every event stored exactly once");
    assert_eq!(stored_keys.into_iter().collect::<BTreeSet<_>>(), expected);

    // The planted actions reached the webhook.
    let delivered: Vec<serde_json::Value> = receiver
        .received()
        .iter()
        .flat_map(|request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            body["alerts"].as_array().cloned().unwrap_or_default()
        })
        .collect();
    for (detector, role) in [
        ("large_export", "app_reader"),
        ("large_export", "report_reader"),
        ("ddl_by_non_admin", "app_writer"),
    ] {
        assert!(
            delivered.iter().any(|alert| alert["detector"] == detector && alert["role"] == role),
            "no {detector} alert for {role} delivered: {delivered:#?}\n{stderr_text}"
        );
    }
    assert!(!stderr_text.contains(WEBHOOK_SECRET) && !stderr_text.contains(&receiver.url()));
}

/// The example config with `[source.files]` following the jsonlog `log` (polled every 100 ms,
/// flushed after `flush_interval`) and metrics on a free port.
fn follow_config(log: &Path, flush_interval: &str) -> String {
    let example =
        std::fs::read_to_string(rolewatch_e2e::repo_root().join("examples/rolewatch.toml")).unwrap();
    format!(
        "{example}
[source.files]
paths = [\"{}\"]
format = \"pgaudit-jsonlog\"
poll_interval = \"100ms\"
flush_interval = \"{flush_interval}\"

[metrics]
listen = \"127.0.0.1:0\"
",
        log.display()
    )
}

/// The bundled jsonlog sample, and `dir/postgresql.json` holding its first 70 lines (the rest is
/// for the file to grow by).
fn sample_log_of_70_lines(dir: &Path) -> (Vec<u8>, PathBuf) {
    let sample = std::fs::read(rolewatch_e2e::repo_root().join("examples/logs/postgresql.json")).unwrap();
    let cut = sample.iter().enumerate().filter(|(_, byte)| **byte == b'\n').nth(69).unwrap().0 + 1;
    let log = dir.join("postgresql.json");
    std::fs::write(&log, sample.get(..cut).unwrap()).unwrap();
    (sample, log)
}

/// The source offsets of the events a one-shot `rolewatch parse` makes of the jsonlog `log`.
fn parsed_offsets(dir: &Path, log: &Path) -> BTreeSet<i64> {
    let parsed = run_rolewatch(dir, &["parse", "--format", "pgaudit-jsonlog", log.to_str().unwrap()], &[]);
    String::from_utf8_lossy(&parsed.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap()
                .get("source_offset")
                .and_then(serde_json::Value::as_i64)
                .unwrap()
        })
        .collect()
}

/// A daemon stopped and started again re-reads the followed file from its start, with chunks
/// cut where its own flushes fall: the lake's manifests tell it what is already stored, so each
/// record is stored once, and `rolewatch verify` finds the lake intact.
#[test]
fn a_restarted_daemon_stores_each_record_once() {
    let work = tempfile::tempdir().unwrap();
    let (sample, log) = sample_log_of_70_lines(work.path());
    std::fs::write(work.path().join("rolewatch.toml"), follow_config(&log, "200ms")).unwrap();
    let manifests =
        || std::fs::read_dir(work.path().join("rolewatch-data/_manifests")).map_or(0, Iterator::count);

    let stored =
        |daemon: &Daemon| metric_value(&daemon.scrape(), "rolewatch_lake_events_stored_total").unwrap();
    let first = Daemon::start(work.path(), &[], GENEROUS);
    assert!(wait_until(GENEROUS, || stored(&first) > 0.0), "nothing stored:\n{}", first.scrape());
    assert!(manifests() >= 1);
    assert!(metric_value(&first.scrape(), "rolewatch_lake_last_manifest_timestamp_seconds").unwrap() > 0.0);
    let stored_first = stored(&first);
    first.stop(GENEROUS);

    // The file grows while no daemon runs; the next one reads it from byte 0.
    std::fs::write(&log, &sample).unwrap();
    let second = Daemon::start(work.path(), &[], GENEROUS);
    let size = sample.len() as f64;
    assert!(wait_until(GENEROUS, || {
        metric_value(&second.scrape(), "rolewatch_source_bytes_total{source=\"files\"}") == Some(size)
    }));
    assert!(wait_until(GENEROUS, || stored(&second) > 0.0), "nothing stored:\n{}", second.scrape());
    let stored_second = stored(&second);
    second.stop(GENEROUS);

    let expected = parsed_offsets(work.path(), &log);
    let stored = stored_events(&read_parquet(&parquet_files(&work.path().join("rolewatch-data/events"))));
    let offsets: Vec<i64> = stored.iter().map(|event| event.source_offset.unwrap()).collect();
    assert_eq!(offsets.len(), expected.len(), "every event stored exactly once");
    assert_eq!(offsets.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(
        stored_first + stored_second,
        expected.len() as f64,
        "the second daemon stored only the new part"
    );

    let verified = run_rolewatch(work.path(), &["verify", "--lake", "rolewatch-data"], &[]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
}

/// A chunk of a followed file cut by age (the file stopped growing for `flush_interval`) whose
/// files were written when the daemon crashed, before its manifest. The file has grown when the
/// daemon restarts, and the restart reads it from byte 0 with a longer flush interval, so a cut
/// by age or size would end elsewhere and leave the crash's files unlisted beside a second copy
/// of their records. The chunk's declaration in the lake makes the restart cut it at the same
/// byte: the crash's files are written again byte for byte and committed.
#[test]
fn a_file_chunk_cut_by_age_before_a_crash_is_cut_the_same_way_after_it() {
    let work = tempfile::tempdir().unwrap();
    let (sample, log) = sample_log_of_70_lines(work.path());
    let lake = work.path().join("rolewatch-data");
    std::fs::write(work.path().join("rolewatch.toml"), follow_config(&log, "200ms")).unwrap();
    let crashing = Daemon::start(work.path(), &[("ROLEWATCH_CRASH_AT", "after-files:1")], GENEROUS);
    let (status, stderr) = crashing.wait_exit(GENEROUS);
    let status = status.unwrap_or_else(|| panic!("the daemon did not crash:\n{stderr}"));
    assert!(!status.success() && stderr.contains("ROLEWATCH_CRASH_AT"), "not the planted crash:\n{stderr}");
    let left = parquet_files(&lake.join("events"));
    assert!(!left.is_empty(), "the crash left no event file");
    assert!(committed_files(&lake, "events/").is_empty(), "nothing was committed before the crash");

    std::fs::write(&log, &sample).unwrap();
    std::fs::write(work.path().join("rolewatch.toml"), follow_config(&log, "5s")).unwrap();
    let expected = parsed_offsets(work.path(), &log);
    let daemon = Daemon::start(work.path(), &[("ROLEWATCH_LOG", "info")], GENEROUS);
    let stored = || metric_value(&daemon.scrape(), "rolewatch_lake_events_stored_total").unwrap_or_default();
    let drained = wait_until(GENEROUS, || stored() >= expected.len() as f64);
    let stderr = daemon.stop(GENEROUS);
    assert!(drained, "the restarted daemon did not store everything:\n{stderr}");

    let listed: BTreeSet<PathBuf> = committed_files(&lake, "events/").into_iter().collect();
    for file in &left {
        assert!(listed.contains(file), "{} is still unlisted after the restart:\n{stderr}", file.display());
    }
    let in_folders = stored_events(&read_parquet(&parquet_files(&lake.join("events"))));
    let offsets: Vec<i64> = in_folders.iter().map(|event| event.source_offset.unwrap()).collect();
    assert_eq!(offsets.len(), expected.len(), "the folders hold some records twice:\n{stderr}");
    assert_eq!(offsets.into_iter().collect::<BTreeSet<_>>(), expected);
    let verified = run_rolewatch(work.path(), &["verify", "--lake", "rolewatch-data"], &[]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
}

/// One successful pgAudit jsonlog `SELECT` by `app_reader` from `address` at `time` (UTC).
fn reader_select(time: &str, address: &str, line: u32) -> String {
    format!(
        r#"{{"timestamp":"{time} UTC","user":"app_reader","dbname":"shop","pid":4242,"remote_host":"{address}","remote_port":50000,"session_id":"6b086f61.{line}","line_num":{line},"error_severity":"LOG","message":"AUDIT: SESSION,{line},1,READ,SELECT,,,SELECT 1,<none>","application_name":"report","backend_type":"client backend","query_id":0}}"#
    ) + "\n"
}

/// What the detectors learn (here, `new_origin`'s origins per role and the start of its
/// learning period) is saved while the daemon runs, not only when it stops cleanly: after a
/// SIGKILL the restarted daemon still knows the origins seen before the crash, so an origin
/// learned then raises nothing, a new one raises `new_origin`, and learning does not start over.
#[test]
fn what_the_detectors_learned_survives_a_crash() {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("postgresql.json");
    let config = format!(
        "{}\n[state]\ncheckpoint_interval = \"100ms\"\n\n[detectors.new_origin]\nlearning_period = \"1h\"\n",
        follow_config(&log, "200ms")
    );
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    // Learning starts at 10:00; 10.0.0.2 comes after the learning period: a new origin.
    let before = reader_select("2026-11-26 10:00:00.000", "10.0.0.1", 1)
        + &reader_select("2026-11-26 12:00:00.000", "10.0.0.2", 2);
    std::fs::write(&log, &before).unwrap();
    let new_origins = |daemon: &Daemon| alerts_raised(daemon, "new_origin", "low");
    let saved = |daemon: &Daemon| {
        metric_value(&daemon.scrape(), "rolewatch_detect_state_saved_timestamp_seconds").unwrap_or_default()
    };

    let first = Daemon::start(work.path(), &[], GENEROUS);
    assert!(wait_until(GENEROUS, || new_origins(&first) >= 1.0), "no new_origin alert:\n{}", first.scrape());
    assert!(wait_until(GENEROUS, || saved(&first) > 0.0), "the state was never saved:\n{}", first.scrape());
    let stderr = first.kill();
    let state = std::fs::read_to_string(work.path().join("rolewatch-state/detector-state.json"))
        .unwrap_or_else(|error| panic!("no detector state after the crash ({error}):\n{stderr}"));
    assert!(state.contains("10.0.0.2") && state.contains("2026-11-26T10:00:00Z"), "{state}");

    // After the crash: an origin learned before it, and one never seen.
    let after = reader_select("2026-11-26 13:00:00.000", "10.0.0.2", 3)
        + &reader_select("2026-11-26 13:00:00.000", "10.0.0.3", 4);
    std::fs::write(&log, before + &after).unwrap();
    let second = Daemon::start(work.path(), &[], GENEROUS);
    let stored = |daemon: &Daemon| {
        metric_value(&daemon.scrape(), "rolewatch_lake_events_stored_total").unwrap_or_default()
    };
    assert!(wait_until(GENEROUS, || stored(&second) >= 2.0), "nothing stored:\n{}", second.scrape());
    assert!(
        wait_until(GENEROUS, || new_origins(&second) >= 1.0),
        "learning started over:\n{}",
        second.scrape()
    );
    assert_eq!(new_origins(&second), 1.0, "10.0.0.2 was learned before the crash; only 10.0.0.3 is new");
    assert_eq!(stored(&second), 2.0, "the records stored before the crash are not stored again");
    second.stop(GENEROUS);
}

/// A failed login of `app_reader` from 10.0.0.9 at `time`, as PostgreSQL's jsonlog writes it.
fn failed_login(time: &str, line: u32) -> String {
    format!(
        r#"{{"timestamp":"{time} UTC","user":"app_reader","dbname":"shop","pid":{line},"remote_host":"10.0.0.9","remote_port":51000,"session_id":"6b086f62.{line}","line_num":2,"ps":"authentication","error_severity":"FATAL","state_code":"28P01","message":"password authentication failed for user \"app_reader\"","backend_type":"client backend","query_id":0}}"#
    ) + "\n"
}

/// What the detectors were counting is saved while the daemon runs too: three failed logins
/// before a SIGKILL and three after it, all within a minute, are one burst of more than five
/// (`auth_failure_burst`), as they would be without the crash.
#[test]
fn a_burst_of_failed_logins_across_a_crash_is_counted_whole() {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("postgresql.json");
    let config = format!("{}\n[state]\ncheckpoint_interval = \"100ms\"\n", follow_config(&log, "200ms"));
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    let before: String =
        (1..=3).map(|line| failed_login(&format!("2026-11-26 10:00:0{line}.000"), line)).collect();
    std::fs::write(&log, &before).unwrap();
    let bursts = |daemon: &Daemon| alerts_raised(daemon, "auth_failure_burst", "medium");
    let state_file = work.path().join("rolewatch-state/detector-state.json");
    let counted = |failures: usize| {
        let state = std::fs::read_to_string(&state_file).unwrap_or_default();
        let state: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
        state["windows"]["failed_logins_by_role"]["app_reader"]["recent"]
            .as_array()
            .is_some_and(|recent| recent.len() == failures)
    };

    let first = Daemon::start(work.path(), &[], GENEROUS);
    assert!(wait_until(GENEROUS, || counted(3)), "the 3 failures were never saved:\n{}", first.scrape());
    assert_eq!(bursts(&first), 0.0, "no burst yet");
    first.kill();

    let after: String =
        (4..=6).map(|line| failed_login(&format!("2026-11-26 10:00:0{line}.000"), line)).collect();
    std::fs::write(&log, before + &after).unwrap();
    let second = Daemon::start(work.path(), &[], GENEROUS);
    assert!(
        wait_until(GENEROUS, || bursts(&second) >= 1.0),
        "the failures counted before the crash were forgotten:\n{}",
        second.scrape()
    );
    assert_eq!(bursts(&second), 1.0);
    second.stop(GENEROUS);
}

/// How many alerts of `detector` with `severity` the daemon's metrics count.
fn alerts_raised(daemon: &Daemon, detector: &str, severity: &str) -> f64 {
    let series = format!("rolewatch_detect_alerts_total{{detector=\"{detector}\",severity=\"{severity}\"}}");
    metric_value(&daemon.scrape(), &series).unwrap_or_default()
}
