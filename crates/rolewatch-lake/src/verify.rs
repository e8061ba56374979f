//! `verify`: walks the manifest chain and every file, and names every problem it finds.
//!
//! Like CloudTrail's digest validation, but over the whole chain (a verifier that checks only
//! the ends can be fooled, GHSA-672p-m5jq-mrh8): every manifest's seq, link and signature, every
//! listed file's hash and size, every data file that no manifest lists, overlapping positions,
//! and the age of the head, so that a truncated tail shows once heartbeats are missed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::manifest::{
    CoveredRange, MANIFESTS_PREFIX, Manifest, ManifestKind, ManifestRef, manifest_key, parse_manifest_key,
};
use crate::naming::StreamId;
use crate::signing::{SignatureFault, check_signature};
use crate::store::{get_with_retry, sha256_hex};
use crate::{DEAD_LETTERS_PREFIX, EVENTS_PREFIX, Lake, LakeError};

/// What to check beyond the chain and the files.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The verifier's clock, for the head's age.
    pub now: DateTime<Utc>,
    /// The newest manifest must be younger than this (twice the heartbeat interval is the usual
    /// choice); `None` skips the check.
    pub max_head_age: Option<Duration>,
    /// Public keys whose signatures are accepted.
    pub trusted_keys: Vec<VerifyingKey>,
    /// Every manifest must carry a signature by a trusted key.
    pub require_signatures: bool,
    /// A chain head recorded elsewhere (the alert channel, a second store): the chain must
    /// reach it and hold it unchanged.
    pub expected_head: Option<ManifestRef>,
}

impl VerifyOptions {
    /// Checks the chain and the files only.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            max_head_age: None,
            trusted_keys: Vec::new(),
            require_signatures: false,
            expected_head: None,
        }
    }
}

/// One thing wrong with the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A manifest that is not valid JSON of the manifest format.
    MalformedManifest {
        /// Its key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest stored under the key of another seq (moved or swapped).
    MisplacedManifest {
        /// Its key.
        key: String,
        /// The seq it holds.
        holds_seq: u64,
    },
    /// Seqs with no manifest: deleted manifests.
    MissingManifests {
        /// The first missing seq.
        first: u64,
        /// The last missing seq.
        last: u64,
    },
    /// A manifest whose previous link does not match the manifest before it.
    BrokenChain {
        /// The seq of the manifest holding the bad link.
        seq: u64,
        /// How it does not match.
        reason: String,
    },
    /// A manifest without a signature where signatures are required.
    Unsigned {
        /// Its seq.
        seq: u64,
    },
    /// A manifest signed by a key that is not trusted.
    UnknownKey {
        /// Its seq.
        seq: u64,
        /// The key id it names.
        key_id: String,
    },
    /// A manifest whose signature does not verify.
    BadSignature {
        /// Its seq.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// A listed file that is not in the store.
    MissingFile {
        /// Its key.
        key: String,
        /// The manifest listing it.
        seq: u64,
    },
    /// A listed file whose content differs from what its manifest recorded.
    HashMismatch {
        /// Its key.
        key: String,
        /// The manifest listing it.
        seq: u64,
        /// SHA-256 and size recorded.
        expected: (String, u64),
        /// SHA-256 and size found.
        found: (String, u64),
    },
    /// A file that could not be read (other than not found).
    Unreadable {
        /// Its key.
        key: String,
        /// The store's error.
        reason: String,
    },
    /// A data file that no manifest lists: uncommitted (a crash before the commit, to be
    /// committed on restart) or planted.
    UnlistedFile {
        /// Its key.
        key: String,
    },
    /// An object under `_manifests/` that is not named like a manifest.
    StrayObject {
        /// Its key.
        key: String,
    },
    /// A file listed by two manifests: its records would count twice.
    ListedTwice {
        /// Its key.
        key: String,
        /// The first manifest listing it.
        first_seq: u64,
        /// The later one.
        seq: u64,
    },
    /// A manifest covering positions that an earlier one already covered: duplicates.
    OverlappingPositions {
        /// The stream.
        stream: String,
        /// The manifest.
        seq: u64,
        /// Where its range starts.
        start: u64,
        /// Where the earlier coverage ended.
        durable_until: u64,
    },
    /// An integrity incident the writer recorded in the chain (an object found with other
    /// content at a key it meant to create).
    RecordedIncident {
        /// The manifest recording it.
        seq: u64,
        /// The key of the object.
        key: String,
    },
    /// The newest manifest is older than allowed: heartbeats stopped, or the tail was cut off.
    StaleHead {
        /// Its seq (0 if there is no manifest at all).
        seq: u64,
        /// How old it is, in seconds.
        age_seconds: i64,
    },
    /// The chain ends before the head recorded elsewhere: the tail was cut off.
    TruncatedTail {
        /// The seq of the recorded head.
        expected_seq: u64,
        /// The seq of the newest manifest found (0 if none).
        found_seq: u64,
    },
    /// The manifest at the recorded head's seq differs from the recorded one.
    HeadMismatch {
        /// The seq.
        seq: u64,
        /// SHA-256 recorded elsewhere.
        expected_sha256: String,
        /// SHA-256 found (empty if the manifest is missing).
        found_sha256: String,
    },
}

impl Problem {
    /// A stable, machine-readable name for the kind of problem.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MalformedManifest { .. } => "malformed_manifest",
            Self::MisplacedManifest { .. } => "misplaced_manifest",
            Self::MissingManifests { .. } => "missing_manifest",
            Self::BrokenChain { .. } => "broken_chain",
            Self::Unsigned { .. } => "unsigned_manifest",
            Self::UnknownKey { .. } => "unknown_key",
            Self::BadSignature { .. } => "bad_signature",
            Self::MissingFile { .. } => "missing_file",
            Self::HashMismatch { .. } => "hash_mismatch",
            Self::Unreadable { .. } => "unreadable",
            Self::UnlistedFile { .. } => "unlisted_file",
            Self::StrayObject { .. } => "stray_object",
            Self::ListedTwice { .. } => "listed_twice",
            Self::OverlappingPositions { .. } => "overlapping_positions",
            Self::RecordedIncident { .. } => "recorded_incident",
            Self::StaleHead { .. } => "missing_tail",
            Self::TruncatedTail { .. } => "truncated_tail",
            Self::HeadMismatch { .. } => "head_mismatch",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self {
            Self::MalformedManifest { key, reason } => write!(formatter, "{kind}: {key}: {reason}"),
            Self::MisplacedManifest { key, holds_seq } => {
                write!(formatter, "{kind}: {key} holds manifest seq {holds_seq}")
            }
            Self::MissingManifests { first, last } if first == last => {
                write!(formatter, "{kind}: seq {first} ({}) is missing", manifest_key(*first))
            }
            Self::MissingManifests { first, last } => {
                write!(formatter, "{kind}: seqs {first} to {last} are missing")
            }
            Self::BrokenChain { seq, reason } => {
                write!(formatter, "{kind}: {}: {reason}", manifest_key(*seq))
            }
            Self::Unsigned { seq } => write!(formatter, "{kind}: {} has no signature", manifest_key(*seq)),
            Self::UnknownKey { seq, key_id } => {
                write!(formatter, "{kind}: {} is signed by untrusted key {key_id}", manifest_key(*seq))
            }
            Self::BadSignature { seq, reason } => {
                write!(formatter, "{kind}: {}: {reason}", manifest_key(*seq))
            }
            Self::MissingFile { key, seq } => {
                write!(formatter, "{kind}: {key} (listed in seq {seq}) is missing")
            }
            Self::HashMismatch { key, seq, expected, found } => write!(
                formatter,
                "{kind}: {key} (listed in seq {seq}) has sha256 {} and {} bytes, expected sha256 {} and {} bytes",
                found.0, found.1, expected.0, expected.1
            ),
            Self::Unreadable { key, reason } => write!(formatter, "{kind}: {key}: {reason}"),
            Self::UnlistedFile { key } => write!(formatter, "{kind}: {key} is listed in no manifest"),
            Self::StrayObject { key } => write!(formatter, "{kind}: {key} is not named like a manifest"),
            Self::ListedTwice { key, first_seq, seq } => {
                write!(formatter, "{kind}: {key} is listed in seq {first_seq} and again in seq {seq}")
            }
            Self::OverlappingPositions { stream, seq, start, durable_until } => write!(
                formatter,
                "{kind}: seq {seq} covers {stream} from {start}, already covered up to {durable_until}"
            ),
            Self::RecordedIncident { seq, key } => {
                write!(formatter, "{kind}: seq {seq} records a foreign object at {key}")
            }
            Self::StaleHead { seq, age_seconds } => {
                write!(formatter, "{kind}: the newest manifest (seq {seq}) is {age_seconds} s old")
            }
            Self::TruncatedTail { expected_seq, found_seq } => {
                write!(
                    formatter,
                    "{kind}: the chain ends at seq {found_seq}, but seq {expected_seq} was recorded"
                )
            }
            Self::HeadMismatch { seq, expected_sha256, found_sha256 } => write!(
                formatter,
                "{kind}: seq {seq} has sha256 {found_sha256:?}, the recorded head has {expected_sha256}"
            ),
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Manifests read (heartbeats included).
    pub manifests: u64,
    /// Of which heartbeats.
    pub heartbeats: u64,
    /// Files listed.
    pub files: u64,
    /// Rows in the listed files, as the manifests record them.
    pub rows: u64,
    /// Bytes of the listed files.
    pub bytes: u64,
    /// The newest manifest.
    pub head: Option<ManifestRef>,
    /// The durable span of every stream.
    pub streams: BTreeMap<StreamId, CoveredRange>,
    /// Every problem found, in the order found.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_intact() { "intact" } else { "NOT intact" };
        write!(
            formatter,
            "lake {verdict}: {} manifests ({} heartbeats), {} files, {} rows, {} bytes, {} streams",
            self.manifests,
            self.heartbeats,
            self.files,
            self.rows,
            self.bytes,
            self.streams.len()
        )?;
        if let Some(head) = &self.head {
            write!(
                formatter,
                "; head seq {} sha256 {} at {}",
                head.seq,
                head.sha256,
                head.created_at.to_rfc3339()
            )?;
        }
        for problem in &self.problems {
            write!(formatter, "\n{problem}")?;
        }
        Ok(())
    }
}

/// A file a manifest lists.
struct Listed {
    seq: u64,
    sha256: String,
    bytes: u64,
}

/// Verifies a lake: the chain, the signatures, every file, and the head's age.
/// Store errors other than "not found" on data files become [`Problem::Unreadable`]; only a
/// failure to list the lake is an error.
pub async fn verify(lake: &Lake, options: &VerifyOptions) -> Result<VerifyReport, LakeError> {
    let store = lake.store().as_ref();
    let mut report = VerifyReport::default();
    let objects: Vec<_> = store
        .list(None)
        .try_collect()
        .await
        .map_err(|source| LakeError::Store { key: String::new(), source })?;
    let mut manifests = BTreeMap::new();
    let mut data_files = BTreeSet::new();
    for object in objects {
        let key = object.location.to_string();
        if let Some(seq) = parse_manifest_key(&key) {
            manifests.insert(seq, object.location);
        } else if key.starts_with(&format!("{MANIFESTS_PREFIX}/")) {
            report.problems.push(Problem::StrayObject { key });
        } else if is_data_key(&key) {
            data_files.insert(key);
        }
    }
    let walked = walk_chain(lake, &manifests, options, &mut report).await?;
    for (key, file) in &walked.listed {
        check_file(store, key, file, &mut report).await;
    }
    for key in data_files.into_iter().filter(|key| !walked.listed.contains_key(key)) {
        report.problems.push(Problem::UnlistedFile { key });
    }
    check_head(options, &walked.hashes, &mut report);
    Ok(report)
}

fn is_data_key(key: &str) -> bool {
    let in_table =
        key.starts_with(&format!("{EVENTS_PREFIX}/")) || key.starts_with(&format!("{DEAD_LETTERS_PREFIX}/"));
    in_table && key.ends_with(".parquet")
}

/// What walking the chain collected.
#[derive(Default)]
struct Walked {
    /// The files the manifests list, by key.
    listed: BTreeMap<String, Listed>,
    /// Each manifest's SHA-256, by seq.
    hashes: BTreeMap<u64, String>,
}

/// Checks every manifest in seq order and returns the files they list.
async fn walk_chain(
    lake: &Lake,
    manifests: &BTreeMap<u64, ObjectPath>,
    options: &VerifyOptions,
    report: &mut VerifyReport,
) -> Result<Walked, LakeError> {
    let mut walked = Walked::default();
    let mut previous: Option<(u64, String)> = None;
    for (&seq, location) in manifests {
        let expected_seq = previous.as_ref().map_or(1, |(previous_seq, _)| previous_seq.saturating_add(1));
        if seq > expected_seq {
            report.problems.push(Problem::MissingManifests { first: expected_seq, last: seq - 1 });
        }
        let key = location.to_string();
        let bytes = match get_with_retry(lake.store().as_ref(), &lake.retry, location).await {
            Ok(bytes) => bytes,
            Err(error) => {
                report.problems.push(Problem::Unreadable { key, reason: error.to_string() });
                previous = None;
                continue;
            }
        };
        let sha256 = sha256_hex(&bytes);
        report.manifests += 1;
        let parsed = Manifest::from_bytes(&key, &bytes);
        let created_at = match &parsed {
            Ok(manifest) => manifest.created_at,
            Err(_) => report.head.as_ref().map_or(DateTime::<Utc>::MIN_UTC, |head| head.created_at),
        };
        match parsed {
            Ok(manifest) => {
                check_manifest(&manifest, seq, previous.as_ref(), options, report, &mut walked.listed)?
            }
            Err(error) => report
                .problems
                .push(Problem::MalformedManifest { key: key.clone(), reason: error.to_string() }),
        }
        report.head = Some(ManifestRef { seq, key, sha256: sha256.clone(), created_at });
        walked.hashes.insert(seq, sha256.clone());
        previous = Some((seq, sha256));
    }
    Ok(walked)
}

fn check_manifest(
    manifest: &Manifest,
    seq: u64,
    previous: Option<&(u64, String)>,
    options: &VerifyOptions,
    report: &mut VerifyReport,
    listed: &mut BTreeMap<String, Listed>,
) -> Result<(), LakeError> {
    if manifest.seq != seq {
        report.problems.push(Problem::MisplacedManifest { key: manifest_key(seq), holds_seq: manifest.seq });
    }
    check_link(manifest, seq, previous, report);
    check_manifest_signature(manifest, seq, options, report)?;
    if manifest.kind == ManifestKind::Heartbeat {
        report.heartbeats += 1;
    }
    for file in &manifest.files {
        report.files += 1;
        report.rows = report.rows.saturating_add(file.rows);
        report.bytes = report.bytes.saturating_add(file.bytes);
        if let Some(first) = listed.get(&file.key) {
            report.problems.push(Problem::ListedTwice { key: file.key.clone(), first_seq: first.seq, seq });
            continue;
        }
        listed.insert(file.key.clone(), Listed { seq, sha256: file.sha256.clone(), bytes: file.bytes });
    }
    for (stream, range) in &manifest.positions {
        let merged = match report.streams.get(stream) {
            Some(durable) => {
                if range.start() < durable.resume_at() {
                    report.problems.push(Problem::OverlappingPositions {
                        stream: stream.to_string(),
                        seq,
                        start: range.start(),
                        durable_until: durable.resume_at(),
                    });
                }
                durable.extended_by(range)
            }
            None => range.clone(),
        };
        report.streams.insert(stream.clone(), merged);
    }
    for incident in &manifest.incidents {
        report.problems.push(Problem::RecordedIncident { seq, key: incident.key.clone() });
    }
    Ok(())
}

fn check_link(manifest: &Manifest, seq: u64, previous: Option<&(u64, String)>, report: &mut VerifyReport) {
    let link = manifest.previous.as_ref();
    let reason = match (seq, link, previous) {
        (1, None, _) => None,
        (1, Some(_), _) => Some("the first manifest links to a previous one".to_owned()),
        (_, None, _) => Some("no link to the previous manifest".to_owned()),
        // The previous manifest is missing or unreadable: already reported.
        (_, Some(_), None) => None,
        (_, Some(link), Some((previous_seq, previous_sha256))) => {
            if link.seq != *previous_seq {
                Some(format!("links to seq {} instead of {previous_seq}", link.seq))
            } else if link.sha256 != *previous_sha256 {
                Some(format!("links to sha256 {} but seq {previous_seq} has {previous_sha256}", link.sha256))
            } else {
                None
            }
        }
    };
    if let Some(reason) = reason {
        report.problems.push(Problem::BrokenChain { seq, reason });
    }
}

fn check_manifest_signature(
    manifest: &Manifest,
    seq: u64,
    options: &VerifyOptions,
    report: &mut VerifyReport,
) -> Result<(), LakeError> {
    let Some(signature) = &manifest.signature else {
        if options.require_signatures {
            report.problems.push(Problem::Unsigned { seq });
        }
        return Ok(());
    };
    if options.trusted_keys.is_empty() && !options.require_signatures {
        return Ok(());
    }
    match check_signature(signature, &manifest.signed_bytes()?, &options.trusted_keys) {
        Ok(()) => {}
        Err(SignatureFault::UnknownKey(key_id)) => report.problems.push(Problem::UnknownKey { seq, key_id }),
        Err(SignatureFault::Invalid(reason)) => report.problems.push(Problem::BadSignature { seq, reason }),
    }
    Ok(())
}

/// Hashes a listed file as it streams in, so memory stays bounded however large it is.
async fn check_file(store: &dyn ObjectStore, key: &str, listed: &Listed, report: &mut VerifyReport) {
    let location = ObjectPath::from(key);
    let result = async {
        let mut stream = store.get(&location).await?.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size = size.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
            hasher.update(&chunk);
        }
        Ok::<_, object_store::Error>((hex::encode(hasher.finalize()), size))
    }
    .await;
    match result {
        Ok((sha256, size)) if sha256 == listed.sha256 && size == listed.bytes => {}
        Ok(found) => report.problems.push(Problem::HashMismatch {
            key: key.to_owned(),
            seq: listed.seq,
            expected: (listed.sha256.clone(), listed.bytes),
            found,
        }),
        Err(object_store::Error::NotFound { .. }) => {
            report.problems.push(Problem::MissingFile { key: key.to_owned(), seq: listed.seq });
        }
        Err(error) => {
            report.problems.push(Problem::Unreadable { key: key.to_owned(), reason: error.to_string() })
        }
    }
}

fn check_head(options: &VerifyOptions, hashes: &BTreeMap<u64, String>, report: &mut VerifyReport) {
    let found_seq = report.head.as_ref().map_or(0, |head| head.seq);
    if let Some(max_age) = options.max_head_age {
        let age = report.head.as_ref().map(|head| options.now - head.created_at);
        let too_old = match (age, chrono::Duration::from_std(max_age)) {
            (Some(age), Ok(max_age)) => age > max_age,
            (None, _) => true,
            (Some(_), Err(_)) => false,
        };
        if too_old {
            let age_seconds = age.map_or(0, |age| age.num_seconds());
            report.problems.push(Problem::StaleHead { seq: found_seq, age_seconds });
        }
    }
    if let Some(expected) = &options.expected_head {
        if found_seq < expected.seq {
            report.problems.push(Problem::TruncatedTail { expected_seq: expected.seq, found_seq });
        }
        let found_sha256 = hashes.get(&expected.seq).cloned().unwrap_or_default();
        if found_sha256 != expected.sha256 && found_seq >= expected.seq {
            report.problems.push(Problem::HeadMismatch {
                seq: expected.seq,
                expected_sha256: expected.sha256.clone(),
                found_sha256,
            });
        }
    }
}
