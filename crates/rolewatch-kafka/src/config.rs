//! The `[source.kafka]` table: brokers, topics, group, and librdkafka settings passed through.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::KafkaSourceError;

/// Settings rolewatch sets itself; the pass-through table may not override them, because the
/// exactly-once design depends on them (the application owns offsets).
const RESERVED_SETTINGS: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
];

/// Defaults rolewatch applies unless the pass-through table says otherwise.
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    // librdkafka 2.4+ waits 1 s between fetches of a partition whose queue was drained; that
    // cut a measured consume-and-parse rate by 2.7 times (PERFORMANCE.md section 3).
    ("fetch.queue.backoff.ms", "10"),
    // librdkafka prefetches up to 64 MiB or 100,000 messages per partition by default: a
    // daemon with many partitions could hold gigabytes it has not parsed yet. 16 MiB and
    // 20,000 messages keep a partition's pipeline full (on the Kafka benchmark: peak RSS 242
    // instead of 303-315 MiB, and 2-4% less CPU time, as the fetch buffers are reused sooner).
    ("queued.max.messages.kbytes", "16384"),
    ("queued.min.messages", "20000"),
    // Statistics drive readiness (is any broker up?) and, later, lag metrics.
    ("statistics.interval.ms", "1000"),
];

/// Where a consumer starts reading a partition for which the lake has no durable position yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest record the broker still holds: an audit trail should store everything.
    #[default]
    Earliest,
    /// Only records produced after the consumer joined.
    Latest,
    /// The offset committed to Kafka for the group (earliest if none). Kafka commits only ever
    /// follow durable positions, so this never skips stored data, but a lake that was wiped
    /// would not be refilled.
    Committed,
}

/// The value of one librdkafka setting: given inline, or read from an environment variable or
/// a file (for passwords and keys, which should not sit in the config file).
///
/// In TOML: `"sasl.mechanism" = "SCRAM-SHA-512"`, `"sasl.password" = { env = "KAFKA_PASSWORD" }`,
/// `"ssl.key.pem" = { file = "/run/secrets/kafka.key" }`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    /// The value itself.
    Inline(String),
    /// The name of an environment variable that holds the value.
    Env {
        /// The variable's name.
        env: String,
    },
    /// A file whose content (without a trailing newline) is the value.
    File {
        /// The file's path.
        file: PathBuf,
    },
}

/// The `[source.kafka]` table. Parsed strictly; [`KafkaSourceConfig::validate`] checks it, and
/// [`KafkaSource::new`](crate::KafkaSource::new) reads secrets and builds the librdkafka config.
///
/// Its `Debug` output never shows the value of a setting whose name contains `password`,
/// `secret`, `sasl` or `key` (such values print as `[redacted]`), so the config can be logged.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap brokers, `host:port` each.
    pub brokers: Vec<String>,
    /// The topics to consume.
    pub topics: Vec<String>,
    /// The consumer group; every rolewatch instance of one deployment uses the same one.
    pub group_id: String,
    /// Where to start a partition that has no durable position yet (default `earliest`).
    #[serde(default)]
    pub start_without_durable: StartPosition,
    /// librdkafka properties passed through as they are (SASL, TLS, timeouts, assignment
    /// strategy). Settings rolewatch manages (`group.id`, `enable.auto.commit`, ...) are refused.
    #[serde(default)]
    pub client: BTreeMap<String, SettingValue>,
}

/// Whether a setting's value must never be shown: SASL settings, passwords, secrets, keys.
pub fn is_secret_setting(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "sasl", "key"].iter().any(|word| key.contains(word))
}

impl KafkaSourceConfig {
    /// A config with the required fields and defaults for the rest.
    pub fn new(brokers: impl Into<String>, topics: &[&str], group_id: impl Into<String>) -> Self {
        Self {
            brokers: vec![brokers.into()],
            topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
            group_id: group_id.into(),
            start_without_durable: StartPosition::default(),
            client: BTreeMap::new(),
        }
    }

    /// Checks the config without I/O: required fields, no reserved settings.
    pub fn validate(&self) -> Result<(), KafkaSourceError> {
        let config_error = |reason: &str| KafkaSourceError::Config { reason: reason.to_owned() };
        if self.brokers.is_empty() || self.brokers.iter().any(|broker| broker.trim().is_empty()) {
            return Err(config_error("brokers must list at least one host:port"));
        }
        if self.topics.is_empty() || self.topics.iter().any(|topic| topic.trim().is_empty()) {
            return Err(config_error("topics must list at least one topic"));
        }
        if self.group_id.trim().is_empty() {
            return Err(config_error("group_id must not be empty"));
        }
        if let Some(key) = self
            .client
            .keys()
            .find(|key| RESERVED_SETTINGS.contains(&key.trim().to_ascii_lowercase().as_str()))
        {
            return Err(KafkaSourceError::ReservedSetting { key: key.clone() });
        }
        Ok(())
    }

    /// Validates, reads settings from env and files, and builds the librdkafka configuration.
    ///
    /// Also returns the resolved secret values, so that client errors can be redacted.
    pub(crate) fn client_config(&self) -> Result<(ClientConfig, Vec<String>), KafkaSourceError> {
        self.validate()?;
        let mut client_config = ClientConfig::new();
        for (key, value) in DEFAULT_SETTINGS {
            client_config.set(*key, *value);
        }
        let mut secrets = Vec::new();
        for (key, value) in &self.client {
            let resolved = resolve(key, value)?;
            if is_secret_setting(key) && !resolved.is_empty() {
                secrets.push(resolved.clone());
            }
            client_config.set(key, resolved);
        }
        let auto_offset_reset = match self.start_without_durable {
            StartPosition::Latest => "latest",
            StartPosition::Earliest | StartPosition::Committed => "earliest",
        };
        client_config
            .set("bootstrap.servers", self.brokers.join(","))
            .set("group.id", &self.group_id)
            // The application owns offsets (STYLE.md habit 7): nothing is stored or committed
            // unless the caller says its data is durable.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", auto_offset_reset);
        Ok((client_config, secrets))
    }
}

fn resolve(key: &str, value: &SettingValue) -> Result<String, KafkaSourceError> {
    match value {
        SettingValue::Inline(text) => Ok(text.clone()),
        SettingValue::Env { env } => std::env::var(env)
            .map_err(|_| KafkaSourceError::SettingFromEnv { key: key.to_owned(), variable: env.clone() }),
        SettingValue::File { file } => std::fs::read_to_string(file)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|source| KafkaSourceError::SettingFromFile {
                key: key.to_owned(),
                path: file.clone(),
                source,
            }),
    }
}

/// Replaces every occurrence of a secret in `text` with `[redacted]`.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut redacted = text.to_owned();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        redacted = redacted.replace(secret.as_str(), "[redacted]");
    }
    redacted
}

impl fmt::Debug for SettingValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(text) => fmt::Debug::fmt(text, formatter),
            Self::Env { env } => write!(formatter, "{{ env = {env:?} }}"),
            Self::File { file } => write!(formatter, "{{ file = {:?} }}", file.display()),
        }
    }
}

/// Shows a setting's value, or `[redacted]` for an inline secret. Where a secret comes from (an
/// environment variable's name, a file's path) is not secret and is shown.
struct RedactedSetting<'a> {
    key: &'a str,
    value: &'a SettingValue,
}

impl fmt::Debug for RedactedSetting<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            SettingValue::Inline(_) if is_secret_setting(self.key) => formatter.write_str("[redacted]"),
            value => fmt::Debug::fmt(value, formatter),
        }
    }
}

impl fmt::Debug for KafkaSourceConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client: BTreeMap<&str, RedactedSetting<'_>> =
            self.client.iter().map(|(key, value)| (key.as_str(), RedactedSetting { key, value })).collect();
        formatter
            .debug_struct("KafkaSourceConfig")
            .field("brokers", &self.brokers)
            .field("topics", &self.topics)
            .field("group_id", &self.group_id)
            .field("start_without_durable", &self.start_without_durable)
            .field("client", &client)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY_SASL_hunter2";

    fn config_with(client: &[(&str, SettingValue)]) -> KafkaSourceConfig {
        let mut config = KafkaSourceConfig::new("127.0.0.1:9092", &["audit"], "rolewatch");
        for (key, value) in client {
            config.client.insert((*key).to_owned(), value.clone());
        }
        config
    }

    #[test]
    fn debug_redacts_inline_secrets_and_shows_the_rest() {
        let config = config_with(&[
            ("sasl.password", SettingValue::Inline(CANARY.to_owned())),
            ("ssl.key.password", SettingValue::Inline(CANARY.to_owned())),
            ("sasl.username", SettingValue::Inline(CANARY.to_owned())),
            ("session.timeout.ms", SettingValue::Inline("6000".to_owned())),
            ("sasl.oauthbearer.client.secret", SettingValue::Env { env: "OIDC_SECRET".to_owned() }),
        ]);
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert!(shown.contains("6000"), "non-secret values are shown: {shown}");
        assert!(shown.contains("OIDC_SECRET"), "the env var's name is shown: {shown}");
    }

    #[test]
    fn secrets_come_from_files_and_are_redacted_from_client_errors() {
        let directory = std::env::temp_dir().join(format!("rw-kafka-config-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("password");
        std::fs::write(&path, format!("{CANARY}\n")).unwrap();
        let config = config_with(&[("sasl.password", SettingValue::File { file: path.clone() })]);
        let (client_config, secrets) = config.client_config().unwrap();
        assert_eq!(client_config.get("sasl.password"), Some(CANARY));
        assert_eq!(client_config.get("enable.auto.commit"), Some("false"));
        assert_eq!(client_config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(redact(&format!("bad value \"{CANARY}\""), &secrets), "bad value \"[redacted]\"");
        std::fs::remove_dir_all(&directory).unwrap();
    }

    /// rolewatch's defaults bound the prefetch queue; the pass-through table overrides them.
    #[test]
    fn defaults_apply_unless_the_client_table_overrides_them() {
        let (client_config, _) = config_with(&[]).client_config().unwrap();
        assert_eq!(client_config.get("queued.max.messages.kbytes"), Some("16384"));
        assert_eq!(client_config.get("fetch.queue.backoff.ms"), Some("10"));
        let overridden = config_with(&[("queued.max.messages.kbytes", SettingValue::Inline("65536".into()))]);
        let (client_config, _) = overridden.client_config().unwrap();
        assert_eq!(client_config.get("queued.max.messages.kbytes"), Some("65536"));
    }

    #[test]
    fn missing_secret_sources_are_errors_that_name_the_setting_not_the_value() {
        let config = config_with(&[(
            "sasl.password",
            SettingValue::Env { env: "ROLEWATCH_TEST_SURELY_UNSET_VARIABLE".to_owned() },
        )]);
        let error = config.client_config().unwrap_err();
        assert!(matches!(error, KafkaSourceError::SettingFromEnv { .. }), "{error}");
        assert!(error.to_string().contains("sasl.password"));

        let config = config_with(&[(
            "ssl.key.pem",
            SettingValue::File { file: PathBuf::from("/nonexistent/rolewatch/key") },
        )]);
        assert!(matches!(config.client_config().unwrap_err(), KafkaSourceError::SettingFromFile { .. }));
    }

    #[test]
    fn reserved_settings_and_empty_fields_are_refused() {
        for key in ["enable.auto.commit", "group.id", "Enable.Auto.Offset.Store", "bootstrap.servers"] {
            let config = config_with(&[(key, SettingValue::Inline("true".to_owned()))]);
            assert!(matches!(config.validate(), Err(KafkaSourceError::ReservedSetting { .. })), "{key}");
        }
        let mut config = config_with(&[]);
        config.topics.clear();
        assert!(matches!(config.validate(), Err(KafkaSourceError::Config { .. })));
        let mut config = config_with(&[]);
        config.group_id = " ".to_owned();
        assert!(matches!(config.validate(), Err(KafkaSourceError::Config { .. })));
    }

    #[test]
    fn toml_shape_parses_strictly() {
        let config: KafkaSourceConfig = toml::from_str(
            r#"
            brokers = ["127.0.0.1:9092"]
            topics = ["pgaudit"]
            group_id = "rolewatch"
            start_without_durable = "committed"
            [client]
            "sasl.mechanism" = "SCRAM-SHA-512"
            "sasl.password" = { env = "KAFKA_PASSWORD" }
            "ssl.key.pem" = { file = "/run/secrets/kafka-key.pem" }
            "#,
        )
        .unwrap();
        assert_eq!(config.start_without_durable, StartPosition::Committed);
        assert_eq!(
            config.client.get("sasl.password"),
            Some(&SettingValue::Env { env: "KAFKA_PASSWORD".to_owned() })
        );
        assert!(
            toml::from_str::<KafkaSourceConfig>("brokers=[]\ntopics=[]\ngroup_id=\"g\"\nbogus=1").is_err()
        );
    }
}
