//! One chunk through the stages: lake first, then detection, with metrics counted per chunk.
//!
//! `ingest` (one-shot) and `run` (the daemon) both push their sources' chunks through a
//! [`Pipeline`]; they differ only in where chunks come from and when delivery happens.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use rolewatch_event::Alert;
use rolewatch_lake::{DeadLetter, Lake, LakeError, PutStatus, StreamId, WrittenFile};
use rolewatch_parse::Rejected;

use crate::commands::DetectionRun;
use crate::input::{Chunk, InputCounts};
use crate::metrics::Metrics;

/// What the lake writes of a run came to.
#[derive(Debug, Default, Clone)]
pub struct LakeTally {
    /// Files created.
    pub created: u64,
    /// Files found already present with identical content (a replay).
    pub replayed: u64,
    /// Bytes of the files created or found.
    pub bytes: u64,
    /// Events stored.
    pub events: u64,
    /// Dead letters stored.
    pub dead_letters: u64,
}

/// What a run came to, from [`Pipeline::finish`].
pub struct RunSummary {
    /// Every alert of the run, in the order raised.
    pub alerts: Vec<Alert>,
    /// The alerts raised by the final flush of the detectors' windows (also in `alerts`).
    pub flushed: Vec<Alert>,
    /// Alerts per detector.
    pub by_detector: std::collections::BTreeMap<String, u64>,
    /// The lake writes.
    pub tally: LakeTally,
}

/// The stages after parsing.
pub struct Pipeline {
    lake: Lake,
    detection: DetectionRun,
    metrics: Arc<Metrics>,
    tally: LakeTally,
    alerts_counted: usize,
}

impl Pipeline {
    /// A pipeline writing to `lake` and detecting with `detection`.
    pub fn new(lake: Lake, detection: DetectionRun, metrics: Arc<Metrics>) -> Self {
        Self { lake, detection, metrics, tally: LakeTally::default(), alerts_counted: 0 }
    }

    /// Stores a chunk's events and dead letters, then runs the detectors over the events.
    /// Returns the alerts raised (already printed as NDJSON).
    pub async fn process(
        &mut self,
        source: &str,
        stream: &StreamId,
        chunk: &Chunk,
    ) -> anyhow::Result<Vec<Alert>> {
        let started = Instant::now();
        let written =
            self.lake.write_events(stream, &chunk.events).await.map_err(|error| self.count_error(error));
        let written = written.with_context(|| format!("cannot store the events of {source}"))?;
        for file in &written {
            self.count_file("events", file);
        }
        self.tally.events += chunk.events.len() as u64;
        self.metrics.events_stored.inc_by(chunk.events.len() as u64);

        let dead_letters: Vec<DeadLetter> = chunk.rejected.iter().map(dead_letter).collect();
        let written = self
            .lake
            .write_dead_letters(stream, &dead_letters)
            .await
            .map_err(|error| self.count_error(error));
        if let Some(file) = written.with_context(|| format!("cannot store the dead letters of {source}"))? {
            self.count_file("dead_letters", &file);
            self.tally.dead_letters += dead_letters.len() as u64;
            self.metrics.dead_letters_stored.inc_by(dead_letters.len() as u64);
        }
        self.metrics.flush_duration.observe(started.elapsed().as_secs_f64());

        let alerts = self.detection.observe(&chunk.events)?;
        self.count_alerts(&alerts);
        Ok(alerts)
    }

    /// Counts what a source read (after its chunks went through [`Pipeline::process`]).
    pub fn count_input(&self, source: &str, counts: &InputCounts) {
        let metrics = &self.metrics;
        metrics.records_read.with_label_values(&[source]).inc_by(counts.lines);
        metrics.bytes_read.with_label_values(&[source]).inc_by(counts.bytes);
        metrics.events_parsed.with_label_values(&[source]).inc_by(counts.events);
        for (reason, count) in &counts.rejected {
            metrics.rejected.with_label_values(&[source, reason.as_str()]).inc_by(*count);
        }
        for (reason, count) in &counts.skipped {
            metrics.skipped.with_label_values(&[source, reason.as_str()]).inc_by(*count);
        }
    }

    /// Ends the run: flushes the detectors' open windows and saves their state.
    pub fn finish(self) -> anyhow::Result<RunSummary> {
        let Self { detection, metrics, tally, alerts_counted, .. } = self;
        let (alerts, by_detector) = detection.finish()?;
        // The run's alerts are in the order raised: those past `alerts_counted` came from the flush.
        let flushed = alerts.get(alerts_counted..).unwrap_or_default().to_vec();
        count_alerts(&metrics, &flushed);
        Ok(RunSummary { alerts, flushed, by_detector, tally })
    }

    fn count_file(&mut self, kind: &str, file: &WrittenFile) {
        let status = match file.status {
            PutStatus::Created => {
                self.tally.created += 1;
                self.metrics.bytes_written.with_label_values(&[kind]).inc_by(file.bytes as u64);
                "created"
            }
            PutStatus::Replayed => {
                self.tally.replayed += 1;
                "replayed"
            }
        };
        self.tally.bytes += file.bytes as u64;
        self.metrics.files.with_label_values(&[kind, status]).inc();
    }

    fn count_alerts(&mut self, alerts: &[Alert]) {
        self.alerts_counted += alerts.len();
        count_alerts(&self.metrics, alerts);
    }

    fn count_error(&self, error: LakeError) -> LakeError {
        let kind = if matches!(error, LakeError::Integrity { .. }) { "integrity" } else { "store" };
        self.metrics.write_errors.with_label_values(&[kind]).inc();
        error
    }
}

fn count_alerts(metrics: &Metrics, alerts: &[Alert]) {
    for alert in alerts {
        metrics.alerts.with_label_values(&[alert.detector.as_str(), alert.severity.as_str()]).inc();
    }
}

fn dead_letter(rejected: &Rejected) -> DeadLetter {
    DeadLetter {
        position: rejected.position.clone(),
        reason: rejected.reason.as_str().to_owned(),
        detail: rejected.detail.clone(),
        raw: rejected.raw.clone(),
    }
}
