//! The end-to-end sandbox: the real `rolewatch` binary, real servers started by the repo's
//! scripts, and readers for what the binary leaves behind (the Parquet lake, NDJSON alerts).
//!
//! The tests themselves are this crate's `[[test]]` targets (`tests/*.rs`).

// Test support: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    manifest_dir().parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The `rolewatch` binary, built once per test process with the same profile and target
/// directory as the test itself, so `cargo test` from a clean clone needs nothing else.
pub fn rolewatch_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let test_exe = std::env::current_exe().expect("the test's own path");
        // <target>/<profile>/deps/<test binary>
        let profile_dir = test_exe.parent().and_then(Path::parent).expect("a target/<profile> dir");
        let target_dir = profile_dir.parent().expect("a target dir");
        let profile_name = profile_dir.file_name().and_then(|name| name.to_str()).unwrap_or("debug");
        let profile = if profile_name == "debug" { "dev" } else { profile_name };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .current_dir(repo_root())
            .args(["build", "--quiet", "-p", "rolewatch", "--bin", "rolewatch", "--profile", profile])
            .env("CARGO_TARGET_DIR", target_dir)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the rolewatch binary failed");
        profile_dir.join("rolewatch")
    })
}

/// Runs `rolewatch` with `args` in `dir` and extra environment, and returns its output.
pub fn run_rolewatch(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(rolewatch_binary());
    command.current_dir(dir).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("rolewatch runs")
}

/// Captures fresh logs from a real PostgreSQL 15 with pgAudit (`scripts/capture-pg-sample.sh`:
/// a throwaway cluster, the scripted workload of `examples/workload/`) into `dir`.
pub fn capture_pg_sample(dir: &Path) {
    let script = repo_root().join("scripts/capture-pg-sample.sh");
    let output = Command::new(&script).arg(dir).output().expect("the capture script runs");
    assert!(
        output.status.success(),
        "{} failed (run scripts/install-deps.sh first?)\nstdout:\n{}\nstderr:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every `.parquet` file under `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Reads Parquet files with the Arrow reader.
pub fn read_parquet(files: &[PathBuf]) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).expect("a parquet file opens");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("valid parquet").build().unwrap();
        for batch in reader {
            batches.push(batch.expect("a readable batch"));
        }
    }
    batches
}

/// A pgAudit jsonlog line (the one-line record a shipper sends) for statement `n` of session
/// `n % 7`: a `SELECT` whose text and statement id carry `n`, at a time that grows with `n`.
pub fn pgaudit_statement(n: usize) -> String {
    let session = n % 7;
    format!(
        r#"{{"timestamp":"2026-11-26 10:{:02}:{:02}.{:03} UTC","user":"app_reader","dbname":"shop","pid":{},"session_id":"6565.{session}","error_severity":"LOG","message":"AUDIT: SESSION,{n},1,READ,SELECT,TABLE,public.orders,SELECT {n} FROM orders,<none>,1"}}"#,
        n / 60_000 % 60,
        n / 1000 % 60,
        n % 1000,
        1000 + session
    )
}

/// [`pgaudit_statement`] for `0..count`, except that statement `truncate_at` is a `TRUNCATE` of
/// the same table by the same reader role (which `dangerous_command` alerts on).
pub fn pgaudit_statements_with_truncate(count: usize, truncate_at: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let line = pgaudit_statement(n);
            if n != truncate_at {
                return line;
            }
            let truncate = line.replace(
                &format!("READ,SELECT,TABLE,public.orders,SELECT {n} FROM orders"),
                "WRITE,TRUNCATE TABLE,TABLE,public.orders,TRUNCATE orders",
            );
            assert!(truncate.contains("TRUNCATE orders"), "pgaudit_statement changed its shape");
            truncate
        })
        .collect()
}

/// A `rolewatch run` config for one member of consumer group `group` reading `topic` from
/// `broker` into the lake at `lake` (a path or `s3://` URL): the example config, small chunks
/// (many manifests, many places to fail), a short flush interval, a short session timeout so
/// that the group notices a killed member quickly, the given assignment `strategy`, and
/// metrics on a free port.
pub fn kafka_run_config(lake: &str, broker: &str, topic: &str, group: &str, strategy: &str) -> String {
    let example =
        std::fs::read_to_string(repo_root().join("examples/rolewatch.toml")).expect("the example config");
    let lake_table = "[lake]\npath = \"./rolewatch-data\"\n";
    assert!(example.contains(lake_table), "examples/rolewatch.toml changed its [lake] table");
    let example =
        example.replacen(lake_table, &format!("[lake]\npath = \"{lake}\"\nchunk_events = 250\n"), 1);
    format!(
        "{example}
[source.kafka]
brokers = [\"{broker}\"]
topics = [\"{topic}\"]
group_id = \"{group}\"
format = \"pgaudit-jsonlog\"
flush_interval = \"200ms\"
chunk_events = 250

[source.kafka.client]
\"session.timeout.ms\" = \"6000\"
\"heartbeat.interval.ms\" = \"500\"
\"partition.assignment.strategy\" = \"{strategy}\"

[metrics]
listen = \"127.0.0.1:0\"
"
    )
}

/// An `[alerts]` table that sends every alert at once (no group wait) to one webhook, `soc`,
/// whose URL and secret come from `E2E_WEBHOOK_URL` and `E2E_WEBHOOK_SECRET`; loopback
/// destinations allowed (the receivers of these tests).
pub const WEBHOOK_ALERTS: &str = "[alerts]
allow_private_destinations = true
[alerts.grouping]
group_wait = \"0s\"

[[alerts.webhook]]
name = \"soc\"
url_env = \"E2E_WEBHOOK_URL\"
secret_env = \"E2E_WEBHOOK_SECRET\"
";

/// The broker of `scripts/kafka.sh`.
pub const KAFKA_BROKER: &str = "127.0.0.1:9092";

/// Produces `text` to `topic` of [`KAFKA_BROKER`] with `kcat -P`, one record per line, with
/// kcat's `extra` arguments (`-k KEY` for one key, `-K |` for `key|value` lines).
pub fn kcat_produce(topic: &str, extra: &[&str], text: &[u8]) {
    kcat_produce_to(KAFKA_BROKER, topic, extra, text);
}

/// [`kcat_produce`] to another broker.
pub fn kcat_produce_to(broker: &str, topic: &str, extra: &[&str], text: &[u8]) {
    use std::io::Write;
    let mut kcat = Command::new("kcat")
        .args(["-b", broker, "-P", "-t", topic])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat runs (scripts/install-deps.sh installs it)");
    kcat.stdin.take().expect("piped stdin").write_all(text).expect("kcat reads its input");
    assert!(kcat.wait().expect("kcat exits").success(), "kcat could not produce to {topic}");
}

/// The lake's files that its manifests list (the committed view), as paths under `lake`, with
/// `prefix` (`events/` or `dead_letters/`). Files a crash left unlisted are not in it.
pub fn committed_files(lake: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(lake.join("_manifests")) else { return Vec::new() };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("a manifest entry").path();
        // A manifest being written is a staging file (`<key>#<n>`) that the put links into
        // place and removes: it may vanish between the listing and the read.
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("a readable manifest");
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON manifest");
        for file in manifest.get("files").and_then(serde_json::Value::as_array).into_iter().flatten() {
            let key = file.get("key").and_then(serde_json::Value::as_str).expect("a file key");
            if key.starts_with(prefix) {
                files.push(lake.join(key));
            }
        }
    }
    files.sort();
    files
}

/// One stored event, as an analyst would select it: the columns the tests check.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// `ts`, microseconds since the epoch (UTC).
    pub ts_micros: i64,
    /// `role`.
    pub role: Option<String>,
    /// `application`.
    pub application: Option<String>,
    /// `command`.
    pub command: String,
    /// `class`.
    pub class: String,
    /// `objects`.
    pub objects: Vec<String>,
    /// `statement`.
    pub statement: Option<String>,
    /// `rows`.
    pub rows: Option<i64>,
    /// `success`.
    pub success: bool,
    /// `error_code`.
    pub error_code: Option<String>,
    /// `source_file`.
    pub source_file: Option<String>,
    /// `source_partition`.
    pub source_partition: Option<i32>,
    /// `source_offset`.
    pub source_offset: Option<i64>,
}

/// Decodes event batches (the lake's `events` table) into [`StoredEvent`]s.
pub fn stored_events(batches: &[RecordBatch]) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    for batch in batches {
        let text = |name: &str, row: usize| {
            let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
            let column = column.as_string::<i32>();
            column.is_valid(row).then(|| column.value(row).to_owned())
        };
        let int = |name: &str, row: usize| {
            let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
            let column = column.as_primitive::<Int64Type>();
            column.is_valid(row).then(|| column.value(row))
        };
        let ts = batch.column_by_name("ts").expect("column ts").as_primitive::<TimestampMicrosecondType>();
        let success = batch.column_by_name("success").expect("column success").as_boolean();
        let objects = batch.column_by_name("objects").expect("column objects").as_list::<i32>();
        for row in 0..batch.num_rows() {
            let object_list = objects.value(row);
            let object_list = object_list.as_string::<i32>();
            events.push(StoredEvent {
                ts_micros: ts.value(row),
                role: text("role", row),
                application: text("application", row),
                command: text("command", row).unwrap_or_default(),
                class: text("class", row).unwrap_or_default(),
                objects: object_list.iter().flatten().map(str::to_owned).collect(),
                statement: text("statement", row),
                rows: int("rows", row),
                success: success.value(row),
                error_code: text("error_code", row),
                source_file: text("source_file", row),
                source_partition: {
                    let column = batch.column_by_name("source_partition").expect("column source_partition");
                    let column = column.as_primitive::<Int32Type>();
                    column.is_valid(row).then(|| column.value(row))
                },
                source_offset: int("source_offset", row),
            });
        }
    }
    events
}

/// One HTTP request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// The request headers.
    pub headers: axum::http::HeaderMap,
    /// The raw body.
    pub body: Vec<u8>,
}

/// A real HTTP server on 127.0.0.1, port 0, that answers 200 to every POST and keeps what it
/// received.
pub struct Receiver {
    /// Where it listens.
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    /// Starts a receiver on its own runtime thread.
    pub fn start() -> Receiver {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let received: Arc<Mutex<Vec<ReceivedRequest>>> = Arc::default();
        let state = received.clone();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        let app =
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    state.lock().unwrap().push(ReceivedRequest { headers, body: body.to_vec() });
                    axum::http::StatusCode::OK
                }
            });
        runtime.spawn(async move { axum::serve(listener, app).await });
        Receiver { address, received, _runtime: runtime }
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/rolewatch", self.address)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received.lock().unwrap().clone()
    }

    /// How many requests received so far have `text` in their body.
    pub fn count_containing(&self, text: &str) -> usize {
        self.received().iter().filter(|request| String::from_utf8_lossy(&request.body).contains(text)).count()
    }
}

/// A blocking HTTP GET on loopback; returns the status code and the body.
pub fn http_get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// The value of a sample line `name{labels} value` (or `name value`) in Prometheus text.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Runs a repo script with arguments and panics with its output if it fails.
pub fn run_script(script: &str, args: &[&Path]) {
    let path = repo_root().join(script);
    let output = Command::new(&path).args(args).output().expect("the script runs");
    assert!(
        output.status.success(),
        "{} failed\nstdout:\n{}\nstderr:\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Polls `condition` every 100 ms until it holds or `limit` passes; returns whether it held.
/// A bound on waiting, not a timing assertion: the limit is generous and only stops a hang.
pub fn wait_until(limit: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A running `rolewatch run`: its process, where it serves metrics, and its stderr.
pub struct Daemon {
    child: std::process::Child,
    /// `host:port` of `/metrics`, `/healthz`, `/ready`.
    pub address: String,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    /// Starts `rolewatch run --config rolewatch.toml` in `dir` (whose config must have
    /// `[metrics] listen`), and waits (bounded by `limit`) until it says where it serves.
    pub fn start(dir: &Path, env: &[(&str, &str)], limit: std::time::Duration) -> Daemon {
        use std::io::BufRead;
        let mut command = Command::new(rolewatch_binary());
        command.current_dir(dir).args(["run", "--config", "rolewatch.toml"]);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("rolewatch run starts");
        let (sender, lines) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut seen = Vec::new();
        let address = loop {
            let line = lines.recv_timeout(limit).expect("the daemon says where it serves metrics");
            seen.push(line.clone());
            if let Some(rest) = line.split("on http://").nth(1) {
                break rest.trim().to_owned();
            }
        };
        Daemon { child, address, lines, seen }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The current `/metrics` text (empty if the scrape failed).
    pub fn scrape(&self) -> String {
        http_get(&self.address, "/metrics").map(|(_, body)| body).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (a crash: nothing is flushed) and reaps it; returns what
    /// it wrote on stderr.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }

    /// Waits (bounded by `limit`) for the process to end by itself; returns its exit status
    /// (`None` if it was still running, and was then killed) and what it wrote on stderr.
    pub fn wait_exit(mut self, limit: std::time::Duration) -> (Option<std::process::ExitStatus>, String) {
        let exited = wait_until(limit, || self.child.try_wait().expect("try_wait").is_some());
        if !exited {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait");
        // The reader thread sees the pipe close right after the exit.
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (exited.then_some(status), self.seen.join("\n"))
    }

    /// Sends SIGTERM, waits (bounded by `limit`) for the exit, asserts it was clean, and
    /// returns everything the daemon wrote on stderr.
    pub fn stop(mut self, limit: std::time::Duration) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
        let exited = wait_until(limit, || self.child.try_wait().expect("try_wait").is_some());
        if !exited {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait");
        self.seen.extend(self.lines.try_iter());
        let stderr = self.seen.join("\n");
        assert!(exited && status.success(), "the daemon did not stop cleanly ({status}):\n{stderr}");
        stderr
    }
}

/// A server started by one of the repo's sandbox scripts (`scripts/pg-sandbox.sh`,
/// `scripts/mariadb-server.sh`) in a directory of its own; stopped when dropped.
pub struct Sandbox {
    script: PathBuf,
    dir: PathBuf,
}

impl Sandbox {
    /// Starts `scripts/<script>` in `dir` (created if needed).
    pub fn start(script: &str, dir: &Path) -> Sandbox {
        let sandbox = Sandbox { script: repo_root().join("scripts").join(script), dir: dir.to_path_buf() };
        sandbox.run("start");
        sandbox
    }

    /// The loopback TCP port the server listens on.
    pub fn port(&self) -> u16 {
        let text = std::fs::read_to_string(self.dir.join("port")).expect("the sandbox's port file");
        text.trim().parse().expect("a port number")
    }

    /// The sandbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn run(&self, action: &str) {
        let output =
            Command::new(&self.script).arg(action).arg(&self.dir).output().expect("the sandbox script runs");
        assert!(
            output.status.success(),
            "{} {action} failed (run scripts/install-deps.sh first?)\nstdout:\n{}\nstderr:\n{}",
            self.script.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").arg(&self.dir).output();
    }
}

/// A real S3-compatible server, MinIO from `scripts/minio.sh`, with its data, port and client
/// configuration in a directory of its own; stopped when dropped.
pub struct Minio {
    dir: PathBuf,
}

impl Minio {
    /// The user `scripts/minio.sh` makes the server's root.
    pub const ROOT_USER: &'static str = "rolewatch";

    /// Starts a server in `dir` (created if needed).
    pub fn start(dir: &Path) -> Minio {
        let minio = Minio { dir: dir.to_path_buf() };
        minio.script(&["start"]);
        minio
    }

    /// Starts the server again after [`Minio::stop`]: the same data, on the same port.
    pub fn restart(&self) {
        self.script(&["start"]);
    }

    /// Stops the server; returns once its process is gone.
    pub fn stop(&self) {
        self.script(&["stop"]);
    }

    /// Creates a bucket.
    pub fn make_bucket(&self, bucket: &str) {
        self.script(&["mb", bucket]);
    }

    /// The variables that point a lake `s3://` URL at this server, as its root user.
    pub fn root_env(&self) -> Vec<(String, String)> {
        self.script(&["env"])
            .lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    /// Runs the MinIO client as the root user (the server is the alias `local`); returns its
    /// standard output.
    pub fn mc(&self, args: &[&str]) -> String {
        let mut all = vec!["mc"];
        all.extend_from_slice(args);
        self.script(&all)
    }

    /// Every object under `path` (`bucket/prefix`): its key and what changes when an object is
    /// written again (ETag and modification time).
    pub fn objects(&self, path: &str) -> std::collections::BTreeMap<String, (String, String)> {
        let listing = self.mc(&["ls", "--recursive", "--json", &format!("local/{path}")]);
        listing
            .lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).expect("mc ls --json lines");
                let field =
                    |name: &str| entry.get(name).and_then(serde_json::Value::as_str).unwrap_or_default();
                (field("key").to_owned(), (field("etag").to_owned(), field("lastModified").to_owned()))
            })
            .collect()
    }

    /// Copies every object under `path` (`bucket/prefix`) into the empty or missing directory
    /// `into`, so that the local readers ([`committed_files`], [`read_parquet`]) can read it.
    pub fn download(&self, path: &str, into: &Path) {
        let _ = std::fs::remove_dir_all(into);
        std::fs::create_dir_all(into).expect("a download directory");
        self.mc(&["mirror", &format!("local/{path}"), into.to_str().expect("a UTF-8 path")]);
    }

    fn script(&self, args: &[&str]) -> String {
        let script = repo_root().join("scripts/minio.sh");
        let (action, rest) = args.split_first().expect("an action");
        let output =
            Command::new(&script).arg(action).arg(&self.dir).args(rest).output().expect("minio.sh runs");
        assert!(
            output.status.success(),
            "minio.sh {args:?} failed (run scripts/minio.sh install first?)\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Minio {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/minio.sh")).arg("stop").arg(&self.dir).output();
    }
}

/// Runs a client command with `input` on its standard input; panics with its output unless it
/// succeeds.
pub fn run_client(mut command: Command, input: &str) -> String {
    use std::io::Write as _;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the client starts");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("input written");
    let output = child.wait_with_output().expect("the client ends");
    assert!(
        output.status.success(),
        "{command:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for test
/// processes): a binary compiled in another checkout that shares the target directory must
/// not read that checkout's files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}
