//! The configuration validated into domain types: destinations with their resolved URL, keys,
//! route and HTTP client; the grouping rules; the silences.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use rolewatch_event::{Alert, Severity};

use crate::config::{AlertsConfig, GroupingConfig, RateLimit, SilenceConfig};
use crate::error::AlertError;
use crate::signing::{SigningKey, parse_secrets};
use crate::ssrf::{GuardedResolver, UrlRefusal, check_url};

/// Reads a variable: the process environment in production, a closure in tests.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What kind of receiver a destination is.
pub(crate) enum DestinationKind {
    /// A Standard Webhooks receiver, with one key per configured secret.
    Webhook { keys: Vec<SigningKey> },
    /// A Slack incoming webhook.
    Slack,
}

/// One destination, ready to send.
pub(crate) struct Destination {
    pub(crate) name: String,
    pub(crate) kind: DestinationKind,
    /// Never logged, never put in an error: for a Slack webhook it is the credential.
    pub(crate) url: Url,
    pub(crate) route: Route,
    pub(crate) rate_limit: RateLimit,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_age: Duration,
    pub(crate) client: reqwest::Client,
}

impl fmt::Debug for Destination {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Destination")
            .field("name", &self.name)
            .field("kind", &self.kind_name())
            .field("url", &"[redacted]")
            .field("route", &self.route)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl Destination {
    pub(crate) fn kind_name(&self) -> &'static str {
        match self.kind {
            DestinationKind::Webhook { .. } => "webhook",
            DestinationKind::Slack => "slack",
        }
    }
}

/// Which alerts a destination receives.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) min_severity: Severity,
    pub(crate) detectors: Vec<String>,
    pub(crate) labels: BTreeMap<String, String>,
}

impl Route {
    pub(crate) fn accepts(&self, alert: &Alert) -> bool {
        alert.severity >= self.min_severity
            && (self.detectors.is_empty() || self.detectors.contains(&alert.detector))
            && self.labels.iter().all(|(key, value)| alert.labels.get(key) == Some(value))
    }
}

/// A silence still in force.
#[derive(Debug, Clone)]
pub(crate) struct Silence {
    pub(crate) matchers: BTreeMap<String, String>,
    pub(crate) expires: DateTime<Utc>,
    pub(crate) comment: Option<String>,
}

impl Silence {
    pub(crate) fn silences(&self, alert: &Alert, now: DateTime<Utc>) -> bool {
        now < self.expires
            && self
                .matchers
                .iter()
                .all(|(key, value)| alert_field(alert, key).as_deref() == Some(value.as_str()))
    }
}

/// The value of a `group_by` or matcher key: an alert field, else a label.
pub(crate) fn alert_field(alert: &Alert, key: &str) -> Option<String> {
    match key {
        "detector" => Some(alert.detector.clone()),
        "role" => alert.role.clone(),
        "severity" => Some(alert.severity.as_str().to_owned()),
        "source" => Some(alert.source.as_str().to_owned()),
        "server" => alert.server.clone(),
        "database" => alert.database.clone(),
        "client_addr" => alert.client_addr.clone(),
        "application" => alert.application.clone(),
        "session_id" => alert.session_id.clone(),
        "dedup_key" => Some(alert.dedup_key.clone()),
        label => alert.labels.get(label).cloned(),
    }
}

/// Everything the dispatcher needs, validated.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) destinations: Vec<Destination>,
    pub(crate) grouping: GroupingConfig,
    pub(crate) silences: Vec<Silence>,
    pub(crate) query_lake: String,
}

pub(crate) fn validate(config: &AlertsConfig, env: EnvLookup<'_>) -> Result<Settings, AlertError> {
    let allow_private = config.allow_private_destinations;
    let grouping = &config.grouping;
    if grouping.group_interval.is_zero() || grouping.max_alerts_per_message == 0 {
        return Err(AlertError::config(
            "grouping: group_interval and max_alerts_per_message must be positive",
        ));
    }
    let mut names = HashSet::new();
    let mut destinations = Vec::new();

    for webhook in &config.webhook {
        check_name(&webhook.name, &mut names)?;
        let url_text = one_source(
            &webhook.name,
            "url, url_env or url_file",
            webhook.url.as_ref().map(|inline| Ok(inline.0.clone())),
            webhook.url_env.as_deref(),
            webhook.url_file.as_deref(),
            env,
        )?;
        let secret_text = one_source(
            &webhook.name,
            "secret_env or secret_file",
            None,
            webhook.secret_env.as_deref(),
            webhook.secret_file.as_deref(),
            env,
        )?;
        let keys = parse_secrets(&secret_text)
            .map_err(|reason| AlertError::InvalidSecret { destination: webhook.name.clone(), reason })?;
        destinations.push(build(
            &webhook.name,
            DestinationKind::Webhook { keys },
            &url_text,
            Route {
                min_severity: webhook.min_severity,
                detectors: webhook.detectors.clone(),
                labels: webhook.labels.clone(),
            },
            Timing {
                timeout: webhook.timeout,
                rate_limit: webhook
                    .rate_limit
                    .unwrap_or(RateLimit { count: 10, per: Duration::from_secs(1) }),
                backoff_initial: webhook.backoff_initial,
                backoff_max: webhook.backoff_max,
                max_age: webhook.max_age,
            },
            allow_private,
        )?);
    }

    for slack in &config.slack {
        check_name(&slack.name, &mut names)?;
        let url_text = one_source(
            &slack.name,
            "webhook_url_env or webhook_url_file",
            None,
            slack.webhook_url_env.as_deref(),
            slack.webhook_url_file.as_deref(),
            env,
        )?;
        destinations.push(build(
            &slack.name,
            DestinationKind::Slack,
            &url_text,
            Route {
                min_severity: slack.min_severity,
                detectors: slack.detectors.clone(),
                labels: slack.labels.clone(),
            },
            Timing {
                timeout: slack.timeout,
                rate_limit: slack.rate_limit.unwrap_or(RateLimit { count: 1, per: Duration::from_secs(1) }),
                backoff_initial: slack.backoff_initial,
                backoff_max: slack.backoff_max,
                max_age: slack.max_age,
            },
            allow_private,
        )?);
    }

    let now = Utc::now();
    let silences = config
        .silence
        .iter()
        .filter_map(|silence: &SilenceConfig| {
            if silence.expires <= now {
                tracing::info!(expires = %silence.expires, "ignoring an expired silence");
                return None;
            }
            Some(Silence {
                matchers: silence.matchers.clone(),
                expires: silence.expires,
                comment: silence.comment.clone(),
            })
        })
        .collect::<Vec<_>>();
    if config.silence.iter().any(|silence| silence.matchers.is_empty()) {
        return Err(AlertError::config("a silence needs at least one matcher"));
    }

    Ok(Settings {
        destinations,
        grouping: grouping.clone(),
        silences,
        query_lake: config.query_lake.clone().unwrap_or_else(|| "<lake>".to_owned()),
    })
}

fn check_name(name: &str, seen: &mut HashSet<String>) -> Result<(), AlertError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '-' || character == '_');
    if !valid {
        return Err(AlertError::config(format!(
            "destination name {name:?} must be 1 to 64 letters, digits, '-' or '_'"
        )));
    }
    if !seen.insert(name.to_owned()) {
        return Err(AlertError::config(format!("destination name {name:?} is used twice")));
    }
    Ok(())
}

/// Reads a value from exactly one of: inline, an environment variable, a file.
fn one_source(
    destination: &str,
    keys: &str,
    inline: Option<Result<String, AlertError>>,
    variable: Option<&str>,
    file: Option<&Path>,
    env: EnvLookup<'_>,
) -> Result<String, AlertError> {
    let given = usize::from(inline.is_some()) + usize::from(variable.is_some()) + usize::from(file.is_some());
    if given != 1 {
        return Err(AlertError::config(format!("destination {destination}: set exactly one of {keys}")));
    }
    let value = if let Some(inline) = inline {
        inline?
    } else if let Some(variable) = variable {
        env(variable).ok_or_else(|| AlertError::MissingSecretEnv {
            destination: destination.to_owned(),
            variable: variable.to_owned(),
        })?
    } else if let Some(path) = file {
        std::fs::read_to_string(path).map_err(|source| AlertError::SecretFile {
            destination: destination.to_owned(),
            path: path.to_owned(),
            source,
        })?
    } else {
        return Err(AlertError::config(format!("destination {destination}: set exactly one of {keys}")));
    };
    Ok(value.trim().to_owned())
}

struct Timing {
    timeout: Duration,
    rate_limit: RateLimit,
    backoff_initial: Duration,
    backoff_max: Duration,
    max_age: Duration,
}

fn build(
    name: &str,
    kind: DestinationKind,
    url_text: &str,
    route: Route,
    timing: Timing,
    allow_private: bool,
) -> Result<Destination, AlertError> {
    // `url::ParseError`'s Display never includes the input, so it is safe to show.
    let url = Url::parse(url_text).map_err(|error| AlertError::InvalidUrl {
        destination: name.to_owned(),
        reason: error.to_string(),
    })?;
    match check_url(&url, allow_private) {
        Ok(()) => {}
        Err(UrlRefusal::Scheme(reason)) => {
            return Err(AlertError::InvalidUrl { destination: name.to_owned(), reason });
        }
        Err(UrlRefusal::Forbidden(reason)) => {
            return Err(AlertError::ForbiddenDestination { destination: name.to_owned(), reason });
        }
    }
    if timing.timeout.is_zero()
        || timing.backoff_initial.is_zero()
        || timing.backoff_max < timing.backoff_initial
    {
        return Err(AlertError::config(format!(
            "destination {name}: timeout and backoff_initial must be positive, backoff_max at least backoff_initial"
        )));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .timeout(timing.timeout)
        .connect_timeout(timing.timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("rolewatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| AlertError::HttpClient {
            destination: name.to_owned(),
            message: error.without_url().to_string(),
        })?;
    Ok(Destination {
        name: name.to_owned(),
        kind,
        url,
        route,
        rate_limit: timing.rate_limit,
        backoff_initial: timing.backoff_initial,
        backoff_max: timing.backoff_max,
        max_age: timing.max_age,
        client,
    })
}
