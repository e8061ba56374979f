//! The `[alerts]` configuration: parsed strictly, every field documented and defaulted.
//!
//! Nothing here holds a secret: webhook secrets and Slack URLs are named by the environment
//! variable or file they come from, and are only read by [`crate::Dispatcher::open`]. The one
//! exception, a webhook `url` written inline, is wrapped so that `Debug` never shows it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rolewatch_event::Severity;
use serde::{Deserialize, Deserializer};

/// The `[alerts]` table. A missing table is the default: no destinations, nothing delivered.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Allow destinations on loopback, private (RFC 1918, unique-local), link-local, CGNAT and
    /// cloud-metadata addresses, and plain `http://` URLs. Off by default: a webhook URL must
    /// not be a way to reach internal services (SSRF). Turn it on only for a receiver on the
    /// same host or network that you trust, or in tests.
    pub allow_private_destinations: bool,
    /// Generic webhooks, signed per the Standard Webhooks spec.
    pub webhook: Vec<WebhookConfig>,
    /// Slack incoming webhooks, sent as Block Kit messages.
    pub slack: Vec<SlackConfig>,
    /// How alerts are folded into notifications (in the spirit of Alertmanager).
    pub grouping: GroupingConfig,
    /// Silences: alerts matching all of a silence's matchers are not delivered until it expires.
    pub silence: Vec<SilenceConfig>,
    /// The lake location shown in the `rolewatch query --lake <lake> ...` command suggested in
    /// Slack messages; `<lake>` when unset.
    pub query_lake: Option<String>,
}

/// One `[[alerts.webhook]]`: a JSON POST signed with HMAC-SHA256 (Standard Webhooks).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The destination's name: how logs, errors, metrics and the outbox refer to it (never by
    /// URL). Letters, digits, `-` and `_`; unique across all destinations.
    pub name: String,
    /// The URL, inline. Use `url_env` or `url_file` instead when the URL carries a token.
    /// Exactly one of `url`, `url_env`, `url_file` is required. `https://` unless
    /// `allow_private_destinations`.
    #[serde(default)]
    pub url: Option<InlineUrl>,
    /// An environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// A file holding the URL (surrounding whitespace ignored), e.g. a mounted secret.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// An environment variable holding the signing secret `whsec_<base64 key>`; during key
    /// rotation, a comma-separated list (every message is then signed with each key).
    /// Exactly one of `secret_env`, `secret_file` is required.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the signing secret(s), same format as `secret_env`.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The least severe alert delivered: `info` (default), `low`, `medium`, `high`, `critical`.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Only alerts of these detectors (by id); empty (default) means all.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// Only alerts carrying all of these labels with these values; empty (default) means all.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Total time allowed for one HTTP request, e.g. `"10s"` (default).
    #[serde(default = "default_timeout", deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    /// At most this many messages, e.g. `"1/s"`, `"20/m"`, `"100/h"`, with bursts up to the
    /// count. Default `"1/s"` for Slack (its documented limit per channel), `"10/s"` for webhooks.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// First retry delay after a 5xx, 408, timeout or connection error, e.g. `"1s"` (default).
    /// Each further retry doubles it, with jitter, up to `backoff_max`.
    #[serde(default = "default_backoff_initial", deserialize_with = "deserialize_duration")]
    pub backoff_initial: Duration,
    /// Longest retry delay, e.g. `"5m"` (default). Also caps a `Retry-After` from the server.
    #[serde(default = "default_backoff_max", deserialize_with = "deserialize_duration")]
    pub backoff_max: Duration,
    /// How long a message is retried before it is dead-lettered as expired, counted from when
    /// its oldest alert was enqueued, e.g. `"24h"` (default).
    #[serde(default = "default_max_age", deserialize_with = "deserialize_duration")]
    pub max_age: Duration,
}

/// One `[[alerts.slack]]`: an incoming webhook whose URL is itself the credential.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The destination's name: how logs, errors, metrics and the outbox refer to it.
    /// Letters, digits, `-` and `_`; unique across all destinations.
    pub name: String,
    /// An environment variable holding the incoming-webhook URL
    /// (`https://hooks.slack.com/services/...`). Exactly one of `webhook_url_env`,
    /// `webhook_url_file` is required.
    #[serde(default)]
    pub webhook_url_env: Option<String>,
    /// A file holding the incoming-webhook URL, e.g. a mounted secret.
    #[serde(default)]
    pub webhook_url_file: Option<PathBuf>,
    /// The least severe alert delivered: `info` (default), `low`, `medium`, `high`, `critical`.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Only alerts of these detectors (by id); empty (default) means all.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// Only alerts carrying all of these labels with these values; empty (default) means all.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Total time allowed for one HTTP request, e.g. `"10s"` (default).
    #[serde(default = "default_timeout", deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    /// At most this many messages, e.g. `"1/s"`, `"20/m"`, `"100/h"`, with bursts up to the
    /// count. Default `"1/s"` for Slack (its documented limit per channel), `"10/s"` for webhooks.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// First retry delay after a 5xx, 408, timeout or connection error, e.g. `"1s"` (default).
    /// Each further retry doubles it, with jitter, up to `backoff_max`.
    #[serde(default = "default_backoff_initial", deserialize_with = "deserialize_duration")]
    pub backoff_initial: Duration,
    /// Longest retry delay, e.g. `"5m"` (default). Also caps a `Retry-After` from the server.
    #[serde(default = "default_backoff_max", deserialize_with = "deserialize_duration")]
    pub backoff_max: Duration,
    /// How long a message is retried before it is dead-lettered as expired, counted from when
    /// its oldest alert was enqueued, e.g. `"24h"` (default).
    #[serde(default = "default_max_age", deserialize_with = "deserialize_duration")]
    pub max_age: Duration,
}

fn default_min_severity() -> Severity {
    Severity::Info
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_backoff_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(300)
}
fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// `[alerts.grouping]`: alerts with the same values of `group_by` are folded into one message.
///
/// rolewatch alerts are events, not states: nothing "resolves", and a delivered alert is never
/// sent again. So a group works like this, per destination: the first alert of a new group waits
/// `group_wait` (to collect its companions), then one message goes out; alerts of that group
/// arriving later are folded into one message per `group_interval`; a group that has seen no
/// alert for `repeat_interval` is forgotten, so its next alert waits `group_wait` again.
/// One-shot delivery ([`crate::Dispatcher::drain`]) does not wait: it groups what is pending
/// and sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupingConfig {
    /// Alert fields that define a group: `detector`, `role`, `severity`, `source`, `server`,
    /// `database`, `client_addr`, `application`, or a label name. Default
    /// `["detector", "role"]`.
    pub group_by: Vec<String>,
    /// How long a new group waits before its first message, e.g. `"30s"` (default).
    #[serde(deserialize_with = "deserialize_duration")]
    pub group_wait: Duration,
    /// The least time between two messages of one group, e.g. `"5m"` (default).
    #[serde(deserialize_with = "deserialize_duration")]
    pub group_interval: Duration,
    /// How long a quiet group is remembered, e.g. `"4h"` (default).
    #[serde(deserialize_with = "deserialize_duration")]
    pub repeat_interval: Duration,
    /// At most this many alerts are listed in one message (default 20); the rest are counted in
    /// `truncated` and in `count`, never silently dropped.
    pub max_alerts_per_message: usize,
}

impl Default for GroupingConfig {
    fn default() -> Self {
        Self {
            group_by: vec!["detector".to_owned(), "role".to_owned()],
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            max_alerts_per_message: 20,
        }
    }
}

/// One `[[alerts.silence]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    /// Field = value pairs that must all match exactly, e.g. `{ detector = "x", role = "y" }`.
    /// Keys are the `group_by` keys (`detector`, `role`, `severity`, ...) or label names.
    pub matchers: BTreeMap<String, String>,
    /// When the silence ends (RFC 3339, e.g. `"2026-12-01T00:00:00Z"`); required, so that no
    /// silence is forgotten forever.
    #[serde(deserialize_with = "deserialize_datetime")]
    pub expires: DateTime<Utc>,
    /// Why, and who asked: shown in logs when the silence drops an alert.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A webhook URL written inline in the config; `Debug` shows `[redacted]` since a URL may carry
/// a token.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct InlineUrl(pub String);

impl fmt::Debug for InlineUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("\"[redacted]\"")
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("url_env", &self.url_env)
            .field("url_file", &self.url_file)
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .field("min_severity", &self.min_severity)
            .field("detectors", &self.detectors)
            .field("labels", &self.labels)
            .field("timeout", &self.timeout)
            .field("rate_limit", &self.rate_limit)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// A message budget: `count` messages per `per`, with bursts up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed per period (and the burst size).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("invalid rate limit {text:?}, expected e.g. \"1/s\", \"20/m\" or \"100/h\"");
        let (count, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        if count == 0 {
            return Err(invalid());
        }
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => humantime::parse_duration(other).map_err(|_| invalid())?,
        };
        if per.is_zero() {
            return Err(invalid());
        }
        Ok(Self { count, per })
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn deserialize_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text)
        .map_err(|error| serde::de::Error::custom(format!("invalid duration {text:?}: {error}")))
}

/// Accepts an RFC 3339 string, or a TOML datetime (which the `toml` crate hands over as a
/// one-entry map holding its text).
fn deserialize_datetime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    struct DateTimeVisitor;

    impl<'de> serde::de::Visitor<'de> for DateTimeVisitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("an RFC 3339 date-time, e.g. \"2026-12-01T00:00:00Z\"")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(text)
                .map(|ts| ts.with_timezone(&Utc))
                .map_err(|error| E::custom(format!("invalid date-time {text:?}: {error}")))
        }

        fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let Some((_key, text)) = map.next_entry::<String, String>()? else {
                return Err(serde::de::Error::custom("empty date-time"));
            };
            self.visit_str(&text)
        }
    }

    deserializer.deserialize_any(DateTimeVisitor)
}
