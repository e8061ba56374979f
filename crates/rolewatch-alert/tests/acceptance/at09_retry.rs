//! AT-09: retry semantics. 429 honours Retry-After, 5xx backs off with growing gaps, a hang is
//! cut by the client timeout, other 4xx are permanent (dead-lettered, counted, reported through
//! the other destinations). Time is paused: gaps are measured on tokio's clock.

use std::time::Duration;

use crate::common::{Receiver, Reply, SECRET, alert, config, open, webhook_section};

fn gaps(receiver: &Receiver) -> Vec<Duration> {
    receiver.received().windows(2).map(|pair| pair[1].at.duration_since(pair[0].at)).collect()
}

fn assert_one_logical_alert(receiver: &Receiver, attempts: usize) {
    let received = receiver.received();
    assert_eq!(received.len(), attempts);
    let first_id = received[0].webhook_id();
    assert!(received.iter().all(|request| request.webhook_id() == first_id), "webhook-id must be stable");
    for request in &received {
        let body = request.json();
        assert_eq!(body["count"], 1);
        assert_eq!(body["alerts"][0]["id"], "a1");
    }
}

#[tokio::test(start_paused = true)]
async fn too_many_requests_waits_for_retry_after() {
    let receiver = Receiver::start(vec![Reply::TooManyRequests("1"), Reply::TooManyRequests("1")]).await;
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!(
        "[alerts]\nallow_private_destinations = true\n{}",
        webhook_section("soc", &receiver.url("/hook"))
    ));
    let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
    assert_eq!(dispatcher.enqueue(&[alert("a1", "large_export", "app")]).unwrap(), 1);

    let report = dispatcher.drain(Duration::from_secs(600)).await;

    assert_eq!(
        (report.delivered, report.retried, report.failed_permanent, report.pending),
        (1, 2, 0, 0),
        "{report}"
    );
    assert_one_logical_alert(&receiver, 3);
    assert!(gaps(&receiver).iter().all(|gap| *gap >= Duration::from_secs(1)), "{:?}", gaps(&receiver));
}

#[tokio::test(start_paused = true)]
async fn server_errors_back_off_with_growing_gaps() {
    let receiver = Receiver::start(vec![Reply::Status(500), Reply::Status(502), Reply::Status(503)]).await;
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!(
        "[alerts]\nallow_private_destinations = true\n{}",
        webhook_section("soc", &receiver.url("/hook"))
    ));
    let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
    dispatcher.enqueue(&[alert("a1", "large_export", "app")]).unwrap();

    let report = dispatcher.drain(Duration::from_secs(600)).await;

    assert_eq!((report.delivered, report.retried, report.pending), (1, 3, 0), "{report}");
    assert_one_logical_alert(&receiver, 4);
    let gaps = gaps(&receiver);
    assert!(gaps[0] >= Duration::from_millis(500), "{gaps:?}");
    assert!(gaps.windows(2).all(|pair| pair[1] > pair[0]), "gaps must grow: {gaps:?}");
    let metrics = dispatcher.metrics();
    assert_eq!(
        (metrics.delivered, metrics.retried, metrics.failed.total(), metrics.outbox_size),
        (1, 3, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_hang_beyond_the_timeout_is_retried() {
    let receiver = Receiver::start(vec![Reply::Hang(Duration::from_secs(60))]).await;
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!(
        "[alerts]\nallow_private_destinations = true\n{}",
        webhook_section("soc", &receiver.url("/hook"))
    ));
    let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
    dispatcher.enqueue(&[alert("a1", "large_export", "app")]).unwrap();

    let report = dispatcher.drain(Duration::from_secs(600)).await;

    assert_eq!((report.delivered, report.retried, report.pending), (1, 1, 0), "{report}");
    assert_one_logical_alert(&receiver, 2);
    assert!(gaps(&receiver)[0] >= Duration::from_secs(2), "the first attempt timed out after 2 s");
}

#[tokio::test(start_paused = true)]
async fn permanent_rejections_are_dead_lettered_counted_and_reported_elsewhere() {
    for status in [400_u16, 401, 403, 404] {
        let rejecting = Receiver::start(vec![Reply::Status(status)]).await;
        let fallback = Receiver::start(vec![]).await;
        let outbox = tempfile::tempdir().unwrap();
        let config = config(&format!(
            "[alerts]\nallow_private_destinations = true\n{}{}",
            webhook_section("soc", &rejecting.url("/hook")),
            webhook_section("backup", &fallback.url("/other"))
                .replace("[[alerts.webhook]]", "[[alerts.webhook]]\ndetectors = [\"never_matches\"]")
        ));
        let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
        assert_eq!(
            dispatcher.enqueue(&[alert("a1", "large_export", "app")]).unwrap(),
            1,
            "routed to soc only"
        );

        let report = dispatcher.drain(Duration::from_secs(600)).await;

        assert_eq!(rejecting.received().len(), 1, "HTTP {status} must not be retried");
        assert_eq!(
            (report.failed_permanent, report.retried, report.pending),
            (1, 0, 0),
            "HTTP {status}: {report}"
        );
        let metrics = dispatcher.metrics();
        assert_eq!(metrics.failed.permanent, 1);
        assert_eq!(metrics.destinations.iter().find(|d| d.name == "soc").unwrap().failed.permanent, 1);

        let dead: Vec<_> =
            std::fs::read_dir(outbox.path().join("dead")).unwrap().map(|item| item.unwrap().path()).collect();
        assert_eq!(dead.len(), 1);
        let letter: serde_json::Value = serde_json::from_slice(&std::fs::read(&dead[0]).unwrap()).unwrap();
        assert_eq!(letter["status"], status);
        assert_eq!(letter["reason"], "permanent");
        assert_eq!(letter["alerts"][0]["id"], "a1");

        let notices = fallback.received();
        assert_eq!(notices.len(), 1, "the other destination hears about it");
        let notice = notices[0].json();
        assert_eq!(notice["alerts"][0]["detector"], "delivery_failed");
        let summary = notice["alerts"][0]["summary"].as_str().unwrap();
        assert!(
            summary.contains("destination soc") && summary.contains(&format!("HTTP {status}")),
            "{summary}"
        );
        assert!(!notice.to_string().contains(&rejecting.address.to_string()), "never the URL");
    }
}
