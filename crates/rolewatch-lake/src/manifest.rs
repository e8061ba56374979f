//! Manifests: the lake's commit records, chained by hash like CloudTrail's digest files.
//!
//! A manifest lists the files written since the one before it (key, SHA-256, size, rows) and the
//! source positions they cover, so that a restart resumes after the last durable position. It
//! names the previous manifest and its SHA-256, so the manifests form a chain: deleting,
//! altering, reordering or swapping any of them breaks it. A heartbeat manifest lists nothing and
//! is written when nothing else was for a while, so a truncated tail shows as a stale head.
//! `docs/lake.md` documents the format.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::naming::StreamId;
use crate::signing::ManifestSignature;
use crate::{DEAD_LETTERS_PREFIX, EVENTS_PREFIX, LakeError};

/// The prefix of manifests in the lake.
pub const MANIFESTS_PREFIX: &str = "_manifests";
/// The `format` of the manifests this version writes.
pub const MANIFEST_FORMAT: &str = "rolewatch-manifest-v1";

/// `_manifests/<seq:020>.json`.
pub fn manifest_key(seq: u64) -> String {
    format!("{MANIFESTS_PREFIX}/{seq:020}.json")
}

/// The sequence number in a manifest key, if `key` is one.
pub fn parse_manifest_key(key: &str) -> Option<u64> {
    let name = key.strip_prefix(MANIFESTS_PREFIX)?.strip_prefix('/')?.strip_suffix(".json")?;
    if name.len() != 20 || !name.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// What a manifest records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestKind {
    /// Files and the positions they cover.
    Data,
    /// Nothing: proof of life, so that a truncated tail shows.
    Heartbeat,
}

/// The kind of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// Parquet of the `events` table.
    Events,
    /// Parquet of the `dead_letters` table.
    DeadLetters,
}

impl FileKind {
    /// The kind of the file at `key`, by its top-level folder.
    pub fn of_key(key: &str) -> Option<Self> {
        let (top, _) = key.split_once('/')?;
        match top {
            EVENTS_PREFIX => Some(Self::Events),
            DEAD_LETTERS_PREFIX => Some(Self::DeadLetters),
            _ => None,
        }
    }
}

/// A data file listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// The object key, relative to the lake root.
    pub key: String,
    /// Events or dead letters.
    pub kind: FileKind,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows in the file.
    pub rows: u64,
}

/// The part of one input stream that a manifest covers: every record in it is in a listed file
/// (as an event or a dead letter) or was deliberately skipped (a blank line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CoveredRange {
    /// Offsets `first_offset..=last_offset` of a Kafka topic partition.
    Kafka {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The first offset covered.
        first_offset: i64,
        /// The last offset covered (inclusive).
        last_offset: i64,
    },
    /// Bytes `start_byte..end_byte` of a file (end exclusive).
    File {
        /// The path the file was read under (informational: the stream id is its identity).
        path: String,
        /// The first byte covered.
        start_byte: u64,
        /// One past the last byte covered: where reading resumes.
        end_byte: u64,
    },
}

impl CoveredRange {
    /// Where a reader resumes after this range: the next Kafka offset, or the next byte.
    pub fn resume_at(&self) -> u64 {
        match self {
            Self::Kafka { last_offset, .. } => u64::try_from(last_offset.saturating_add(1)).unwrap_or(0),
            Self::File { end_byte, .. } => *end_byte,
        }
    }

    /// Where this range starts, in the same unit as [`CoveredRange::resume_at`].
    pub fn start(&self) -> u64 {
        match self {
            Self::Kafka { first_offset, .. } => u64::try_from(*first_offset).unwrap_or(0),
            Self::File { start_byte, .. } => *start_byte,
        }
    }

    /// Whether the range is well formed (start before end).
    pub fn is_valid(&self) -> bool {
        match self {
            Self::Kafka { first_offset, last_offset, .. } => {
                0 <= *first_offset && first_offset <= last_offset
            }
            Self::File { start_byte, end_byte, .. } => start_byte < end_byte,
        }
    }

    /// The span from the start of `self` to the end of `later` (the durable part of a stream
    /// after `later` was committed on top of `self`).
    pub(crate) fn extended_by(&self, later: &Self) -> Self {
        match (self, later) {
            (
                Self::Kafka { first_offset, .. },
                Self::Kafka { topic, partition, first_offset: later_first, last_offset },
            ) => Self::Kafka {
                topic: topic.clone(),
                partition: *partition,
                first_offset: (*first_offset).min(*later_first),
                last_offset: *last_offset,
            },
            (Self::File { start_byte, .. }, Self::File { path, start_byte: later_start, end_byte }) => {
                Self::File {
                    path: path.clone(),
                    start_byte: (*start_byte).min(*later_start),
                    end_byte: *end_byte,
                }
            }
            _ => later.clone(),
        }
    }
}

/// A link to the manifest before this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousManifest {
    /// Its sequence number.
    pub seq: u64,
    /// SHA-256 of its bytes as stored, hex.
    pub sha256: String,
}

/// An object that was found at a key the lake meant to create, with other content. The object
/// was left untouched; the manifest records that it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// The key.
    pub key: String,
    /// SHA-256 of the object found there.
    pub stored_sha256: String,
    /// SHA-256 of what the lake would have written.
    pub rejected_sha256: String,
}

/// One manifest, as stored in `_manifests/<seq:020>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`] for this version.
    pub format: String,
    /// The sequence number, 1 for the first manifest; equal to the number in the key.
    pub seq: u64,
    /// Data or heartbeat.
    pub kind: ManifestKind,
    /// When it was written (the writer's clock).
    pub created_at: DateTime<Utc>,
    /// The manifest before this one; `None` only for seq 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousManifest>,
    /// The files this manifest commits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ManifestFile>,
    /// For each stream, the range the files cover.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub positions: BTreeMap<StreamId, CoveredRange>,
    /// Integrity incidents seen since the previous manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<Incident>,
    /// The Ed25519 signature over [`Manifest::signed_bytes`], if the writer has a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ManifestSignature>,
}

impl Manifest {
    /// The bytes a signature covers: the manifest's compact JSON without its signature. Every
    /// field takes part, the previous manifest's hash (and so its signature) included.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, LakeError> {
        let unsigned = Self { signature: None, ..self.clone() };
        serde_json::to_vec(&unsigned).map_err(|error| LakeError::Manifest {
            key: manifest_key(self.seq),
            reason: format!("cannot serialize: {error}"),
        })
    }

    /// The bytes stored: pretty JSON and a final newline, so people can read it.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LakeError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|error| LakeError::Manifest {
            key: manifest_key(self.seq),
            reason: format!("cannot serialize: {error}"),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Reads a stored manifest; `key` is only for the error message.
    pub fn from_bytes(key: &str, bytes: &[u8]) -> Result<Self, LakeError> {
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|error| LakeError::Manifest { key: key.to_owned(), reason: error.to_string() })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(LakeError::Manifest {
                key: key.to_owned(),
                reason: format!("unknown format {:?}", manifest.format),
            });
        }
        Ok(manifest)
    }
}

/// Where a manifest is and what it hashes to: the chain head that a caller can ship elsewhere
/// (the alert channel, a second store) so that tail truncation is detectable without waiting
/// for a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    /// The sequence number.
    pub seq: u64,
    /// The object key.
    pub key: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its `created_at`.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_seq() {
        assert_eq!(manifest_key(7), "_manifests/00000000000000000007.json");
        assert_eq!(parse_manifest_key(&manifest_key(7)), Some(7));
        assert_eq!(parse_manifest_key(&manifest_key(u64::MAX)), Some(u64::MAX));
        assert!(manifest_key(9) < manifest_key(10));
        for bad in
            ["_manifests/7.json", "_manifests/0000000000000000000x.json", "events/a.json", "_manifests/"]
        {
            assert_eq!(parse_manifest_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_manifest_round_trips_and_rejects_unknown_fields() {
        let mut positions = BTreeMap::new();
        positions.insert(
            StreamId::for_kafka("audit", 1),
            CoveredRange::Kafka { topic: "audit".into(), partition: 1, first_offset: 5, last_offset: 9 },
        );
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            seq: 2,
            kind: ManifestKind::Data,
            created_at: "2026-11-27T03:00:00Z".parse().unwrap(),
            previous: Some(PreviousManifest { seq: 1, sha256: "ab".repeat(32) }),
            files: vec![ManifestFile {
                key: "events/x.parquet".into(),
                kind: FileKind::Events,
                sha256: "cd".repeat(32),
                bytes: 10,
                rows: 5,
            }],
            positions,
            incidents: vec![],
            signature: None,
        };
        let bytes = manifest.to_bytes().unwrap();
        assert_eq!(Manifest::from_bytes("k", &bytes).unwrap(), manifest);
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        value["extra"] = serde_json::json!(1);
        assert!(Manifest::from_bytes("k", value.to_string().as_bytes()).is_err());
        assert_eq!(manifest.positions.values().next().unwrap().resume_at(), 10);
    }
}
