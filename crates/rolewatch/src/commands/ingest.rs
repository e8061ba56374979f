//! `rolewatch ingest`: log files -> lake -> detectors -> alerts, in one pass.
//!
//! Each input is read in chunks. A chunk's events are written to the lake first (create-only,
//! deterministic names), its unparseable records go to the dead-letter area, and a manifest
//! commits both with the byte range of the file they account for; only then do the detectors
//! see the events. A second ingest of the same file finds its ranges durable and stores, and
//! alerts on, nothing again; a file that grew since is stored from where the last ingest ended; alerts print as NDJSON on stdout as they are raised, and at the end go to the
//! configured destinations through the durable outbox.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rolewatch_lake::StreamId;

use super::{
    DetectionRun, InputArgs, RejectReporter, alert_summary, deliver, input_summary, report_delivery, say,
};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, RunSummary};

/// Arguments of `rolewatch ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// The config file (TOML). Without one, every setting takes its default.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// The lake directory; overrides `[lake] path`.
    #[arg(long)]
    pub lake: Option<PathBuf>,
    /// How long to keep trying to deliver alerts before leaving the rest in the outbox.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub deliver_timeout: Duration,
    #[command(flatten)]
    pub input: InputArgs,
}

/// Runs the command.
pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(lake) = &args.lake {
        config.lake.path.clone_from(lake);
    }
    let lake = config.lake.open()?;
    let detection = DetectionRun::new(&config, Some(config.state.detector_state_file()))?;
    let mut pipeline = Pipeline::new(lake, detection, Arc::new(Metrics::new()));
    let mut rejects = RejectReporter::new(args.input.read.strict);

    for input in args.input.inputs() {
        let mut reader = tokio::task::block_in_place(|| args.input.open(&input, config.lake.chunk_events))?;
        let stream = StreamId::for_file_prefix(reader.identity());
        let source = reader.format().as_str();
        while let Some(chunk) = tokio::task::block_in_place(|| reader.next_chunk())? {
            rejects.report(&chunk.rejected)?;
            pipeline.process(reader.name(), &stream, &chunk).await?;
            reader.recycle(chunk);
        }
        pipeline.count_input(source, reader.counts());
        say(&input_summary(reader.name(), reader.format(), reader.counts()));
    }

    let RunSummary { alerts, by_detector, tally, .. } = pipeline.finish()?;
    say(&format!(
        "lake {}: stored {} events and {} dead letters; {} files created, {} already present with identical content ({} bytes); {} chunks committed, {} already durable (skipped)",
        config.lake.path.display(),
        tally.events,
        tally.dead_letters,
        tally.created,
        tally.replayed,
        tally.bytes,
        tally.committed,
        tally.already_durable
    ));
    say(&alert_summary(&by_detector));
    if let Some(report) = deliver(&config, &alerts, args.deliver_timeout).await? {
        report_delivery(&config, &report);
    }
    Ok(())
}
