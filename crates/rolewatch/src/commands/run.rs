//! `rolewatch run`: the daemon. Follows the configured sources, stores and checks every record
//! as it arrives, delivers alerts in the background, serves metrics, and stops cleanly on
//! SIGTERM or SIGINT (flush, store, deliver what it can within the shutdown timeout, exit 0).
//!
//! A chunk that cannot be stored (the store fails, or an integrity conflict) stalls its file:
//! it is retried at every poll and nothing after it is read, so nothing is ever skipped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rolewatch_alert::Dispatcher;
use rolewatch_event::Alert;
use rolewatch_kafka::{Polled, RebalanceEvent};
use rolewatch_lake::StreamId;
use tokio::sync::watch;

use super::run_kafka::{KAFKA_SOURCE, KafkaRun, ReadyChunk};
use super::{DetectionRun, RejectReporter, alert_summary, say};
use crate::config::Config;
use crate::input::Chunk;
use crate::intents::Intents;
use crate::metrics::Metrics;
use crate::pipeline::{DeclaredOtherwise, Pipeline, RunSummary};
use crate::serve;
use crate::tail::{TailChunk, Tailer};

/// The `source` label of the files source's metrics.
const FILES_SOURCE: &str = "files";

/// Arguments of `rolewatch run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The config file (TOML) with a `[source.files]` table.
    #[arg(long, short = 'c')]
    pub config: PathBuf,
    /// At shutdown, how long to keep delivering alerts before leaving the rest in the outbox.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// One followed file and the chunk it is stalled on, if any.
struct FollowedFile {
    tailer: Tailer,
    stalled: Option<TailChunk>,
}

/// Runs the command until a stop signal.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    if config.source.files.is_none() && config.source.kafka.is_none() {
        bail!(
            "{}: no source configured; add a [source.files] or [source.kafka] table",
            args.config.display()
        );
    }
    let (poll_interval, flush_interval) = match &config.source.files {
        Some(files) => {
            files.intervals().with_context(|| format!("invalid config file {}", args.config.display()))?
        }
        None => (Duration::from_secs(1), Duration::from_secs(5)),
    };
    let metrics = Arc::new(Metrics::new());
    let (stop, stop_signal) = watch::channel(false);

    let server = match &config.metrics.listen {
        Some(listen) => {
            let (address, task) = serve::start(listen, metrics.clone(), stopped(stop_signal.clone())).await?;
            say(&format!("serving /metrics, /healthz and /ready on http://{address}"));
            Some(task)
        }
        None => None,
    };
    let dispatcher = Arc::new(
        Dispatcher::open(&config.alerts, &config.state.outbox_dir())
            .context("cannot set up alert delivery")?,
    );
    metrics.register_dispatcher(dispatcher.clone());
    let delivery = tokio::spawn(dispatcher.clone().run(stopped(stop_signal.clone())));

    let heartbeat = config.lake.heartbeat()?;
    let lake = config.lake.open()?;
    let detection = DetectionRun::new(&config, Some(config.state.detector_state_file()))?;
    let mut kafka = match &config.source.kafka {
        Some(section) => Some(KafkaRun::start(section.clone(), &lake).await?),
        None => None,
    };
    let mut pipeline = Pipeline::new(lake, detection, metrics.clone())
        .with_intents(Intents::new(&config.state.path))
        .with_checkpoints(config.state.checkpoint()?);
    // Chunks committed just before the last stop whose alerts may not have reached the outbox.
    let (recovered, streams) = pipeline.recover_detections().await?;
    enqueue(&dispatcher, recovered).await?;
    for stream in &streams {
        pipeline.alerts_saved(stream)?;
    }
    let mut followed: Vec<FollowedFile> = match &config.source.files {
        Some(files) => {
            let options = files.parser_options();
            files
                .paths
                .iter()
                .map(|path| FollowedFile {
                    tailer: Tailer::new(
                        path.clone(),
                        files.format,
                        options.clone(),
                        config.lake.chunk_events,
                    ),
                    stalled: None,
                })
                .collect()
        }
        None => Vec::new(),
    };
    let mut rejects = RejectReporter::new(false);
    metrics.ready.set(i64::from(kafka.is_none()));
    say(&format!(
        "running: following {} files{}, lake {}",
        followed.len(),
        if kafka.is_some() { " and a Kafka consumer group" } else { "" },
        config.lake.path.display()
    ));

    let mut ticker = tokio::time::interval(poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Kafka buffers are checked against their flush interval on a ticker of their own, a tenth
    // of it: on the files' poll interval (1 s by default) a record could wait a whole poll
    // interval longer than `flush_interval` promises.
    let mut kafka_ticker =
        tokio::time::interval(kafka.as_ref().map_or(poll_interval, KafkaRun::tick_interval));
    kafka_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_flush = Instant::now();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => break,
            _ = ticker.tick() => {}
            _ = kafka_ticker.tick(), if kafka.is_some() => {
                if let Some(kafka) = kafka.as_mut() {
                    store_due_kafka_chunks(kafka, &mut pipeline, &dispatcher, &metrics, &mut rejects).await?;
                }
                continue;
            }
            polled = next_kafka_batch(kafka.as_mut()) => {
                let Some(kafka) = kafka.as_mut() else { continue };
                match polled {
                    Ok(Polled::Records) => {
                        store_kafka_records(kafka, &mut pipeline, &dispatcher, &metrics, &mut rejects).await?;
                        // A rebalance served while the batch was taken is handled now, before
                        // a flush by age could store a buffer of a partition no longer ours.
                        handle_pending_rebalances(kafka, &pipeline, &metrics).await;
                    }
                    Ok(Polled::Rebalance(event)) => handle_rebalance(kafka, event, &pipeline, &metrics).await,
                    Err(error) => tracing::warn!(%error, "kafka consumer error; retrying"),
                }
                continue;
            }
        }
        pipeline.heartbeat_if_idle(heartbeat).await;
        pipeline.checkpoint_if_due();
        let flush = last_flush.elapsed() >= flush_interval;
        for file in &mut followed {
            poll_file(file, flush, &mut pipeline, &dispatcher, &metrics, &mut rejects).await?;
        }
        if flush {
            last_flush = Instant::now();
        }
    }

    say("stopping: storing what was read, then delivering alerts");
    if let Some(kafka) = kafka.as_mut() {
        // A poll cut short by the signal may have served a revocation: its buffers go first.
        handle_pending_rebalances(kafka, &pipeline, &metrics).await;
        for ready in kafka.due(true) {
            store_kafka_chunk(kafka, ready, &mut pipeline, &dispatcher, &metrics, &mut rejects).await?;
        }
        for (topic, partition) in kafka.stalled_partitions() {
            tracing::error!(%topic, partition,
                "stopping with a stalled partition: its records are not durable and the next run reads them again");
        }
        pipeline.count_input(KAFKA_SOURCE, &kafka.buffers.take_counts());
    }
    for file in &mut followed {
        if let Some(stalled) = file.stalled.take() {
            process(
                FILES_SOURCE,
                &stalled.stream,
                &stalled.chunk,
                &mut pipeline,
                &dispatcher,
                &metrics,
                &mut rejects,
            )
            .await
            .with_context(|| {
                format!("{} is stalled on a chunk that cannot be stored", file.tailer.path().display())
            })?;
        }
        let last = tokio::task::block_in_place(|| file.tailer.finish());
        if let Some(last) = last {
            process(
                FILES_SOURCE,
                &last.stream,
                &last.chunk,
                &mut pipeline,
                &dispatcher,
                &metrics,
                &mut rejects,
            )
            .await?;
        }
        pipeline.count_input(FILES_SOURCE, &file.tailer.take_counts());
    }
    let RunSummary { flushed, by_detector, tally, .. } = pipeline.finish()?;
    enqueue(&dispatcher, flushed).await?;
    let _ = stop.send(true);
    let _ = delivery.await;
    let report = dispatcher.drain(args.shutdown_timeout).await;
    say(&format!(
        "stored {} events and {} dead letters in {} new files; {}; alert delivery at shutdown: {report}",
        tally.events,
        tally.dead_letters,
        tally.created,
        alert_summary(&by_detector)
    ));
    if let Some(server) = server {
        let _ = server.await;
    }
    Ok(())
}

/// The consumer's next batch of records (into `kafka.batch`) or rebalance; never resolves
/// without a Kafka source.
async fn next_kafka_batch(kafka: Option<&mut KafkaRun>) -> Result<Polled, rolewatch_kafka::KafkaSourceError> {
    match kafka {
        Some(kafka) => kafka.source.next_batch(&mut kafka.batch).await,
        None => std::future::pending().await,
    }
}

/// Applies a change of the consumer's assignment: newly assigned partitions resume after what
/// the lake holds for them (other members may have stored them), and cut a chunk declared but
/// not committed where it was declared; revoked ones drop what they buffered.
async fn handle_rebalance(
    kafka: &mut KafkaRun,
    event: RebalanceEvent,
    pipeline: &Pipeline,
    metrics: &Metrics,
) {
    if let RebalanceEvent::Assigned(partitions) = &event {
        if let Err(error) = kafka.refresh_positions(pipeline.lake()).await {
            tracing::warn!(error = %format!("{error:#}"), "cannot read the lake's durable positions after a rebalance");
        }
        kafka.adopt_declared_chunks(pipeline.lake(), partitions).await;
    }
    kafka.rebalance(event, metrics);
}

/// Handles the rebalances the consumer served but has not handed out yet (see
/// [`rolewatch_kafka::KafkaSource::has_pending_rebalance`]); each comes out at once.
async fn handle_pending_rebalances(kafka: &mut KafkaRun, pipeline: &Pipeline, metrics: &Metrics) {
    while kafka.source.has_pending_rebalance() {
        if let Ok(Polled::Rebalance(event)) = kafka.source.next_batch(&mut kafka.batch).await {
            handle_rebalance(kafka, event, pipeline, metrics).await;
        }
    }
}

/// Parses the records of the last poll into their partitions' buffers, storing each chunk as
/// soon as it is full (before the next record is read, as with one record at a time, so a
/// partition that stalls on a chunk cuts nothing after it).
async fn store_kafka_records(
    kafka: &mut KafkaRun,
    pipeline: &mut Pipeline,
    dispatcher: &Arc<Dispatcher>,
    metrics: &Metrics,
    rejects: &mut RejectReporter,
) -> anyhow::Result<()> {
    let batch = std::mem::take(&mut kafka.batch);
    for record in batch.iter() {
        if let Some(ready) = kafka.cut_before(record) {
            store_kafka_chunk(kafka, ready, pipeline, dispatcher, metrics, rejects).await?;
        }
        if let Some(ready) = kafka.add(record) {
            store_kafka_chunk(kafka, ready, pipeline, dispatcher, metrics, rejects).await?;
        }
    }
    kafka.batch = batch;
    Ok(())
}

/// Stores the Kafka chunks due (stalled ones again, buffers older than the flush interval) and
/// refreshes the Kafka metrics.
async fn store_due_kafka_chunks(
    kafka: &mut KafkaRun,
    pipeline: &mut Pipeline,
    dispatcher: &Arc<Dispatcher>,
    metrics: &Metrics,
    rejects: &mut RejectReporter,
) -> anyhow::Result<()> {
    for ready in kafka.due(false) {
        store_kafka_chunk(kafka, ready, pipeline, dispatcher, metrics, rejects).await?;
    }
    pipeline.count_input(KAFKA_SOURCE, &kafka.buffers.take_counts());
    kafka.update_metrics(metrics);
    Ok(())
}

/// Stores a Kafka chunk; on failure the partition stalls (paused, chunk kept for a retry). A
/// chunk declared otherwise in the lake is cut as declared ([`KafkaRun::recut`]).
async fn store_kafka_chunk(
    kafka: &mut KafkaRun,
    ready: ReadyChunk,
    pipeline: &mut Pipeline,
    dispatcher: &Arc<Dispatcher>,
    metrics: &Metrics,
    rejects: &mut RejectReporter,
) -> anyhow::Result<()> {
    let mut next = Some(ready);
    while let Some(ready) = next.take() {
        match process(KAFKA_SOURCE, &ready.stream, &ready.chunk, pipeline, dispatcher, metrics, rejects).await
        {
            Ok(()) => kafka.stored(ready, metrics),
            Err(error) => match error.downcast_ref::<DeclaredOtherwise>() {
                Some(declared) => next = kafka.recut(ready, declared.last_offset, metrics),
                None => kafka.stall(ready, &error, metrics),
            },
        }
    }
    Ok(())
}

/// Reads what one file gained and pushes it through the pipeline; a chunk that cannot be
/// stored is kept and retried at the next poll, and the file is not read further meanwhile.
async fn poll_file(
    file: &mut FollowedFile,
    flush: bool,
    pipeline: &mut Pipeline,
    dispatcher: &Arc<Dispatcher>,
    metrics: &Metrics,
    rejects: &mut RejectReporter,
) -> anyhow::Result<()> {
    loop {
        let next = match file.stalled.take() {
            Some(stalled) => Some(stalled),
            None => {
                if let Some(stream) = tokio::task::block_in_place(|| file.tailer.open())?
                    && let Some(declared) = pipeline.declared_file_chunk(&stream).await
                {
                    file.tailer.cut_as_declared(declared);
                }
                tokio::task::block_in_place(|| file.tailer.poll(flush))?
            }
        };
        let Some(tail) = next else { break };
        if let Err(error) =
            process(FILES_SOURCE, &tail.stream, &tail.chunk, pipeline, dispatcher, metrics, rejects).await
        {
            tracing::error!(path = %file.tailer.path().display(), error = %format!("{error:#}"),
                "cannot store a chunk; the file is stalled and the chunk is retried at the next poll");
            file.stalled = Some(tail);
            break;
        }
    }
    pipeline.count_input(FILES_SOURCE, &file.tailer.take_counts());
    Ok(())
}

async fn process(
    source: &str,
    stream: &StreamId,
    chunk: &Chunk,
    pipeline: &mut Pipeline,
    dispatcher: &Arc<Dispatcher>,
    metrics: &Metrics,
    rejects: &mut RejectReporter,
) -> anyhow::Result<()> {
    rejects.report(&chunk.rejected)?;
    let alerts = pipeline.process(source, stream, chunk).await?;
    if let Some(newest) = chunk.events.iter().map(|event| event.ts).max() {
        let gauge = metrics.last_event_timestamp.with_label_values(&[source]);
        gauge.set(gauge.get().max(newest.timestamp()));
    }
    enqueue(dispatcher, alerts).await?;
    pipeline.alerts_saved(stream)
}

async fn enqueue(dispatcher: &Arc<Dispatcher>, alerts: Vec<Alert>) -> anyhow::Result<()> {
    if alerts.is_empty() {
        return Ok(());
    }
    let dispatcher = dispatcher.clone();
    tokio::task::spawn_blocking(move || dispatcher.enqueue(&alerts))
        .await
        .context("alert outbox task failed")?
        .context("cannot write alerts to the outbox")?;
    Ok(())
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
