//! Shared test parts: sample input, a snapshot of a store, a fault-injecting object store.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use rolewatch_event::{AuditEvent, LogFormat, Source, SourcePosition, StatementClass};
use rolewatch_lake::{CoveredRange, DeadLetter, Lake, RetryPolicy, StreamId};

/// Bytes each sample record takes in the imaginary log file.
pub const RECORD_BYTES: u64 = 180;

/// A retry policy for tests: real retries, short waits.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

pub fn time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// One chunk of an imaginary pgAudit log file: `count` records starting at record `first`, one
/// every 37 seconds from 09:50 on 2026-11-26 (so chunks straddle hour partitions), and every
/// seventh record unparseable (a dead letter). Returns the events, the dead letters and the
/// byte range the chunk covers.
pub fn chunk(path: &str, first: u64, count: u64) -> (Vec<AuditEvent>, Vec<DeadLetter>, CoveredRange) {
    let start = time("2026-11-26T09:50:00Z");
    let mut events = Vec::new();
    let mut dead_letters = Vec::new();
    for record in first..first + count {
        let position =
            SourcePosition::File { file: path.into(), line: record + 1, offset: record * RECORD_BYTES };
        if record % 7 == 6 {
            dead_letters.push(DeadLetter {
                position,
                reason: "invalid_json".into(),
                detail: format!("expected value at line 1 column {record}"),
                raw: format!("{{not json {record}").into_bytes(),
            });
            continue;
        }
        let seconds = i64::try_from(record).unwrap() * 37;
        let mut event = AuditEvent::new(
            start + chrono::Duration::seconds(seconds),
            Source::Postgres,
            LogFormat::PgauditJsonlog,
        );
        event.role = Some(format!("role_{}", record % 3).into());
        event.command = "SELECT".into();
        event.class = StatementClass::Read;
        event.objects = vec![format!("public.t{}", record % 5).into()];
        event.statement = Some(format!("SELECT * FROM public.t{} WHERE id = {record}", record % 5));
        event.rows = Some(record);
        event.set_position(&position);
        events.push(event);
    }
    let range = CoveredRange::File {
        path: path.to_owned(),
        start_byte: first * RECORD_BYTES,
        end_byte: (first + count) * RECORD_BYTES,
    };
    (events, dead_letters, range)
}

pub fn stream() -> StreamId {
    StreamId::for_file_prefix(b"2026-11-26 09:50:00 UTC first line of the sample log")
}

/// Every object in a store: key -> (size, sha256, last modified), to prove nothing was rewritten.
pub async fn snapshot(store: &dyn ObjectStore) -> BTreeMap<String, (u64, String, DateTime<Utc>)> {
    let objects: Vec<ObjectMeta> = store.list(None).try_collect().await.unwrap();
    let mut snapshot = BTreeMap::new();
    for meta in objects {
        let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
        let sha =
            hex::encode(sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes)));
        snapshot.insert(meta.location.to_string(), (meta.size, sha, meta.last_modified));
    }
    snapshot
}

/// A lake in a fresh temporary directory.
pub fn local_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open_local(dir.path()).unwrap().with_retry(quick_retry());
    (dir, lake)
}

/// What a faulty put does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails before writing, like a 503 (transient).
    Unavailable,
    /// Writes, then reports a timeout: the caller cannot know it landed.
    LandsThenTimesOut,
    /// Fails before writing, like ENOSPC (transient: space may come back).
    DiskFull,
    /// Fails before writing with a permission error (permanent).
    Forbidden,
}

struct Rule {
    key_prefix: String,
    remaining: u32,
    fault: Fault,
}

/// An object store that injects faults into puts whose key starts with a prefix, and counts
/// put attempts. Everything else goes to the wrapped store.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    rules: std::sync::Mutex<Vec<Rule>>,
    put_delay: Duration,
    pub put_attempts: AtomicU32,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            rules: std::sync::Mutex::new(Vec::new()),
            put_delay: Duration::ZERO,
            put_attempts: AtomicU32::new(0),
        }
    }

    /// Every put sleeps this long first (a slow store).
    pub fn with_put_delay(mut self, delay: Duration) -> Self {
        self.put_delay = delay;
        self
    }

    /// The next `count` puts under `key_prefix` fail with `fault`.
    pub fn fail_puts(&self, key_prefix: &str, count: u32, fault: Fault) {
        self.rules.lock().unwrap().push(Rule { key_prefix: key_prefix.to_owned(), remaining: count, fault });
    }

    /// The fault is over: puts go through again.
    pub fn clear_faults(&self) {
        self.rules.lock().unwrap().clear();
    }

    pub fn attempts(&self) -> u32 {
        self.put_attempts.load(Ordering::SeqCst)
    }

    fn take_fault(&self, location: &Path) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|rule| rule.remaining > 0 && location.as_ref().starts_with(&rule.key_prefix))?;
        rule.remaining -= 1;
        Some(rule.fault)
    }
}

fn generic(message: &str) -> object_store::Error {
    object_store::Error::Generic { store: "FaultyStore", source: message.to_owned().into() }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "FaultyStore({})", self.inner)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.put_attempts.fetch_add(1, Ordering::SeqCst);
        if !self.put_delay.is_zero() {
            tokio::time::sleep(self.put_delay).await;
        }
        match self.take_fault(location) {
            None => self.inner.put_opts(location, payload, opts).await,
            Some(Fault::Unavailable) => Err(generic("503 Service Unavailable")),
            Some(Fault::DiskFull) => Err(generic("No space left on device (os error 28)")),
            Some(Fault::Forbidden) => Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "403 Forbidden".to_owned().into(),
            }),
            Some(Fault::LandsThenTimesOut) => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(generic("operation timed out"))
            }
        }
    }

    #[allow(clippy::disallowed_methods)] // a wrapper forwards every method; the lake never calls it
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
