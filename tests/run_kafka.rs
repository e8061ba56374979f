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
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rolewatch_e2e::{
    capture_pg_sample, http_get, metric_value, parquet_files, read_parquet, rolewatch_binary, run_rolewatch,
    run_script, stored_events, wait_until,
};

const GENEROUS: Duration = Duration::from_secs(90);
const BROKER: &str = "127.0.0.1:9092";

fn produce(topic: &str, lines: &[&str]) {
    let mut kcat = Command::new("kcat")
        .args(["-b", BROKER, "-P", "-t", topic, "-k", "pg-main"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat runs (scripts/install-deps.sh installs it)");
    let mut stdin = kcat.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    assert!(kcat.wait().unwrap().success(), "kcat could not produce to {topic}");
}

/// Starts `rolewatch run`; returns the child, its metrics address and its stderr lines.
fn start_daemon(dir: &Path) -> (Child, String, mpsc::Receiver<String>) {
    let mut daemon = Command::new(rolewatch_binary())
        .current_dir(dir)
        .args(["run", "--config", "rolewatch.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, lines) = mpsc::channel::<String>();
    let stderr = daemon.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let address = loop {
        let line = lines.recv_timeout(GENEROUS).expect("the daemon says where it serves metrics");
        if let Some(rest) = line.split("on http://").nth(1) {
            break rest.trim().to_owned();
        }
    };
    (daemon, address, lines)
}

fn stop_daemon(mut daemon: Child, lines: &mpsc::Receiver<String>) {
    let pid = daemon.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exited = wait_until(GENEROUS, || daemon.try_wait().unwrap().is_some());
    if !exited {
        let _ = daemon.kill();
    }
    let status = daemon.wait().unwrap();
    let stderr: Vec<String> = lines.try_iter().collect();
    assert!(exited && status.success(), "the daemon did not stop cleanly ({status}):\n{}", stderr.join("\n"));
}

fn scrape(address: &str) -> String {
    http_get(address, "/metrics").map(|(_, body)| body).unwrap_or_default()
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
    let (daemon, address, stderr) = start_daemon(work.path());
    let first_read = wait_until(GENEROUS, || {
        metric_value(&scrape(&address), "rolewatch_source_records_total{source=\"kafka\"}")
            == Some(first_half.len() as f64)
    });
    let metrics = scrape(&address);
    assert!(first_read, "the first half was not consumed:\n{metrics}");
    assert!(wait_until(GENEROUS, || http_get(&address, "/ready").is_ok_and(|(status, _)| status == 200)));
    assert!(metric_value(&metrics, "rolewatch_kafka_assigned_partitions").is_some_and(|count| count >= 1.0));
    stop_daemon(daemon, &stderr);

    produce(&topic, second_half);
    let (daemon, address, stderr) = start_daemon(work.path());
    let second_read = wait_until(GENEROUS, || {
        metric_value(&scrape(&address), "rolewatch_source_records_total{source=\"kafka\"}")
            == Some(second_half.len() as f64)
    });
    assert!(second_read, "the second run did not read exactly the second half:\n{}", scrape(&address));
    stop_daemon(daemon, &stderr);

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
