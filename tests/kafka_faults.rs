//! Crashes and rebalances of `rolewatch run` on a real Apache Kafka broker (scripts/kafka.sh),
//! RELIABILITY.md AT-01 (random SIGKILLs, and a crash at each commit step) and AT-02: whatever
//! happens to the consumers, the lake's committed view (the files its manifests list) holds
//! every produced record exactly once, and no stored object ever changes; and a chunk committed
//! just before a crash still raises its alerts after the restart.
//!
//! The records are pgAudit jsonlog lines, one statement each, keyed by session as a shipper
//! keys them, so they spread over the topic's 3 partitions. Each is identified in the lake by
//! its `(source_partition, source_offset)`.

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rolewatch_e2e::{
    Daemon, Receiver, committed_files, http_get, metric_value, read_parquet, run_rolewatch, run_script,
    stored_events, wait_until,
};

const GENEROUS: Duration = Duration::from_secs(120);
use rolewatch_e2e::KAFKA_BROKER as BROKER;

/// `key|value` for statement `n`: a pgAudit jsonlog line keyed by its session.
fn record(n: usize) -> String {
    format!("s{}|{}", n % 7, rolewatch_e2e::pgaudit_statement(n))
}

/// Produces records `range` with kcat, keyed by session (`key|value`).
fn produce(topic: &str, range: std::ops::Range<usize>) {
    let lines: Vec<String> = range.map(record).collect();
    rolewatch_e2e::kcat_produce(topic, &["-K", "|"], lines.join("\n").as_bytes());
}

fn unique() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// Writes `dir/rolewatch.toml` for a consumer of `topic` storing into `lake` (shared by
/// instances).
fn write_config(dir: &Path, lake: &Path, topic: &str, group: &str, strategy: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let config = rolewatch_e2e::kafka_run_config(&lake.display().to_string(), BROKER, topic, group, strategy);
    std::fs::write(dir.join("rolewatch.toml"), config).unwrap();
}

/// One test's consumer: a work directory whose `rolewatch.toml` consumes a fresh topic
/// `pgaudit.<name>.<unique>` into `<work>/lake`, as group `rolewatch-<name>-<unique>` with the
/// range assignor.
struct Consumer {
    work: tempfile::TempDir,
    topic: String,
    lake: PathBuf,
}

fn consumer(name: &str) -> Consumer {
    let work = tempfile::tempdir().unwrap();
    let id = unique();
    let topic = format!("pgaudit.{name}.{id}");
    let lake = work.path().join("lake");
    write_config(work.path(), &lake, &topic, &format!("rolewatch-{name}-{id}"), "range");
    Consumer { work, topic, lake }
}

/// `(partition, offset)` of every event in the committed view, in file order.
fn committed(lake: &Path) -> Vec<(i32, i64)> {
    let files = committed_files(lake, "events/");
    stored_events(&read_parquet(&files))
        .iter()
        .map(|event| (event.source_partition.unwrap(), event.source_offset.unwrap()))
        .collect()
}

/// A hash of the content of every object in the lake. Skips object_store's staging files
/// (`<key>#<n>`, renamed into place or removed by the put that made them).
fn snapshot(lake: &Path) -> BTreeMap<PathBuf, u64> {
    fn walk(dir: &Path, into: &mut BTreeMap<PathBuf, u64>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, into);
            } else if !path.to_string_lossy().contains('#')
                && let Ok(bytes) = std::fs::read(&path)
            {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&bytes, &mut hasher);
                into.insert(path, std::hash::Hasher::finish(&hasher));
            }
        }
    }
    let mut objects = BTreeMap::new();
    walk(lake, &mut objects);
    objects
}

/// A small seeded generator for kill delays (reproducible runs).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

fn records_read(daemon: &Daemon) -> f64 {
    metric_value(&daemon.scrape(), "rolewatch_source_records_total{source=\"kafka\"}").unwrap_or(0.0)
}

/// Exactly once: `total` distinct records in the committed view, none twice; the objects seen
/// before are unchanged; `rolewatch verify` finds nothing wrong, no file left unlisted either
/// (the restart commits a crash's files: see
/// `a_chunk_cut_by_age_before_a_crash_is_cut_the_same_way_after_it`).
fn assert_exactly_once(lake: &Path, total: usize, before: &BTreeMap<PathBuf, u64>) {
    let stored = committed(lake);
    let distinct: BTreeSet<(i32, i64)> = stored.iter().copied().collect();
    assert_eq!(distinct.len(), stored.len(), "{} records stored twice", stored.len() - distinct.len());
    assert_eq!(stored.len(), total, "records missing from the committed view");
    let now = snapshot(lake);
    for (path, bytes) in before {
        assert_eq!(now.get(path), Some(bytes), "{} changed or vanished", path.display());
    }
    let verified = run_rolewatch(lake, &["verify", "--lake", lake.to_str().unwrap()], &[]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(report.lines().skip(1).count(), 0, "verify found problems:\n{report}");
}

/// AT-01: the daemon is SIGKILLed at random moments while it consumes (8 times, seeded), and
/// restarted each time; a last run drains the topic.
#[test]
fn random_sigkills_lose_nothing_and_store_nothing_twice() {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let Consumer { work, topic, lake } = consumer("crash");

    let mut delays = Lcg(0x5eed);
    let mut produced = 0;
    let mut before = BTreeMap::new();
    for round in 0..8 {
        produce(&topic, produced..produced + 2000);
        produced += 2000;
        let daemon = Daemon::start(work.path(), &[], GENEROUS);
        assert!(wait_until(GENEROUS, || records_read(&daemon) > 0.0), "round {round}: nothing consumed");
        std::thread::sleep(Duration::from_millis(delays.below(1500)));
        daemon.kill();
        before = snapshot(&lake);
    }
    produce(&topic, produced..produced + 4000);
    produced += 4000;
    let daemon = Daemon::start(work.path(), &[], GENEROUS);
    let drained = wait_until(GENEROUS, || committed(&lake).len() >= produced);
    let stderr = daemon.stop(GENEROUS);
    assert!(drained, "the last run did not store everything:\n{stderr}");
    assert_exactly_once(&lake, produced, &before);
}

/// AT-01, the commit steps: the daemon aborts (as a crash would: nothing flushed) when its
/// second chunk reaches a step of the commit (`ROLEWATCH_CRASH_AT`, a test hook), and is then
/// restarted without the hook. Whether the crash left written but unlisted files (after the
/// files, before the manifest) or a manifest whose offsets were never committed to Kafka (after
/// the manifest), the committed view ends with every record once and nothing overwritten.
#[test]
fn a_crash_at_each_commit_step_loses_nothing_and_stores_nothing_twice() {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    for step in ["after-files", "after-manifest"] {
        let Consumer { work, topic, lake } = consumer("step");
        produce(&topic, 0..6000);
        let crashing = Daemon::start(work.path(), &[("ROLEWATCH_CRASH_AT", &format!("{step}:2"))], GENEROUS);
        let (status, stderr) = crashing.wait_exit(GENEROUS);
        let status = status.unwrap_or_else(|| panic!("{step}: the daemon did not crash:\n{stderr}"));
        assert!(!status.success(), "{step}: the daemon exited cleanly instead of crashing:\n{stderr}");
        assert!(stderr.contains("ROLEWATCH_CRASH_AT"), "{step}: not the planted crash:\n{stderr}");
        let before = snapshot(&lake);
        let listed_before = committed_files(&lake, "events/").len();
        let on_disk = before.keys().filter(|path| path.to_string_lossy().contains("/events/")).count();
        if step == "after-files" {
            assert!(on_disk > listed_before, "{step}: the crash left no written-but-unlisted file");
        }
        produce(&topic, 6000..9000);
        let daemon = Daemon::start(work.path(), &[], GENEROUS);
        let drained = wait_until(GENEROUS, || committed(&lake).len() >= 9000);
        let stderr = daemon.stop(GENEROUS);
        assert!(drained, "{step}: the restarted daemon did not store everything:\n{stderr}");
        assert_exactly_once(&lake, 9000, &before);
    }
}

/// Every event file in the lake's folders, committed or not: what DuckDB's glob reads.
fn event_files_on_disk(lake: &Path) -> Vec<PathBuf> {
    snapshot(lake)
        .into_keys()
        .filter(|path| {
            path.starts_with(lake.join("events")) && path.extension().is_some_and(|ext| ext == "parquet")
        })
        .collect()
}

/// A Kafka chunk cut by age (fewer records than `chunk_events` within `flush_interval`) whose
/// files were written when the daemon crashed, before its manifest. More records are there when
/// it restarts, so a cut by age or size would end elsewhere and leave the crash's files
/// unlisted beside a second copy of their records. The chunk's declaration in the lake makes
/// the restart cut it at the same offsets: the files are written again identically and
/// committed, and a reader of the folders sees every record once.
#[test]
fn a_chunk_cut_by_age_before_a_crash_is_cut_the_same_way_after_it() {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let Consumer { work, topic, lake } = consumer("agecut");
    // About 40 records a partition, under the config's 250 events a chunk: cut by age.
    produce(&topic, 0..120);
    let crashing = Daemon::start(work.path(), &[("ROLEWATCH_CRASH_AT", "after-files:1")], GENEROUS);
    let (status, stderr) = crashing.wait_exit(GENEROUS);
    let status = status.unwrap_or_else(|| panic!("the daemon did not crash:\n{stderr}"));
    assert!(!status.success() && stderr.contains("ROLEWATCH_CRASH_AT"), "not the planted crash:\n{stderr}");
    let left = event_files_on_disk(&lake);
    assert!(!left.is_empty(), "the crash left no event file");
    assert!(committed_files(&lake, "events/").is_empty(), "nothing was committed before the crash");
    let before = snapshot(&lake);

    produce(&topic, 120..900);
    // Fetches return the broker's record batches whole, so the restart might cut by age at
    // the same offset by chance; a longer flush interval makes sure it would not.
    let config = std::fs::read_to_string(work.path().join("rolewatch.toml")).unwrap();
    let config = config.replace("flush_interval = \"200ms\"", "flush_interval = \"5s\"");
    assert!(config.contains("flush_interval = \"5s\""), "the config's flush_interval changed form");
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    let daemon = Daemon::start(work.path(), &[("ROLEWATCH_LOG", "info")], GENEROUS);
    let drained = wait_until(GENEROUS, || committed(&lake).len() >= 900);
    let stderr = daemon.stop(GENEROUS);
    assert!(drained, "the restarted daemon did not store everything:\n{stderr}");
    let listed: BTreeSet<PathBuf> = committed_files(&lake, "events/").into_iter().collect();
    for file in &left {
        assert!(listed.contains(file), "{} is still unlisted after the restart:\n{stderr}", file.display());
    }
    let in_folders = stored_events(&read_parquet(&event_files_on_disk(&lake)));
    let distinct: BTreeSet<(i32, i64)> = in_folders
        .iter()
        .map(|event| (event.source_partition.unwrap(), event.source_offset.unwrap()))
        .collect();
    assert_eq!(in_folders.len(), distinct.len(), "the folders hold some records twice");
    assert_eq!(distinct.len(), 900);
    assert_exactly_once(&lake, 900, &before);
}

/// A member that lost a partition without knowing it yet (a zombie: frozen past the session
/// timeout, or cut off from the broker but not from the store) cuts a chunk, declares it and
/// writes its files while the partition's new owner has the same records buffered, cut
/// elsewhere. The owner finds the other declaration at its chunk's start and cuts as declared:
/// it writes the zombie's files again (identical) and commits them, then the rest, so that no
/// file stays unlisted and the folders hold every record once.
///
/// The zombie is a second `rolewatch run` of another group on the same topic and lake, with
/// chunks of 10 records, crashing after its first chunk's files; the owner buffers everything
/// (a long flush interval) until it is stopped after the zombie wrote.
#[test]
fn a_chunk_declared_by_a_zombie_member_is_cut_as_declared() {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let Consumer { work, topic, lake } = consumer("zombie");
    let (owner_dir, zombie_dir) = (work.path().to_path_buf(), work.path().join("zombie"));
    write_config(&zombie_dir, &lake, &topic, &format!("{topic}.other-group"), "range");
    let edit = |dir: &Path, from: &str, to: &str| {
        let config = std::fs::read_to_string(dir.join("rolewatch.toml")).unwrap();
        assert!(config.contains(from), "the config has no {from}");
        std::fs::write(dir.join("rolewatch.toml"), config.replace(from, to)).unwrap();
    };
    edit(&owner_dir, "flush_interval = \"200ms\"", "flush_interval = \"1h\"");
    edit(
        &zombie_dir,
        "chunk_events = 250\n\n[source.kafka.client]",
        "chunk_events = 10\n\n[source.kafka.client]",
    );

    produce(&topic, 0..120);
    let owner = Daemon::start(&owner_dir, &[], GENEROUS);
    assert!(wait_until(GENEROUS, || records_read(&owner) >= 120.0), "the owner did not read everything");
    let zombie = Daemon::start(&zombie_dir, &[("ROLEWATCH_CRASH_AT", "after-files:1")], GENEROUS);
    let (status, stderr) = zombie.wait_exit(GENEROUS);
    let status = status.unwrap_or_else(|| panic!("the zombie did not crash:\n{stderr}"));
    assert!(!status.success() && stderr.contains("ROLEWATCH_CRASH_AT"), "not the planted crash:\n{stderr}");
    let left = event_files_on_disk(&lake);
    assert_eq!(left.len(), 1, "the zombie's chunk is one file");
    assert!(committed_files(&lake, "events/").is_empty(), "stored before the zombie's chunk was declared");
    let before = snapshot(&lake);

    // The owner stores what it buffered when it stops; a restart stores what that left.
    let stopped = owner.stop(GENEROUS);
    assert!(stopped.contains("cutting as declared"), "the zombie's declaration was not seen:\n{stopped}");
    edit(&owner_dir, "flush_interval = \"1h\"", "flush_interval = \"200ms\"");
    let owner = Daemon::start(&owner_dir, &[], GENEROUS);
    let drained = wait_until(GENEROUS, || committed(&lake).len() >= 120);
    let stderr = owner.stop(GENEROUS);
    assert!(drained, "not everything was stored:\n{stopped}\n{stderr}");
    let listed: BTreeSet<PathBuf> = committed_files(&lake, "events/").into_iter().collect();
    assert!(listed.contains(&left[0]), "the zombie's file is still unlisted:\n{stopped}");
    assert_exactly_once(&lake, 120, &before);
}

/// A chunk whose manifest was written just before a crash, before detection and the outbox: the
/// restart finds it durable (so it is not read again) and must still raise its alerts. The
/// detection intent the daemon left in its state directory makes it read the chunk back from
/// the lake and detect it; the alert reaches a real webhook receiver.
#[test]
fn alerts_of_a_chunk_committed_just_before_a_crash_are_raised_after_the_restart() {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let work = tempfile::tempdir().unwrap();
    let id = unique();
    let topic = format!("pgaudit.redetect.{id}");
    let lake = work.path().join("lake");
    let receiver = Receiver::start();
    let config = rolewatch_e2e::kafka_run_config(
        &lake.display().to_string(),
        BROKER,
        &topic,
        &format!("rolewatch-redetect-{id}"),
        "range",
    );
    let config = format!("{config}\n{}", rolewatch_e2e::WEBHOOK_ALERTS);
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    // One key, so one partition whose chunks (250 events) come in offset order: the TRUNCATE by
    // a reader role at offset 375 is in the second chunk, the one the crash interrupts.
    const TRUNCATE_AT: usize = 375;
    let lines: Vec<String> = rolewatch_e2e::pgaudit_statements_with_truncate(1000, TRUNCATE_AT)
        .into_iter()
        .map(|line| format!("one|{line}"))
        .collect();
    rolewatch_e2e::kcat_produce(&topic, &["-K", "|"], lines.join("\n").as_bytes());
    let url = receiver.url();
    let webhook =
        [("E2E_WEBHOOK_URL", url.as_str()), ("E2E_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
    let truncate_alerts = || receiver.count_containing("TRUNCATE");

    let mut env = webhook.to_vec();
    env.push(("ROLEWATCH_CRASH_AT", "after-manifest:2"));
    let crashing = Daemon::start(work.path(), &env, GENEROUS);
    let (status, stderr) = crashing.wait_exit(GENEROUS);
    let status = status.unwrap_or_else(|| panic!("the daemon did not crash:\n{stderr}"));
    assert!(!status.success() && stderr.contains("ROLEWATCH_CRASH_AT"), "not the planted crash:\n{stderr}");
    let stored: BTreeSet<i64> = committed(&lake).iter().map(|(_, offset)| *offset).collect();
    assert!(
        stored.contains(&(TRUNCATE_AT as i64)),
        "the TRUNCATE's chunk was not committed before the crash: {} events committed",
        stored.len()
    );
    assert_eq!(truncate_alerts(), 0, "the TRUNCATE was alerted on before the crash");

    let daemon = Daemon::start(work.path(), &webhook, GENEROUS);
    let alerted = wait_until(GENEROUS, || truncate_alerts() > 0);
    let drained = wait_until(GENEROUS, || committed(&lake).len() >= 1000);
    let metrics = daemon.scrape();
    let stderr = daemon.stop(GENEROUS);
    assert!(alerted, "no alert for the TRUNCATE after the restart:\n{stderr}");
    assert!(drained, "the restarted daemon did not store everything:\n{stderr}");
    let redetected = metric_value(&metrics, "rolewatch_detect_redetected_events_total").unwrap_or(0.0);
    assert!(redetected >= 1.0, "nothing was detected again:\n{metrics}");
    assert!(stderr.contains("detecting it again"), "{stderr}");
    assert!(
        !work.path().join("rolewatch-state/detection-intents").read_dir().is_ok_and(|mut entries| {
            entries
                .any(|entry| entry.is_ok_and(|entry| entry.path().extension().is_some_and(|e| e == "json")))
        }),
        "intents left after a clean stop"
    );
}

/// AT-02: two members of one group share the lake; A is SIGKILLed after B joined (its
/// partitions move to B), more records arrive, and A comes back (they move again).
fn two_members_with_a_kill_and_a_rebalance(strategy: &str) {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let work = tempfile::tempdir().unwrap();
    let id = unique();
    let topic = format!("pgaudit.rebalance.{id}");
    let group = format!("rolewatch-rebalance-{id}");
    let lake = work.path().join("lake");
    let (dir_a, dir_b) = (work.path().join("a"), work.path().join("b"));
    write_config(&dir_a, &lake, &topic, &group, strategy);
    write_config(&dir_b, &lake, &topic, &group, strategy);
    let assigned = |daemon: &Daemon| {
        metric_value(&daemon.scrape(), "rolewatch_kafka_assigned_partitions").unwrap_or(0.0)
    };

    produce(&topic, 0..5000);
    let a = Daemon::start(&dir_a, &[], GENEROUS);
    assert!(wait_until(GENEROUS, || records_read(&a) > 0.0), "A consumed nothing");
    let b = Daemon::start(&dir_b, &[], GENEROUS);
    assert!(wait_until(GENEROUS, || assigned(&b) >= 1.0), "B got no partition");
    produce(&topic, 5000..10_000);
    std::thread::sleep(Duration::from_millis(300));
    a.kill();
    let before = snapshot(&lake);
    assert!(wait_until(GENEROUS, || assigned(&b) >= 3.0), "B did not take over A's partitions");
    produce(&topic, 10_000..15_000);
    let a = Daemon::start(&dir_a, &[], GENEROUS);
    assert!(wait_until(GENEROUS, || assigned(&a) >= 1.0), "A got no partition back");
    let drained = wait_until(GENEROUS, || committed(&lake).len() >= 15_000);
    let (stderr_a, stderr_b) = (a.stop(GENEROUS), b.stop(GENEROUS));
    assert!(drained, "not everything was stored:\nA:\n{stderr_a}\nB:\n{stderr_b}");
    assert_exactly_once(&lake, 15_000, &before);
}

#[test]
fn a_rebalance_with_the_range_assignor_stores_each_record_once() {
    two_members_with_a_kill_and_a_rebalance("range");
}

#[test]
fn a_cooperative_sticky_rebalance_stores_each_record_once() {
    two_members_with_a_kill_and_a_rebalance("cooperative-sticky");
}

/// A broker of its own (scripts/kafka.sh on a free port pair, in `dir`), so that stopping it
/// disturbs no other test; stopped when dropped.
struct PrivateBroker {
    dir: PathBuf,
    port: u16,
}

impl PrivateBroker {
    fn start(dir: &Path) -> PrivateBroker {
        // The client port and the next one (the KRaft controller's) must both be free.
        let port = (0..50)
            .find_map(|_| {
                let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
                (port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok())
                    .then_some(port)
            })
            .expect("a free pair of ports");
        let broker = PrivateBroker { dir: dir.to_path_buf(), port };
        broker.script("start");
        broker
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn script(&self, action: &str) {
        let output = Command::new(rolewatch_e2e::repo_root().join("scripts/kafka.sh"))
            .arg(action)
            .env("ROLEWATCH_KAFKA_PORT", self.port.to_string())
            .env("ROLEWATCH_KAFKA_DIR", &self.dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "kafka.sh {action}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.script("stop");
    }
}

/// AT-03: the broker goes away for longer than three session timeouts while the daemon
/// consumes, then comes back. The daemon stays up, `/ready` says 503 during the outage and 200
/// after, and the committed view ends with every record once.
#[test]
fn a_broker_outage_is_survived_and_reported_by_ready() {
    let work = tempfile::tempdir().unwrap();
    let broker = PrivateBroker::start(&work.path().join("kafka"));
    let id = unique();
    let topic = format!("pgaudit.outage.{id}");
    let lake = work.path().join("lake");
    write_config(work.path(), &lake, &topic, &format!("rolewatch-outage-{id}"), "range");
    let config = std::fs::read_to_string(work.path().join("rolewatch.toml")).unwrap();
    // librdkafka's connection and group debug lines, shown if /ready does not recover.
    let config = config
        .replace(BROKER, &broker.address())
        .replace("[source.kafka.client]\n", "[source.kafka.client]\n\"debug\" = \"broker,cgrp\"\n");
    assert!(config.contains("\"debug\""), "the config has no [source.kafka.client] table");
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    let produce_here = |range: std::ops::Range<usize>| {
        let lines: Vec<String> = range.map(record).collect();
        rolewatch_e2e::kcat_produce_to(&broker.address(), &topic, &["-K", "|"], lines.join("\n").as_bytes());
    };
    let ready = |daemon: &Daemon| http_get(&daemon.address, "/ready").map(|(status, _)| status).unwrap_or(0);

    produce_here(0..3000);
    // Its stderr says when readiness changes and why (librdkafka's own lines).
    let daemon = Daemon::start(work.path(), &[("ROLEWATCH_LOG", "info,rolewatch_kafka=debug")], GENEROUS);
    assert!(wait_until(GENEROUS, || committed(&lake).len() >= 3000), "the first records were not stored");
    // Readiness follows librdkafka's view of the brokers (its statistics and error callbacks),
    // which can trail the first records by a moment.
    assert!(wait_until(GENEROUS, || ready(&daemon) == 200), "/ready never said 200 with the broker up");

    broker.script("stop");
    assert!(wait_until(GENEROUS, || ready(&daemon) == 503), "/ready stayed 200 with the broker down");
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(http_get(&daemon.address, "/healthz").unwrap().0, 200, "the daemon must stay up");

    broker.script("start");
    if !wait_until(GENEROUS, || ready(&daemon) == 200) {
        let stderr = daemon.stop(GENEROUS);
        panic!("/ready did not recover with the broker:\n{stderr}");
    }
    produce_here(3000..6000);
    let drained = wait_until(GENEROUS, || committed(&lake).len() >= 6000);
    let stderr = daemon.stop(GENEROUS);
    assert!(drained, "records produced after the outage were not stored:\n{stderr}");
    assert_exactly_once(&lake, 6000, &BTreeMap::new());
}
