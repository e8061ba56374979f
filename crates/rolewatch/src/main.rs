//! `rolewatch`: database audit logs to a write-once Parquet lake and security alerts.
//!
//! This binary is the wiring: it reads the config, builds the stages from the library crates
//! (`rolewatch-parse`, `rolewatch-lake`, `rolewatch-detect`, `rolewatch-alert`) and runs one
//! subcommand. See `ARCHITECTURE.md` for the map and `README.md` for the quick start.

mod commands;
mod config;
mod files;
mod input;
mod intents;
mod kafka;
mod metrics;
mod pipeline;
mod serve;
mod tail;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc malloc: an event is a dozen small strings, allocated by the parser
/// and freed a chunk at a time after it is stored, a pattern glibc handles poorly (its free-list
/// consolidation alone was 5% of `rolewatch run` from Kafka).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Database audit logs to a write-once Parquet lake and security alerts.
#[derive(Debug, Parser)]
#[command(name = "rolewatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read log files, store their events in the lake, run the detectors, print and deliver
    /// the alerts.
    Ingest(commands::ingest::IngestArgs),
    /// Normalize log files to events, printed as NDJSON (or counted with --summary).
    Parse(commands::parse::ParseArgs),
    /// Run the detectors over log files and print the alerts (a backtest: nothing stored).
    Detect(commands::detect::DetectArgs),
    /// The daemon: follow the configured sources, store, detect, deliver, serve metrics.
    Run(commands::run::RunArgs),
    /// Access review: cross the database's roles and grants with the lake's activity and
    /// propose the SQL that strips what nobody uses (never run by rolewatch).
    Review(commands::review::ReviewArgs),
    /// Check the lake: walk the manifest chain and every file it lists; exit non-zero naming
    /// each problem (altered, missing or unlisted file, broken chain, stale head, bad
    /// signature).
    Verify(commands::verify::VerifyArgs),
    /// Make the key that signs the lake's manifests (`[lake] signing_key_file`) and print its
    /// public key, or print the public key of an existing one.
    Keygen(commands::keygen::KeygenArgs),
    /// Run SQL over the lake (tables `events` and `dead_letters`) and print the result.
    Query(commands::query::QueryArgs),
    /// Parse a config file strictly and validate it without I/O (for deployment checks).
    #[command(hide = true)]
    CheckConfig(commands::check_config::CheckConfigArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("ROLEWATCH_LOG").unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`rolewatch parse ... | head`) is the reader saying it has enough.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            commands::say(&format!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Parse(args) => commands::parse::run(args),
        Command::Ingest(args) => runtime()?.block_on(commands::ingest::run(args)),
        Command::Detect(args) => runtime()?.block_on(commands::detect::run(args)),
        Command::Run(args) => runtime()?.block_on(commands::run::run(args)),
        Command::Review(args) => runtime()?.block_on(commands::review::run(args)),
        Command::Verify(args) => runtime()?.block_on(commands::verify::run(args)),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Query(args) => runtime()?.block_on(commands::query::run(args)),
        Command::CheckConfig(args) => commands::check_config::run(args),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|json| json.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
