//! One chunk through the stages: lake first, then detection, with metrics counted per chunk.
//!
//! `ingest` (one-shot) and `run` (the daemon) both push their sources' chunks through a
//! [`Pipeline`]; they differ only in where chunks come from and when delivery happens.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use rolewatch_event::{Alert, AuditEvent, SourcePosition};
use rolewatch_lake::{
    CommitOutcome, CoveredRange, DeadLetter, Lake, LakeError, PutStatus, StreamId, WrittenFile,
};
use rolewatch_parse::Rejected;

use crate::commands::DetectionRun;
use crate::input::{Chunk, InputCounts, Span};
use crate::intents::Intents;
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
    /// Chunks committed by a new manifest.
    pub committed: u64,
    /// Chunks whose span an earlier run had already made durable (skipped whole).
    pub already_durable: u64,
    /// Events stored.
    pub events: u64,
    /// Dead letters stored.
    pub dead_letters: u64,
}

/// What a run came to, from [`Pipeline::finish`].
pub struct RunSummary {
    /// The alerts raised by the final flush of the detectors' windows.
    pub flushed: Vec<Alert>,
    /// Alerts per detector.
    pub by_detector: BTreeMap<String, u64>,
    /// The lake writes.
    pub tally: LakeTally,
}

/// The stages after parsing.
pub struct Pipeline {
    lake: Lake,
    detection: DetectionRun,
    metrics: Arc<Metrics>,
    tally: LakeTally,
    /// Keys whose integrity incident is already in the chain (recorded once, not per retry).
    incidents: HashSet<String>,
    /// Where a chunk is recorded between its commit and its alerts reaching the outbox (`None`
    /// unless [`Pipeline::with_intents`] was called).
    intents: Option<Intents>,
    /// Saving the detectors' learned state while running ([`Pipeline::with_checkpoints`]).
    checkpoints: Option<Checkpoints>,
}

/// When the detectors' state was last saved, whether they saw events since, and which streams
/// have a chunk detected whose alerts are not in the outbox yet (the state is saved only when
/// there is none).
struct Checkpoints {
    interval: Duration,
    last: Instant,
    changed: bool,
    unsaved: BTreeSet<StreamId>,
}

/// [`Pipeline::process`] found another range declared at a Kafka chunk's start and wrote
/// nothing: a member of the group that lost the partition without knowing it yet (a zombie),
/// or one that crashed after declaring it, cut the partition elsewhere, and may have written
/// that chunk's files. The first declaration of a start stands, so the caller cuts the
/// partition there (`KafkaRun::recut`): either writer then writes the same files and one
/// manifest lists them, where writing this chunk would leave the other one's files unlisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclaredOtherwise {
    /// The last offset of the declared chunk.
    pub last_offset: i64,
}

impl std::fmt::Display for DeclaredOtherwise {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "another chunk, ending at offset {}, was declared at this start", self.last_offset)
    }
}

impl std::error::Error for DeclaredOtherwise {}

/// A step of a chunk's commit where [`crash_point`] can stop the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashStep {
    /// The chunk's files are written; its manifest is not.
    AfterFiles,
    /// Its manifest is written; detection and the Kafka offset commit have not run.
    AfterManifest,
}

impl CrashStep {
    fn name(self) -> &'static str {
        match self {
            Self::AfterFiles => "after-files",
            Self::AfterManifest => "after-manifest",
        }
    }
}

/// A test hook for the crash tests of RELIABILITY.md AT-01 ("a crash at each commit step"):
/// `ROLEWATCH_CRASH_AT=<step>[:<n>]` aborts the process, as a crash would (nothing flushed, no
/// destructor run), the `n`-th time (default the first) a chunk reaches `step`
/// (`after-files` or `after-manifest`). Never set in production; unset, this is one load.
fn crash_point(step: CrashStep) {
    static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static REACHED: AtomicU64 = AtomicU64::new(0);
    let plan = PLAN.get_or_init(|| {
        let value = std::env::var("ROLEWATCH_CRASH_AT").ok()?;
        let (name, nth) = value.split_once(':').unwrap_or((value.as_str(), "1"));
        Some((name.to_owned(), nth.parse().unwrap_or(1)))
    });
    if let Some((name, nth)) = plan
        && name == step.name()
        && REACHED.fetch_add(1, Ordering::Relaxed) + 1 == *nth
    {
        tracing::error!(step = name, "ROLEWATCH_CRASH_AT: aborting here, as a crash would");
        std::process::abort();
    }
}

impl Pipeline {
    /// A pipeline writing to `lake` and detecting with `detection`.
    pub fn new(lake: Lake, detection: DetectionRun, metrics: Arc<Metrics>) -> Self {
        Self {
            lake,
            detection,
            metrics,
            tally: LakeTally::default(),
            incidents: HashSet::new(),
            intents: None,
            checkpoints: None,
        }
    }

    /// Saves the detectors' learned state every `interval` while running, at a moment when
    /// every chunk detected has its alerts in the outbox (see [`DetectionRun::checkpoint`]),
    /// so that a crash does not take all the learning since the last clean stop with it.
    pub fn with_checkpoints(mut self, interval: Duration) -> Self {
        self.checkpoints =
            Some(Checkpoints { interval, last: Instant::now(), changed: false, unsaved: BTreeSet::new() });
        self
    }

    /// Observes a chunk's events, and remembers that `stream` has alerts to save.
    fn observe(&mut self, stream: &StreamId, events: &[AuditEvent]) -> anyhow::Result<Vec<Alert>> {
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.changed = true;
            checkpoints.unsaved.insert(stream.clone());
        }
        self.detection.observe(events)
    }

    /// Records detection intents in `intents` (see [`crate::intents`]): a chunk committed just
    /// before a crash is detected again on the next start by [`Pipeline::recover_detections`].
    /// The caller then calls [`Pipeline::alerts_saved`] once a chunk's alerts are in the outbox.
    pub fn with_intents(mut self, intents: Intents) -> Self {
        self.intents = Some(intents);
        self
    }

    /// Says that the alerts of `stream`'s last chunk are in the outbox: its intent is dropped.
    /// The detectors' state is saved then if a checkpoint is due ([`Pipeline::checkpoint_if_due`]).
    pub fn alerts_saved(&mut self, stream: &StreamId) -> anyhow::Result<()> {
        if let Some(intents) = &self.intents {
            intents.end(stream)?;
        }
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.unsaved.remove(stream);
        }
        self.checkpoint_if_due();
        Ok(())
    }

    /// Saves the detectors' learned state if they saw events since the last save, the
    /// checkpoint interval has passed, and every chunk detected has its alerts in the outbox.
    /// The daemon also calls this when idle, so that a quiet source's last chunk is saved too.
    /// A failure is logged: the next checkpoint, or the stop, saves the state.
    pub fn checkpoint_if_due(&mut self) {
        let Some(checkpoints) = &mut self.checkpoints else { return };
        if !checkpoints.changed
            || !checkpoints.unsaved.is_empty()
            || checkpoints.last.elapsed() < checkpoints.interval
        {
            return;
        }
        checkpoints.last = Instant::now();
        match self.detection.checkpoint() {
            Ok(()) => {
                checkpoints.changed = false;
                self.metrics.detector_state_saved.set(Utc::now().timestamp());
            }
            Err(error) => tracing::warn!(error = %format!("{error:#}"), "cannot save the detectors' state"),
        }
    }

    /// Detects again the chunks an earlier run committed but may not have detected (a crash
    /// between the manifest and the outbox): every intent whose span the lake holds as durable
    /// is read back from the lake and detected. Returns the alerts and the streams whose intents
    /// to drop (through [`Pipeline::alerts_saved`]) once the alerts are in the outbox. Intents
    /// whose span is not durable are chunks that were never committed: the source reads them
    /// again, and the intent goes.
    pub async fn recover_detections(&mut self) -> anyhow::Result<(Vec<Alert>, Vec<StreamId>)> {
        let Some(intents) = &self.intents else { return Ok((Vec::new(), Vec::new())) };
        let pending = intents.pending()?;
        let mut alerts = Vec::new();
        let mut streams = Vec::new();
        for intent in pending {
            let durable = self
                .lake
                .durable_position(&intent.stream)
                .await
                .context("cannot read the lake's manifests")?;
            if intent.is_covered_by(durable.as_ref()) {
                let mut events = Vec::new();
                for file in &intent.files {
                    events.extend(
                        self.lake
                            .read_event_file(&file.key, &file.sha256)
                            .await
                            .with_context(|| format!("cannot read back {} to detect it again", file.key))?,
                    );
                }
                tracing::warn!(
                    stream = intent.stream.as_str(),
                    events = events.len(),
                    "a chunk was committed before the last stop but maybe not detected: detecting it again"
                );
                self.metrics.redetected_events.inc_by(events.len() as u64);
                let raised = self.observe(&intent.stream, &events)?;
                count_alerts(&self.metrics, &raised);
                alerts.extend(raised);
            }
            streams.push(intent.stream);
        }
        Ok((alerts, streams))
    }

    /// The lake the pipeline writes to.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Stores a chunk and commits it: its events and dead letters are written create-only,
    /// then a manifest lists them with the span of the input they account for, which makes
    /// that span durable. Only then do the detectors see the events. What an earlier run (or
    /// another consumer of the group) already made durable is dropped first: a chunk inside
    /// the durable span is skipped whole, and one that straddles its end keeps only the records
    /// after it, so a grown file ingested again or a partition re-read after a rebalance
    /// stores and alerts on each record once. Returns the alerts raised (already printed as
    /// NDJSON).
    pub async fn process(
        &mut self,
        source: &str,
        stream: &StreamId,
        chunk: &Chunk,
    ) -> anyhow::Result<Vec<Alert>> {
        if chunk.span.is_empty() {
            return Ok(Vec::new());
        }
        let durable = self.lake.durable_position(stream).await.context("cannot read the lake's manifests")?;
        let chunk = match not_yet_durable(chunk, durable.as_ref()) {
            Some(chunk) => chunk,
            None => {
                self.tally.already_durable += 1;
                // The retry of a chunk whose manifest landed although its put reported a
                // failure: its intent is still here and it was never detected.
                let range = covered_range(&chunk.span);
                let interrupted = match &self.intents {
                    Some(intents) => intents.get(stream)?.is_some_and(|intent| intent.range == range),
                    None => false,
                };
                if !interrupted {
                    return Ok(Vec::new());
                }
                let alerts = self.observe(stream, &chunk.events)?;
                count_alerts(&self.metrics, &alerts);
                return Ok(alerts);
            }
        };
        let range = covered_range(&chunk.span);
        let started = Instant::now();
        let dead_letters: Vec<DeadLetter> = chunk.rejected.iter().map(dead_letter).collect();
        // Chunks are cut by age too (and a file grows), so a restart would not cut this one at
        // the same place unless told: it reads this declaration (`KafkaRun`,
        // `Pipeline::declared_file_chunk`).
        let declared = match self.lake.declare_chunk(stream, &range).await {
            Ok(declared) => declared,
            Err(error) => return Err(self.store_failed(error, source).await),
        };
        if declared != range {
            // Declarations are per stream: a Kafka chunk's is a Kafka range.
            if let CoveredRange::Kafka { last_offset, .. } = &declared {
                tracing::warn!(
                    stream = stream.as_str(),
                    ?declared,
                    ?range,
                    "another chunk was declared at this start (a member of the group that lost the partition, or one that crashed): cutting as declared"
                );
                return Err(anyhow::Error::new(DeclaredOtherwise { last_offset: *last_offset }));
            }
            tracing::warn!(
                stream = stream.as_str(),
                ?declared,
                ?range,
                "another range was declared for this chunk's start (the file changed?); files of that one may stay unlisted"
            );
        }
        let written = async {
            let mut files = self.lake.write_events(stream, &chunk.events).await?;
            files.extend(self.lake.write_dead_letters(stream, &dead_letters).await?);
            Ok::<_, LakeError>(files)
        }
        .await;
        let files = match written {
            Ok(files) => files,
            Err(error) => return Err(self.store_failed(error, source).await),
        };
        crash_point(CrashStep::AfterFiles);
        if let Some(intents) = &self.intents {
            // No manifest without the intent: otherwise a crash right after it could lose alerts.
            intents.begin(stream, &range, &files)?;
        }
        let positions = BTreeMap::from([(stream.clone(), range)]);
        let outcome = match self.lake.commit(&files, &positions, Utc::now()).await {
            Ok(outcome) => outcome,
            Err(error) => return Err(self.store_failed(error, source).await),
        };
        crash_point(CrashStep::AfterManifest);
        let CommitOutcome::Committed(manifest) = outcome else {
            // Another writer made the same span durable with the same files meanwhile (and
            // detects it).
            self.tally.already_durable += 1;
            self.alerts_saved(stream)?;
            return Ok(Vec::new());
        };
        self.tally.committed += 1;
        self.metrics.last_manifest_timestamp.set(manifest.created_at.timestamp());
        for file in &files {
            let kind = if file.key.starts_with(rolewatch_lake::DEAD_LETTERS_PREFIX) {
                "dead_letters"
            } else {
                "events"
            };
            self.count_file(kind, file);
        }
        self.tally.events += chunk.events.len() as u64;
        self.tally.dead_letters += dead_letters.len() as u64;
        self.metrics.events_stored.inc_by(chunk.events.len() as u64);
        self.metrics.dead_letters_stored.inc_by(dead_letters.len() as u64);
        self.metrics.flush_duration.observe(started.elapsed().as_secs_f64());

        let alerts = self.observe(stream, &chunk.events)?;
        count_alerts(&self.metrics, &alerts);
        Ok(alerts)
    }

    /// The bytes of the chunk of a file's `stream` declared in the lake but not committed (a
    /// run stopped between its files and its manifest), if any: the reader should cut it the
    /// same way ([`crate::input::LineFeeder::cut_as_declared`]), so that the files left behind
    /// are committed rather than stored again under other names. Kafka partitions look theirs
    /// up on assignment (`KafkaRun`). A failed lookup is logged and reads as none: cutting
    /// elsewhere loses nothing.
    pub async fn declared_file_chunk(&self, stream: &StreamId) -> Option<std::ops::Range<u64>> {
        let from = match self.lake.durable_position(stream).await {
            Ok(durable) => durable.map_or(0, |range| range.resume_at()),
            Err(error) => {
                tracing::warn!(stream = stream.as_str(), %error, "cannot read the lake's manifests");
                return None;
            }
        };
        match self.lake.next_declared_chunk(stream, from).await {
            Ok(Some(CoveredRange::File { start_byte, end_byte, .. })) => {
                tracing::info!(
                    stream = stream.as_str(),
                    start_byte,
                    end_byte,
                    "a chunk was declared but not committed before the last stop: cutting it the same way"
                );
                Some(start_byte..end_byte)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(stream = stream.as_str(), %error, "cannot read the lake's chunk declarations");
                None
            }
        }
    }

    /// Counts a failed store step and words its error.
    async fn store_failed(&mut self, error: LakeError, source: &str) -> anyhow::Error {
        self.lake_failed(&error).await;
        anyhow::Error::new(error).context(format!("cannot store a chunk of {source}"))
    }

    /// Writes a heartbeat manifest if none was written for `interval`, so that a verifier can
    /// tell a quiet lake from a truncated one. A failure is logged and retried at the next call.
    pub async fn heartbeat_if_idle(&self, interval: Duration) {
        match self.lake.heartbeat_if_idle(Utc::now(), interval).await {
            Ok(Some(manifest)) => {
                tracing::debug!(seq = manifest.seq, "heartbeat manifest written");
                self.metrics.last_manifest_timestamp.set(manifest.created_at.timestamp());
            }
            Ok(None) => {}
            Err(error) => {
                self.metrics.write_errors.with_label_values(&["store"]).inc();
                tracing::warn!(%error, "cannot write a heartbeat manifest; retrying");
            }
        }
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
        let Self { detection, metrics, tally, .. } = self;
        let (flushed, by_detector) = detection.finish()?;
        count_alerts(&metrics, &flushed);
        Ok(RunSummary { flushed, by_detector, tally })
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

    /// Counts a failed lake write. A different object at a key the lake meant to create is an
    /// integrity incident: it is logged, and recorded once per key in the manifest chain so
    /// that the evidence outlives the log (the object itself is never touched, and the chunk
    /// stays unstored: its source stalls).
    async fn lake_failed(&mut self, error: &LakeError) {
        let Some(incident) = rolewatch_lake::incident_of(error) else {
            self.metrics.write_errors.with_label_values(&["store"]).inc();
            return;
        };
        self.metrics.write_errors.with_label_values(&["integrity"]).inc();
        if !self.incidents.insert(incident.key.clone()) {
            return;
        }
        let key = incident.key.clone();
        match self.lake.record_incident(incident, Utc::now()).await {
            Ok(manifest) => tracing::error!(%key, seq = manifest.seq,
                "INTEGRITY: another object is stored at a key this chunk needs; it is kept untouched, \
                 the incident is recorded in the manifest chain, and the source stalls here"),
            Err(record_error) => tracing::error!(%key, error = %record_error,
                "INTEGRITY: another object is stored at a key this chunk needs, and the incident \
                 could not be recorded in the manifest chain"),
        }
    }
}

/// The part of `chunk` after `durable` (the span the lake's manifests cover for its stream):
/// the whole chunk when it starts at or after the durable end, `None` when it lies inside the
/// durable span, or the records from the durable end on when it straddles it. A chunk that
/// starts before the durable span is returned whole: the lake refuses to commit it
/// ([`LakeError::Overlap`]) rather than guess.
fn not_yet_durable<'c>(chunk: &'c Chunk, durable: Option<&CoveredRange>) -> Option<Cow<'c, Chunk>> {
    let Some(durable) = durable else { return Some(Cow::Borrowed(chunk)) };
    let range = covered_range(&chunk.span);
    let resume_at = durable.resume_at();
    if range.start() >= resume_at || range.start() < durable.start() {
        return Some(Cow::Borrowed(chunk));
    }
    if range.resume_at() <= resume_at {
        return None;
    }
    let after = |offset: u64| offset >= resume_at;
    let span = match &chunk.span {
        Span::Bytes { path, end, .. } => Span::Bytes { path: path.clone(), start: resume_at, end: *end },
        Span::Offsets { topic, partition, last, .. } => Span::Offsets {
            topic: topic.clone(),
            partition: *partition,
            first: i64::try_from(resume_at).unwrap_or(i64::MAX),
            last: *last,
        },
    };
    Some(Cow::Owned(Chunk {
        events: chunk
            .events
            .iter()
            .filter(|event| {
                event.source_offset.and_then(|offset| u64::try_from(offset).ok()).is_none_or(after)
            })
            .cloned()
            .collect(),
        rejected: chunk
            .rejected
            .iter()
            .filter(|record| after(position_offset(&record.position)))
            .cloned()
            .collect(),
        span,
    }))
}

/// A record's offset in its stream: the byte offset in a file, or the Kafka offset.
fn position_offset(position: &SourcePosition) -> u64 {
    match position {
        SourcePosition::File { offset, .. } => *offset,
        SourcePosition::Kafka { offset, .. } => u64::try_from(*offset).unwrap_or(0),
    }
}

/// The lake's name for the part of an input a chunk accounts for.
pub fn covered_range(span: &Span) -> CoveredRange {
    match span {
        Span::Bytes { path, start, end } => {
            CoveredRange::File { path: path.clone(), start_byte: *start, end_byte: *end }
        }
        Span::Offsets { topic, partition, first, last } => CoveredRange::Kafka {
            topic: topic.clone(),
            partition: *partition,
            first_offset: *first,
            last_offset: *last,
        },
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rolewatch_event::{AuditEvent, LogFormat, Source};
    use rolewatch_parse::RejectReason;

    use super::*;

    fn kafka(offset: i64) -> SourcePosition {
        SourcePosition::Kafka { topic: "pg".into(), partition: 1, offset }
    }

    fn event_at(position: &SourcePosition) -> AuditEvent {
        let ts = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).single().unwrap_or_default();
        let mut event = AuditEvent::new(ts, Source::Postgres, LogFormat::PgauditJsonlog);
        event.set_position(position);
        event
    }

    /// A Kafka chunk of offsets `first..=last`: an event per even offset, a rejected record per
    /// odd one.
    fn kafka_chunk(first: i64, last: i64) -> Chunk {
        let mut chunk = Chunk {
            span: Span::Offsets { topic: "pg".to_owned(), partition: 1, first, last },
            ..Chunk::default()
        };
        for offset in first..=last {
            if offset % 2 == 0 {
                chunk.events.push(event_at(&kafka(offset)));
            } else {
                chunk.rejected.push(Rejected {
                    position: kafka(offset),
                    reason: RejectReason::InvalidJson,
                    detail: String::new(),
                    raw: Vec::new(),
                });
            }
        }
        chunk
    }

    fn durable(first_offset: i64, last_offset: i64) -> CoveredRange {
        CoveredRange::Kafka { topic: "pg".to_owned(), partition: 1, first_offset, last_offset }
    }

    #[test]
    fn nothing_durable_or_a_chunk_after_the_durable_end_is_kept_whole() {
        let chunk = kafka_chunk(10, 19);
        assert!(matches!(not_yet_durable(&chunk, None), Some(Cow::Borrowed(_))));
        assert!(matches!(not_yet_durable(&chunk, Some(&durable(0, 9))), Some(Cow::Borrowed(_))));
        // A gap (compacted or expired offsets) is not an overlap.
        assert!(matches!(not_yet_durable(&chunk, Some(&durable(0, 4))), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn a_chunk_inside_the_durable_span_is_dropped() {
        assert!(not_yet_durable(&kafka_chunk(10, 19), Some(&durable(0, 19))).is_none());
        assert!(not_yet_durable(&kafka_chunk(10, 19), Some(&durable(0, 30))).is_none());
    }

    #[test]
    fn a_straddling_chunk_keeps_only_the_records_after_the_durable_end() {
        let chunk = kafka_chunk(10, 19);
        let Some(Cow::Owned(rest)) = not_yet_durable(&chunk, Some(&durable(0, 14))) else {
            panic!("expected a trimmed chunk");
        };
        assert_eq!(rest.span, Span::Offsets { topic: "pg".to_owned(), partition: 1, first: 15, last: 19 });
        let events: Vec<Option<i64>> = rest.events.iter().map(|event| event.source_offset).collect();
        assert_eq!(events, [Some(16), Some(18)]);
        let rejected: Vec<u64> =
            rest.rejected.iter().map(|record| position_offset(&record.position)).collect();
        assert_eq!(rejected, [15, 17, 19]);
    }

    #[test]
    fn file_chunks_are_trimmed_at_the_durable_byte() {
        let position = |offset: u64| SourcePosition::File { file: "a.log".into(), line: 1, offset };
        let chunk = Chunk {
            events: [0, 100, 200, 300].map(|offset| event_at(&position(offset))).to_vec(),
            rejected: Vec::new(),
            span: Span::Bytes { path: "a.log".to_owned(), start: 0, end: 400 },
        };
        let done = CoveredRange::File { path: "a.log".to_owned(), start_byte: 0, end_byte: 200 };
        let Some(Cow::Owned(rest)) = not_yet_durable(&chunk, Some(&done)) else {
            panic!("expected a trimmed chunk");
        };
        assert_eq!(rest.span, Span::Bytes { path: "a.log".to_owned(), start: 200, end: 400 });
        assert_eq!(
            rest.events.iter().map(|event| event.source_offset).collect::<Vec<_>>(),
            [Some(200), Some(300)]
        );
    }

    /// The state a commit leaves when its manifest landed although the store reported a
    /// failure: the chunk's intent recorded, its files and manifest in the lake. The chunk's
    /// retry finds it durable and, its intent still being there, detects it; once its alerts
    /// are saved the intent goes, and a further replay raises nothing again.
    #[tokio::test]
    async fn a_durable_chunk_whose_intent_remains_is_detected_on_its_retry() {
        let lake_dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let stream = StreamId::for_kafka("pg", 1);
        let mut chunk = kafka_chunk(0, 2);
        chunk.rejected.clear();
        for event in &mut chunk.events {
            event.role = Some("app_reader".into());
            event.command = "TRUNCATE TABLE".into();
            event.statement = Some("TRUNCATE orders".to_owned());
            event.objects = vec!["public.orders".into()];
        }
        let range = covered_range(&chunk.span);
        let lake = Lake::open_local(lake_dir.path()).unwrap();
        let files = lake.write_events(&stream, &chunk.events).await.unwrap();
        Intents::new(state.path()).begin(&stream, &range, &files).unwrap();
        lake.commit(&files, &BTreeMap::from([(stream.clone(), range)]), Utc::now()).await.unwrap();

        // A pipeline over the lake with the default detectors, as a (re)started process has.
        let started = || {
            let detection = DetectionRun::new(&crate::config::Config::default(), None).unwrap();
            Pipeline::new(Lake::open_local(lake_dir.path()).unwrap(), detection, Arc::new(Metrics::new()))
                .with_intents(Intents::new(state.path()))
        };
        let mut pipeline = started();
        let alerts = pipeline.process("kafka", &stream, &chunk).await.unwrap();
        let truncates: Vec<&Alert> =
            alerts.iter().filter(|alert| alert.detector == "dangerous_command").collect();
        assert_eq!(truncates.len(), 1, "the durable chunk's TRUNCATE was not detected: {alerts:?}");
        assert_eq!(pipeline.tally.committed, 0, "nothing is written again");

        pipeline.alerts_saved(&stream).unwrap();
        assert!(Intents::new(state.path()).get(&stream).unwrap().is_none());
        // A fresh detection run, as after a restart (the first one would only fold a repeat).
        let again = started().process("kafka", &stream, &chunk).await.unwrap();
        assert!(again.is_empty(), "a replay of a detected chunk raised {again:?}");
    }

    /// The learned state is saved only when every chunk detected has its alerts in the outbox:
    /// saved while one had not, a crash would detect that chunk again against a state that
    /// already learned from it, and its `new_origin` alerts would never be raised.
    #[tokio::test]
    async fn the_state_is_saved_only_when_no_chunk_waits_for_its_alerts() {
        let lake_dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let state_file = state.path().join("detector-state.json");
        let detection =
            DetectionRun::new(&crate::config::Config::default(), Some(state_file.clone())).unwrap();
        let mut pipeline =
            Pipeline::new(Lake::open_local(lake_dir.path()).unwrap(), detection, Arc::new(Metrics::new()))
                .with_intents(Intents::new(state.path()))
                .with_checkpoints(Duration::ZERO);
        pipeline.checkpoint_if_due();
        assert!(!state_file.exists(), "nothing was observed: nothing to save");

        let (first, second) = (StreamId::for_kafka("pg", 1), StreamId::for_kafka("pg", 2));
        let mut chunk = kafka_chunk(0, 2);
        for event in &mut chunk.events {
            event.role = Some("app_reader".into());
            event.client_addr = Some("10.0.0.7".into());
            event.success = true;
        }
        pipeline.process("kafka", &first, &chunk).await.unwrap();
        let Chunk { events, rejected, .. } = kafka_chunk(0, 2);
        let other = Chunk {
            events,
            rejected,
            span: Span::Offsets { topic: "pg".to_owned(), partition: 2, first: 0, last: 2 },
        };
        pipeline.process("kafka", &second, &other).await.unwrap();
        pipeline.checkpoint_if_due();
        assert!(!state_file.exists(), "saved while two chunks' alerts were not in the outbox");
        pipeline.alerts_saved(&first).unwrap();
        assert!(!state_file.exists(), "saved while a chunk's alerts were not in the outbox");
        pipeline.alerts_saved(&second).unwrap();
        let saved = std::fs::read_to_string(&state_file).expect("saved once every chunk's alerts were");
        assert!(saved.contains("10.0.0.7"), "{saved}");

        // Saved again only after more events: the file is not rewritten by an idle daemon.
        std::fs::remove_file(&state_file).unwrap();
        pipeline.checkpoint_if_due();
        assert!(!state_file.exists());
    }

    /// The Parquet files under `dir`.
    fn parquet_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(parquet_files(&path));
            } else if path.extension().is_some_and(|extension| extension == "parquet") {
                found.push(path);
            }
        }
        found
    }

    /// Another chunk declared at a Kafka chunk's start: nothing is written (its files would
    /// stay unlisted beside the declared chunk's), and the caller learns where to cut.
    #[tokio::test]
    async fn a_kafka_chunk_declared_otherwise_writes_nothing() {
        let lake_dir = tempfile::tempdir().unwrap();
        let stream = StreamId::for_kafka("pg", 1);
        let lake = Lake::open_local(lake_dir.path()).unwrap();
        lake.declare_chunk(&stream, &durable(0, 4)).await.unwrap();
        let detection = DetectionRun::new(&crate::config::Config::default(), None).unwrap();
        let mut pipeline = Pipeline::new(lake, detection, Arc::new(Metrics::new()));

        let error = pipeline.process("kafka", &stream, &kafka_chunk(0, 9)).await.unwrap_err();
        assert_eq!(error.downcast_ref::<DeclaredOtherwise>(), Some(&DeclaredOtherwise { last_offset: 4 }));
        assert_eq!(parquet_files(lake_dir.path()), Vec::<std::path::PathBuf>::new());

        let (head, tail) = crate::kafka::split_chunk(kafka_chunk(0, 9), 4);
        pipeline.process("kafka", &stream, &head).await.unwrap();
        pipeline.process("kafka", &stream, &tail.unwrap()).await.unwrap();
        assert_eq!(pipeline.tally.committed, 2);
        let durable_now = pipeline.lake().durable_position(&stream).await.unwrap();
        assert_eq!(durable_now.map(|range| range.resume_at()), Some(10));
    }

    #[test]
    fn a_chunk_starting_before_the_durable_span_is_left_to_the_lake_to_refuse() {
        let chunk = kafka_chunk(0, 9);
        assert!(matches!(not_yet_durable(&chunk, Some(&durable(5, 20))), Some(Cow::Borrowed(_))));
    }
}
