//! Detection intents: what closes the gap between a chunk's commit and its alerts.
//!
//! A chunk is detected only after its manifest exists, and its alerts reach the outbox only
//! after detection. A crash in between would leave the chunk durable (so a restart skips it) and
//! its alerts never raised. So before the manifest is written the pipeline records an intent in
//! the state directory: the stream, the span the chunk covers and its event files with their
//! SHA-256. The intent is removed once the chunk's alerts are in the outbox. On start, an intent
//! whose span the lake holds as durable is a chunk that was committed but maybe not detected:
//! its events are read back from the lake (checked against the recorded hashes) and detected
//! again. Alerts are therefore raised at least once; a crash after the outbox write but before
//! the removal raises that chunk's alerts a second time (the same detector, role and events).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rolewatch_lake::{CoveredRange, StreamId, WrittenFile};
use serde::{Deserialize, Serialize};

/// One event file of a chunk, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentFile {
    /// The object key in the lake.
    pub key: String,
    /// SHA-256 of its content, hex.
    pub sha256: String,
}

/// A chunk committed (or about to be) whose alerts are not yet in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The stream the chunk belongs to.
    pub stream: StreamId,
    /// The span of the input it accounts for.
    pub range: CoveredRange,
    /// Its event files (not its dead letters: they raise no alerts).
    pub files: Vec<IntentFile>,
}

impl Intent {
    /// Whether `durable` (the stream's durable span in the lake) covers this chunk's span.
    pub fn is_covered_by(&self, durable: Option<&CoveredRange>) -> bool {
        durable.is_some_and(|durable| {
            self.range.start() >= durable.start() && self.range.resume_at() <= durable.resume_at()
        })
    }
}

/// The intents in `<state>/detection-intents/`, one file per stream (a stream has at most one
/// chunk in flight).
#[derive(Debug, Clone)]
pub struct Intents {
    dir: PathBuf,
}

impl Intents {
    /// The intents kept under the state directory `state`.
    pub fn new(state: &Path) -> Self {
        Self { dir: state.join("detection-intents") }
    }

    fn path_of(&self, stream: &StreamId) -> PathBuf {
        // Stream ids hold only `[A-Za-z0-9_-]` (StreamId::parse), so they are safe file names.
        self.dir.join(format!("{}.json", stream.as_str()))
    }

    /// Records the intent for a chunk of `stream` covering `range` whose files are `files`
    /// (event files only are kept), durably ([`crate::files::replace_durably`]).
    pub fn begin(
        &self,
        stream: &StreamId,
        range: &CoveredRange,
        files: &[WrittenFile],
    ) -> anyhow::Result<()> {
        let intent = Intent {
            stream: stream.clone(),
            range: range.clone(),
            files: files
                .iter()
                .filter(|file| file.key.starts_with(&format!("{}/", rolewatch_lake::EVENTS_PREFIX)))
                .map(|file| IntentFile { key: file.key.clone(), sha256: file.sha256.clone() })
                .collect(),
        };
        let text = serde_json::to_vec(&intent).context("cannot encode a detection intent")?;
        crate::files::replace_durably(&self.path_of(stream), &text)
            .context("cannot record a detection intent")
    }

    /// Removes the intent of `stream`: its chunk's alerts are in the outbox (or it had none to
    /// raise here). Removing an absent intent is not an error.
    pub fn end(&self, stream: &StreamId) -> anyhow::Result<()> {
        let path = self.path_of(stream);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    /// The intent of `stream`, if one is recorded.
    pub fn get(&self, stream: &StreamId) -> anyhow::Result<Option<Intent>> {
        let path = self.path_of(stream);
        match std::fs::read(&path) {
            Ok(text) => serde_json::from_slice(&text)
                .map(Some)
                .with_context(|| format!("{} is not a detection intent", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Every intent left by an earlier run, by stream. An unreadable one is an error that names
    /// its file: it stands for alerts that may be missing.
    pub fn pending(&self) -> anyhow::Result<Vec<Intent>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error).with_context(|| format!("cannot read {}", self.dir.display())),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                serde_json::from_slice(&text)
                    .with_context(|| format!("{} is not a detection intent", path.display()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rolewatch_lake::PutStatus;

    use super::*;

    fn written(key: &str) -> WrittenFile {
        WrittenFile {
            key: key.to_owned(),
            bytes: 10,
            rows: 1,
            sha256: format!("{:064}", key.len()),
            status: PutStatus::Created,
        }
    }

    fn kafka_range(first: i64, last: i64) -> CoveredRange {
        CoveredRange::Kafka { topic: "pg".into(), partition: 1, first_offset: first, last_offset: last }
    }

    #[test]
    fn intents_survive_until_ended_and_keep_only_event_files() {
        let state = tempfile::tempdir().unwrap();
        let intents = Intents::new(state.path());
        assert!(intents.pending().unwrap().is_empty(), "no directory yet");
        let stream = StreamId::for_kafka("pg", 1);
        let files = [written("events/date=2026-11-26/hour=10/a.parquet"), written("dead_letters/b.parquet")];
        intents.begin(&stream, &kafka_range(10, 19), &files).unwrap();
        // A second chunk of the same stream replaces the first's intent.
        intents.begin(&stream, &kafka_range(20, 29), &files).unwrap();
        let other = StreamId::for_kafka("pg", 2);
        intents.begin(&other, &kafka_range(0, 9), &files).unwrap();

        let pending = Intents::new(state.path()).pending().unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].stream, stream);
        assert_eq!(pending[0].range, kafka_range(20, 29));
        assert_eq!(pending[0].files.len(), 1);
        assert!(pending[0].files[0].key.starts_with("events/"));

        assert_eq!(intents.get(&stream).unwrap().map(|intent| intent.range), Some(kafka_range(20, 29)));
        intents.end(&stream).unwrap();
        intents.end(&stream).unwrap();
        assert_eq!(intents.get(&stream).unwrap(), None);
        assert_eq!(intents.pending().unwrap().len(), 1);

        std::fs::write(state.path().join("detection-intents/kafka-x-00001.json"), b"{").unwrap();
        let error = intents.pending().unwrap_err();
        assert!(format!("{error:#}").contains("kafka-x-00001.json"), "{error:#}");
    }

    #[test]
    fn an_intent_is_covered_only_by_a_durable_span_that_holds_it() {
        let intent =
            Intent { stream: StreamId::for_kafka("pg", 1), range: kafka_range(20, 29), files: vec![] };
        assert!(!intent.is_covered_by(None));
        assert!(intent.is_covered_by(Some(&kafka_range(0, 29))));
        assert!(intent.is_covered_by(Some(&kafka_range(0, 40))));
        assert!(!intent.is_covered_by(Some(&kafka_range(0, 19))), "the manifest was not written");
        assert!(!intent.is_covered_by(Some(&kafka_range(0, 25))));
    }
}
