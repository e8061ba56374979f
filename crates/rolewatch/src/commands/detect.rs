//! `rolewatch detect`: a backtest of the detectors over log files or over the lake.
//!
//! Nothing is stored and no learned state is read or written, so the same events always give
//! the same alerts; `--deliver` also sends them to the configured destinations.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use rolewatch_event::Alert;
use rolewatch_lake::Lake;

use super::{
    DetectionRun, InputArgs, ReadArgs, RejectReporter, alert_summary, deliver, input_summary,
    report_delivery, say,
};
use crate::config::Config;

/// Arguments of `rolewatch detect`.
#[derive(Debug, Clone, Args)]
pub struct DetectArgs {
    /// The config file (TOML).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Read the events from this lake instead of log files.
    #[arg(long, conflicts_with = "paths")]
    pub lake: Option<PathBuf>,
    /// With --lake: events at or after this time, RFC 3339 (`2026-11-01T00:00:00Z`) or an age
    /// (`90d`, `12h`).
    #[arg(long, requires = "lake", value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// With --lake: events before this time, RFC 3339 or an age.
    #[arg(long, requires = "lake", value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// Also deliver the alerts to the configured destinations (through the outbox).
    #[arg(long)]
    pub deliver: bool,
    /// How long to keep trying to deliver alerts before leaving the rest in the outbox.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub deliver_timeout: Duration,
    /// How log files are read (with log files only).
    #[command(flatten)]
    pub read: ReadArgs,
    /// Log files to read (`-` reads standard input); or use --lake.
    #[arg(value_name = "PATH", required_unless_present = "lake")]
    pub paths: Vec<PathBuf>,
}

/// `2026-11-01T00:00:00Z`, or an age before now such as `90d`.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let age = humantime::parse_duration(text)
        .map_err(|_| format!("{text:?} is neither an RFC 3339 time nor an age like 90d"))?;
    let age = chrono::TimeDelta::from_std(age).map_err(|error| error.to_string())?;
    Ok(Utc::now() - age)
}

/// Runs the command.
pub async fn run(args: DetectArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let mut detection = DetectionRun::new(&config, None)?;
    let mut alerts = match &args.lake {
        Some(lake) => detect_over_lake(lake, args.since, args.until, &mut detection).await?,
        None => detect_over_files(&args, config.lake.chunk_events, &mut detection)?,
    };
    let (flushed, by_detector) = detection.finish()?;
    alerts.extend(flushed);
    say(&alert_summary(&by_detector));
    if args.deliver {
        match deliver(&config, &alerts, args.deliver_timeout).await? {
            Some(report) => report_delivery(&config, &report),
            None => say("--deliver: no destination is configured in [alerts]"),
        }
    }
    Ok(())
}

fn detect_over_files(
    args: &DetectArgs,
    chunk_events: usize,
    detection: &mut DetectionRun,
) -> anyhow::Result<Vec<Alert>> {
    let mut alerts = Vec::new();
    let input = InputArgs { read: args.read.clone(), paths: args.paths.clone() };
    let mut rejects = RejectReporter::new(args.read.strict);
    for path in input.inputs() {
        let mut reader = tokio::task::block_in_place(|| input.open(&path, chunk_events))?;
        while let Some(chunk) = tokio::task::block_in_place(|| reader.next_chunk())? {
            rejects.report(&chunk.rejected)?;
            alerts.extend(detection.observe(&chunk.events)?);
            reader.recycle(chunk);
        }
        say(&input_summary(reader.name(), reader.format(), reader.counts()));
    }
    Ok(alerts)
}

async fn detect_over_lake(
    path: &std::path::Path,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    detection: &mut DetectionRun,
) -> anyhow::Result<Vec<Alert>> {
    let location = path.to_string_lossy();
    let is_remote = location.contains("://");
    if !is_remote && !path.join(rolewatch_lake::EVENTS_PREFIX).is_dir() {
        bail!("{} is not a rolewatch lake (no {}/ directory)", path.display(), rolewatch_lake::EVENTS_PREFIX);
    }
    let lake = Lake::open(&location).with_context(|| format!("cannot open the lake at {location}"))?;
    let hours = lake.event_hours(since, until).await?;
    let mut events_read = 0;
    let mut alerts = Vec::new();
    for hour in &hours {
        let events = lake.read_hour(hour, since, until).await?;
        events_read += events.len();
        alerts.extend(detection.observe(&events)?);
    }
    say(&format!("lake {}: {} events in {} hour partitions", path.display(), events_read, hours.len()));
    Ok(alerts)
}
