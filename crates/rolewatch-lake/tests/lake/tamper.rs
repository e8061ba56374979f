//! AT-08: after a clean run, tamper with the lake in every way the acceptance test lists and
//! check that `verify` names each problem (and that the untouched lake verifies clean).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rolewatch_lake::{
    Lake, Manifest, ManifestRef, ManifestSigner, VerifyOptions, VerifyReport, manifest_key, verify,
};

use crate::support::{chunk, stream, time};

const HEARTBEAT: Duration = Duration::from_secs(300);

fn signer() -> ManifestSigner {
    ManifestSigner::from_seed(&[7; 32])
}

/// Three data chunks at 10:00, 10:05 and 10:10, then heartbeats every 5 minutes until 10:30:
/// seqs 1-3 are data, 4-7 heartbeats.
async fn clean_lake() -> (tempfile::TempDir, Lake, ManifestRef) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open_local(dir.path()).unwrap().with_signer(signer());
    for (index, at) in ["10:00", "10:05", "10:10"].into_iter().enumerate() {
        let first = u64::try_from(index).unwrap() * 40;
        let (events, dead_letters, range) = chunk("audit.json", first, 40);
        lake.ingest_chunk(&stream(), &events, &dead_letters, range, time(&format!("2026-11-26T{at}:00Z")))
            .await
            .unwrap();
    }
    for minute in (11..=30).map(|minute| format!("2026-11-26T10:{minute:02}:00Z")) {
        lake.heartbeat_if_idle(time(&minute), HEARTBEAT).await.unwrap();
    }
    let head = lake.head().await.unwrap().unwrap();
    assert_eq!(head.seq, 7);
    (dir, lake, head)
}

fn options(now: &str, head: Option<ManifestRef>) -> VerifyOptions {
    let mut options = VerifyOptions::new(time(now));
    options.max_head_age = Some(HEARTBEAT * 2);
    options.trusted_keys = vec![signer().verifying_key()];
    options.require_signatures = true;
    options.expected_head = head;
    options
}

async fn check(dir: &Path, options: &VerifyOptions) -> VerifyReport {
    verify(&Lake::open_local(dir).unwrap(), options).await.unwrap()
}

fn kinds(report: &VerifyReport) -> Vec<&'static str> {
    let mut kinds: Vec<_> = report.problems.iter().map(|problem| problem.kind()).collect();
    kinds.sort_unstable();
    kinds
}

fn manifest_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(manifest_key(seq))
}

/// A data file of the lake, by its listing in manifest `seq`.
fn listed_file(dir: &Path, seq: u64) -> String {
    let bytes = std::fs::read(manifest_path(dir, seq)).unwrap();
    Manifest::from_bytes("", &bytes).unwrap().files.remove(0).key
}

#[tokio::test]
async fn an_untouched_lake_verifies_clean_with_heartbeats_for_the_idle_period() {
    let (dir, _lake, head) = clean_lake().await;
    let report = check(dir.path(), &options("2026-11-26T10:31:00Z", Some(head.clone()))).await;
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.manifests, report.heartbeats), (7, 4));
    assert_eq!(report.head, Some(head), "the exported chain head matches the last manifest");
    assert_eq!(report.rows, 120);
}

#[tokio::test]
async fn a_flipped_byte_is_a_hash_mismatch_naming_the_file() {
    let (dir, _lake, head) = clean_lake().await;
    let key = listed_file(dir.path(), 2);
    let path = dir.path().join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let report = check(dir.path(), &options("2026-11-26T10:31:00Z", Some(head))).await;
    assert_eq!(kinds(&report), ["hash_mismatch"], "{report}");
    assert!(report.problems[0].to_string().contains(&key), "{report}");
}

#[tokio::test]
async fn a_deleted_file_is_named_as_missing() {
    let (dir, _lake, head) = clean_lake().await;
    let key = listed_file(dir.path(), 1);
    std::fs::remove_file(dir.path().join(&key)).unwrap();
    let report = check(dir.path(), &options("2026-11-26T10:31:00Z", Some(head))).await;
    assert_eq!(kinds(&report), ["missing_file"], "{report}");
    assert!(report.problems[0].to_string().contains(&key), "{report}");
}

#[tokio::test]
async fn a_deleted_newest_manifest_shows_against_the_exported_head_and_as_a_stale_head() {
    let (dir, _lake, head) = clean_lake().await;
    std::fs::remove_file(manifest_path(dir.path(), 7)).unwrap();
    let report = check(dir.path(), &options("2026-11-26T10:31:00Z", Some(head))).await;
    assert_eq!(kinds(&report), ["truncated_tail"], "{report}");
    // Without the exported head, the missing heartbeat shows once the head is older than 2T:
    // at 10:36 the untouched lake is fine, the truncated one is not.
    let (untouched, _lake, _) = clean_lake().await;
    assert!(check(untouched.path(), &options("2026-11-26T10:36:00Z", None)).await.is_intact());
    let report = check(dir.path(), &options("2026-11-26T10:36:00Z", None)).await;
    assert_eq!(kinds(&report), ["missing_tail"], "{report}");
}

#[tokio::test]
async fn without_heartbeats_the_head_goes_stale() {
    let (dir, _lake, _) = clean_lake().await;
    let report = check(dir.path(), &options("2026-11-26T11:00:00Z", None)).await;
    assert_eq!(kinds(&report), ["missing_tail"], "{report}");
}

#[tokio::test]
async fn a_deleted_data_manifest_breaks_the_chain_and_orphans_its_files() {
    let (dir, _lake, head) = clean_lake().await;
    let files =
        Manifest::from_bytes("", &std::fs::read(manifest_path(dir.path(), 3)).unwrap()).unwrap().files;
    std::fs::remove_file(manifest_path(dir.path(), 3)).unwrap();
    let report = check(dir.path(), &options("2026-11-26T10:31:00Z", Some(head))).await;
    let mut expected = vec!["broken_chain", "missing_manifest"];
    expected.extend(files.iter().map(|_| "unlisted_file"));
    expected.sort_unstable();
    assert_eq!(kinds(&report), expected, "{report}");
}

#[tokio::test]
async fn swapped_manifests_are_misplaced_and_break_the_chain() {
    let (dir, _lake, head) = clean_lake().await;
    let (second, third) = (manifest_path(dir.path(), 2), manifest_path(dir.path(), 3));
    let (second_bytes, third_bytes) = (std::fs::read(&second).unwrap(), std::fs::read(&third).unwrap());
    std::fs::write(&second, third_bytes).unwrap();
    std::fs::write(&third, second_bytes).unwrap();
    let report = check(dir.path(), &options("2026-11-26T10:31:00Z", Some(head))).await;
    let found = kinds(&report);
    assert_eq!(found.iter().filter(|kind| **kind == "misplaced_manifest").count(), 2, "{report}");
    assert!(found.contains(&"broken_chain"), "{report}");
}

#[tokio::test]
async fn a_manifest_re_signed_under_an_unknown_key_is_named() {
    let (dir, _lake, head) = clean_lake().await;
    let path = manifest_path(dir.path(), 2);
    let mut manifest = Manifest::from_bytes("", &std::fs::read(&path).unwrap()).unwrap();
    let dropped = manifest.files.pop().unwrap();
    // The attacker knows the format but not the key, and signs with a key of their own.
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[66; 32]);
    let bytes = manifest.signed_bytes().unwrap();
    let signature = rolewatch_lake::ManifestSignature {
        algorithm: rolewatch_lake::SIGNATURE_ALGORITHM.into(),
        key_id: rolewatch_lake::key_id(&attacker.verifying_key()),
        value: hex::encode(ed25519_dalek::Signer::sign(&attacker, &bytes).to_bytes()),
    };
    manifest.signature = Some(signature);
    std::fs::write(&path, manifest.to_bytes().unwrap()).unwrap();
    let report = check(dir.path(), &options("2026-11-26T10:31:00Z", Some(head))).await;
    assert_eq!(kinds(&report), ["broken_chain", "unknown_key", "unlisted_file"], "{report}");
    assert!(report.problems.iter().any(|problem| problem.to_string().contains(&dropped.key)), "{report}");
}

#[tokio::test]
async fn an_edited_manifest_fails_its_signature() {
    let (dir, _lake, head) = clean_lake().await;
    let path = manifest_path(dir.path(), 2);
    let mut manifest = Manifest::from_bytes("", &std::fs::read(&path).unwrap()).unwrap();
    manifest.files[0].rows += 1;
    std::fs::write(&path, manifest.to_bytes().unwrap()).unwrap();
    let report = check(dir.path(), &options("2026-11-26T10:31:00Z", Some(head))).await;
    assert_eq!(kinds(&report), ["bad_signature", "broken_chain"], "{report}");
}
