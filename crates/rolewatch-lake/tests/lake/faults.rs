//! AT-06 (transient store errors, ambiguous writes, a slow store, a full disk) and AT-07 (a
//! hostile object already at the next key), through a fault-injecting object store.

use std::sync::Arc;
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use rolewatch_lake::{
    CommitOutcome, CoveredRange, Lake, LakeError, MANIFESTS_PREFIX, RetryPolicy, VerifyOptions, incident_of,
    verify,
};

use crate::support::{Fault, FaultyStore, RECORD_BYTES, chunk, quick_retry, snapshot, stream, time};

fn faulty_lake() -> (tempfile::TempDir, Arc<FaultyStore>, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap().with_fsync(true));
    let faulty = Arc::new(FaultyStore::new(local));
    let lake = Lake::with_store(faulty.clone()).with_retry(quick_retry());
    (dir, faulty, lake)
}

async fn intact(lake: &Lake) -> rolewatch_lake::VerifyReport {
    let report = verify(lake, &VerifyOptions::new(time("2026-11-26T12:00:00Z"))).await.unwrap();
    assert!(report.is_intact(), "{report}");
    report
}

#[tokio::test]
async fn transient_errors_are_retried_until_the_put_succeeds() {
    let (_dir, faulty, lake) = faulty_lake();
    faulty.fail_puts("events/", 3, Fault::Unavailable);
    faulty.fail_puts(MANIFESTS_PREFIX, 2, Fault::Unavailable);
    let (events, dead_letters, range) = chunk("audit.json", 0, 30);
    let outcome = lake
        .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z"))
        .await
        .unwrap();
    assert!(matches!(outcome, CommitOutcome::Committed(_)));
    // 2 event files + 1 dead-letter file + 1 manifest, plus 5 failed attempts.
    assert_eq!(faulty.attempts(), 4 + 5);
    assert_eq!(intact(&lake).await.rows, 30);
}

#[tokio::test]
async fn a_put_that_lands_but_times_out_is_settled_by_its_hash_without_a_second_object() {
    let (_dir, faulty, lake) = faulty_lake();
    faulty.fail_puts("events/", 1, Fault::LandsThenTimesOut);
    faulty.fail_puts("dead_letters/", 1, Fault::LandsThenTimesOut);
    faulty.fail_puts(MANIFESTS_PREFIX, 1, Fault::LandsThenTimesOut);
    let (events, dead_letters, range) = chunk("audit.json", 0, 30);
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z")).await.unwrap();
    let objects = snapshot(lake.store().as_ref()).await;
    assert_eq!(objects.keys().filter(|key| key.starts_with(MANIFESTS_PREFIX)).count(), 1, "{objects:?}");
    assert_eq!(objects.len(), 4, "{objects:?}");
    assert_eq!(lake.head().await.unwrap().map(|head| head.seq), Some(1));
    intact(&lake).await;
}

#[tokio::test]
async fn a_full_disk_stops_progress_and_the_retry_after_it_loses_nothing() {
    let (_dir, faulty, lake) = faulty_lake();
    let (events, dead_letters, range) = chunk("audit.json", 0, 30);
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z")).await.unwrap();

    // The disk stays full for longer than the retry policy waits: the chunk fails, nothing
    // new becomes durable.
    faulty.fail_puts("", 100, Fault::DiskFull);
    let (events, dead_letters, range) = chunk("audit.json", 30, 30);
    let error = lake
        .ingest_chunk(&stream(), &events, &dead_letters, range.clone(), time("2026-11-26T11:01:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(error, LakeError::Store { .. }), "{error}");
    assert!(error.to_string().contains("No space left"), "{error}");
    let durable = lake.durable_positions().await.unwrap();
    assert_eq!(durable.get(&stream()).map(CoveredRange::resume_at), Some(30 * RECORD_BYTES));

    // Space comes back: the caller retries the same chunk and everything arrives once.
    faulty.clear_faults();
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:02:00Z")).await.unwrap();
    assert_eq!(intact(&lake).await.rows, 60);
}

#[tokio::test]
async fn a_permanent_error_is_not_retried() {
    let (_dir, faulty, lake) = faulty_lake();
    faulty.fail_puts("events/", 1, Fault::Forbidden);
    let (events, _, _) = chunk("audit.json", 0, 3);
    let error = lake.write_events(&stream(), &events).await.unwrap_err();
    assert!(
        matches!(error, LakeError::Store { source: object_store::Error::PermissionDenied { .. }, .. }),
        "{error}"
    );
    assert_eq!(faulty.attempts(), 1);
}

#[tokio::test]
async fn a_slow_store_delays_but_does_not_break_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let slow = Arc::new(FaultyStore::new(local).with_put_delay(Duration::from_millis(150)));
    let lake = Lake::with_store(slow.clone());
    let started = std::time::Instant::now();
    let (events, dead_letters, range) = chunk("audit.json", 0, 10);
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150 * u64::from(slow.attempts())));
    intact(&lake).await;
}

#[tokio::test]
async fn retries_are_bounded_by_the_policy() {
    let (_dir, faulty, lake) = faulty_lake();
    let lake = lake.with_retry(RetryPolicy { attempts: 3, ..quick_retry() });
    faulty.fail_puts("events/", 10, Fault::Unavailable);
    let (events, _, _) = chunk("audit.json", 0, 3);
    assert!(lake.write_events(&stream(), &events).await.is_err());
    assert_eq!(faulty.attempts(), 3);
}

#[tokio::test]
async fn a_hostile_object_at_the_next_key_is_kept_reported_and_recorded_in_the_chain() {
    let (_dir, faulty, lake) = faulty_lake();
    let (events, dead_letters, range) = chunk("audit.json", 0, 10);
    // Learn the deterministic key of the chunk's first file in a scratch lake, then plant a
    // different object there before the pipeline gets to it.
    let scratch = Lake::with_store(Arc::new(object_store::memory::InMemory::new()));
    let key = scratch.write_events(&stream(), &events).await.unwrap().remove(0).key;
    let hostile = bytes::Bytes::from_static(b"PAR1 not what the pipeline wrote PAR1");
    #[allow(clippy::disallowed_methods)] // the hostile writer overwrites; the lake never does
    faulty.put(&Path::from(key.as_str()), hostile.clone().into()).await.unwrap();

    let error = lake
        .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(&error, LakeError::Integrity { key: found, .. } if *found == key), "{error}");
    let stored = faulty.get(&Path::from(key.as_str())).await.unwrap().bytes().await.unwrap();
    assert_eq!(stored, hostile, "the hostile object must be left as it was");
    assert!(lake.durable_positions().await.unwrap().is_empty(), "no offsets past the hostile range");

    let incident = incident_of(&error).unwrap();
    lake.record_incident(incident, time("2026-11-26T11:00:01Z")).await.unwrap();
    let report = verify(&lake, &VerifyOptions::new(time("2026-11-26T11:00:02Z"))).await.unwrap();
    let named: Vec<_> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        named.iter().any(|problem| problem.starts_with("recorded_incident") && problem.contains(&key)),
        "{report}"
    );
    assert!(
        named.iter().any(|problem| problem.starts_with("unlisted_file") && problem.contains(&key)),
        "{report}"
    );
}

#[tokio::test]
async fn staging_leftovers_of_a_killed_put_are_not_data() {
    let (dir, lake) = crate::support::local_lake();
    let (events, dead_letters, range) = chunk("audit.json", 0, 10);
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z")).await.unwrap();
    // What a kill in the middle of a local put leaves: a partial staging file beside the key.
    let partition = dir.path().join("events/date=2026-11-26/hour=09");
    std::fs::write(
        partition.join("file-0000-00000000000000000000-00000000000000009999.parquet#1"),
        b"PAR1 partial",
    )
    .unwrap();
    intact(&lake).await;
}
