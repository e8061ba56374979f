//! The data-driven detector tests: every `tests/fixtures/*.json` file is events in, alerts out.
//!
//! A fixture holds:
//! * `description`;
//! * `config` (optional): `roles`, `origins`, `sensitive`, `detectors` tables, in the config
//!   file's shape, each replacing the base one (the README sample, below) when present;
//! * `events`: objects in `AuditEvent`'s JSON shape where only what matters is written: `at`
//!   (seconds after 2026-11-26T10:00:00Z) stands for `ts`, and missing fields take the defaults
//!   of [`DEFAULT_EVENT`] (a successful `SELECT` by nobody from 127.0.0.1, app `webapp`);
//! * `advance_to` (optional, seconds): a watermark given after the events;
//! * `expected`: the alerts, in emission order, each with `detector`, `role`, `count`,
//!   `severity` and a `summary` substring. Anything not listed must not alert: near misses
//!   are events without an expected alert.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "test code: a panic is a failed test; fixture times are small"
)]

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_detect::{
    DetectionConfig, DetectorsConfig, Engine, OriginsConfig, RolesConfig, SensitiveConfig,
};
use rolewatch_event::{Alert, AuditEvent};
use serde::Deserialize;
use serde_json::{Map, Value};

const BASE_CONFIG: &str = r#"
[roles]
admin  = ["postgres", "root", "dba_admin"]
reader = ["app_reader", "report_reader"]
writer = ["app_writer", "svc_api"]
[origins]
service_applications = ["api-server"]
[sensitive]
schemas = ["hr"]
"#;

const DEFAULT_EVENT: &str = r#"{
    "source": "postgres", "format": "pgaudit-jsonlog", "database": "shop",
    "client_addr": "127.0.0.1", "application": "webapp", "session_id": "s1",
    "command": "SELECT", "class": "READ", "objects": [], "success": true
}"#;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigSections {
    roles: Option<RolesConfig>,
    origins: Option<OriginsConfig>,
    sensitive: Option<SensitiveConfig>,
    detectors: Option<DetectorsConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    description: String,
    #[serde(default)]
    config: ConfigSections,
    events: Vec<Map<String, Value>>,
    advance_to: Option<i64>,
    expected: Vec<Expected>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Expected {
    detector: String,
    role: Option<String>,
    count: u64,
    severity: String,
    summary: String,
}

fn start() -> DateTime<Utc> {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn config_of(sections: ConfigSections) -> DetectionConfig {
    let base: ConfigSections = toml::from_str(BASE_CONFIG).unwrap();
    DetectionConfig {
        roles: sections.roles.or(base.roles).unwrap_or_default(),
        origins: sections.origins.or(base.origins).unwrap_or_default(),
        sensitive: sections.sensitive.or(base.sensitive).unwrap_or_default(),
        detectors: sections.detectors.unwrap_or_default(),
    }
}

fn event_of(fields: &Map<String, Value>, index: usize, file: &str) -> AuditEvent {
    let mut object: Map<String, Value> = serde_json::from_str(DEFAULT_EVENT).unwrap();
    for (key, value) in fields {
        if key == "at" {
            let seconds = value.as_f64().unwrap_or_else(|| panic!("{file}: event {index}: `at` is seconds"));
            let ts = start() + TimeDelta::milliseconds((seconds * 1000.0).round() as i64);
            object.insert("ts".into(), Value::String(rolewatch_event::format_rfc3339(&ts)));
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
    object.entry("ts").or_insert_with(|| Value::String(rolewatch_event::format_rfc3339(&start())));
    // A position, so that alert ids depend on it like in production.
    object.insert("source_file".into(), Value::String(file.to_owned()));
    object.insert("source_line".into(), Value::from(index + 1));
    serde_json::from_value(Value::Object(object))
        .unwrap_or_else(|error| panic!("{file}: event {index}: {error}"))
}

fn run_fixture(path: &Path) -> (Vec<Expected>, Vec<Alert>) {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let fixture: Fixture = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{file}: {error}"));
    assert!(!fixture.description.is_empty(), "{file}: describe the fixture");
    let mut engine =
        Engine::new(&config_of(fixture.config)).unwrap_or_else(|error| panic!("{file}: {error}"));
    let mut alerts = Vec::new();
    for (index, fields) in fixture.events.iter().enumerate() {
        engine.observe(&event_of(fields, index, &file), &mut alerts);
    }
    if let Some(seconds) = fixture.advance_to {
        engine.advance_to(start() + TimeDelta::seconds(seconds), &mut alerts);
    }
    engine.finish(&mut alerts);
    (fixture.expected, alerts)
}

fn check(path: &Path) -> Result<(), String> {
    let (expected, alerts) = run_fixture(path);
    let describe = |alerts: &[Alert]| {
        alerts
            .iter()
            .map(|alert| {
                format!(
                    "  {} {:?} count={} {}: {}",
                    alert.detector, alert.role, alert.count, alert.severity, alert.summary
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let matches = expected.len() == alerts.len()
        && expected.iter().zip(&alerts).all(|(expected, alert)| {
            expected.detector == alert.detector
                && expected.role == alert.role
                && expected.count == alert.count
                && expected.severity == alert.severity.as_str()
                && alert.summary.contains(&expected.summary)
        });
    if matches {
        return Ok(());
    }
    Err(format!(
        "{}:\nexpected:\n{}\ngot:\n{}",
        path.display(),
        expected
            .iter()
            .map(|expected| format!(
                "  {} {:?} count={} {}: ...{}...",
                expected.detector, expected.role, expected.count, expected.severity, expected.summary
            ))
            .collect::<Vec<_>>()
            .join("\n"),
        describe(&alerts)
    ))
}

#[test]
fn every_fixture_gives_exactly_its_expected_alerts() {
    let directory = manifest_dir().join("tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "one fixture per detector at least, found {}", paths.len());
    let failures: Vec<String> = paths.iter().filter_map(|path| check(path).err()).collect();
    assert!(failures.is_empty(), "{} fixture(s) failed:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn every_detector_has_a_fixture() {
    let directory = manifest_dir().join("tests/fixtures");
    for detector in rolewatch_detect::DETECTOR_IDS {
        assert!(directory.join(format!("{detector}.json")).exists(), "no fixture for {detector}");
    }
}

#[test]
fn replaying_a_fixture_gives_identical_alerts_and_ids() {
    let path = manifest_dir().join("tests/fixtures/sample_workload.json");
    let (_, first) = run_fixture(&path);
    let (_, second) = run_fixture(&path);
    assert_eq!(first, second);
    let mut ids: Vec<_> = first.iter().map(|alert| alert.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), first.len(), "ids are unique");
}

/// The package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for test
/// processes): a binary compiled in another checkout that shares the target directory must
/// not read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), std::path::PathBuf::from)
}
