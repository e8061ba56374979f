//! `rolewatch check-config FILE` (hidden): parses a config file strictly and validates what
//! can be validated without I/O (durations, `timezone` and `log_line_prefix` of the sources,
//! the `[source.kafka]` consumer settings, the detector settings), then exits 0. Deployment checks and the configuration-reference test run it on the shipped
//! configs. Secrets named by `*_env` and `*_file` keys are read only by the commands that use
//! them, so their absence is not an error here.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use rolewatch_detect::Engine;

use super::say;
use crate::config::Config;

/// Arguments of `rolewatch check-config`.
#[derive(Debug, Clone, Args)]
pub struct CheckConfigArgs {
    /// The config file (TOML) to check.
    pub config: PathBuf,
}

/// Checks the file; an error names the key and, for syntax and unknown keys, its line.
pub fn run(args: CheckConfigArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let invalid = || format!("invalid config file {}", args.config.display());
    // Checked as for a stderr log, the strictest case: the zone and the prefix (if given).
    let strictest = rolewatch_event::LogFormat::PgauditStderr;
    if let Some(files) = &config.source.files {
        files.intervals().with_context(invalid)?;
        files.parser_options().validate(strictest).context("invalid [source.files]").with_context(invalid)?;
    }
    if let Some(kafka) = &config.source.kafka {
        kafka.parser_options().validate(strictest).context("invalid [source.kafka]").with_context(invalid)?;
        kafka.consumer_config().validate().context("invalid [source.kafka]").with_context(invalid)?;
        humantime::parse_duration(&kafka.flush_interval)
            .with_context(|| {
                format!("[source.kafka] flush_interval = {:?} is not a duration", kafka.flush_interval)
            })
            .with_context(invalid)?;
    }
    config.lake.heartbeat().with_context(invalid)?;
    config.state.checkpoint().with_context(invalid)?;
    Engine::new(&config.detection()).context("invalid detection settings").with_context(invalid)?;
    say(&format!("{}: valid", args.config.display()));
    Ok(())
}
