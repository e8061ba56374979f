//! DuckDB and pyarrow read the lake as it is: `read_parquet('<lake>/events/**/*.parquet',
//! hive_partitioning=true)`. Runs `tests/interop.py` with the Python that
//! `scripts/interop-deps.sh` provisioned.

use std::process::Command;

use crate::support::{chunk, local_lake, stream, time};

#[tokio::test]
async fn duckdb_and_pyarrow_read_the_lake_and_agree_with_the_input() {
    let (dir, lake) = local_lake();
    let mut expected_events = 0;
    let mut expected_dead = 0;
    for first in [0, 50] {
        let (events, dead_letters, range) = chunk("audit.json", first, 50);
        expected_events += events.len();
        expected_dead += dead_letters.len();
        lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T12:00:00Z"))
            .await
            .unwrap();
    }
    let python = std::env::var("ROLEWATCH_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/rolewatch/venv/bin/python")
    });
    let script = manifest_dir().join("tests/interop.py");
    let output = Command::new(&python).arg(&script).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{python} {} failed (run scripts/interop-deps.sh to install duckdb and pyarrow):\n{stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["duckdb_events"], expected_events);
    assert_eq!(report["pyarrow_events"], expected_events);
    assert_eq!(report["duckdb_dead_letters"], expected_dead);
    assert_eq!(report["duckdb_ts_type"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(report["duckdb_objects_type"], "VARCHAR[]");
    assert_eq!(report["pyarrow_ts_type"], "timestamp[us, tz=UTC]");
    assert_eq!(report["duckdb_hours"], report["pyarrow_hours"]);
}

/// The package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for test
/// processes): a binary compiled in another checkout that shares the target directory must
/// not read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), std::path::PathBuf::from)
}
