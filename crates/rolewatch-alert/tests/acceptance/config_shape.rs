//! The `[alerts]` shape from issue 7 deserializes, every field has a default, unknown keys are
//! rejected, and routing and silences apply at enqueue.

use std::time::Duration;

use rolewatch_alert::{AlertsConfig, RateLimit};
use rolewatch_event::Severity;

use crate::common::{SECRET, alert, config, open};

#[test]
fn the_issue_example_deserializes() {
    let config = config(
        r#"
[alerts]
allow_private_destinations = false   # loopback, private, link-local targets refused unless true
[[alerts.webhook]]
name = "soc"
url = "https://hooks.example.com/rolewatch"
secret_env = "ROLEWATCH_WEBHOOK_SECRET"
[[alerts.slack]]
name = "secops"
webhook_url_env = "ROLEWATCH_SLACK_URL"
min_severity = "medium"
"#,
    );
    assert!(!config.allow_private_destinations);
    assert_eq!(config.webhook[0].name, "soc");
    assert_eq!(config.webhook[0].secret_env.as_deref(), Some("ROLEWATCH_WEBHOOK_SECRET"));
    assert_eq!(config.webhook[0].timeout, Duration::from_secs(10));
    assert_eq!(config.slack[0].min_severity, Severity::Medium);
    assert_eq!(config.slack[0].webhook_url_env.as_deref(), Some("ROLEWATCH_SLACK_URL"));
    assert!(!format!("{config:?}").contains("hooks.example.com"), "an inline url is redacted in Debug");
}

#[test]
fn a_missing_table_is_the_default() {
    let config = config("");
    assert!(config.webhook.is_empty() && config.slack.is_empty() && config.silence.is_empty());
    assert_eq!(config.grouping.group_by, ["detector", "role"]);
    assert_eq!(config.grouping.group_wait, Duration::from_secs(30));
    assert_eq!(config.grouping.group_interval, Duration::from_secs(300));
    assert_eq!(config.grouping.repeat_interval, Duration::from_secs(4 * 3600));
    assert_eq!(config.grouping.max_alerts_per_message, 20);
}

#[test]
fn every_key_parses() {
    let config = config(
        r#"
[alerts]
allow_private_destinations = true
query_lake = "s3://audit/lake"
[alerts.grouping]
group_by = ["detector", "role", "client_addr"]
group_wait = "10s"
group_interval = "1m"
repeat_interval = "2h"
max_alerts_per_message = 50
[[alerts.webhook]]
name = "soc"
url_file = "/run/secrets/soc_url"
secret_file = "/run/secrets/soc_secret"
min_severity = "high"
detectors = ["large_export", "privilege_escalation"]
labels = { env = "prod" }
timeout = "5s"
rate_limit = "20/m"
backoff_initial = "2s"
backoff_max = "10m"
max_age = "48h"
[[alerts.slack]]
name = "secops"
webhook_url_file = "/run/secrets/slack_url"
rate_limit = "1/s"
[[alerts.silence]]
matchers = { detector = "large_export", role = "etl" }
expires = "2030-01-01T00:00:00Z"
comment = "nightly ETL, ticket SEC-12"
[[alerts.silence]]
matchers = { detector = "x" }
expires = 2030-01-01T00:00:00Z
"#,
    );
    assert_eq!(config.webhook[0].rate_limit, Some(RateLimit { count: 20, per: Duration::from_secs(60) }));
    assert_eq!(config.webhook[0].labels["env"], "prod");
    assert_eq!(config.webhook[0].max_age, Duration::from_secs(48 * 3600));
    assert_eq!(config.silence.len(), 2);
    assert_eq!(config.silence[1].expires, config.silence[0].expires, "a TOML datetime works too");
    assert_eq!(config.grouping.max_alerts_per_message, 50);
}

#[test]
fn unknown_keys_are_rejected() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Wrapper {
        alerts: AlertsConfig,
    }
    for bad in [
        "[alerts]\nallow_private = true",
        "[alerts.grouping]\ngroup_wiat = \"1s\"",
        "[[alerts.webhook]]\nname = \"soc\"\nurl = \"https://x\"\nsecret = \"whsec_x\"",
        "[[alerts.slack]]\nname = \"s\"\nwebhook_url = \"https://hooks.slack.com/services/x\"",
        "[[alerts.silence]]\nmatchers = { role = \"x\" }\nexpires = \"2030-01-01T00:00:00Z\"\nuntil = \"x\"",
        "[[alerts.webhook]]\nname = \"soc\"\nurl = \"https://x\"\nsecret_env = \"S\"\nrate_limit = \"fast\"",
        "[[alerts.webhook]]\nname = \"soc\"\nurl = \"https://x\"\nsecret_env = \"S\"\ntimeout = \"soon\"",
    ] {
        assert!(toml::from_str::<Wrapper>(bad).is_err(), "accepted: {bad}");
    }
}

#[test]
fn routing_and_silences_decide_what_is_enqueued() {
    let outbox = tempfile::tempdir().unwrap();
    let config = config(
        r#"
[alerts]
[[alerts.webhook]]
name = "everything"
url = "https://hooks.example.com/a"
secret_env = "SECRET"
[[alerts.webhook]]
name = "critical-exports"
url = "https://hooks.example.com/b"
secret_env = "SECRET"
min_severity = "critical"
detectors = ["large_export"]
labels = { env = "prod" }
[[alerts.silence]]
matchers = { detector = "large_export", role = "etl" }
expires = "2999-01-01T00:00:00Z"
[[alerts.silence]]
matchers = { role = "app" }
expires = "2000-01-01T00:00:00Z"
"#,
    );
    let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
    let mut critical = alert("c1", "large_export", "app");
    critical.severity = Severity::Critical;
    critical.labels.insert("env".into(), "prod".into());
    let mut critical_staging = critical.clone();
    critical_staging.id = "c2".into();
    critical_staging.labels.insert("env".into(), "staging".into());
    let silenced = alert("s1", "large_export", "etl");
    let ordinary = alert("o1", "new_origin", "app");

    let written = dispatcher.enqueue(&[critical.clone(), critical_staging, silenced, ordinary]).unwrap();

    assert_eq!(written, 3 + 1, "three alerts to `everything`, the prod critical one to both");
    let metrics = dispatcher.metrics();
    assert_eq!((metrics.enqueued, metrics.silenced, metrics.outbox_size), (4, 1, 4));
    assert_eq!(dispatcher.enqueue(&[critical]).unwrap(), 0, "an alert already pending is not written twice");
}

#[test]
fn inconsistent_destinations_are_refused() {
    let outbox = tempfile::tempdir().unwrap();
    for (toml_text, expected) in [
        ("[[alerts.webhook]]\nname = \"soc\"\nsecret_env = \"SECRET\"", "exactly one of url"),
        ("[[alerts.webhook]]\nname = \"soc\"\nurl = \"https://x.example\"", "exactly one of secret_env"),
        (
            "[[alerts.webhook]]\nname = \"a b\"\nurl = \"https://x.example\"\nsecret_env = \"SECRET\"",
            "letters, digits",
        ),
        (
            "[[alerts.webhook]]\nname = \"soc\"\nurl = \"https://x.example\"\nsecret_env = \"MISSING\"",
            "MISSING is not set",
        ),
        (
            "[[alerts.webhook]]\nname = \"soc\"\nurl = \"https://x.example\"\nsecret_env = \"SECRET\"\n[[alerts.slack]]\nname = \"soc\"\nwebhook_url_env = \"SECRET\"",
            "used twice",
        ),
    ] {
        let error =
            crate::common::try_open(&config(toml_text), outbox.path(), &[("SECRET", SECRET)]).unwrap_err();
        assert!(error.to_string().contains(expected), "{toml_text}: {error}");
    }
}
