//! `rolewatch ingest`: log files -> lake -> detectors -> alerts, in one pass.
//!
//! Each input is read in chunks. A chunk's events are written to the lake first (create-only,
//! deterministic names), its unparseable records go to the dead-letter area, and a manifest
//! commits both with the byte range of the file they account for; only then do the detectors
//! see the events. A second ingest of the same file finds its ranges durable and stores, and
//! alerts on, nothing again; a file that grew since is stored from where the last ingest ended.
//! Alerts print as NDJSON on stdout as they are raised and go to the durable outbox chunk by
//! chunk (with detection intents, as in `run`: a chunk committed just before a crash is read
//! back from the lake and detected by the next ingest); at the end the outbox is delivered to
//! the configured destinations.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rolewatch_lake::StreamId;

use super::{
    DetectionRun, InputArgs, Outbox, RejectReporter, alert_summary, input_summary, report_delivery, say,
};
use crate::config::Config;
use crate::intents::Intents;
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
    let mut pipeline = Pipeline::new(lake, detection, Arc::new(Metrics::new()))
        .with_intents(Intents::new(&config.state.path))
        .with_checkpoints(config.state.checkpoint()?);
    let outbox = Outbox::open(&config)?;
    let mut rejects = RejectReporter::new(args.input.read.strict);
    let (recovered, streams) = pipeline.recover_detections().await?;
    outbox.enqueue(recovered).await?;
    for stream in &streams {
        pipeline.alerts_saved(stream)?;
    }

    for input in args.input.inputs() {
        let mut reader = tokio::task::block_in_place(|| args.input.open(&input, config.lake.chunk_events))?;
        let stream = StreamId::for_file_prefix(reader.identity());
        // A chunk the last ingest declared but did not commit (it stopped between the chunk's
        // files and its manifest, and the file may have grown since) is cut the same way.
        if let Some(declared) = pipeline.declared_file_chunk(&stream).await {
            say(&format!(
                "{}: bytes {}..{} were declared but not committed by the last ingest; cutting them the same way",
                reader.name(),
                declared.start,
                declared.end
            ));
            reader.cut_as_declared(declared);
        }
        let source = reader.format().as_str();
        while let Some(chunk) = tokio::task::block_in_place(|| reader.next_chunk())? {
            rejects.report(&chunk.rejected)?;
            let alerts = pipeline.process(reader.name(), &stream, &chunk).await?;
            outbox.enqueue(alerts).await?;
            pipeline.alerts_saved(&stream)?;
            reader.recycle(chunk);
        }
        pipeline.count_input(source, reader.counts());
        say(&input_summary(reader.name(), reader.format(), reader.counts()));
    }

    let RunSummary { flushed, by_detector, tally, .. } = pipeline.finish()?;
    outbox.enqueue(flushed).await?;
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
    if let Some(report) = outbox.drain(args.deliver_timeout).await {
        report_delivery(&config, &report);
    }
    Ok(())
}
