//! The subcommands. Each module holds one command's arguments and its `run` function; what
//! several commands share (reading inputs, reporting rejections, detection, delivery) lives in
//! this module.

pub mod check_config;
pub mod detect;
pub mod ingest;
pub mod keygen;
pub mod parse;
pub mod query;
pub mod review;
pub mod run;
mod run_kafka;
pub mod verify;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use rolewatch_alert::{DeliveryReport, Dispatcher};
use rolewatch_detect::{Engine, EngineState};
use rolewatch_event::{Alert, LogFormat};
use rolewatch_parse::{ParserOptions, Rejected};

use crate::config::Config;
use crate::input::{InputCounts, InputPath, SourceReader};

/// How log files are read: the options every command that reads them takes.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// The log format (pgaudit-jsonlog, pgaudit-csvlog, pgaudit-stderr, mariadb-audit,
    /// mysql-audit-json). Sniffed from the first lines when absent.
    #[arg(long, short = 'f')]
    pub format: Option<LogFormat>,
    /// The server name stamped on every event (`server` column).
    #[arg(long)]
    pub server: Option<String>,
    /// pgaudit-stderr: the server's `log_line_prefix`, or a preset (`postgres`, `debian`,
    /// `rds`). Sniffed from the first lines when absent.
    #[arg(long)]
    pub log_line_prefix: Option<String>,
    /// The IANA zone the source writes local times in (e.g. `Europe/Berlin`).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Stop with an error at the first record that cannot be parsed, instead of counting it
    /// and keeping it as a dead letter.
    #[arg(long)]
    pub strict: bool,
}

/// The log files a command reads, and how.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    /// Log files to read; `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

impl InputArgs {
    /// The parser settings these arguments ask for.
    pub fn parser_options(&self) -> ParserOptions {
        ParserOptions {
            server: self.read.server.clone(),
            log_line_prefix: self.read.log_line_prefix.clone(),
            timezone: self.read.timezone.clone(),
        }
    }

    /// The inputs, with files made absolute so that positions name the same file however the
    /// command line spelled it.
    pub fn inputs(&self) -> Vec<InputPath> {
        self.paths
            .iter()
            .map(|path| match InputPath::from_arg(path) {
                InputPath::File(path) => InputPath::File(std::path::absolute(&path).unwrap_or(path)),
                stdin => stdin,
            })
            .collect()
    }

    /// Opens one input for reading in chunks.
    pub fn open(&self, input: &InputPath, chunk_events: usize) -> anyhow::Result<SourceReader> {
        SourceReader::open(input, self.read.format, &self.parser_options(), chunk_events)
    }
}

/// Reports rejected records on stderr (the first few in full, then a count), or turns the first
/// one into an error in strict mode.
#[derive(Debug, Default)]
pub struct RejectReporter {
    strict: bool,
    shown: usize,
}

impl RejectReporter {
    /// Records shown in full before the reporter only counts.
    const SHOWN_LIMIT: usize = 20;

    /// A reporter; `strict` makes any rejection an error.
    pub fn new(strict: bool) -> Self {
        Self { strict, shown: 0 }
    }

    /// Reports one chunk's rejections.
    pub fn report(&mut self, rejected: &[Rejected]) -> anyhow::Result<()> {
        if let Some(first) = rejected.first()
            && self.strict
        {
            bail!("unparseable record at {first} (--strict)");
        }
        for record in rejected {
            if self.shown < Self::SHOWN_LIMIT {
                tracing::warn!(position = %record.position, reason = %record.reason, detail = %record.detail,
                    "unparseable record kept as a dead letter");
            } else if self.shown == Self::SHOWN_LIMIT {
                tracing::warn!("more unparseable records: only counted from here on");
            }
            self.shown += 1;
        }
        Ok(())
    }
}

/// One line of the summary for an input.
pub fn input_summary(name: &str, format: LogFormat, counts: &InputCounts) -> String {
    let mut line = format!(
        "{name} ({format}): {} lines, {} events, {} rejected, {} skipped",
        counts.lines,
        counts.events,
        counts.rejected_total(),
        counts.skipped_total()
    );
    if !counts.rejected.is_empty() {
        let reasons: Vec<String> =
            counts.rejected.iter().map(|(reason, count)| format!("{reason} {count}")).collect();
        line.push_str(&format!(" (rejected: {})", reasons.join(", ")));
    }
    line
}

/// Runs the detectors over chunks of events and prints each alert as one NDJSON line on stdout
/// as soon as it is raised.
pub struct DetectionRun {
    engine: Engine,
    state_file: Option<PathBuf>,
    by_detector: BTreeMap<String, u64>,
}

impl DetectionRun {
    /// Builds the engine from the config. With a `state_file`, learned state (such as the
    /// origins seen per role) is loaded from it now and saved to it by [`DetectionRun::finish`].
    pub fn new(config: &Config, state_file: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut engine = Engine::new(&config.detection()).context("invalid detection settings")?;
        if let Some(path) = &state_file
            && path.exists()
        {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read detector state {}", path.display()))?;
            let state: EngineState = serde_json::from_str(&text)
                .with_context(|| format!("invalid detector state {}", path.display()))?;
            engine.import_state(state);
        }
        Ok(Self { engine, state_file, by_detector: BTreeMap::new() })
    }

    /// Observes a chunk of events; returns (and prints) the alerts raised.
    pub fn observe(&mut self, events: &[rolewatch_event::AuditEvent]) -> anyhow::Result<Vec<Alert>> {
        let mut raised = Vec::new();
        for event in events {
            self.engine.observe(event, &mut raised);
        }
        self.emit(&raised)?;
        Ok(raised)
    }

    /// Saves the learned state and the open windows now, as [`DetectionRun::finish`] does, so
    /// that a crash loses only what was seen since. Call it only when every
    /// chunk observed so far has its alerts in the outbox: a chunk detected again after a
    /// crash (a detection intent) must meet the state from before it, or what it taught
    /// would hide the alerts it raised.
    pub fn checkpoint(&self) -> anyhow::Result<()> {
        match &self.state_file {
            Some(path) => save_state(path, &self.engine.export_state()),
            None => Ok(()),
        }
    }

    /// Closes every open window, saves the state, and returns the alerts that raised (follow-ups
    /// of folded repeats) with the count per detector over the whole run. The alerts of
    /// [`DetectionRun::observe`] went to its callers; none are kept here (a daemon raises them
    /// for months).
    pub fn finish(mut self) -> anyhow::Result<(Vec<Alert>, BTreeMap<String, u64>)> {
        let mut raised = Vec::new();
        self.engine.finish(&mut raised);
        self.emit(&raised)?;
        if let Some(path) = &self.state_file {
            save_state(path, &self.engine.export_state())?;
        }
        Ok((raised, self.by_detector))
    }

    fn emit(&mut self, alerts: &[Alert]) -> anyhow::Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        // The batch is encoded first and written once: serde_json writes a token at a time, and
        // each of those writes to the line-buffered stdout searched it for a newline (about
        // 200 writes an alert).
        let mut encoded = Vec::with_capacity(alerts.len() * 1024);
        for alert in alerts {
            serde_json::to_writer(&mut encoded, alert).context("cannot encode an alert")?;
            encoded.push(b'\n');
            count(&mut self.by_detector, &alert.detector, 1);
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&encoded).context("cannot write alerts to stdout")?;
        out.flush().context("cannot write alerts to stdout")?;
        Ok(())
    }
}

/// Saves the state whole (see [`crate::files::replace_durably`]).
fn save_state(path: &Path, state: &EngineState) -> anyhow::Result<()> {
    let text = serde_json::to_vec(state).context("cannot encode the detector state")?;
    crate::files::replace_durably(path, &text)
}

/// Adds `events` to `key`'s count, copying the key only the first time it is seen.
pub(crate) fn count(counts: &mut BTreeMap<String, u64>, key: &str, events: u64) {
    match counts.get_mut(key) {
        Some(count) => *count += events,
        None => {
            counts.insert(key.to_owned(), events);
        }
    }
}

/// A summary of alerts per detector, e.g. `large_export 2, ddl_by_non_admin 1`.
pub fn alert_summary(by_detector: &BTreeMap<String, u64>) -> String {
    let total: u64 = by_detector.values().sum();
    if total == 0 {
        return "0 alerts".to_owned();
    }
    let parts: Vec<String> =
        by_detector.iter().map(|(detector, count)| format!("{detector} {count}")).collect();
    format!("{total} alerts ({})", parts.join(", "))
}

/// Puts alerts in the durable outbox and delivers what it holds until done or `deadline`.
/// Returns `None` when no destination is configured and the outbox is empty.
pub async fn deliver(
    config: &Config,
    alerts: &[Alert],
    deadline: Duration,
) -> anyhow::Result<Option<DeliveryReport>> {
    let outbox = Outbox::open(config)?;
    outbox.enqueue(alerts.to_vec()).await?;
    Ok(outbox.drain(deadline).await)
}

/// The durable alert outbox of a one-shot command, when destinations are configured: alerts are
/// written to it as they are raised and delivered at the end (what is left waits for the next
/// run). Without destinations, alerts only print.
pub struct Outbox {
    dispatcher: Option<Arc<Dispatcher>>,
}

impl Outbox {
    /// Opens the outbox under `[state]` if `config` names a destination.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        if config.alerts.webhook.is_empty() && config.alerts.slack.is_empty() {
            return Ok(Self { dispatcher: None });
        }
        let dispatcher = Dispatcher::open(&config.alerts, &config.state.outbox_dir())
            .context("cannot set up alert delivery")?;
        Ok(Self { dispatcher: Some(Arc::new(dispatcher)) })
    }

    /// Writes `alerts` to the outbox (durably) if there is one.
    pub async fn enqueue(&self, alerts: Vec<Alert>) -> anyhow::Result<()> {
        let Some(dispatcher) = self.dispatcher.clone() else { return Ok(()) };
        if alerts.is_empty() {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || dispatcher.enqueue(&alerts))
            .await
            .context("alert outbox task failed")?
            .context("cannot write alerts to the outbox")?;
        Ok(())
    }

    /// Delivers what the outbox holds, for at most `deadline`; `None` without destinations.
    pub async fn drain(self, deadline: Duration) -> Option<DeliveryReport> {
        let dispatcher = self.dispatcher?;
        Some(dispatcher.drain(deadline).await)
    }
}

/// Says what a one-shot delivery achieved, and where undelivered alerts wait.
pub fn report_delivery(config: &Config, report: &DeliveryReport) {
    say(&format!("alert delivery: {report}"));
    if report.pending > 0 {
        say(&format!(
            "{} alerts wait in the outbox at {}; the next run delivers them",
            report.pending,
            config.state.outbox_dir().display()
        ));
    }
}

/// Writes a line to stderr: the summaries commands print for the person at the terminal.
pub fn say(line: &str) {
    let stderr = std::io::stderr();
    let _ = writeln!(stderr.lock(), "rolewatch: {line}");
}
