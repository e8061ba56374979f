//! The lake's store failing under `rolewatch run`, RELIABILITY.md AT-04 and AT-06: the real
//! binary consumes from the real Apache Kafka broker (scripts/kafka.sh) into a lake on a real
//! S3-compatible server (MinIO, scripts/minio.sh), and the server refuses writes or goes away.
//!
//! * AT-04: MinIO's own access control denies the daemon's user the creation of partition 1's
//!   event files. Partition 1 stalls (nothing of it is durable, the stalled gauge says so) while
//!   partitions 0 and 2 are stored; once the policy allows the writes, everything is stored.
//! * AT-06: the MinIO server is stopped for 10 s while records flow and started again on the
//!   same data. Nothing becomes durable while it is down; everything is stored afterwards, with
//!   bounded memory.
//! * A store that stays down: every partition with records to store is reported stalled within
//!   90 s (the S3 client's own retries are kept short under the lake's), and recovers once the
//!   server is back.
//!
//! All end with every produced record in the lake's committed view exactly once, `rolewatch
//! verify` clean, and every object seen before the fault unchanged. Records are produced to
//! explicit partitions, so partition `p` holds offsets `0..n_p` and the expected view is known.

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rolewatch_e2e::{
    Daemon, KAFKA_BROKER, Minio, committed_files, http_get, metric_value, read_parquet, run_rolewatch,
    run_script, stored_events, wait_until,
};

/// A bound on every wait: well above the session timeout (6 s) plus a rebalance, and above the
/// S3 client's retries; it only stops a hang.
const GENEROUS: Duration = Duration::from_secs(180);
const BUCKET: &str = "audit";
/// The lake inside the bucket.
const PREFIX: &str = "rolewatch";
/// The MinIO user the daemon writes as in AT-04, and its policy.
const WRITER: &str = "lake-writer";
const WRITER_SECRET: &str = "lake-writer-secret";
const WRITER_POLICY: &str = "lake-writer";

fn lake_url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

fn unique() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// Records produced so far, per partition (partition `p` holds offsets `0..count`).
type Produced = BTreeMap<i32, i64>;

/// Produces `count` records to `partition` of `topic`; their statements are numbered from
/// `first` (distinct across partitions, so that a record misplaced in the lake is noticed).
fn produce(topic: &str, partition: i32, first: usize, count: usize, produced: &Mutex<Produced>) {
    let lines: Vec<String> = (first..first + count).map(rolewatch_e2e::pgaudit_statement).collect();
    rolewatch_e2e::kcat_produce(topic, &["-p", &partition.to_string()], lines.join("\n").as_bytes());
    *produced.lock().unwrap().entry(partition).or_default() += i64::try_from(count).unwrap();
}

/// The `(partition, offset)` of every event the lake's manifests list, in file order, read
/// from a fresh download of the lake (into `scratch`).
fn committed(minio: &Minio, scratch: &Path) -> Vec<(i32, i64)> {
    minio.download(&format!("{BUCKET}/{PREFIX}"), scratch);
    let files = committed_files(scratch, "events/");
    stored_events(&read_parquet(&files))
        .iter()
        .map(|event| (event.source_partition.unwrap(), event.source_offset.unwrap()))
        .collect()
}

/// How many records of each partition the committed view holds.
fn per_partition(stored: &[(i32, i64)]) -> Produced {
    let mut counts = Produced::new();
    for (partition, _) in stored {
        *counts.entry(*partition).or_default() += 1;
    }
    counts
}

/// Polls the lake (once a second: each look downloads it) until `done` holds for its committed
/// view; returns whether it did within [`GENEROUS`].
fn wait_for_lake(minio: &Minio, scratch: &Path, mut done: impl FnMut(&[(i32, i64)]) -> bool) -> bool {
    wait_until(GENEROUS, || {
        std::thread::sleep(Duration::from_secs(1));
        done(&committed(minio, scratch))
    })
}

/// The value of a per-partition gauge of `topic` in a scrape (`None` if the series is absent).
fn partition_gauge(scrape: &str, name: &str, topic: &str, partition: i32) -> Option<f64> {
    let topic_label = format!("topic=\"{topic}\"");
    let partition_label = format!("partition=\"{partition}\"");
    scrape.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let labels = series.strip_prefix(name)?.strip_prefix('{')?;
        (labels.contains(&topic_label) && labels.contains(&partition_label)).then(|| value.parse().ok())?
    })
}

/// Exactly once: the committed view holds offsets `0..n_p` of every partition `p`, each once;
/// no object seen in `before` changed (same ETag, same modification time); `rolewatch verify`
/// exits 0.
fn assert_exactly_once(
    minio: &Minio,
    work: &Path,
    produced: &Produced,
    before: &BTreeMap<String, (String, String)>,
) {
    let stored = committed(minio, &work.join("final"));
    let distinct: BTreeSet<(i32, i64)> = stored.iter().copied().collect();
    assert_eq!(distinct.len(), stored.len(), "{} records stored twice", stored.len() - distinct.len());
    let expected: BTreeSet<(i32, i64)> = produced
        .iter()
        .flat_map(|(partition, count)| (0..*count).map(|offset| (*partition, offset)))
        .collect();
    let missing: Vec<_> = expected.difference(&distinct).take(10).collect();
    let unexpected: Vec<_> = distinct.difference(&expected).take(10).collect();
    assert!(missing.is_empty() && unexpected.is_empty(), "missing {missing:?}, unexpected {unexpected:?}");
    let now = minio.objects(&format!("{BUCKET}/{PREFIX}"));
    for (key, version) in before {
        assert_eq!(now.get(key), Some(version), "{key} was written again or removed");
    }
    let env = minio.root_env();
    let verified = run_rolewatch(work, &["verify", "--lake", &lake_url()], &borrowed(&env));
    assert!(
        verified.status.success(),
        "verify: {}\n{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// What each test starts from: the broker running, a MinIO with the lake's bucket, a topic of
/// its own (`pgaudit.<name>.<unique>`), and `rolewatch.toml` for a consumer of it storing into
/// the lake.
struct Setup {
    work: tempfile::TempDir,
    minio: Minio,
    topic: String,
}

fn setup(name: &str) -> Setup {
    run_script("scripts/kafka.sh", &[Path::new("start")]);
    let work = tempfile::tempdir().unwrap();
    let minio = Minio::start(&work.path().join("minio"));
    minio.make_bucket(BUCKET);
    let id = unique();
    let topic = format!("pgaudit.{name}.{id}");
    let config =
        rolewatch_e2e::kafka_run_config(&lake_url(), KAFKA_BROKER, &topic, &format!("{name}-{id}"), "range");
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    Setup { work, minio, topic }
}

/// Produces `count` records to each of the topic's 3 partitions, partition `p`'s statements
/// numbered from `p * 1_000_000 + first`.
fn produce_to_each(topic: &str, first: usize, count: usize, produced: &Mutex<Produced>) {
    for partition in 0..3 {
        produce(topic, partition, usize::try_from(partition).unwrap() * 1_000_000 + first, count, produced);
    }
}

/// Environment variables as `run_rolewatch` and `Daemon::start` take them.
fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect()
}

/// Sets the policy of the daemon's MinIO user: everything in the bucket, less `deny` (a policy
/// statement) if given.
fn set_writer_policy(minio: &Minio, work: &Path, deny: Option<&str>) {
    let allow = format!(
        r#"{{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::{BUCKET}","arn:aws:s3:::{BUCKET}/*"]}}"#
    );
    let statements = deny.map_or_else(|| allow.clone(), |deny| format!("{allow},{deny}"));
    let file = work.join("writer-policy.json");
    std::fs::write(&file, format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)).unwrap();
    minio.mc(&["admin", "policy", "create", "local", WRITER_POLICY, file.to_str().unwrap()]);
}

/// AT-04: the store refuses partition 1's event files (403 from MinIO's policy engine). The
/// partition stalls, the rest of the topic is stored, and once the policy is fixed the stalled
/// records are stored, none skipped and none twice.
#[test]
fn a_store_that_refuses_one_partition_stalls_it_and_skips_nothing() {
    let Setup { work, minio, topic } = setup("refused");
    let dir = work.path();
    // Event files are named after the stream, `kafka-<topic>-<partition:05>-<first>-<last>`.
    let stream_1 = format!("kafka-{}-00001", topic.replace('.', "_"));
    let deny = format!(
        r#"{{"Effect":"Deny","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::{BUCKET}/{PREFIX}/events/*/{stream_1}-*"]}}"#
    );
    set_writer_policy(&minio, dir, Some(&deny));
    minio.mc(&["admin", "user", "add", "local", WRITER, WRITER_SECRET]);
    minio.mc(&["admin", "policy", "attach", "local", WRITER_POLICY, "--user", WRITER]);
    let env: Vec<(String, String)> = minio
        .root_env()
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "AWS_ACCESS_KEY_ID" => (name, WRITER.to_owned()),
            "AWS_SECRET_ACCESS_KEY" => (name, WRITER_SECRET.to_owned()),
            _ => (name, value),
        })
        .collect();
    let env = borrowed(&env);

    let produced = Mutex::new(Produced::new());
    produce_to_each(&topic, 0, 1000, &produced);
    let daemon = Daemon::start(dir, &env, GENEROUS);
    let scratch = dir.join("look");
    let stalled_1 = |daemon: &Daemon| {
        partition_gauge(&daemon.scrape(), "rolewatch_kafka_partition_stalled", &topic, 1) == Some(1.0)
    };
    let others_stored = |count: i64| {
        move |stored: &[(i32, i64)]| {
            let counts = per_partition(stored);
            counts.get(&0) == Some(&count) && counts.get(&2) == Some(&count)
        }
    };
    let stored_others = wait_for_lake(&minio, &scratch, others_stored(1000));
    assert!(stored_others, "partitions 0 and 2 were not stored:\n{}", daemon.kill());
    assert!(wait_until(GENEROUS, || stalled_1(&daemon)), "partition 1 is not reported stalled");

    // The other partitions keep going while partition 1 is stalled, through more than a
    // session timeout and a rebalance's worth of time.
    produce_to_each(&topic, 1000, 500, &produced);
    let stored_more = wait_for_lake(&minio, &scratch, others_stored(1500));
    assert!(stored_more, "partitions 0 and 2 stopped with partition 1:\n{}", daemon.kill());
    std::thread::sleep(Duration::from_secs(10));

    // Nothing of partition 1 is durable: no manifest covers it and no file of it exists.
    let stored = committed(&minio, &scratch);
    assert_eq!(per_partition(&stored).get(&1), None, "records of the refused partition are in the lake");
    for manifest in std::fs::read_dir(scratch.join("_manifests")).unwrap() {
        let text = std::fs::read_to_string(manifest.unwrap().path()).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
        let positions = manifest.get("positions").and_then(serde_json::Value::as_object);
        assert!(
            positions.is_none_or(|positions| !positions.contains_key(&stream_1)),
            "a manifest covers the refused partition:\n{text}"
        );
    }
    let before = minio.objects(&format!("{BUCKET}/{PREFIX}"));
    // Data files are `<stream>-<first>-<last>.parquet`; the chunk's declaration
    // (`_chunks/<stream>/<first>.json`, written before the refused files) is not data.
    let data_file = format!("/{stream_1}-");
    assert!(!before.keys().any(|key| key.contains(&data_file)), "a file of the refused partition exists");
    assert!(
        before.keys().any(|key| key.contains(&format!("_chunks/{stream_1}/"))),
        "the stalled chunk was not declared"
    );
    let scrape = daemon.scrape();
    assert!(stalled_1(&daemon), "partition 1 is no longer reported stalled");
    for partition in [0, 2] {
        let stalled = partition_gauge(&scrape, "rolewatch_kafka_partition_stalled", &topic, partition);
        assert_ne!(stalled, Some(1.0), "partition {partition} is reported stalled");
    }

    // The operator fixes the permission: the stalled chunk goes in, and the rest after it.
    set_writer_policy(&minio, dir, None);
    let total = produced.lock().unwrap().values().sum::<i64>();
    let drained = wait_for_lake(&minio, &scratch, |stored| stored.len() >= usize::try_from(total).unwrap());
    let recovered = wait_until(GENEROUS, || !stalled_1(&daemon));
    let stderr = daemon.stop(GENEROUS);
    assert!(drained && recovered, "partition 1 did not recover after the fix:\n{stderr}");
    assert_exactly_once(&minio, dir, &produced.lock().unwrap(), &before);
}

/// AT-06: the S3 server goes away for 10 s while records flow, and comes back on the same data.
/// The daemon makes no durable progress while it is down, stays up, then stores everything
/// exactly once without its memory growing past a bound.
#[test]
fn an_s3_outage_while_records_flow_stops_progress_and_loses_nothing() {
    let Setup { work, minio, topic } = setup("outage");
    let dir = work.path();
    let env = minio.root_env();
    let env = borrowed(&env);

    let produced = Arc::new(Mutex::new(Produced::new()));
    produce_to_each(&topic, 0, 1000, &produced);
    let daemon = Daemon::start(dir, &env, GENEROUS);
    let scratch = dir.join("look");
    let stored_first = wait_for_lake(&minio, &scratch, |stored| stored.len() >= 3000);
    assert!(stored_first, "the first records were not stored:\n{}", daemon.kill());

    // A producer keeps records flowing, 100 at a time to each partition in turn, until told to
    // stop.
    let flowing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (topic, produced, flowing) = (topic.clone(), produced.clone(), flowing.clone());
        std::thread::spawn(move || {
            let mut next = [1000, 1000, 1000];
            for round in 0.. {
                if !flowing.load(Ordering::SeqCst) {
                    break;
                }
                let partition = round % 3;
                let slot = &mut next[usize::try_from(partition).unwrap()];
                produce(
                    &topic,
                    partition,
                    usize::try_from(partition).unwrap() * 1_000_000 + *slot,
                    100,
                    &produced,
                );
                *slot += 100;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let stored_now = |daemon: &Daemon| metric_value(&daemon.scrape(), "rolewatch_lake_events_stored_total");
    let last_manifest =
        |daemon: &Daemon| metric_value(&daemon.scrape(), "rolewatch_lake_last_manifest_timestamp_seconds");
    let baseline = stored_now(&daemon).unwrap();
    assert!(wait_until(GENEROUS, || stored_now(&daemon) > Some(baseline)), "the flow is not being stored");
    let before = minio.objects(&format!("{BUCKET}/{PREFIX}"));

    minio.stop();
    // A put answered just before the server went has reached the metrics a moment later.
    std::thread::sleep(Duration::from_secs(1));
    let (stored_at_stop, manifest_at_stop) = (stored_now(&daemon), last_manifest(&daemon));
    let produced_at_stop = produced.lock().unwrap().values().sum::<i64>();
    std::thread::sleep(Duration::from_secs(9));
    let produced_meanwhile = produced.lock().unwrap().values().sum::<i64>() - produced_at_stop;
    assert!(produced_meanwhile > 0, "no records flowed during the outage");
    assert_eq!(stored_now(&daemon), stored_at_stop, "events were counted as stored with the store down");
    assert_eq!(last_manifest(&daemon), manifest_at_stop, "a manifest was committed with the store down");
    assert_eq!(http_get(&daemon.address, "/healthz").unwrap().0, 200, "the daemon must stay up");

    minio.restart();
    std::thread::sleep(Duration::from_secs(2));
    flowing.store(false, Ordering::SeqCst);
    producer.join().unwrap();
    let total = produced.lock().unwrap().values().sum::<i64>();
    let drained = wait_for_lake(&minio, &scratch, |stored| stored.len() >= usize::try_from(total).unwrap());
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    let stderr = daemon.stop(GENEROUS);
    assert!(drained, "not everything was stored after the outage:\n{stderr}");
    assert_exactly_once(&minio, dir, &produced.lock().unwrap(), &before);
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    assert!(peak_kib < 512 * 1024, "the daemon's peak RSS was {peak_kib} KiB");
}

/// How soon a store that stays down must show as stalled partitions: the S3 client's few
/// retries and the lake's 6 attempts fail within seconds when the server refuses connections.
/// Under object_store's default retries (10 within 3 minutes per attempt) it took minutes, and
/// an operator watching `rolewatch_kafka_partition_stalled` learned of the outage that late.
const STALL_REPORTED_WITHIN: Duration = Duration::from_secs(90);

/// A store that stays down: every partition with records to store is reported stalled within
/// [`STALL_REPORTED_WITHIN`], the daemon stays up and healthy, and once the server is back each
/// stalled chunk goes in and everything is stored exactly once.
#[test]
fn a_store_that_stays_down_stalls_its_partitions_until_it_is_back() {
    let Setup { work, minio, topic } = setup("down");
    let dir = work.path();
    let env = minio.root_env();
    let env = borrowed(&env);

    let produced = Mutex::new(Produced::new());
    produce_to_each(&topic, 0, 500, &produced);
    let daemon = Daemon::start(dir, &env, GENEROUS);
    let scratch = dir.join("look");
    let stored_first = wait_for_lake(&minio, &scratch, |stored| stored.len() >= 1500);
    assert!(stored_first, "the first records were not stored:\n{}", daemon.kill());
    let before = minio.objects(&format!("{BUCKET}/{PREFIX}"));

    minio.stop();
    let stopped = std::time::Instant::now();
    produce_to_each(&topic, 500, 100, &produced);
    let stalled = |daemon: &Daemon, partition: i32| {
        partition_gauge(&daemon.scrape(), "rolewatch_kafka_partition_stalled", &topic, partition) == Some(1.0)
    };
    let reported = wait_until(STALL_REPORTED_WITHIN, || (0..3).all(|partition| stalled(&daemon, partition)));
    eprintln!("stalled partitions reported {:.1} s after the store stopped", stopped.elapsed().as_secs_f64());
    assert!(reported, "a stopped store was not reported as stalled partitions:\n{}", daemon.kill());
    assert_eq!(http_get(&daemon.address, "/healthz").unwrap().0, 200, "the daemon must stay up");

    minio.restart();
    let total = produced.lock().unwrap().values().sum::<i64>();
    let drained = wait_for_lake(&minio, &scratch, |stored| stored.len() >= usize::try_from(total).unwrap());
    let recovered = wait_until(GENEROUS, || (0..3).all(|partition| !stalled(&daemon, partition)));
    let stderr = daemon.stop(GENEROUS);
    assert!(drained && recovered, "the stalled partitions did not recover:\n{stderr}");
    assert_exactly_once(&minio, dir, &produced.lock().unwrap(), &before);
}

/// A TCP proxy in front of the S3 server that lets a PUT reach the server and, instead of
/// passing the server's answer back, cuts the connection: the object is stored, and the client
/// sees a failed request. Each substring of `cut_paths` cuts the first PUT whose request line
/// holds it.
struct CuttingProxy {
    address: std::net::SocketAddr,
    cut: Arc<Mutex<Vec<String>>>,
}

/// What one proxied connection has seen: the head of the request in flight, and whether the
/// server has started answering it.
#[derive(Default)]
struct Exchange {
    request: Vec<u8>,
    answering: bool,
}

impl CuttingProxy {
    fn start(upstream: std::net::SocketAddr, cut_paths: &[&str]) -> CuttingProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let pending: Arc<Mutex<Vec<String>>> =
            Arc::new(Mutex::new(cut_paths.iter().map(|path| (*path).to_owned()).collect()));
        let cut: Arc<Mutex<Vec<String>>> = Arc::default();
        let (pending_all, cut_all) = (pending, cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(upstream) else { continue };
                let (pending, cut) = (pending_all.clone(), cut_all.clone());
                std::thread::spawn(move || relay(client, server, &pending, &cut));
            }
        });
        CuttingProxy { address, cut }
    }

    /// The request lines of the PUTs whose answer was cut.
    fn cut(&self) -> Vec<String> {
        self.cut.lock().unwrap().clone()
    }
}

/// Relays one connection both ways until either side closes it (HTTP/1.1 without pipelining:
/// the server's first bytes after a request start its answer to that request).
fn relay(
    client: std::net::TcpStream,
    server: std::net::TcpStream,
    pending: &Mutex<Vec<String>>,
    cut: &Mutex<Vec<String>>,
) {
    use std::io::{Read, Write};
    let exchange = Arc::new(Mutex::new(Exchange::default()));
    let upward = {
        let (mut from, mut to, exchange) =
            (client.try_clone().unwrap(), server.try_clone().unwrap(), exchange.clone());
        std::thread::spawn(move || {
            let mut buffer = vec![0; 64 * 1024];
            while let Ok(read @ 1..) = from.read(&mut buffer) {
                let bytes = buffer.get(..read).unwrap();
                {
                    let mut exchange = exchange.lock().unwrap();
                    if exchange.answering {
                        *exchange = Exchange::default();
                    }
                    if exchange.request.len() < 4096 {
                        exchange.request.extend_from_slice(bytes);
                    }
                }
                if to.write_all(bytes).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Write);
        })
    };
    let (mut from, mut to) = (server, client);
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(read @ 1..) = from.read(&mut buffer) {
        {
            let mut exchange = exchange.lock().unwrap();
            if !exchange.answering {
                exchange.answering = true;
                let head = String::from_utf8_lossy(&exchange.request);
                let line = head.lines().next().unwrap_or_default().to_owned();
                let mut pending = pending.lock().unwrap();
                if let Some(index) =
                    pending.iter().position(|path| line.starts_with("PUT ") && line.contains(path.as_str()))
                {
                    pending.remove(index);
                    cut.lock().unwrap().push(line);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    let _ = from.shutdown(std::net::Shutdown::Both);
                    break;
                }
            }
        }
        if to.write_all(buffer.get(..read).unwrap()).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = upward.join();
}

/// AT-06 (b): a put that lands but whose answer is lost. The S3 server stores the first event
/// file and the first manifest, and the connection is cut before their answers reach the
/// daemon. Its retry finds the object already there, compares the bytes, and counts the file
/// as a replay: one object, never rewritten, every record once.
#[test]
fn a_put_that_lands_but_loses_its_answer_is_settled_by_comparing_bytes() {
    let Setup { work, minio, topic } = setup("ambiguous");
    let dir = work.path();
    let root = minio.root_env();
    let endpoint = &root.iter().find(|(name, _)| name == "AWS_ENDPOINT_URL").unwrap().1;
    let upstream = endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = CuttingProxy::start(upstream, &["/events/", "/_manifests/"]);
    let proxied = format!("http://{}", proxy.address);
    let env: Vec<(&str, &str)> = root
        .iter()
        .map(|(name, value)| {
            (name.as_str(), if name == "AWS_ENDPOINT_URL" { proxied.as_str() } else { value.as_str() })
        })
        .collect();
    let produced = Mutex::new(Produced::new());
    produce_to_each(&topic, 0, 1000, &produced);
    let daemon = Daemon::start(dir, &env, GENEROUS);
    let drained = wait_for_lake(&minio, &dir.join("look"), |stored| stored.len() >= 3000);
    let replayed =
        metric_value(&daemon.scrape(), "rolewatch_lake_files_total{kind=\"events\",status=\"replayed\"}");
    let stderr = daemon.stop(GENEROUS);
    assert!(drained, "not everything was stored:\n{stderr}");
    let cut = proxy.cut();
    assert_eq!(cut.len(), 2, "the answers of an event file and a manifest were not both cut: {cut:?}");
    assert_eq!(replayed, Some(1.0), "the landed event file was not recognized as a replay:\n{stderr}");
    assert_exactly_once(&minio, dir, &produced.lock().unwrap(), &BTreeMap::new());
}

/// AT-06 (b) for a manifest: the first manifest's PUT lands but its answer is cut, and so are
/// the answers to the next two attempts (which find it there), so the chunk it commits was
/// durable long before the daemon learns it. That chunk holds a `TRUNCATE` (each partition's
/// first record, by a role of its own, so that each partition's alert stands alone); every one
/// of the three alerts reaches the webhook, once, and every record is stored once.
///
/// The store client (object_store) retries the put itself, so the pipeline sees a success; its
/// own path for a commit that failed although it landed (the chunk found durable on its retry,
/// detected from its intent) is reached only after the client's retries are spent, minutes of
/// cut answers, and is not driven here.
#[test]
fn a_manifest_that_lands_but_loses_its_answer_still_raises_its_alerts() {
    const TRUNCATE_AT: usize = 0;
    // The put that lands and two retries, which find it there: three answers lost in a row.
    const PUT_ATTEMPTS: usize = 3;
    const MANIFESTS: &str = "/_manifests/";
    let Setup { work, minio, topic } = setup("manifest-answer");
    let dir = work.path();
    let config = std::fs::read_to_string(dir.join("rolewatch.toml")).unwrap();
    std::fs::write(dir.join("rolewatch.toml"), format!("{config}\n{}", rolewatch_e2e::WEBHOOK_ALERTS))
        .unwrap();
    let receiver = rolewatch_e2e::Receiver::start();
    let webhook = receiver.url();
    let root = minio.root_env();
    let endpoint = &root.iter().find(|(name, _)| name == "AWS_ENDPOINT_URL").unwrap().1;
    let proxy = CuttingProxy::start(
        endpoint.trim_start_matches("http://").parse().unwrap(),
        &[MANIFESTS; PUT_ATTEMPTS],
    );
    let proxied = format!("http://{}", proxy.address);
    let mut env: Vec<(&str, &str)> = root
        .iter()
        .map(|(name, value)| {
            (name.as_str(), if name == "AWS_ENDPOINT_URL" { proxied.as_str() } else { value.as_str() })
        })
        .collect();
    env.extend([
        ("E2E_WEBHOOK_URL", webhook.as_str()),
        ("E2E_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ]);

    let mut produced = Produced::new();
    for partition in 0..3 {
        let first = usize::try_from(partition).unwrap() * 1_000_000;
        let lines: Vec<String> = (first..first + 400)
            .map(|n| {
                let line = rolewatch_e2e::pgaudit_statement(n);
                if n != first + TRUNCATE_AT {
                    return line;
                }
                let truncate = line
                    .replace(
                        &format!("READ,SELECT,TABLE,public.orders,SELECT {n} FROM orders"),
                        "WRITE,TRUNCATE TABLE,TABLE,public.orders,TRUNCATE orders",
                    )
                    .replace("\"user\":\"app_reader\"", &format!("\"user\":\"truncator_p{partition}\""));
                assert!(truncate.contains(&format!("truncator_p{partition}")), "pgaudit_statement changed");
                truncate
            })
            .collect();
        rolewatch_e2e::kcat_produce(&topic, &["-p", &partition.to_string()], lines.join("\n").as_bytes());
        produced.insert(partition, 400);
    }
    let daemon = Daemon::start(dir, &env, GENEROUS);
    let drained = wait_for_lake(&minio, &dir.join("look"), |stored| stored.len() >= 1200);
    let alerted = wait_until(GENEROUS, || {
        (0..3).all(|partition| receiver.count_containing(&format!("truncator_p{partition}")) > 0)
    });
    let stderr = daemon.stop(GENEROUS);
    assert!(drained, "not everything was stored:\n{stderr}");
    assert_eq!(proxy.cut().len(), PUT_ATTEMPTS, "not every answer was cut: {:?}", proxy.cut());
    let cut: BTreeSet<String> = proxy.cut().into_iter().collect();
    assert_eq!(cut.len(), 1, "the cut answers were not all of one manifest's puts: {cut:?}");
    assert!(alerted, "a TRUNCATE was never alerted on:\n{stderr}");
    for partition in 0..3 {
        let role = format!("truncator_p{partition}");
        assert_eq!(receiver.count_containing(&role), 1, "{role}'s alert was not sent once:\n{stderr}");
    }
    assert_exactly_once(&minio, dir, &produced, &BTreeMap::new());
}
