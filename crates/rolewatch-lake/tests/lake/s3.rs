//! The lake on a real S3-compatible server (MinIO, built by `scripts/minio.sh install`),
//! started by the test on a free loopback port: writes, the manifest chain, verify, query, and
//! the server's conditional-create behaviour that write-once rests on.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use rolewatch_lake::{CommitOutcome, Lake, LakeLocation, S3Options, VerifyOptions, query, verify};

use crate::support::{chunk, stream, time};

const ACCESS_KEY: &str = "rolewatch-test";
const SECRET_KEY: &str = "rolewatch-test-secret";

/// A MinIO server on 127.0.0.1, stopped (killed) when dropped.
struct Minio {
    child: std::process::Child,
    endpoint: String,
    _data: tempfile::TempDir,
}

impl Drop for Minio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn minio_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ROLEWATCH_MINIO") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let installed = home.join(".cache/rolewatch/bin/minio");
    assert!(
        installed.exists(),
        "MinIO is not installed: run scripts/minio.sh install (or set ROLEWATCH_MINIO to a minio binary)"
    );
    installed
}

async fn start_minio() -> Minio {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(minio_binary())
        .args(["server", "--quiet", "--address", &format!("127.0.0.1:{port}")])
        .arg(data.path())
        .env("MINIO_ROOT_USER", ACCESS_KEY)
        .env("MINIO_ROOT_PASSWORD", SECRET_KEY)
        .env("MINIO_BROWSER", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let health = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(&health).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "MinIO did not listen on {health} within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Minio { child, endpoint, _data: data }
}

fn options(endpoint: &str) -> S3Options {
    S3Options {
        endpoint: Some(endpoint.to_owned()),
        access_key_id: Some(ACCESS_KEY.to_owned()),
        secret_access_key: Some(SECRET_KEY.to_owned()),
        ..S3Options::default()
    }
}

/// Creates a bucket with a real, SigV4-signed S3 CreateBucket call (curl's `--aws-sigv4`):
/// object_store has no bucket API.
async fn create_bucket(minio: &Minio, bucket: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "PUT",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
            ])
            .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
            .arg(format!("{}/{bucket}", minio.endpoint))
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&output.stdout).to_string();
        if status == "200" {
            return;
        }
        // 503 while MinIO initializes its drive.
        assert!(Instant::now() < deadline, "CreateBucket {bucket} kept failing: HTTP {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_lake_works_on_a_real_s3_server_and_creates_are_conditional() {
    let minio = start_minio().await;
    create_bucket(&minio, "audit").await;
    let location = LakeLocation::parse("s3://audit/lake", options(&minio.endpoint)).unwrap();
    let lake = Lake::open_location(location.clone()).unwrap();

    // Conditional create: the second create of a key is refused as AlreadyExists.
    let store = lake.store();
    let key = Path::from("probe/once");
    let create = || PutOptions { mode: PutMode::Create, ..PutOptions::default() };
    store.put_opts(&key, b"first".to_vec().into(), create()).await.unwrap();
    let second = store.put_opts(&key, b"second".to_vec().into(), create()).await.unwrap_err();
    assert!(matches!(second, object_store::Error::AlreadyExists { .. }), "{second}");
    assert_eq!(store.get(&key).await.unwrap().bytes().await.unwrap().as_ref(), b"first");
    store.delete(&key).await.unwrap();

    let (events, dead_letters, range) = chunk("audit.json", 0, 60);
    let outcome = lake
        .ingest_chunk(&stream(), &events, &dead_letters, range.clone(), time("2026-11-26T11:00:00Z"))
        .await
        .unwrap();
    assert!(matches!(outcome, CommitOutcome::Committed(_)));
    // A second process on the same bucket sees the commit and stores nothing new.
    let again = Lake::open_location(location).unwrap();
    assert_eq!(
        again
            .ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T11:05:00Z"))
            .await
            .unwrap(),
        CommitOutcome::AlreadyDurable
    );
    let report = verify(&again, &VerifyOptions::new(time("2026-11-26T11:05:00Z"))).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.rows, 60);

    let batches = query(&again, "SELECT count(*) FROM events").await.unwrap();
    let count = batches[0].column(0).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap().value(0);
    assert_eq!(count, i64::try_from(events.len()).unwrap());
}
