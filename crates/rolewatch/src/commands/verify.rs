//! `rolewatch verify`: walk the manifest chain and every file of a lake; exit non-zero naming
//! every problem (hash mismatch, missing file, unlisted file, broken chain, missing tail, bad
//! signature).

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Args;
use rolewatch_lake::{Lake, VerifyOptions};

/// Arguments of `rolewatch verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The lake: a directory, or `s3://bucket/prefix` (credentials and endpoint from the
    /// usual AWS environment variables).
    #[arg(long)]
    pub lake: String,
    /// The newest manifest must be younger than this (e.g. `2h`, twice the heartbeat
    /// interval): a truncated tail shows as a stale head.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub max_head_age: Option<Duration>,
    /// A public key (Ed25519, hex) whose manifest signatures are accepted; repeatable.
    #[arg(long = "trusted-key")]
    pub trusted_keys: Vec<String>,
    /// Every manifest must be signed by a trusted key.
    #[arg(long)]
    pub require_signatures: bool,
}

/// Runs the command.
pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let lake = Lake::open(&args.lake).with_context(|| format!("cannot open the lake at {}", args.lake))?;
    let mut options = VerifyOptions::new(Utc::now());
    options.max_head_age = args.max_head_age;
    options.require_signatures = args.require_signatures;
    for key in &args.trusted_keys {
        options.trusted_keys.push(rolewatch_lake::parse_public_key(key).context("invalid --trusted-key")?);
    }
    let report = rolewatch_lake::verify(&lake, &options).await.context("cannot verify the lake")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // The report's first line is the verdict, then one line per problem.
    writeln!(out, "{report}").context("cannot write to stdout")?;
    if !report.is_intact() {
        bail!("the lake at {} is not intact: {} problems", args.lake, report.problems.len());
    }
    Ok(())
}
