//! Engine-level properties: the README config parses, the engine never panics, and runs are
//! deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use rolewatch_detect::{
    ConfigError, DetectionConfig, DetectorsConfig, Engine, OriginsConfig, RolesConfig, SensitiveConfig,
};
use rolewatch_event::{Alert, AuditEvent, LogFormat, Source, StatementClass};
use serde::Deserialize;

/// The binary's config file, reduced to what it hands to this crate (plus a field of its own).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BinaryConfig {
    #[serde(default)]
    roles: RolesConfig,
    #[serde(default)]
    origins: OriginsConfig,
    #[serde(default)]
    sensitive: SensitiveConfig,
    #[serde(default)]
    detectors: DetectorsConfig,
    #[serde(default)]
    #[allow(dead_code, reason = "stands for the binary's own sections")]
    sources: Option<toml::Value>,
}

impl BinaryConfig {
    fn detection(self) -> DetectionConfig {
        DetectionConfig {
            roles: self.roles,
            origins: self.origins,
            sensitive: self.sensitive,
            detectors: self.detectors,
        }
    }
}

const README_TOML: &str = r#"
[roles]
admin  = ["postgres", "root", "dba_admin"]
reader = ["app_reader", "report_reader"]
writer = ["app_writer", "svc_api"]
[origins]
service_applications = ["api-server"]
[sensitive]
schemas = ["hr"]
[detectors.large_export]
rows = 10000
[detectors.auth_failure_burst]
failures = 5
window = "1m"
"#;

#[test]
fn the_readme_config_deserializes_and_builds_an_engine() {
    let config: BinaryConfig = toml::from_str(README_TOML).unwrap();
    assert_eq!(config.detectors.large_export.rows, 10_000);
    assert_eq!(config.detectors.auth_failure_burst.window, "1m");
    assert!(config.sensitive.admins_allowed, "defaults fill what the file leaves out");
    let engine = Engine::new(&config.detection()).unwrap();
    assert_eq!(
        engine.detectors(),
        [
            "large_export",
            "export_command",
            "ddl_by_non_admin",
            "privilege_change_by_non_admin",
            "sensitive_access",
            "dangerous_command",
            "auth_failure_burst",
            "admin_from_service_origin",
            "new_origin",
        ]
    );
}

#[test]
fn an_empty_file_is_a_valid_config() {
    let config: BinaryConfig = toml::from_str("").unwrap();
    Engine::new(&config.detection()).unwrap();
}

#[test]
fn unknown_keys_are_refused() {
    let error = toml::from_str::<BinaryConfig>("[detectors.large_export]\nrow = 5\n").unwrap_err();
    assert!(error.to_string().contains("unknown field `row`"), "{error}");
    let error = toml::from_str::<BinaryConfig>("[roles]\nadmins = []\n").unwrap_err();
    assert!(error.to_string().contains("unknown field `admins`"), "{error}");
}

#[test]
fn validation_errors_name_the_key() {
    let cases = [
        (
            "[detectors.auth_failure_burst]\nwindow = \"soon\"\n",
            "detectors.auth_failure_burst.window: invalid duration",
        ),
        ("[detectors.large_export]\nwindow = \"0s\"\n", "detectors.large_export.window: invalid duration"),
        ("[roles]\nadmin = [\"a[\"]\n", "roles.admin: invalid pattern"),
        ("[origins]\nservice_networks = [\"10.0.0.0/99\"]\n", "origins.service_networks: invalid network"),
        (
            "[sensitive]\nschemas = [\"hr\"]\n[sensitive.allow]\n\"@nobody\" = [\"hr\"]\n",
            "sensitive.allow.@nobody: unknown role group",
        ),
        ("[detectors]\nlateness = \"a while\"\n", "detectors.lateness: invalid duration"),
        (
            "[detectors.source_silent]\nintervals = { pg-a = \"x\" }\n",
            "detectors.source_silent.intervals.pg-a",
        ),
    ];
    for (text, expected) in cases {
        let config: BinaryConfig = toml::from_str(text).unwrap();
        let error: ConfigError = Engine::new(&config.detection()).unwrap_err();
        assert!(error.to_string().starts_with(expected), "{text}: {error}");
    }
}

fn start() -> DateTime<Utc> {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

const ROLES: [&str; 7] =
    ["postgres", "dba_admin", "app_reader", "report_reader", "app_writer", "svc_api", "stranger"];
const COMMANDS: [(&str, StatementClass); 12] = [
    ("SELECT", StatementClass::Read),
    ("INSERT", StatementClass::Write),
    ("DELETE", StatementClass::Write),
    ("COPY", StatementClass::Read),
    ("ALTER TABLE", StatementClass::Ddl),
    ("CREATE ROLE", StatementClass::Role),
    ("GRANT", StatementClass::Role),
    ("SET", StatementClass::MiscSet),
    ("ALTER SYSTEM", StatementClass::MiscSet),
    ("CONNECT", StatementClass::Connect),
    ("DISCONNECT", StatementClass::Disconnect),
    ("", StatementClass::Misc),
];
const STATEMENTS: [&str; 6] = [
    "SELECT * FROM hr.salaries",
    "DELETE FROM orders",
    "COPY orders TO PROGRAM 'x'",
    "SET pgaudit.log = 'none'",
    "'unterminated /* -- \"",
    "",
];

fn arbitrary_event() -> impl Strategy<Value = AuditEvent> {
    (
        -120i64..7_200,
        proptest::option::of(0usize..ROLES.len()),
        0usize..COMMANDS.len(),
        proptest::option::of(0usize..STATEMENTS.len()),
        proptest::option::of(prop_oneof![Just(0u64), 1u64..5_000, Just(10_001u64), Just(u64::MAX)]),
        any::<bool>(),
        (0u8..4, 0u8..3, 0u8..3, proptest::option::of(0u8..3)),
    )
        .prop_map(
            |(second, role, command, statement, rows, success, (session, address, application, server))| {
                let mut event = AuditEvent::new(
                    start() + TimeDelta::seconds(second),
                    Source::Postgres,
                    LogFormat::PgauditJsonlog,
                );
                event.role = role.map(|role| ROLES[role].into());
                let (command, class) = COMMANDS[command];
                event.command = command.into();
                event.class = class;
                event.statement = statement.map(|statement| STATEMENTS[statement].to_owned());
                event.rows = rows;
                event.success = success;
                event.session_id = Some(format!("s{session}").into());
                event.client_addr = (address > 0).then(|| format!("10.20.0.{address}").into());
                event.application =
                    (application > 0).then(|| ["", "api-server", "pg_dump"][usize::from(application)].into());
                event.server = server.map(|server| format!("pg-{server}").into());
                if second % 3 == 0 {
                    event.objects = vec!["hr.salaries".into(), "public.orders".into()];
                }
                event
            },
        )
}

fn engine() -> Engine {
    let mut config: BinaryConfig = toml::from_str(README_TOML).unwrap();
    config.origins.service_networks = vec!["10.20.0.0/16".into()];
    config.detectors.new_origin.learning_period = "10m".into();
    config.detectors.source_silent.interval = Some("5m".into());
    Engine::new(&config.detection()).unwrap()
}

fn run(events: &[AuditEvent], advance_every: usize) -> Vec<Alert> {
    let mut engine = engine();
    let mut alerts = Vec::new();
    for (index, event) in events.iter().enumerate() {
        engine.observe(event, &mut alerts);
        if advance_every > 0 && index % advance_every == 0 {
            engine.advance_to(event.ts, &mut alerts);
        }
    }
    engine.finish(&mut alerts);
    alerts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_replays_identically(events in proptest::collection::vec(arbitrary_event(), 0..200)) {
        let first = run(&events, 0);
        let second = run(&events, 0);
        prop_assert_eq!(&first, &second);
        for alert in &first {
            prop_assert_eq!(alert.id.len(), 32);
            prop_assert!(alert.count >= 1);
            prop_assert!(alert.last_ts >= alert.ts);
        }
    }

    #[test]
    fn advancing_time_between_events_never_panics(events in proptest::collection::vec(arbitrary_event(), 0..200)) {
        let alerts = run(&events, 7);
        prop_assert_eq!(alerts.clone(), run(&events, 7));
    }
}
