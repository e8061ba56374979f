//! Message bodies: the signed webhook JSON and the Slack Block Kit message.
//!
//! Both are rendered once, when a group of alerts becomes a message, and stored in the outbox
//! as the exact bytes sent: retries send (and sign) the same body.

use rolewatch_event::{Alert, Severity, format_rfc3339};
use serde_json::{Value, json};

use crate::redact::{EVIDENCE_MAX_CHARS, redact_statement, truncate_chars};

/// What one message says: a group of alerts for one destination.
pub(crate) struct MessageContent<'a> {
    /// The message id (`webhook-id`).
    pub(crate) message_id: &'a str,
    /// The destination's name.
    pub(crate) destination: &'a str,
    /// The group's `group_by` fields and values.
    pub(crate) group: &'a [(String, String)],
    /// Every alert folded into the message, oldest first.
    pub(crate) alerts: &'a [Alert],
    /// How many alerts are listed; the rest are counted in `truncated`.
    pub(crate) max_listed: usize,
    /// The lake named in the suggested query.
    pub(crate) query_lake: &'a str,
}

impl MessageContent<'_> {
    /// Occurrences the message stands for: the sum of the alerts' counts.
    pub(crate) fn occurrences(&self) -> u64 {
        self.alerts.iter().map(|alert| alert.count.max(1)).sum()
    }

    fn listed(&self) -> &[Alert] {
        self.alerts.get(..self.max_listed.min(self.alerts.len())).unwrap_or(self.alerts)
    }

    fn truncated(&self) -> usize {
        self.alerts.len().saturating_sub(self.max_listed)
    }

    fn highest_severity(&self) -> Severity {
        self.alerts.iter().map(|alert| alert.severity).max().unwrap_or(Severity::Info)
    }

    /// The most severe alert, the first one among equals: what the message is mostly about.
    fn headline(&self) -> Option<&Alert> {
        let severity = self.highest_severity();
        self.alerts.iter().find(|alert| alert.severity == severity)
    }
}

/// The alert as sent: its evidence redacted and truncated.
fn outgoing_alert(alert: &Alert) -> Alert {
    let mut outgoing = alert.clone();
    outgoing.evidence = alert
        .evidence
        .as_deref()
        .map(|statement| redact_statement(statement, alert.source, EVIDENCE_MAX_CHARS));
    outgoing
}

/// The webhook body: `{"type":"rolewatch.alert","count":N,"alerts":[...],...}`.
pub(crate) fn webhook_body(content: &MessageContent<'_>) -> Vec<u8> {
    let group: serde_json::Map<String, Value> =
        content.group.iter().map(|(key, value)| (key.clone(), Value::String(value.clone()))).collect();
    let alerts: Vec<Alert> = content.listed().iter().map(outgoing_alert).collect();
    let body = json!({
        "type": "rolewatch.alert",
        "id": content.message_id,
        "destination": content.destination,
        "group": group,
        "count": content.occurrences(),
        "alerts_total": content.alerts.len(),
        "truncated": content.truncated(),
        "severity": content.highest_severity(),
        "first_ts": content.alerts.first().map(|alert| format_rfc3339(&alert.ts)),
        "last_ts": content.alerts.iter().map(|alert| alert.last_ts).max().map(|ts| format_rfc3339(&ts)),
        "alerts": alerts,
    });
    body.to_string().into_bytes()
}

/// Escapes text for Slack `mrkdwn` (`&`, `<`, `>` are control characters there).
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn severity_icon(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":information_source:",
    }
}

/// A SQL string literal: quotes doubled, backticks dropped (they would end the Slack code span).
fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''").replace('`', ""))
}

/// The `rolewatch query` command that shows the events behind the message.
fn query_command(content: &MessageContent<'_>, headline: &Alert) -> String {
    let first = content.alerts.iter().map(|alert| alert.ts).min().unwrap_or(headline.ts);
    let last = content.alerts.iter().map(|alert| alert.last_ts).max().unwrap_or(headline.last_ts);
    let mut conditions = Vec::new();
    if let Some(role) = &headline.role {
        conditions.push(format!("role = {}", sql_literal(role)));
    }
    conditions.push(format!(
        "ts BETWEEN {} AND {}",
        sql_literal(&format_rfc3339(&first)),
        sql_literal(&format_rfc3339(&(last + chrono::Duration::seconds(1))))
    ));
    format!(
        "rolewatch query --lake {} \"SELECT * FROM events WHERE {} ORDER BY ts\"",
        content.query_lake.replace('`', ""),
        conditions.join(" AND ")
    )
}

fn field(title: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": format!("*{title}*\n{}", truncate_chars(&mrkdwn(value), 1_900)) })
}

/// The Slack incoming-webhook body: a Block Kit message a person reads at a glance.
pub(crate) fn slack_body(content: &MessageContent<'_>) -> Vec<u8> {
    let Some(headline) = content.headline() else {
        return json!({ "text": "rolewatch: empty message" }).to_string().into_bytes();
    };
    let severity = content.highest_severity();
    let occurrences = content.occurrences();
    let mut detectors: Vec<&str> = content.alerts.iter().map(|alert| alert.detector.as_str()).collect();
    detectors.sort_unstable();
    detectors.dedup();
    let detector_title = match detectors.len() {
        0 | 1 => headline.detector.clone(),
        more => format!("{} and {} more detectors", headline.detector, more - 1),
    };
    let role = headline.role.as_deref().unwrap_or("(unknown role)");
    let origin = match (&headline.client_addr, &headline.application) {
        (Some(address), Some(application)) => format!("{address} · {application}"),
        (Some(address), None) => address.clone(),
        (None, Some(application)) => application.clone(),
        (None, None) => "(unknown)".to_owned(),
    };
    let first = content.alerts.iter().map(|alert| alert.ts).min().unwrap_or(headline.ts);
    let last = content.alerts.iter().map(|alert| alert.last_ts).max().unwrap_or(headline.last_ts);
    let when = if first == last {
        format!("{} UTC", first.format("%Y-%m-%d %H:%M:%S"))
    } else {
        format!("{} → {} UTC", first.format("%Y-%m-%d %H:%M:%S"), last.format("%Y-%m-%d %H:%M:%S"))
    };
    let count = if content.alerts.len() == 1 {
        format!("{occurrences}")
    } else {
        format!("{occurrences} in {} alerts", content.alerts.len())
    };
    let mut fields =
        vec![field("Role", role), field("Origin", &origin), field("When", &when), field("Count", &count)];
    let place: Vec<&str> =
        [headline.server.as_deref(), headline.database.as_deref()].into_iter().flatten().collect();
    if !place.is_empty() {
        fields.push(field("Database", &format!("{} ({})", place.join(" / "), headline.source)));
    }
    if !headline.objects.is_empty() {
        fields.push(field("Objects", &headline.objects.join(", ")));
    }

    let title =
        format!("{} {} · {}", severity_icon(severity), severity.as_str().to_uppercase(), detector_title);
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": truncate_chars(&title, 140), "emoji": true } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate_chars(&mrkdwn(&headline.summary), 2_900) } }),
        json!({ "type": "section", "fields": fields }),
    ];
    if let Some(statement) = &headline.evidence {
        let redacted = redact_statement(statement, headline.source, EVIDENCE_MAX_CHARS).replace("```", "'''");
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*Evidence*\n```{}```", mrkdwn(&redacted)) } }));
    }
    let mut footer = format!("alert `{}` · message `{}`", headline.id, content.message_id);
    if content.truncated() > 0 {
        footer.push_str(&format!(
            " · {} more alerts not listed (truncated={})",
            content.truncated(),
            content.truncated()
        ));
    }
    blocks.push(json!({ "type": "context", "elements": [
        { "type": "mrkdwn", "text": format!("See the events: `{}`", mrkdwn(&query_command(content, headline))) },
        { "type": "mrkdwn", "text": mrkdwn(&footer) },
    ] }));

    let text = format!(
        "[{}] {}: role {} ({} occurrences)",
        severity.as_str().to_uppercase(),
        detector_title,
        role,
        occurrences
    );
    json!({ "text": mrkdwn(&text), "blocks": blocks }).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolewatch_event::Source;
    use std::collections::BTreeMap;

    pub(crate) fn sample_alert(id: &str, role: &str, count: u64) -> Alert {
        let ts = "2026-11-26T10:00:00Z".parse().unwrap();
        Alert {
            id: id.to_owned(),
            detector: "large_export".to_owned(),
            severity: Severity::High,
            role: Some(role.to_owned()),
            ts,
            summary: "app_reader read 20000 rows of <customers> from 10.1.2.3".to_owned(),
            source: Source::Postgres,
            server: Some("db1".to_owned()),
            database: Some("shop".to_owned()),
            client_addr: Some("10.1.2.3".to_owned()),
            application: Some("psql".to_owned()),
            session_id: None,
            objects: vec!["public.customers".to_owned()],
            evidence: Some(
                "SELECT * FROM customers WHERE email = 'victim@example.com' LIMIT 20000".to_owned(),
            ),
            count,
            last_ts: ts + chrono::Duration::seconds(30),
            dedup_key: role.to_owned(),
            position: None,
            labels: BTreeMap::new(),
        }
    }

    fn content<'a>(alerts: &'a [Alert], group: &'a [(String, String)]) -> MessageContent<'a> {
        MessageContent {
            message_id: "msg_1",
            destination: "soc",
            group,
            alerts,
            max_listed: 2,
            query_lake: "s3://lake",
        }
    }

    #[test]
    fn webhook_body_counts_everything_and_lists_a_bounded_number() {
        let alerts =
            vec![sample_alert("a1", "r'x", 5), sample_alert("a2", "r'x", 1), sample_alert("a3", "r'x", 10)];
        let group =
            [("detector".to_owned(), "large_export".to_owned()), ("role".to_owned(), "r'x".to_owned())];
        let body: Value = serde_json::from_slice(&webhook_body(&content(&alerts, &group))).unwrap();
        assert_eq!(body["type"], "rolewatch.alert");
        assert_eq!(body["count"], 16);
        assert_eq!(body["alerts_total"], 3);
        assert_eq!(body["truncated"], 1);
        assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(body["alerts"][0]["evidence"], "SELECT * FROM customers WHERE email = '?' LIMIT ?");
        assert_eq!(body["group"]["role"], "r'x");
    }

    #[test]
    fn slack_body_is_readable_at_a_glance() {
        let alerts = vec![sample_alert("a1", "app'reader", 5), sample_alert("a2", "app'reader", 2)];
        let body: Value = serde_json::from_slice(&slack_body(&content(&alerts, &[]))).unwrap();
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert!(blocks[0]["text"]["text"].as_str().unwrap().contains("HIGH · large_export"));
        assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("&lt;customers&gt;"));
        let fields = blocks[2]["fields"].to_string();
        for expected in ["*Role*", "app'reader", "10.1.2.3 · psql", "*When*", "7 in 2 alerts"] {
            assert!(fields.contains(expected), "{expected} missing from {fields}");
        }
        let evidence = blocks[3]["text"]["text"].as_str().unwrap();
        assert!(evidence.contains("email = '?' LIMIT ?"), "{evidence}");
        assert!(!body.to_string().contains("victim@example.com"));
        let query = blocks[4]["elements"][0]["text"].as_str().unwrap();
        assert!(
            query.contains("rolewatch query --lake s3://lake \"SELECT * FROM events WHERE role = 'app''reader' AND ts BETWEEN '2026-11-26T10:00:00.000000Z' AND '2026-11-26T10:00:31.000000Z'"),
            "{query}"
        );
        assert!(body["text"].as_str().unwrap().contains("7 occurrences"));
    }
}
