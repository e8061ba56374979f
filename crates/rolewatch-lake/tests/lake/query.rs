//! `query`: SQL over the lake's `events` (with `date` and `hour` partitions) and `dead_letters`.

use std::collections::BTreeMap;

use arrow_array::{Array, Int32Array, Int64Array, RecordBatch};
use chrono::Timelike;
use rolewatch_lake::{Lake, LakeError, query};

use crate::support::{chunk, local_lake, stream, time};

/// Ingests 150 records in three chunks and returns how many events fall in each hour and how
/// many dead letters there are, counted from the input.
async fn filled_lake(lake: &Lake) -> (BTreeMap<i32, i64>, i64) {
    let mut per_hour = BTreeMap::new();
    let mut dead = 0;
    for first in [0, 50, 100] {
        let (events, dead_letters, range) = chunk("audit.json", first, 50);
        for event in &events {
            *per_hour.entry(i32::try_from(event.ts.hour()).unwrap()).or_insert(0) += 1;
        }
        dead += i64::try_from(dead_letters.len()).unwrap();
        lake.ingest_chunk(&stream(), &events, &dead_letters, range, time("2026-11-26T12:00:00Z"))
            .await
            .unwrap();
    }
    (per_hour, dead)
}

fn single_count(batches: &[RecordBatch]) -> i64 {
    let batch = batches.iter().find(|batch| batch.num_rows() > 0).unwrap();
    batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

#[tokio::test]
async fn counts_match_the_input_by_partition_by_time_and_in_dead_letters() {
    let (_dir, lake) = local_lake();
    let (per_hour, dead) = filled_lake(&lake).await;
    assert!(per_hour.len() >= 2, "the sample spans several hours: {per_hour:?}");

    let total: i64 = per_hour.values().sum();
    assert_eq!(single_count(&query(&lake, "SELECT count(*) FROM events").await.unwrap()), total);
    assert_eq!(single_count(&query(&lake, "SELECT count(*) FROM dead_letters").await.unwrap()), dead);

    let grouped = query(
        &lake,
        "SELECT hour, count(*) AS n FROM events WHERE date = DATE '2026-11-26' GROUP BY hour ORDER BY hour",
    )
    .await
    .unwrap();
    let mut found = BTreeMap::new();
    for batch in &grouped {
        let hours = batch.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
        let counts = batch.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        for row in 0..batch.num_rows() {
            found.insert(hours.value(row), counts.value(row));
        }
    }
    assert_eq!(found, per_hour);

    let (&hour, &expected) = per_hour.iter().nth(1).unwrap();
    let by_time = format!(
        "SELECT count(*) FROM events WHERE ts >= TIMESTAMP '2026-11-26T{hour:02}:00:00Z' AND ts < TIMESTAMP '2026-11-26T{hour:02}:59:59.999999Z'"
    );
    assert_eq!(single_count(&query(&lake, &by_time).await.unwrap()), expected);
    let by_partition = format!("SELECT count(*) FROM events WHERE hour = {hour}");
    assert_eq!(single_count(&query(&lake, &by_partition).await.unwrap()), expected);
}

#[tokio::test]
async fn lists_and_timestamps_come_back_typed() {
    let (_dir, lake) = local_lake();
    filled_lake(&lake).await;
    let batches =
        query(&lake, "SELECT objects[1] AS first_object, ts FROM events ORDER BY ts LIMIT 1").await.unwrap();
    let batch = &batches[0];
    let first_object = batch.column(0).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
    assert_eq!(first_object.value(0), "public.t0");
    assert_eq!(batch.schema().field(1).data_type().to_string(), "Timestamp(µs, \"UTC\")");
    assert!(!batch.column(1).is_null(0));
}

#[tokio::test]
async fn an_empty_lake_has_empty_tables_and_bad_sql_is_an_error() {
    let (_dir, lake) = local_lake();
    assert_eq!(single_count(&query(&lake, "SELECT count(*) FROM events").await.unwrap()), 0);
    assert_eq!(single_count(&query(&lake, "SELECT count(*) FROM dead_letters").await.unwrap()), 0);
    let error = query(&lake, "SELEC nothing").await.unwrap_err();
    assert!(matches!(error, LakeError::Query(_)), "{error}");
    let bare = Lake::with_store(std::sync::Arc::new(object_store::memory::InMemory::new()));
    assert!(matches!(query(&bare, "SELECT 1").await, Err(LakeError::Query(_))));
}

#[tokio::test]
async fn a_bound_on_ts_skips_the_hour_folders_outside_it() {
    let (dir, lake) = local_lake();
    let (per_hour, _) = filled_lake(&lake).await;
    let (&first_hour, _) = per_hour.iter().next().unwrap();
    let later: i64 = per_hour.iter().filter(|(hour, _)| **hour > first_hour).map(|(_, count)| count).sum();
    // A file in the first hour's folder that no engine can read: a query that opens it fails,
    // so a query that succeeds has skipped the folder.
    let folder = dir.path().join(format!("events/date=2026-11-26/hour={first_hour:02}"));
    std::fs::write(folder.join("zz-unreadable.parquet"), b"not parquet at all").unwrap();
    assert!(
        query(&lake, "SELECT count(*) FROM events").await.is_err(),
        "the planted file is read without a bound"
    );

    let bound = format!(
        "SELECT count(*) FROM events WHERE ts >= TIMESTAMP '2026-11-26T{:02}:00:00Z'",
        first_hour + 1
    );
    assert_eq!(single_count(&query(&lake, &bound).await.unwrap()), later);
    let swapped = format!(
        "SELECT count(*) FROM events WHERE TIMESTAMP '2026-11-26T{:02}:00:00Z' <= ts",
        first_hour + 1
    );
    assert_eq!(single_count(&query(&lake, &swapped).await.unwrap()), later);
}

/// Every file under `dir` with its bytes.
fn files_under(dir: &std::path::Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// A query cannot write: `COPY ... TO` over a stored file, `COPY` to a new file in the lake,
/// `INSERT INTO` and DDL are refused by `query`, and through a bare `query_context` (no SQL
/// options) the session's stores refuse the write. Nothing under the lake changes.
#[tokio::test]
async fn queries_cannot_write_to_the_lake() {
    let (dir, lake) = local_lake();
    filled_lake(&lake).await;
    let before = files_under(dir.path());
    let stored = before.keys().find(|path| path.extension().is_some_and(|ext| ext == "parquet")).unwrap();
    let planted = dir.path().join("events").join("planted.parquet");
    let statements = [
        format!("COPY (SELECT 1 AS x) TO '{}' STORED AS PARQUET", stored.display()),
        format!("COPY (SELECT * FROM events) TO '{}' STORED AS PARQUET", planted.display()),
        "INSERT INTO events SELECT * FROM events".to_owned(),
        "CREATE TABLE copied AS SELECT * FROM events".to_owned(),
        format!("CREATE EXTERNAL TABLE outside STORED AS PARQUET LOCATION '{}'", dir.path().display()),
    ];
    for sql in &statements {
        let error = query(&lake, sql).await.expect_err(sql);
        assert!(matches!(error, LakeError::Query(_)), "{sql}: {error}");
    }
    let context = rolewatch_lake::query_context(&lake).await.unwrap();
    for sql in &statements[..2] {
        let written = match context.sql(sql).await {
            Ok(frame) => frame.collect().await.map(drop),
            Err(error) => Err(error),
        };
        let error = written.expect_err(sql).to_string();
        assert!(error.contains("read-only"), "{sql}: {error}");
    }
    assert_eq!(files_under(dir.path()), before, "a query changed the lake");
}
