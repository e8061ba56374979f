//! The configuration file: one TOML document, parsed strictly.
//!
//! Every table is optional and every key has a default, so an empty file is a valid config.
//! Unknown keys are errors that name the key, its line and the file: a typo must never turn a
//! detector off silently. The detection and alert tables are defined by the crates that own
//! them (`rolewatch-detect`, `rolewatch-alert`); this module only gathers them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rolewatch_alert::AlertsConfig;
use rolewatch_detect::{DetectionConfig, DetectorsConfig, OriginsConfig, RolesConfig, SensitiveConfig};
use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[lake]`: where events are stored.
    pub lake: LakeConfig,
    /// `[state]`: where rolewatch keeps its own working state.
    pub state: StateConfig,
    /// `[roles]`: which roles are admins, readers, writers, services.
    pub roles: RolesConfig,
    /// `[origins]`: which applications and networks are services.
    pub origins: OriginsConfig,
    /// `[sensitive]`: schemas and tables whose access is watched.
    pub sensitive: SensitiveConfig,
    /// `[detectors.*]`: per-detector settings.
    pub detectors: DetectorsConfig,
    /// `[alerts]`: where alerts are delivered.
    pub alerts: AlertsConfig,
    /// `[source.*]`: where `rolewatch run` reads audit records from.
    pub source: SourceConfig,
    /// `[metrics]`: the operations endpoint of `rolewatch run`.
    pub metrics: MetricsConfig,
}

/// `[source]`: the inputs of `rolewatch run`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `[source.files]`: local log files followed as they grow.
    pub files: Option<FilesSourceConfig>,
    /// `[source.kafka]`: a Kafka consumer group (the production source).
    pub kafka: Option<crate::kafka::KafkaSection>,
}

/// `[source.files]`: follow local log files as the database writes them (single machine).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSourceConfig {
    /// The files to follow, e.g. `["/var/log/postgresql/postgresql.json"]`. A path that does
    /// not exist yet is waited for; a rotated file is followed under its name.
    pub paths: Vec<PathBuf>,
    /// The log format (`pgaudit-jsonlog`, ...); sniffed from each file's first lines if absent.
    #[serde(default)]
    pub format: Option<rolewatch_event::LogFormat>,
    /// The server name stamped on every event (`server` column).
    #[serde(default)]
    pub server: Option<String>,
    /// pgaudit-stderr: the server's `log_line_prefix`, or a preset (`postgres`, `debian`,
    /// `rds`); sniffed from the first lines when absent.
    #[serde(default)]
    pub log_line_prefix: Option<String>,
    /// The IANA zone the source writes local times in (e.g. `Europe/Berlin`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// How often the files are checked for new lines. Default `"1s"`.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: String,
    /// The longest an event waits before it is stored and seen by the detectors (a chunk is
    /// flushed when it is full or this old). Default `"5s"`.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: String,
}

fn default_poll_interval() -> String {
    "1s".to_owned()
}

fn default_flush_interval() -> String {
    "5s".to_owned()
}

impl FilesSourceConfig {
    /// The parser settings of these files.
    pub fn parser_options(&self) -> rolewatch_parse::ParserOptions {
        rolewatch_parse::ParserOptions {
            server: self.server.clone(),
            log_line_prefix: self.log_line_prefix.clone(),
            timezone: self.timezone.clone(),
        }
    }

    /// `poll_interval` and `flush_interval` as durations; errors name the key.
    pub fn intervals(&self) -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
        let parse = |key: &str, text: &str| {
            humantime::parse_duration(text)
                .with_context(|| format!("[source.files] {key} = {text:?} is not a duration like \"5s\""))
        };
        Ok((parse("poll_interval", &self.poll_interval)?, parse("flush_interval", &self.flush_interval)?))
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `/metrics`, `/healthz` and `/ready` are served, e.g. `"127.0.0.1:9464"`. Not
    /// served when absent.
    pub listen: Option<String>,
}

/// `[lake]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// The lake: a directory, or `s3://bucket/prefix` for S3-compatible object storage (the
    /// endpoint and credentials from the usual `AWS_*` environment variables). Default:
    /// `./rolewatch-data`. Relative paths are relative to the working directory, not to the
    /// config file, as in the quick start.
    pub path: PathBuf,
    /// Events per chunk: the unit of a lake write and of memory use. Default: 65536.
    pub chunk_events: usize,
    /// `rolewatch run` writes a heartbeat manifest when no manifest was written for this long,
    /// so that `rolewatch verify --max-head-age` tells a quiet lake from a truncated one.
    /// Default: `"15m"`.
    pub heartbeat_interval: String,
    /// A file holding the Ed25519 key (64 hex characters) that signs every manifest.
    pub signing_key_file: Option<PathBuf>,
    /// The name of an environment variable holding the signing key instead.
    pub signing_key_env: Option<String>,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./rolewatch-data"),
            chunk_events: 65_536,
            heartbeat_interval: "15m".to_owned(),
            signing_key_file: None,
            signing_key_env: None,
        }
    }
}

impl LakeConfig {
    /// `heartbeat_interval` as a duration; the error names the key.
    pub fn heartbeat(&self) -> anyhow::Result<std::time::Duration> {
        humantime::parse_duration(&self.heartbeat_interval).with_context(|| {
            format!(
                "[lake] heartbeat_interval = {:?} is not a duration like \"15m\"",
                self.heartbeat_interval
            )
        })
    }

    /// Opens the lake, with the signing key if one is configured.
    pub fn open(&self) -> anyhow::Result<rolewatch_lake::Lake> {
        let location = self.path.to_string_lossy();
        let lake = rolewatch_lake::Lake::open(&location)
            .with_context(|| format!("cannot open the lake at {location}"))?;
        let source = match (&self.signing_key_file, &self.signing_key_env) {
            (Some(_), Some(_)) => {
                anyhow::bail!("[lake] takes signing_key_file or signing_key_env, not both")
            }
            (Some(file), None) => rolewatch_lake::KeySource::File(file.clone()),
            (None, Some(name)) => rolewatch_lake::KeySource::Env(name.clone()),
            (None, None) => return Ok(lake),
        };
        let signer =
            rolewatch_lake::ManifestSigner::load(&source).context("cannot load the [lake] signing key")?;
        Ok(lake.with_signer(signer))
    }
}

/// `[state]`: mutable working state, kept apart from the write-once lake.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Directory for the alert outbox and the detectors' learned state (e.g. origins seen per
    /// role). Default: `./rolewatch-state`.
    pub path: PathBuf,
    /// How often `rolewatch run` and `rolewatch ingest` save the detectors' learned state
    /// while they run (they save it at a clean stop too), so that a crash loses at most this
    /// much learning. Default `"1m"`.
    pub checkpoint_interval: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self { path: PathBuf::from("./rolewatch-state"), checkpoint_interval: "1m".to_owned() }
    }
}

impl StateConfig {
    /// `checkpoint_interval` as a duration; the error names the key.
    pub fn checkpoint(&self) -> anyhow::Result<std::time::Duration> {
        humantime::parse_duration(&self.checkpoint_interval).with_context(|| {
            format!(
                "[state] checkpoint_interval = {:?} is not a duration like \"1m\"",
                self.checkpoint_interval
            )
        })
    }

    /// Where undelivered alerts wait.
    pub fn outbox_dir(&self) -> PathBuf {
        self.path.join("outbox")
    }

    /// The detectors' state file.
    pub fn detector_state_file(&self) -> PathBuf {
        self.path.join("detector-state.json")
    }
}

impl Config {
    /// Reads and parses `path`. Errors name the file and, for syntax and unknown keys, the key
    /// and its line.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses a config document.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// The detection settings, as the detect crate takes them.
    pub fn detection(&self) -> DetectionConfig {
        DetectionConfig {
            roles: self.roles.clone(),
            origins: self.origins.clone(),
            sensitive: self.sensitive.clone(),
            detectors: self.detectors.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_example_is_accepted() {
        let text = include_str!("../../../examples/rolewatch.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(config.lake.path, PathBuf::from("./rolewatch-data"));
        assert_eq!(config.roles.reader, ["app_reader", "report_reader"]);
        assert_eq!(config.detectors.large_export.rows, 10_000);
        rolewatch_detect::Engine::new(&config.detection()).unwrap();
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let error =
            Config::parse("[lake]\npath = \"x\"\n\n[detectors.large_export]\nrowz = 5\n").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("rowz"), "{message}");
        assert!(message.contains("line 5"), "{message}");
    }

    #[test]
    fn an_unknown_table_is_an_error() {
        let message = Config::parse("[lakes]\npath = \"x\"\n").unwrap_err().to_string();
        assert!(message.contains("lakes"), "{message}");
    }

    #[test]
    fn the_run_sections_are_accepted_and_their_durations_checked() {
        let config = Config::parse(
            "[source.files]\npaths = [\"/var/log/pg.json\"]\nformat = \"pgaudit-jsonlog\"\nflush_interval = \"2s\"\n\n[metrics]\nlisten = \"127.0.0.1:9464\"\n",
        )
        .unwrap();
        let files = config.source.files.unwrap();
        assert_eq!(files.format, Some(rolewatch_event::LogFormat::PgauditJsonlog));
        let (poll, flush) = files.intervals().unwrap();
        assert_eq!((poll.as_secs(), flush.as_secs()), (1, 2));
        assert_eq!(config.metrics.listen.as_deref(), Some("127.0.0.1:9464"));

        let bad = Config::parse("[source.files]\npaths = []\npoll_interval = \"soon\"\n").unwrap();
        let message = format!("{:#}", bad.source.files.unwrap().intervals().unwrap_err());
        assert!(message.contains("poll_interval"), "{message}");
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.state.path, PathBuf::from("./rolewatch-state"));
        assert_eq!(config.lake.chunk_events, 65_536);
    }
}
