//! AT-11: an alert storm (10k alerts for 3 roles over 10 s) stays within the message budget,
//! and the counts in the messages add up to the number of alerts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{Received, Receiver, SECRET, alert, config, open};

const ALERTS: usize = 10_000;
const BATCHES: usize = 100;

fn slack_occurrences(request: &Received) -> u64 {
    // The fallback text ends with "(N occurrences)".
    let text = request.json()["text"].as_str().unwrap().to_owned();
    let start = text.rfind('(').unwrap() + 1;
    text[start..].split(' ').next().unwrap().parse().unwrap()
}

fn assert_within_rate(requests: &[Received], per_message: Duration) {
    for pair in requests.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap + Duration::from_millis(5) >= per_message, "two messages {gap:?} apart");
    }
}

#[tokio::test(start_paused = true)]
async fn a_storm_is_folded_within_the_budget_and_counts_add_up() {
    let receiver = Receiver::start(vec![]).await;
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!(
        r#"
[alerts]
allow_private_destinations = true

[alerts.grouping]
group_by = ["detector", "role"]
group_wait = "1s"
group_interval = "2s"
max_alerts_per_message = 5

[[alerts.webhook]]
name = "soc"
url = "{webhook}"
secret_env = "SECRET"
rate_limit = "1/s"

[[alerts.slack]]
name = "secops"
webhook_url_env = "SLACK_URL"
"#,
        webhook = receiver.url("/hook")
    ));
    let slack_url = receiver.url("/slack");
    let dispatcher = Arc::new(open(&config, outbox.path(), &[("SECRET", SECRET), ("SLACK_URL", &slack_url)]));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(Arc::clone(&dispatcher).run(async move {
        let _ = stopped.await;
    }));

    let roles = ["app_reader", "etl", "intruder"];
    for batch in 0..BATCHES {
        let alerts: Vec<_> = (0..ALERTS / BATCHES)
            .map(|n| {
                let index = batch * (ALERTS / BATCHES) + n;
                alert(&format!("storm-{index}"), "large_export", roles[index % roles.len()])
            })
            .collect();
        assert_eq!(dispatcher.enqueue(&alerts).unwrap(), 2 * alerts.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wait (on the paused clock) until both destinations have everything.
    let started_waiting = tokio::time::Instant::now();
    while dispatcher.metrics().outbox_size > 0 {
        assert!(
            started_waiting.elapsed() < Duration::from_secs(600),
            "not delivered: {:?}",
            dispatcher.metrics()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.send(()).unwrap();
    daemon.await.unwrap();

    let received = receiver.received();
    let webhook: Vec<Received> = received.iter().filter(|request| request.path == "/hook").cloned().collect();
    let slack: Vec<Received> = received.iter().filter(|request| request.path == "/slack").cloned().collect();

    // Counts add up: nothing dropped, nothing counted twice.
    let webhook_total: u64 = webhook.iter().map(|request| request.json()["count"].as_u64().unwrap()).sum();
    let slack_total: u64 = slack.iter().map(slack_occurrences).sum();
    assert_eq!(webhook_total, ALERTS as u64);
    assert_eq!(slack_total, ALERTS as u64);

    // Every message is about one group, lists at most 5 alerts and says how many it left out.
    let mut per_role: BTreeMap<String, u64> = BTreeMap::new();
    for request in &webhook {
        let body = request.json();
        let listed = body["alerts"].as_array().unwrap().len() as u64;
        assert!(listed <= 5);
        assert_eq!(body["truncated"].as_u64().unwrap(), body["alerts_total"].as_u64().unwrap() - listed);
        *per_role.entry(body["group"]["role"].as_str().unwrap().to_owned()).or_default() +=
            body["count"].as_u64().unwrap();
    }
    assert_eq!(per_role.len(), 3);
    assert!(per_role.values().all(|count| (3333..=3334).contains(count)), "{per_role:?}");

    // The budget: at most one message per second per destination, and far fewer messages than
    // alerts (3 groups, one message per group per 2 s interval while the storm lasts).
    assert_within_rate(&webhook, Duration::from_secs(1));
    assert_within_rate(&slack, Duration::from_secs(1));
    for messages in [&webhook, &slack] {
        assert!(messages.len() >= 3 && messages.len() <= 3 * (10 / 2 + 2), "{} messages", messages.len());
    }
}
