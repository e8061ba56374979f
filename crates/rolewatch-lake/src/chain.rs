//! Appending manifests to the chain: commits, heartbeats, and the durable positions they record.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use tokio::sync::{MappedMutexGuard, MutexGuard};

use crate::manifest::{
    CoveredRange, FileKind, Incident, MANIFEST_FORMAT, MANIFESTS_PREFIX, Manifest, ManifestFile,
    ManifestKind, ManifestRef, PreviousManifest, manifest_key, parse_manifest_key,
};
use crate::naming::StreamId;
use crate::store::{CreateOutcome, RetryPolicy, get_with_retry, put_create, sha256_hex};
use crate::{Lake, LakeError, PutStatus, WrittenFile};

/// How many times a commit rebuilds its manifest on top of a racing writer's before giving up.
const MAX_COMMIT_ATTEMPTS: u32 = 8;

/// What [`Lake::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A new manifest now lists the files and positions.
    Committed(ManifestRef),
    /// Every position was already durable and every file was a replay: nothing was written.
    AlreadyDurable,
}

/// What the writer knows about the chain: its head and the durable span of every stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChainState {
    pub(crate) head: Option<ManifestRef>,
    pub(crate) positions: BTreeMap<StreamId, CoveredRange>,
}

impl ChainState {
    fn apply(&mut self, manifest: &Manifest, sha256: String) {
        for (stream, range) in &manifest.positions {
            let merged = match self.positions.get(stream) {
                Some(durable) => durable.extended_by(range),
                None => range.clone(),
            };
            self.positions.insert(stream.clone(), merged);
        }
        self.head = Some(ManifestRef {
            seq: manifest.seq,
            key: manifest_key(manifest.seq),
            sha256,
            created_at: manifest.created_at,
        });
    }

    /// `Ok(true)` if everything in `positions` is already durable, `Ok(false)` if nothing is.
    fn coverage(&self, positions: &BTreeMap<StreamId, CoveredRange>) -> Result<bool, LakeError> {
        let mut covered = 0;
        for (stream, range) in positions {
            let Some(durable) = self.positions.get(stream) else { continue };
            if range.start() >= durable.resume_at() {
                continue;
            }
            if range.start() >= durable.start() && range.resume_at() <= durable.resume_at() {
                covered += 1;
                continue;
            }
            return Err(LakeError::Overlap {
                stream: stream.to_string(),
                resume_at: durable.resume_at(),
                start: range.start(),
            });
        }
        if covered == 0 {
            return Ok(false);
        }
        if covered < positions.len() {
            return Err(LakeError::InvalidCommit {
                reason: "some streams of this commit are already durable and others are not".to_owned(),
            });
        }
        Ok(true)
    }
}

/// Reads every manifest in seq order and folds them into the chain state.
pub(crate) async fn load_chain_state(
    store: &dyn ObjectStore,
    retry: &RetryPolicy,
) -> Result<ChainState, LakeError> {
    let mut state = ChainState::default();
    for (seq, location) in list_manifests(store).await? {
        let bytes = get_with_retry(store, retry, &location)
            .await
            .map_err(|source| LakeError::Store { key: location.to_string(), source })?;
        let manifest = Manifest::from_bytes(location.as_ref(), &bytes)?;
        // A writer never builds on a chain it cannot follow: a tampered chain stops ingest
        // (quarantine) until `verify` has been run and a person has looked.
        let link = manifest.previous.as_ref().map(|previous| (previous.seq, previous.sha256.as_str()));
        let head = state.head.as_ref().map(|head| (head.seq, head.sha256.as_str()));
        if manifest.seq != seq || link != head {
            return Err(LakeError::Manifest {
                key: location.to_string(),
                reason: format!(
                    "the chain is broken here (seq {} under the key of seq {seq}, link {link:?}, previous {head:?}); run verify",
                    manifest.seq
                ),
            });
        }
        state.apply(&manifest, sha256_hex(&bytes));
    }
    Ok(state)
}

/// Every object that is named like a manifest, by seq.
pub(crate) async fn list_manifests(store: &dyn ObjectStore) -> Result<Vec<(u64, ObjectPath)>, LakeError> {
    let prefix = ObjectPath::from(MANIFESTS_PREFIX);
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|source| LakeError::Store { key: MANIFESTS_PREFIX.to_owned(), source })?;
    let mut manifests: Vec<(u64, ObjectPath)> = objects
        .into_iter()
        .filter_map(|meta| parse_manifest_key(meta.location.as_ref()).map(|seq| (seq, meta.location)))
        .collect();
    manifests.sort_by_key(|(seq, _)| *seq);
    Ok(manifests)
}

fn manifest_file(file: &WrittenFile) -> Result<ManifestFile, LakeError> {
    let kind = FileKind::of_key(&file.key).ok_or_else(|| LakeError::InvalidCommit {
        reason: format!("{} is neither an events nor a dead-letters file", file.key),
    })?;
    Ok(ManifestFile {
        key: file.key.clone(),
        kind,
        sha256: file.sha256.clone(),
        bytes: u64::try_from(file.bytes).unwrap_or(u64::MAX),
        rows: u64::try_from(file.rows).unwrap_or(u64::MAX),
    })
}

/// What a new manifest will say, before it has a seq.
struct Entry {
    kind: ManifestKind,
    files: Vec<ManifestFile>,
    positions: BTreeMap<StreamId, CoveredRange>,
    incidents: Vec<Incident>,
    created_at: DateTime<Utc>,
}

impl Lake {
    /// Commits files written by [`Lake::write_events`] and [`Lake::write_dead_letters`],
    /// together with the source positions they cover, by writing the next manifest. Only after
    /// this returns are those positions durable (acknowledge Kafka offsets then, not before).
    ///
    /// Idempotent: if every position is already durable and every file was a replay (the same
    /// input ingested again), nothing is written and [`CommitOutcome::AlreadyDurable`] is
    /// returned. A range that overlaps a durable one only in part is refused with
    /// [`LakeError::Overlap`], since committing it would duplicate records.
    pub async fn commit(
        &self,
        files: &[WrittenFile],
        positions: &BTreeMap<StreamId, CoveredRange>,
        now: DateTime<Utc>,
    ) -> Result<CommitOutcome, LakeError> {
        if files.is_empty() && positions.is_empty() {
            return Err(LakeError::InvalidCommit { reason: "nothing to commit".to_owned() });
        }
        if let Some((stream, range)) = positions.iter().find(|(_, range)| !range.is_valid()) {
            return Err(LakeError::InvalidCommit {
                reason: format!("empty or reversed range for {stream}: {range:?}"),
            });
        }
        let entry = Entry {
            kind: ManifestKind::Data,
            files: files.iter().map(manifest_file).collect::<Result<_, _>>()?,
            positions: positions.clone(),
            incidents: Vec::new(),
            created_at: now,
        };
        let all_replayed = files.iter().all(|file| file.status == PutStatus::Replayed);
        self.append(entry, all_replayed).await
    }

    /// Stores one chunk of a stream and commits it: its events, its dead letters, and the range
    /// of the stream it covers. This is the whole of an idempotent ingest step:
    ///
    /// * if `range` is already durable, nothing is read, written or rewritten
    ///   ([`CommitOutcome::AlreadyDurable`]);
    /// * otherwise the files are written create-only (a replay of files left by a crash before
    ///   the commit is recognized) and then the manifest that lists them.
    ///
    /// Chunk the stream the same way on every run (by record count and size, never by wall
    /// clock), so that a retried chunk produces the same file names and bytes.
    pub async fn ingest_chunk(
        &self,
        stream: &StreamId,
        events: &[rolewatch_event::AuditEvent],
        dead_letters: &[crate::DeadLetter],
        range: CoveredRange,
        now: DateTime<Utc>,
    ) -> Result<CommitOutcome, LakeError> {
        let offsets = events
            .iter()
            .map(|event| event.source_offset)
            .chain(dead_letters.iter().map(|letter| Some(letter.offset())));
        check_within(&range, offsets)?;
        let positions = BTreeMap::from([(stream.clone(), range)]);
        if self.chain_state().await?.coverage(&positions)? {
            return Ok(CommitOutcome::AlreadyDurable);
        }
        let mut files = self.write_events(stream, events).await?;
        files.extend(self.write_dead_letters(stream, dead_letters).await?);
        self.commit(&files, &positions, now).await
    }

    /// Records an integrity incident (an object found with other content at a key the lake
    /// meant to create) in the chain, so the evidence outlives the log line.
    pub async fn record_incident(
        &self,
        incident: Incident,
        now: DateTime<Utc>,
    ) -> Result<ManifestRef, LakeError> {
        let entry = Entry {
            kind: ManifestKind::Data,
            files: Vec::new(),
            positions: BTreeMap::new(),
            incidents: vec![incident],
            created_at: now,
        };
        match self.append(entry, false).await? {
            CommitOutcome::Committed(manifest) => Ok(manifest),
            CommitOutcome::AlreadyDurable => {
                Err(LakeError::InvalidCommit { reason: "incident not recorded".to_owned() })
            }
        }
    }

    /// Writes a heartbeat manifest if the newest manifest is older than `interval` at `now` (or
    /// there is none), so that a verifier can tell a quiet lake from a truncated one.
    pub async fn heartbeat_if_idle(
        &self,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> Result<Option<ManifestRef>, LakeError> {
        let interval = chrono::Duration::from_std(interval)
            .map_err(|error| LakeError::InvalidCommit { reason: format!("heartbeat interval: {error}") })?;
        if let Some(head) = self.head().await?
            && head.created_at + interval > now
        {
            return Ok(None);
        }
        let entry = Entry {
            kind: ManifestKind::Heartbeat,
            files: Vec::new(),
            positions: BTreeMap::new(),
            incidents: Vec::new(),
            created_at: now,
        };
        match self.append(entry, false).await? {
            CommitOutcome::Committed(manifest) => Ok(Some(manifest)),
            CommitOutcome::AlreadyDurable => Ok(None),
        }
    }

    /// The newest manifest, if any.
    pub async fn head(&self) -> Result<Option<ManifestRef>, LakeError> {
        Ok(self.chain_state().await?.head.clone())
    }

    /// For every stream, the span the manifests cover: resume reading at
    /// [`CoveredRange::resume_at`] (the next Kafka offset, or the next byte of the file) and skip
    /// what comes before it.
    pub async fn durable_positions(&self) -> Result<BTreeMap<StreamId, CoveredRange>, LakeError> {
        Ok(self.chain_state().await?.positions.clone())
    }

    /// The span the manifests cover for one stream (see [`Lake::durable_positions`]), without
    /// copying the others: what a writer checks before every chunk.
    pub async fn durable_position(&self, stream: &StreamId) -> Result<Option<CoveredRange>, LakeError> {
        Ok(self.chain_state().await?.positions.get(stream).cloned())
    }

    /// The chain state, read from the store on first use; held locked while the guard lives.
    async fn chain_state(&self) -> Result<MappedMutexGuard<'_, ChainState>, LakeError> {
        let mut guard = self.chain.lock().await;
        if guard.is_none() {
            *guard = Some(load_chain_state(self.store.as_ref(), &self.retry).await?);
        }
        Ok(MutexGuard::map(guard, |state| state.get_or_insert_with(ChainState::default)))
    }

    /// Forgets what this handle knows about the chain; the next call reads it again.
    pub async fn reload(&self) {
        *self.chain.lock().await = None;
    }

    async fn append(&self, entry: Entry, all_files_replayed: bool) -> Result<CommitOutcome, LakeError> {
        let mut state = self.chain_state().await?;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            if state.coverage(&entry.positions)? {
                if all_files_replayed {
                    return Ok(CommitOutcome::AlreadyDurable);
                }
                return Err(LakeError::InvalidCommit {
                    reason: "the positions are already durable but some files are new".to_owned(),
                });
            }
            let manifest = self.build_manifest(state.head.as_ref(), &entry)?;
            let key = manifest_key(manifest.seq);
            let bytes = Bytes::from(manifest.to_bytes()?);
            match put_create(self.store.as_ref(), &self.retry, &key, &bytes).await? {
                CreateOutcome::Created | CreateOutcome::Identical => {
                    state.apply(&manifest, sha256_hex(&bytes));
                    tracing::info!(seq = manifest.seq, files = manifest.files.len(), "manifest committed");
                    return Ok(CommitOutcome::Committed(manifest_ref(&manifest, &bytes)));
                }
                CreateOutcome::Different { stored } => {
                    let other = extends_chain(&key, &stored, state.head.as_ref(), manifest.seq)?;
                    tracing::warn!(
                        seq = other.seq,
                        "another writer committed this seq first; rebuilding on top"
                    );
                    state.apply(&other, sha256_hex(&stored));
                }
            }
        }
        Err(LakeError::ManifestConflict {
            key: MANIFESTS_PREFIX.to_owned(),
            reason: format!("lost the race for the next manifest {MAX_COMMIT_ATTEMPTS} times"),
        })
    }

    fn build_manifest(&self, head: Option<&ManifestRef>, entry: &Entry) -> Result<Manifest, LakeError> {
        let mut manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            seq: head.map_or(1, |head| head.seq.saturating_add(1)),
            kind: entry.kind,
            created_at: entry.created_at,
            previous: head.map(|head| PreviousManifest { seq: head.seq, sha256: head.sha256.clone() }),
            files: entry.files.clone(),
            positions: entry.positions.clone(),
            incidents: entry.incidents.clone(),
            signature: None,
        };
        if let Some(signer) = &self.signer {
            manifest.signature = Some(signer.sign(&manifest.signed_bytes()?));
        }
        Ok(manifest)
    }
}

/// Every record of a chunk must lie in the range the chunk claims to cover, or the manifest
/// would promise records it does not hold (or hold records another chunk will claim).
fn check_within(range: &CoveredRange, offsets: impl Iterator<Item = Option<i64>>) -> Result<(), LakeError> {
    for offset in offsets {
        let inside = offset
            .and_then(|offset| u64::try_from(offset).ok())
            .is_some_and(|offset| range.start() <= offset && offset < range.resume_at());
        if !inside {
            return Err(LakeError::InvalidCommit {
                reason: format!("a record at offset {offset:?} lies outside the chunk's range {range:?}"),
            });
        }
    }
    Ok(())
}

fn manifest_ref(manifest: &Manifest, bytes: &[u8]) -> ManifestRef {
    ManifestRef {
        seq: manifest.seq,
        key: manifest_key(manifest.seq),
        sha256: sha256_hex(bytes),
        created_at: manifest.created_at,
    }
}

/// A manifest another writer put at the key we wanted: it may be built on only if it is a
/// manifest for that seq whose previous link is our head.
fn extends_chain(
    key: &str,
    stored: &[u8],
    head: Option<&ManifestRef>,
    seq: u64,
) -> Result<Manifest, LakeError> {
    let conflict = |reason: String| LakeError::ManifestConflict { key: key.to_owned(), reason };
    let other =
        Manifest::from_bytes(key, stored).map_err(|error| conflict(format!("unreadable object: {error}")))?;
    if other.seq != seq {
        return Err(conflict(format!("holds seq {} instead of {seq}", other.seq)));
    }
    let link = other.previous.as_ref().map(|previous| (previous.seq, previous.sha256.as_str()));
    let ours = head.map(|head| (head.seq, head.sha256.as_str()));
    if link != ours {
        return Err(conflict("does not link to the current head: a forked or forged chain".to_owned()));
    }
    Ok(other)
}

/// The incident an integrity error describes, to pass to [`Lake::record_incident`].
pub fn incident_of(error: &LakeError) -> Option<Incident> {
    match error {
        LakeError::Integrity { key, stored_sha256, new_sha256 } => Some(Incident {
            key: key.clone(),
            stored_sha256: stored_sha256.clone(),
            rejected_sha256: new_sha256.clone(),
        }),
        _ => None,
    }
}
