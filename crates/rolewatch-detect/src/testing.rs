//! Helpers for the unit tests: a default config like the sample's, and event builders.

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_event::{Alert, AuditEvent, LogFormat, Source, StatementClass};

use crate::{DetectionConfig, Engine};

/// 2026-11-26T10:00:00Z plus `seconds`.
pub(crate) fn ts(seconds: i64) -> DateTime<Utc> {
    "2026-11-26T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::seconds(seconds)
}

/// The config of the README sample, adjusted by `adjust`.
pub(crate) fn engine_with(adjust: impl FnOnce(&mut DetectionConfig)) -> Engine {
    let mut config = DetectionConfig::default();
    config.roles.admin = vec!["postgres".into(), "root".into(), "dba_admin".into()];
    config.roles.reader = vec!["app_reader".into(), "report_reader".into()];
    config.roles.writer = vec!["app_writer".into(), "svc_api".into()];
    config.origins.service_applications = vec!["api-server".into()];
    config.sensitive.schemas = vec!["hr".into()];
    adjust(&mut config);
    Engine::new(&config).unwrap()
}

/// A successful `SELECT` by `role` at `ts(seconds)` from 127.0.0.1 (webapp), no rows.
pub(crate) fn event(role: &str, seconds: i64) -> AuditEvent {
    let mut event = AuditEvent::new(ts(seconds), Source::Postgres, LogFormat::PgauditJsonlog);
    event.role = Some(role.into());
    event.database = Some("shop".into());
    event.client_addr = Some("127.0.0.1".into());
    event.application = Some("webapp".into());
    event.session_id = Some("s0".into());
    event.command = "SELECT".into();
    event.class = StatementClass::Read;
    event
}

/// A read of `rows` rows of public.orders in `session`.
pub(crate) fn read(role: &str, session: &str, seconds: i64, rows: u64) -> AuditEvent {
    let mut read = event(role, seconds);
    read.session_id = Some(session.into());
    read.objects = vec!["public.orders".into()];
    read.statement = Some("SELECT * FROM orders".into());
    read.rows = Some(rows);
    read
}

/// A login attempt; failed ones carry no application, like PostgreSQL's FATAL records.
pub(crate) fn connect(role: &str, seconds: i64, success: bool) -> AuditEvent {
    let mut connect = event(role, seconds);
    connect.command = "CONNECT".into();
    connect.class = StatementClass::Connect;
    connect.success = success;
    if !success {
        connect.application = None;
        connect.error_code = Some("28P01".into());
        connect.error_message = Some(format!("password authentication failed for user \"{role}\""));
    }
    connect
}

/// Observes every event, then finishes.
pub(crate) fn run(engine: &mut Engine, events: &[AuditEvent]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for event in events {
        engine.observe(event, &mut alerts);
    }
    engine.finish(&mut alerts);
    alerts
}
