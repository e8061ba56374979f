//! Records per second per format, on one core, input already in memory.
//!
//! ```text
//! cargo bench -p rolewatch-parse --bench parse_throughput
//! ROLEWATCH_BENCH_PG_DIR=/tmp/pgbench-logs cargo bench -p rolewatch-parse --bench parse_throughput
//! ```
//!
//! PostgreSQL inputs are `postgresql.json`, `postgresql.csv` and `postgresql.log` (with the
//! prefix from `capture.env`) of `ROLEWATCH_BENCH_PG_DIR` (made by `scripts/pgbench-logs.sh`
//! from a real server under pgbench), or else the committed `examples/logs` capture repeated.
//! MariaDB and MySQL inputs are the reference samples repeated. Each input is parsed
//! [`RUNS`] times with a fresh parser, draining events every 1,024 lines as `rolewatch parse` does
//! (what `rolewatch parse --summary` does); the best run is reported, in CPU seconds of the
//! parsing thread (from `/proc/thread-self/schedstat`) so that other load on the machine does
//! not count. `ROLEWATCH_BENCH_ONLY=text`
//! keeps the inputs whose name contains `text`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use rolewatch_event::{LogFormat, SourcePosition};
use rolewatch_parse::{ParseOutput, ParserOptions, try_parser_for};

/// The allocator the `rolewatch` binary uses, so that the figures are the binary's parse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNS: usize = 5;
/// Events are taken every this many lines, as `rolewatch parse` takes a chunk of 1,024 events.
const DRAIN_LINES: u64 = 1024;
/// Repeated samples are grown to about this many bytes.
const SYNTHETIC_BYTES: usize = 64 * 1024 * 1024;

struct Input {
    name: String,
    format: LogFormat,
    options: ParserOptions,
    /// Reads (or makes) the input; only inputs that are run are loaded.
    load: Box<dyn Fn() -> Vec<u8>>,
}

fn repeated(bytes: &[u8]) -> Vec<u8> {
    let mut text = bytes.to_vec();
    if !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    let copies = (SYNTHETIC_BYTES / text.len()).max(1);
    text.repeat(copies)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn capture_prefix(directory: &Path) -> String {
    let env = std::fs::read_to_string(directory.join("capture.env")).unwrap();
    env.lines()
        .find_map(|line| line.strip_prefix("LOG_LINE_PREFIX="))
        .map(|value| value.trim_matches('\'').to_owned())
        .unwrap()
}

/// The MariaDB samples with real timestamps: RDS lines, and MDEV-37434's with its masked
/// time and host put back.
fn mariadb_sample(data_dir: &Path) -> Vec<u8> {
    let escapes = read(&data_dir.join("mariadb_server_audit_mtr_newline_escapes.log"));
    let unmasked: Vec<String> = String::from_utf8_lossy(&escapes)
        .lines()
        .map(|line| {
            line.strip_prefix("TIMESTAMP,HOSTNAME,")
                .map_or(line.to_owned(), |rest| format!("20240101 10:00:00,db1,{rest}"))
        })
        .collect();
    let mut sample = read(&data_dir.join("mariadb_server_audit_rds.log"));
    sample.extend_from_slice(unmasked.join("\n").as_bytes());
    repeated(&sample)
}

fn inputs() -> Vec<Input> {
    let crate_dir = manifest_dir();
    let data_dir = crate_dir.join("tests/data");
    let (pg_dir, real): (PathBuf, bool) = match std::env::var_os("ROLEWATCH_BENCH_PG_DIR") {
        Some(directory) => (PathBuf::from(directory), true),
        None => (crate_dir.join("../../examples/logs"), false),
    };
    let pg_options =
        ParserOptions { log_line_prefix: Some(capture_prefix(&pg_dir)), ..ParserOptions::default() };
    let label = if real { "pgbench" } else { "examples/logs repeated" };
    let pg = |format: LogFormat, file: &str| {
        let path = pg_dir.join(file);
        Input {
            name: format!("{format} ({label})"),
            format,
            options: pg_options.clone(),
            load: Box::new(move || if real { read(&path) } else { repeated(&read(&path)) }),
        }
    };
    let enterprise = data_dir.join("mysql_enterprise_audit.json");
    vec![
        pg(LogFormat::PgauditJsonlog, "postgresql.json"),
        pg(LogFormat::PgauditCsvlog, "postgresql.csv"),
        pg(LogFormat::PgauditStderr, "postgresql.log"),
        Input {
            name: "mariadb-audit (RDS + MDEV-37434 samples repeated)".into(),
            format: LogFormat::MariadbAudit,
            options: ParserOptions::default(),
            load: Box::new(move || mariadb_sample(&data_dir)),
        },
        Input {
            name: "mysql-audit-json (Enterprise sample repeated)".into(),
            format: LogFormat::MysqlAuditJson,
            options: ParserOptions::default(),
            load: Box::new(move || repeated(&read(&enterprise))),
        },
    ]
}

/// Nanoseconds this thread has run on a CPU (Linux `schedstat`), so that figures stay per core
/// when other processes share the machine; `None` elsewhere.
fn thread_cpu_nanoseconds() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

struct Run {
    /// CPU seconds of this thread when known, else wall seconds.
    seconds: f64,
    lines: u64,
    events: u64,
    rejected: u64,
    skipped: u64,
}

fn run(input: &Input, bytes: &[u8]) -> Run {
    let mut parser = try_parser_for(input.format, &input.options).unwrap();
    let mut output = ParseOutput::default();
    let (mut lines, mut events, mut rejected) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let cpu_started = thread_cpu_nanoseconds();
    // One position, updated in place: no allocation per line (the binary can do the same).
    let mut position = SourcePosition::File { file: "bench".into(), line: 0, offset: 0 };
    let mut next_offset = 0u64;
    // Lines as `split` cuts them (the piece after the last newline included), found with
    // `memchr` as the binary's reader finds them: `split`'s byte-by-byte closure cost more than
    // the jsonlog parse it fed.
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    let mut start = 0;
    for end in ends {
        let line = bytes.get(start..end).unwrap_or_default();
        start = end + 1;
        lines += 1;
        if let SourcePosition::File { line: line_number, offset, .. } = &mut position {
            *line_number = lines;
            *offset = next_offset;
        }
        next_offset += line.len() as u64 + 1;
        parser.parse_line(line, &position, &mut output);
        if lines % DRAIN_LINES == 0 {
            events += output.events.len() as u64;
            rejected += output.rejected.len() as u64;
            output.events.clear();
            output.rejected.clear();
        }
    }
    parser.finish(&mut output);
    events += output.events.len() as u64;
    rejected += output.rejected.len() as u64;
    let seconds = match (cpu_started, thread_cpu_nanoseconds()) {
        (Some(before), Some(after)) => (after - before) as f64 / 1e9,
        _ => started.elapsed().as_secs_f64(),
    };
    Run { seconds, lines, events, rejected, skipped: output.skipped_total() }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a quick run.
    let quick = !std::env::args().any(|argument| argument == "--bench");
    println!(
        "| input | MB | lines | events | rejected | skipped | best of {RUNS} (CPU s) | lines/s | events/s | MB/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let only = std::env::var("ROLEWATCH_BENCH_ONLY").unwrap_or_default();
    for input in inputs().into_iter().filter(|input| input.name.contains(only.as_str())) {
        let mut bytes = (input.load)();
        if quick {
            bytes.truncate(bytes.len().min(1 << 20));
        }
        let runs: Vec<Run> = (0..if quick { 1 } else { RUNS }).map(|_| run(&input, &bytes)).collect();
        let best = runs.iter().min_by(|a, b| a.seconds.total_cmp(&b.seconds)).unwrap();
        let megabytes = bytes.len() as f64 / 1e6;
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {:.3} | {:.0} | {:.0} | {:.0} |",
            input.name,
            megabytes,
            best.lines,
            best.events,
            best.rejected,
            best.skipped,
            best.seconds,
            best.lines as f64 / best.seconds,
            best.events as f64 / best.seconds,
            megabytes / best.seconds,
        );
    }
}

/// The package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for test
/// processes): a binary compiled in another checkout that shares the target directory must
/// not read that checkout's files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}
