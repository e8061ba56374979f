//! `rolewatch detect`: a backtest of the detectors over log files.
//!
//! Nothing is stored and no learned state is read or written, so the same files always give
//! the same alerts; `--deliver` also sends them to the configured destinations.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{DetectionRun, InputArgs, RejectReporter, alert_summary, deliver, input_summary, say};
use crate::config::Config;

/// Arguments of `rolewatch detect`.
#[derive(Debug, Clone, Args)]
pub struct DetectArgs {
    /// The config file (TOML).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Also deliver the alerts to the configured destinations (through the outbox).
    #[arg(long)]
    pub deliver: bool,
    /// How long to keep trying to deliver alerts before leaving the rest in the outbox.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub deliver_timeout: Duration,
    #[command(flatten)]
    pub input: InputArgs,
}

/// Runs the command.
pub async fn run(args: DetectArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let mut detection = DetectionRun::new(&config, None)?;
    let mut rejects = RejectReporter::new(args.input.strict);
    for input in args.input.inputs() {
        let mut reader = tokio::task::block_in_place(|| args.input.open(&input, config.lake.chunk_events))?;
        while let Some(chunk) = tokio::task::block_in_place(|| reader.next_chunk())? {
            rejects.report(&chunk.rejected)?;
            detection.observe(&chunk.events)?;
        }
        say(&input_summary(reader.name(), reader.format(), reader.counts()));
    }
    let (alerts, by_detector) = detection.finish()?;
    say(&alert_summary(&by_detector));
    if args.deliver {
        match deliver(&config, &alerts, args.deliver_timeout).await? {
            Some(report) => say(&format!("alert delivery: {report}")),
            None => say("--deliver: no destination is configured in [alerts]"),
        }
    }
    Ok(())
}
