//! The manifest chain: commits, durable positions, idempotent ingest, crashes between steps,
//! racing writers, heartbeats and signatures.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use rolewatch_lake::{
    CommitOutcome, CoveredRange, FileKind, Lake, LakeError, Manifest, ManifestKind, ManifestSigner,
    PutStatus, VerifyOptions, manifest_key, verify,
};

use crate::support::{RECORD_BYTES, chunk, local_lake, quick_retry, snapshot, stream, time};

async fn read_manifest(store: &dyn ObjectStore, seq: u64) -> Manifest {
    let bytes = store.get(&Path::from(manifest_key(seq))).await.unwrap().bytes().await.unwrap();
    Manifest::from_bytes(&manifest_key(seq), &bytes).unwrap()
}

#[tokio::test]
async fn a_commit_lists_every_file_with_its_hash_and_the_range_it_covers() {
    let (_dir, lake) = local_lake();
    let (events, dead_letters, range) = chunk("audit.json", 0, 120);
    let outcome = lake
        .ingest_chunk(&stream(), &events, &dead_letters, range.clone(), time("2026-11-26T11:00:00Z"))
        .await
        .unwrap();
    let CommitOutcome::Committed(head) = outcome else { panic!("expected a commit, got {outcome:?}") };
    assert_eq!(head.seq, 1);

    let manifest = read_manifest(lake.store().as_ref(), 1).await;
    assert_eq!(manifest.kind, ManifestKind::Data);
    assert_eq!(manifest.previous, None);
    assert_eq!(manifest.positions.get(&stream()), Some(&range));
    // Stored + dead-lettered = received, as the manifest records it.
    let rows =
        |kind| manifest.files.iter().filter(|file| file.kind == kind).map(|file| file.rows).sum::<u64>();
    assert_eq!(rows(FileKind::Events), u64::try_from(events.len()).unwrap());
    assert_eq!(rows(FileKind::DeadLetters), u64::try_from(dead_letters.len()).unwrap());
    assert_eq!(rows(FileKind::Events) + rows(FileKind::DeadLetters), 120);
    // One event file per hour the events fall in (the sample straddles hours).
    let hours: std::collections::BTreeSet<_> =
        events.iter().map(|event| event.ts.format("%F %H").to_string()).collect();
    assert!(hours.len() > 1);
    assert_eq!(manifest.files.iter().filter(|file| file.kind == FileKind::Events).count(), hours.len());
    for file in &manifest.files {
        let bytes = lake.store().get(&Path::from(file.key.as_str())).await.unwrap().bytes().await.unwrap();
        assert_eq!(
            hex::encode(sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes))),
            file.sha256
        );
        assert_eq!(u64::try_from(bytes.len()).unwrap(), file.bytes);
    }

    let durable = lake.durable_positions().await.unwrap();
    assert_eq!(durable.get(&stream()).map(CoveredRange::resume_at), Some(120 * RECORD_BYTES));
    let report = verify(&lake, &VerifyOptions::new(time("2026-11-26T11:00:01Z"))).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.rows, 120);
}

#[tokio::test]
async fn ingesting_the_same_input_again_stores_nothing_and_rewrites_nothing() {
    let (dir, lake) = local_lake();
    for first in [0, 50] {
        let (events, dead_letters, range) = chunk("audit.json", first, 50);
        lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z"))
            .await
            .unwrap();
    }
    let before = snapshot(lake.store().as_ref()).await;

    // A new process (no cached state) ingests the whole file again, chunked the same way.
    let again = Lake::open_local(dir.path()).unwrap();
    for first in [0, 50] {
        let (events, dead_letters, range) = chunk("renamed.json", first, 50);
        let outcome = again
            .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T12:00:00Z"))
            .await
            .unwrap();
        assert_eq!(outcome, CommitOutcome::AlreadyDurable);
    }
    assert_eq!(snapshot(again.store().as_ref()).await, before, "no object may be added or rewritten");
}

#[tokio::test]
async fn a_crash_between_the_files_and_the_manifest_is_repaired_by_the_replay() {
    let (dir, lake) = local_lake();
    let (events, dead_letters, range) = chunk("audit.json", 0, 40);
    // Step 1 done, the process dies before step 2 (the manifest).
    let files = lake.write_events(&stream(), &events).await.unwrap();
    drop(lake);
    let report =
        verify(&Lake::open_local(dir.path()).unwrap(), &VerifyOptions::new(time("2026-11-26T11:00:00Z")))
            .await
            .unwrap();
    let unlisted: Vec<_> =
        report.problems.iter().filter(|problem| problem.kind() == "unlisted_file").collect();
    assert_eq!(unlisted.len(), files.len(), "{report}");
    let before = snapshot(Lake::open_local(dir.path()).unwrap().store().as_ref()).await;

    let restarted = Lake::open_local(dir.path()).unwrap();
    assert!(restarted.durable_positions().await.unwrap().is_empty(), "nothing was committed");
    let outcome = restarted
        .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z"))
        .await
        .unwrap();
    assert!(matches!(outcome, CommitOutcome::Committed(_)));
    let after = snapshot(restarted.store().as_ref()).await;
    for (key, stored) in &before {
        assert_eq!(after.get(key), Some(stored), "{key} was rewritten");
    }
    let report = verify(&restarted, &VerifyOptions::new(time("2026-11-26T11:00:00Z"))).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.rows, 40);
}

#[tokio::test]
async fn a_replayed_write_reports_replayed_and_keeps_the_first_object() {
    let (_dir, lake) = local_lake();
    let (events, _, _) = chunk("audit.json", 0, 10);
    let first = lake.write_events(&stream(), &events).await.unwrap();
    let second = lake.write_events(&stream(), &events).await.unwrap();
    assert!(first.iter().all(|file| file.status == PutStatus::Created));
    assert!(second.iter().all(|file| file.status == PutStatus::Replayed));
    assert_eq!(
        first.iter().map(|file| &file.sha256).collect::<Vec<_>>(),
        second.iter().map(|file| &file.sha256).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_commit_overlapping_durable_positions_is_refused() {
    let (_dir, lake) = local_lake();
    let (events, dead_letters, range) = chunk("audit.json", 0, 30);
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z")).await.unwrap();
    let (events, dead_letters, range) = chunk("audit.json", 20, 30);
    let error = lake
        .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, LakeError::Overlap { resume_at, .. } if resume_at == 30 * RECORD_BYTES),
        "{error}"
    );
    assert_eq!(lake.head().await.unwrap().map(|head| head.seq), Some(1));
}

#[tokio::test]
async fn a_racing_writer_is_detected_and_the_chain_stays_linear() {
    let (dir, first) = local_lake();
    let second = Lake::open_local(dir.path()).unwrap().with_retry(quick_retry());
    assert_eq!(second.head().await.unwrap(), None, "the second writer has read the (empty) chain");

    let (events, dead_letters, range) = chunk("a.json", 0, 20);
    let stream_a = rolewatch_lake::StreamId::for_file_prefix(b"stream a");
    first.ingest_chunk(&stream_a, &events, &dead_letters, range, time("2026-11-26T11:00:00Z")).await.unwrap();

    // The second writer still believes the chain is empty: its create of seq 1 finds the first
    // writer's manifest, which extends its head (none), so it rebuilds on top of it as seq 2.
    let stream_b = rolewatch_lake::StreamId::for_file_prefix(b"stream b");
    let (events, dead_letters, range) = chunk("b.json", 0, 20);
    let outcome = second
        .ingest_chunk(&stream_b, &events, &dead_letters, range, time("2026-11-26T11:00:01Z"))
        .await
        .unwrap();
    let CommitOutcome::Committed(head) = outcome else { panic!("{outcome:?}") };
    assert_eq!(head.seq, 2);
    let manifest = read_manifest(second.store().as_ref(), 2).await;
    assert_eq!(manifest.previous.map(|previous| previous.seq), Some(1));
    let report = verify(&second, &VerifyOptions::new(time("2026-11-26T11:00:02Z"))).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.streams.len(), 2);
}

#[tokio::test]
async fn a_foreign_object_at_the_next_manifest_key_is_never_built_on_nor_overwritten() {
    let (_dir, lake) = local_lake();
    let (events, dead_letters, range) = chunk("audit.json", 0, 20);
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:00:00Z")).await.unwrap();
    let hostile = Bytes::from_static(b"{\"format\":\"rolewatch-manifest-v1\",\"seq\":2}");
    #[allow(clippy::disallowed_methods)] // the hostile writer overwrites; the lake never does
    lake.store().put(&Path::from(manifest_key(2)), hostile.clone().into()).await.unwrap();

    let (events, dead_letters, range) = chunk("audit.json", 20, 20);
    let error = lake
        .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:01:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(&error, LakeError::ManifestConflict { key, .. } if key == &manifest_key(2)), "{error}");
    let stored = lake.store().get(&Path::from(manifest_key(2))).await.unwrap().bytes().await.unwrap();
    assert_eq!(stored, hostile);
    assert_eq!(
        lake.durable_positions().await.unwrap().get(&stream()).map(CoveredRange::resume_at),
        Some(20 * RECORD_BYTES)
    );
}

#[tokio::test]
async fn heartbeats_are_written_only_when_idle() {
    let (_dir, lake) = local_lake();
    let interval = Duration::from_secs(300);
    let first = lake.heartbeat_if_idle(time("2026-11-26T10:00:00Z"), interval).await.unwrap();
    assert_eq!(first.map(|head| head.seq), Some(1), "an empty lake gets a heartbeat");
    assert_eq!(lake.heartbeat_if_idle(time("2026-11-26T10:04:59Z"), interval).await.unwrap(), None);
    let (events, dead_letters, range) = chunk("audit.json", 0, 5);
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T10:04:59Z")).await.unwrap();
    assert_eq!(lake.heartbeat_if_idle(time("2026-11-26T10:09:00Z"), interval).await.unwrap(), None);
    let beat = lake.heartbeat_if_idle(time("2026-11-26T10:09:59Z"), interval).await.unwrap().unwrap();
    assert_eq!(beat.seq, 3);
    let manifest = read_manifest(lake.store().as_ref(), 3).await;
    assert_eq!(manifest.kind, ManifestKind::Heartbeat);
    assert!(manifest.files.is_empty() && manifest.positions.is_empty());
}

#[tokio::test]
async fn signed_manifests_verify_with_the_public_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("manifest.key");
    std::fs::write(&key_file, format!("{}\n", "5a".repeat(32))).unwrap();
    let signer = ManifestSigner::load(&rolewatch_lake::KeySource::File(key_file)).unwrap();
    let public = signer.verifying_key();
    let lake = Lake::open_local(&dir.path().join("lake")).unwrap().with_signer(signer);
    let (events, dead_letters, range) = chunk("audit.json", 0, 10);
    lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T10:00:00Z")).await.unwrap();
    lake.heartbeat_if_idle(time("2026-11-26T11:00:00Z"), Duration::from_secs(60)).await.unwrap();
    assert!(read_manifest(lake.store().as_ref(), 2).await.signature.is_some());

    let mut options = VerifyOptions::new(time("2026-11-26T11:00:00Z"));
    options.require_signatures = true;
    options.trusted_keys = vec![public];
    let report = verify(&lake, &options).await.unwrap();
    assert!(report.is_intact(), "{report}");

    options.trusted_keys = vec![ManifestSigner::from_seed(&[9; 32]).verifying_key()];
    let report = verify(&lake, &options).await.unwrap();
    let kinds: Vec<_> = report.problems.iter().map(|problem| problem.kind()).collect();
    assert_eq!(kinds, ["unknown_key", "unknown_key"], "{report}");
}

#[tokio::test]
async fn an_empty_commit_and_reversed_ranges_are_refused() {
    let (_dir, lake) = local_lake();
    let now = time("2026-11-26T10:00:00Z");
    assert!(matches!(lake.commit(&[], &BTreeMap::new(), now).await, Err(LakeError::InvalidCommit { .. })));
    let reversed =
        BTreeMap::from([(stream(), CoveredRange::File { path: "f".into(), start_byte: 10, end_byte: 10 })]);
    assert!(matches!(lake.commit(&[], &reversed, now).await, Err(LakeError::InvalidCommit { .. })));
    let kafka = CoveredRange::Kafka { topic: "t".into(), partition: 0, first_offset: 5, last_offset: 4 };
    let reversed = BTreeMap::from([(rolewatch_lake::StreamId::for_kafka("t", 0), kafka)]);
    assert!(matches!(lake.commit(&[], &reversed, now).await, Err(LakeError::InvalidCommit { .. })));
    assert_eq!(lake.head().await.unwrap(), None);
}

#[tokio::test]
async fn a_crash_after_some_files_of_a_chunk_is_repaired_by_the_replay() {
    let (dir, lake) = local_lake();
    let (events, dead_letters, range) = chunk("audit.json", 0, 120);
    // The process dies after writing the chunk's first file (its first hour), before the
    // other files and the manifest.
    let first_hour = events[0].ts.format("%F %H").to_string();
    let first: Vec<_> =
        events.iter().filter(|event| event.ts.format("%F %H").to_string() == first_hour).cloned().collect();
    assert!(first.len() < events.len());
    let written = lake.write_events(&stream(), &first).await.unwrap();
    let before = snapshot(lake.store().as_ref()).await;
    drop(lake);

    let restarted = Lake::open_local(dir.path()).unwrap();
    restarted
        .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T12:00:00Z"))
        .await
        .unwrap();
    let after = snapshot(restarted.store().as_ref()).await;
    assert_eq!(
        after.get(&written[0].key),
        before.get(&written[0].key),
        "the first file is replayed, not rewritten"
    );
    let report = verify(&restarted, &VerifyOptions::new(time("2026-11-26T12:00:00Z"))).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.rows, 120);
}

#[tokio::test]
async fn a_writer_refuses_to_build_on_a_tampered_chain() {
    let (dir, lake) = local_lake();
    for first in [0, 10] {
        let (events, dead_letters, range) = chunk("audit.json", first, 10);
        lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T12:00:00Z"))
            .await
            .unwrap();
    }
    std::fs::remove_file(dir.path().join(manifest_key(1))).unwrap();
    let restarted = Lake::open_local(dir.path()).unwrap();
    let error = restarted.durable_positions().await.unwrap_err();
    assert!(matches!(&error, LakeError::Manifest { key, .. } if key == &manifest_key(2)), "{error}");
    let (events, dead_letters, range) = chunk("audit.json", 20, 10);
    assert!(
        restarted
            .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T12:00:00Z"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_chunk_whose_records_lie_outside_its_range_is_refused_before_anything_is_written() {
    let (_dir, lake) = local_lake();
    let (events, dead_letters, range) = chunk("audit.json", 10, 10);
    let CoveredRange::File { path, start_byte, end_byte } = range else { unreachable!() };
    let short = CoveredRange::File { path, start_byte, end_byte: end_byte - RECORD_BYTES };
    let error = lake
        .ingest_chunk(&stream(), &events, &dead_letters, short, time("2026-11-26T12:00:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(error, LakeError::InvalidCommit { .. }), "{error}");
    assert!(snapshot(lake.store().as_ref()).await.is_empty(), "nothing may be written");
}
