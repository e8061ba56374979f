//! `rolewatch run` as a member of a Kafka consumer group, against a real Apache Kafka broker
//! (scripts/kafka.sh) carrying real pgAudit logs (captured from a real PostgreSQL by
//! scripts/capture-pg-sample.sh and produced with kcat, keyed by server as a shipper does).
//!
//! The first half of the log is consumed, stored and committed; the daemon stops on SIGTERM;
//! the second half is produced; a second run resumes after the durable position. Together the
//! runs must store every statement of the log exactly once, each event carrying its topic,
//! partition and offset.

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rolewatch_e2e::{
    Daemon, capture_pg_sample, http_get, metric_value, parquet_files, read_parquet, run_rolewatch,
    run_script, stored_events, wait_until,
};

const GENEROUS: Duration = Duration::from_secs(90);
const BROKER: &str = "127.0.0.1:9092";

fn produce(topic: &str, lines: &[&str]) {
    produce_bytes(topic, &lines.iter().map(|line| line.as_bytes().to_vec()).collect::<Vec<_>>());
}

/// Produces one record per item (each must be free of newlines), keyed by server.
fn produce_bytes(topic: &str, records: &[Vec<u8>]) {
    rolewatch_e2e::kcat_produce(topic, &["-k", "pg-main"], &records.join(&b'\n'));
}

/// The example config with `[source.kafka]` for `topic`, storing into `./rolewatch-data`.
fn kafka_config(topic: &str, group: &str) -> String {
    rolewatch_e2e::kafka_run_config("./rolewatch-data", BROKER, topic, group, "range")
}

/// Starts the daemon in `dir` and waits until it has read `records` Kafka records.
fn start_and_read(dir: &Path, records: usize) -> Daemon {
    let daemon = Daemon::start(dir, &[], GENEROUS);
    let all_read = wait_until(GENEROUS, || {
        metric_value(&daemon.scrape(), "rolewatch_source_records_total{source=\"kafka\"}")
            == Some(records as f64)
    });
    assert!(all_read, "not every record was read:\n{}", daemon.scrape());
    daemon
}

fn unique() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// AT-05: poison records between good ones each land in the dead-letter area with their raw
/// bytes, reason and Kafka position; the good records around them are stored; nothing panics.
#[test]
fn poison_records_become_dead_letters_and_the_rest_is_stored() {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let work = tempfile::tempdir().unwrap();
    let sample =
        std::fs::read_to_string(rolewatch_e2e::repo_root().join("examples/logs/postgresql.json")).unwrap();
    let good: Vec<&str> = sample.lines().filter(|line| line.contains("AUDIT: SESSION")).take(20).collect();
    let poison: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"timestamp\": not json".to_vec(), "invalid_json"),
        (b"\xff\xfe\xfd not utf-8".to_vec(), "invalid_utf8"),
        ([b"{\"x\":\"".as_slice(), &vec![b'a'; 600_000], b"\"".as_slice()].concat(), "invalid_json"),
        (b"{\"user\":\"app_reader\",\"message\":\"no timestamp\"}".to_vec(), "missing_field"),
    ];
    let mut records: Vec<Vec<u8>> = Vec::new();
    for (index, line) in good.iter().enumerate() {
        records.push(line.as_bytes().to_vec());
        if let Some((record, _)) = poison.get(index) {
            records.push(record.clone());
        }
    }
    let topic = format!("pgaudit.poison.{}", unique());
    std::fs::write(work.path().join("rolewatch.toml"), kafka_config(&topic, &format!("poison-{}", unique())))
        .unwrap();
    produce_bytes(&topic, &records);

    let daemon = start_and_read(work.path(), records.len());
    assert!(wait_until(GENEROUS, || {
        metric_value(&daemon.scrape(), "rolewatch_lake_dead_letters_stored_total")
            == Some(poison.len() as f64)
    }));
    daemon.stop(GENEROUS);

    let dead_letters = read_parquet(&parquet_files(&work.path().join("rolewatch-data/dead_letters")));
    let mut found: Vec<(String, Vec<u8>, String)> = Vec::new();
    for batch in &dead_letters {
        use arrow_array::cast::AsArray;
        let topics = batch.column_by_name("source_topic").unwrap().as_string::<i32>();
        let reasons = batch.column_by_name("reason").unwrap().as_string::<i32>();
        let raw = batch.column_by_name("raw").unwrap().as_binary::<i32>();
        for row in 0..batch.num_rows() {
            found.push((
                reasons.value(row).to_owned(),
                raw.value(row).to_vec(),
                topics.value(row).to_owned(),
            ));
        }
    }
    assert_eq!(found.len(), poison.len());
    for (record, reason) in &poison {
        assert!(
            found.iter().any(|(found_reason, raw, found_topic)| raw == record
                && found_reason == reason
                && *found_topic == topic),
            "no {reason} dead letter with the record's raw bytes"
        );
    }
    let stored = stored_events(&read_parquet(&parquet_files(&work.path().join("rolewatch-data/events"))));
    assert!(stored.len() >= good.len() / 2, "the good records around the poison were stored");
    assert!(stored.iter().all(|event| event.source_offset.is_some()));
}

#[test]
fn a_consumer_group_member_stores_every_record_once_across_restarts() {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let work = tempfile::tempdir().unwrap();
    capture_pg_sample(&work.path().join("capture"));
    let log = std::fs::read_to_string(work.path().join("capture/postgresql.json")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let (first_half, second_half) = lines.split_at(lines.len() / 2);

    let unique = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let topic = format!("pgaudit.e2e.{unique}");
    let example =
        std::fs::read_to_string(rolewatch_e2e::repo_root().join("examples/rolewatch.toml")).unwrap();
    let config = format!(
        "{example}
[source.kafka]
brokers = [\"{BROKER}\"]
topics = [\"{topic}\"]
group_id = \"rolewatch-e2e-{unique}\"
format = \"pgaudit-jsonlog\"
flush_interval = \"500ms\"

[metrics]
listen = \"127.0.0.1:0\"
"
    );
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();

    produce(&topic, first_half);
    let daemon = Daemon::start(work.path(), &[], GENEROUS);
    let first_read = wait_until(GENEROUS, || {
        metric_value(&daemon.scrape(), "rolewatch_source_records_total{source=\"kafka\"}")
            == Some(first_half.len() as f64)
    });
    let metrics = daemon.scrape();
    assert!(first_read, "the first half was not consumed:\n{metrics}");
    assert!(
        wait_until(GENEROUS, || http_get(&daemon.address, "/ready").is_ok_and(|(status, _)| status == 200))
    );
    assert!(metric_value(&metrics, "rolewatch_kafka_assigned_partitions").is_some_and(|count| count >= 1.0));
    daemon.stop(GENEROUS);

    produce(&topic, second_half);
    let daemon = Daemon::start(work.path(), &[], GENEROUS);
    let second_read = wait_until(GENEROUS, || {
        metric_value(&daemon.scrape(), "rolewatch_source_records_total{source=\"kafka\"}")
            == Some(second_half.len() as f64)
    });
    assert!(second_read, "the second run did not read exactly the second half:\n{}", daemon.scrape());
    daemon.stop(GENEROUS);

    // Every statement of the log, each stored once, with its Kafka position.
    let stored = stored_events(&read_parquet(&parquet_files(&work.path().join("rolewatch-data/events"))));
    let offsets: Vec<i64> = stored.iter().map(|event| event.source_offset.unwrap()).collect();
    let distinct: BTreeSet<i64> = offsets.iter().copied().collect();
    assert_eq!(distinct.len(), offsets.len(), "an offset was stored twice");
    assert!(offsets.iter().all(|offset| (0..lines.len() as i64).contains(offset)));
    let parsed = run_rolewatch(
        work.path(),
        &[
            "parse",
            "--format",
            "pgaudit-jsonlog",
            work.path().join("capture/postgresql.json").to_str().unwrap(),
        ],
        &[],
    );
    let statements = |events: Vec<(String, String)>| events.into_iter().collect::<BTreeSet<_>>();
    let expected = statements(
        String::from_utf8_lossy(&parsed.stdout)
            .lines()
            .map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                (
                    event["command"].as_str().unwrap().to_owned(),
                    event["statement"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
    );
    let got = statements(
        stored
            .iter()
            .map(|event| (event.command.clone(), event.statement.clone().unwrap_or_default()))
            .collect(),
    );
    assert_eq!(got, expected);
    assert!(
        stored.iter().any(|event| event.role.as_deref() == Some("app_reader") && event.rows == Some(20_000))
    );
}

/// Full chunks cut between the relation lines of a statement (pgAudit writes one line per
/// relation) do not split it: with chunks of two events, the real log read through the real
/// broker is stored as exactly the events `rolewatch parse` makes of the file, each at the
/// offset of its first line. Before, each statement on several relations that a cut fell
/// between became two events.
#[test]
fn full_chunks_keep_a_statement_on_several_relations_whole() {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let work = tempfile::tempdir().unwrap();
    let path = rolewatch_e2e::repo_root().join("examples/logs/postgresql.json");
    let log = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let topic = format!("pgaudit.cuts.{}", unique());
    let config = kafka_config(&topic, &format!("cuts-{}", unique()));
    let source_chunks = "flush_interval = \"200ms\"\nchunk_events = 250\n";
    assert!(config.contains(source_chunks), "kafka_run_config changed");
    // Only full chunks are cut while the daemon runs; the stop cuts the rest.
    let config = config.replacen(source_chunks, "flush_interval = \"1h\"\nchunk_events = 2\n", 1);
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    produce(&topic, &lines);

    start_and_read(work.path(), lines.len()).stop(GENEROUS);

    let mut stored = stored_events(&read_parquet(&parquet_files(&work.path().join("rolewatch-data/events"))));
    stored.sort_by_key(|event| event.source_offset);
    let parsed =
        run_rolewatch(work.path(), &["parse", "--format", "pgaudit-jsonlog", path.to_str().unwrap()], &[]);
    let expected: Vec<(i64, String, Vec<String>)> = String::from_utf8_lossy(&parsed.stdout)
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            let objects = event["objects"].as_array().map_or_else(Vec::new, |objects| {
                objects.iter().map(|object| object.as_str().unwrap().to_owned()).collect()
            });
            // One record per line: a line's offset is its line number less one.
            (
                event["source_line"].as_i64().unwrap() - 1,
                event["command"].as_str().unwrap().to_owned(),
                objects,
            )
        })
        .collect();
    assert!(expected.iter().filter(|(_, _, objects)| objects.len() > 1).count() >= 2);
    let got: Vec<(i64, String, Vec<String>)> = stored
        .iter()
        .map(|event| (event.source_offset.unwrap(), event.command.clone(), event.objects.clone()))
        .collect();
    assert_eq!(got, expected);
}
