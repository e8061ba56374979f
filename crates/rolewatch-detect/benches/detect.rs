//! Throughput of all detectors together over synthetic, mostly benign traffic.
//!
//! `cargo bench -p rolewatch-detect --bench detect [-- EVENTS]` prints events per second. It
//! is a measurement, not a test: nothing here fails on a slow machine.
//!
//! Events are generated in batches of `BATCH` outside the timed section, the way a parser
//! hands them over: the timing covers `observe` (and `finish`) over events that are in cache,
//! not the allocation of a gigabyte of synthetic events.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_detect::{DetectionConfig, Engine};
use rolewatch_event::{AuditEvent, LogFormat, Source, StatementClass};

/// The sample config plus every optional detector switched on.
fn config() -> DetectionConfig {
    let mut config = DetectionConfig::default();
    config.roles.admin = vec!["postgres".into(), "dba_*".into()];
    config.roles.reader = vec!["app_reader".into(), "report_*".into()];
    config.roles.writer = vec!["app_writer".into(), "svc_*".into()];
    config.origins.service_applications = vec!["api-server".into()];
    config.origins.service_networks = vec!["10.20.0.0/16".into()];
    config.sensitive.schemas = vec!["hr".into()];
    config.sensitive.tables = vec!["public.cards".into()];
    config.detectors.source_silent.interval = Some("15m".into());
    config.detectors.new_origin.learning_period = "1h".into();
    config
}

/// Events per generated batch.
const BATCH: usize = 8_192;

/// Synthetic traffic: 64 interleaved sessions of 8 roles on 4 servers, reads, writes, sets
/// and logins; events `first..first + count`.
fn events(first: usize, count: usize) -> Vec<AuditEvent> {
    let start: DateTime<Utc> = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    let roles =
        ["app_reader", "app_writer", "report_bi", "svc_api", "app_reader", "app_writer", "dba_ops", "etl"];
    let objects = ["public.orders", "public.items", "public.customers", "shop.stock"];
    (first..first + count)
        .map(|index| {
            let session = index % 64;
            let role = roles.get(session % roles.len()).copied().unwrap_or("app_reader");
            let object = objects.get(index % objects.len()).copied().unwrap_or("public.orders");
            let ts = start + TimeDelta::microseconds(i64::try_from(index).unwrap_or(0) * 200);
            let mut event = AuditEvent::new(ts, Source::Postgres, LogFormat::PgauditJsonlog);
            event.server = Some(format!("pg-{}", session % 4).into());
            event.database = Some("shop".into());
            event.role = Some(role.into());
            event.client_addr = Some(format!("10.0.0.{}", session % 16).into());
            event.application = Some(if session % 3 == 0 { "webapp" } else { "billing" }.into());
            event.session_id = Some(format!("6565a3f1.{session:x}").into());
            event.statement_id = Some(u64::try_from(index).unwrap_or(0));
            match index % 10 {
                0..=5 => {
                    event.command = "SELECT".into();
                    event.class = StatementClass::Read;
                    event.objects = vec![object.into()];
                    event.statement = Some("SELECT * FROM orders WHERE id = $1".into());
                    event.rows = Some(u64::try_from(index % 7).unwrap_or(1));
                }
                6 | 7 => {
                    event.command = if index % 2 == 0 { "INSERT" } else { "UPDATE" }.into();
                    event.class = StatementClass::Write;
                    event.objects = vec![object.into()];
                    event.statement = Some("UPDATE orders SET note = $1 WHERE id = $2".into());
                    event.rows = Some(1);
                }
                8 => {
                    event.command = "SET".into();
                    event.class = StatementClass::MiscSet;
                    event.statement = Some("SET search_path = app, public".into());
                }
                _ => {
                    event.command = "CONNECT".into();
                    event.class = StatementClass::Connect;
                }
            }
            event
        })
        .collect()
}

fn main() {
    let count: usize = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(4_000_000);
    let Ok(mut engine) = Engine::new(&config()) else {
        println!("the benchmark config does not validate");
        return;
    };
    let mut alerts = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut first = 0;
    while first < count {
        let batch = events(first, BATCH.min(count - first));
        let started = Instant::now();
        for event in &batch {
            engine.observe(event, &mut alerts);
        }
        elapsed += started.elapsed();
        first += batch.len();
    }
    let started = Instant::now();
    engine.finish(&mut alerts);
    elapsed += started.elapsed();
    let rate = count as f64 / elapsed.as_secs_f64();
    println!(
        "detect: {count} events in {:.3} s = {:.0} events/s ({} detectors, {} alerts)",
        elapsed.as_secs_f64(),
        rate,
        engine.detectors().len(),
        alerts.len()
    );
}
