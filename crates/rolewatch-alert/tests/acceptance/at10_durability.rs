//! AT-10: alerts survive a restart while the endpoint is down, with stable ids.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{Receiver, SECRET, alert, config, open, webhook_section};

fn message_ids(outbox: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(outbox.join("messages").join("soc"))
        .unwrap()
        .map(|item| item.unwrap().file_name().to_string_lossy().trim_end_matches(".json").to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn alerts_enqueued_while_the_endpoint_is_down_survive_a_restart() {
    // A port with nothing listening: connection refused.
    let address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!(
        "[alerts]\nallow_private_destinations = true\n{}",
        webhook_section("soc", &format!("http://{address}/hook"))
    ));

    let before_restart = {
        let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
        let first: Vec<_> =
            (1..=3).map(|n| alert(&format!("a{n}"), "large_export", &format!("role{n}"))).collect();
        assert_eq!(dispatcher.enqueue(&first).unwrap(), 3);
        // Three messages are formed and fail to connect, so they are retried...
        let report = dispatcher.drain(Duration::from_secs(5)).await;
        assert_eq!((report.delivered, report.pending), (0, 3), "{report}");
        assert!(report.retried >= 1, "{report}");
        // ...and two more alerts arrive, still as plain entries, before the process dies.
        let second: Vec<_> =
            (4..=5).map(|n| alert(&format!("a{n}"), "large_export", &format!("role{n}"))).collect();
        assert_eq!(dispatcher.enqueue(&second).unwrap(), 2);
        let metrics = dispatcher.metrics();
        assert_eq!(metrics.outbox_size, 5, "the outbox gauge is exported while the endpoint is down");
        message_ids(outbox.path())
        // The dispatcher is dropped here without any shutdown: the equivalent of a kill.
    };
    assert_eq!(before_restart.len(), 3);

    let receiver = Receiver::start_on(address, vec![]).await;
    let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
    assert_eq!(dispatcher.metrics().outbox_size, 5, "the new process finds all five");
    let report = dispatcher.drain(Duration::from_secs(60)).await;

    assert_eq!((report.alerts_delivered, report.pending, report.failed_permanent), (5, 0, 0), "{report}");
    let received = receiver.received();
    let delivered_ids: BTreeSet<String> = received
        .iter()
        .flat_map(|request| request.json()["alerts"].as_array().unwrap().clone())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered_ids, (1..=5).map(|n| format!("a{n}")).collect());
    let webhook_ids: BTreeSet<String> = received.iter().map(|request| request.webhook_id()).collect();
    assert!(
        before_restart.is_subset(&webhook_ids),
        "messages formed before the restart keep their webhook-id"
    );
    assert!(message_ids(outbox.path()).is_empty());
    assert_eq!(std::fs::read_dir(outbox.path().join("entries").join("soc")).unwrap().count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_writing_a_message_and_removing_its_entries_does_not_duplicate() {
    let receiver = Receiver::start(vec![]).await;
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!(
        "[alerts]\nallow_private_destinations = true\n{}",
        webhook_section("soc", &receiver.url("/hook"))
    ));
    {
        let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
        dispatcher.enqueue(&[alert("a1", "large_export", "app")]).unwrap();
    }
    // Simulate the crash window: a message listing the entry exists, and so does the entry.
    let entries = outbox.path().join("entries").join("soc");
    let entry_file = std::fs::read_dir(&entries).unwrap().next().unwrap().unwrap().path();
    let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(&entry_file).unwrap()).unwrap();
    let message = serde_json::json!({
        "version": 1, "id": "msg_crashed", "destination": "soc", "created_at": "2026-11-26T10:00:00Z",
        "oldest_enqueued_at": entry["enqueued_at"], "members": [entry["entry_id"]], "alerts": [entry["alert"]],
        "count": 1, "body": "{\"type\":\"rolewatch.alert\",\"count\":1,\"alerts\":[]}"
    });
    std::fs::write(outbox.path().join("messages").join("soc").join("msg_crashed.json"), message.to_string())
        .unwrap();

    let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
    assert_eq!(
        dispatcher.metrics().outbox_size,
        1,
        "the entry already folded into the message is not counted twice"
    );
    let report = dispatcher.drain(Duration::from_secs(60)).await;
    assert_eq!((report.delivered, report.pending), (1, 0), "{report}");
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(receiver.received()[0].webhook_id(), "msg_crashed");
}

/// Regression: stopping daemon mode while it was folding a group or sending a message used to
/// cancel that step half-way, dropping the alerts from memory (they were only found again by a
/// new process), so the drain that follows a shutdown reported "0 left" and never sent them.
#[tokio::test]
async fn stopping_the_daemon_right_after_enqueue_loses_nothing_for_the_final_drain() {
    let receiver = Receiver::start(vec![]).await;
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!(
        "[alerts]\nallow_private_destinations = true\n[alerts.grouping]\ngroup_wait = \"0s\"\n{}",
        webhook_section("soc", &receiver.url("/hook"))
    ));
    let dispatcher = std::sync::Arc::new(open(&config, outbox.path(), &[("SECRET", SECRET)]));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(std::sync::Arc::clone(&dispatcher).run(async move {
        let _ = stopped.await;
    }));
    tokio::task::yield_now().await;

    let alerts: Vec<_> =
        (1..=8).map(|n| alert(&format!("s{n}"), "large_export", &format!("role{n}"))).collect();
    assert_eq!(dispatcher.enqueue(&alerts).unwrap(), 8);
    stop.send(()).unwrap();
    daemon.await.unwrap();
    let report = dispatcher.drain(Duration::from_secs(30)).await;

    let delivered: BTreeSet<String> = receiver
        .received()
        .iter()
        .flat_map(|request| request.json()["alerts"].as_array().unwrap().clone())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered, (1..=8).map(|n| format!("s{n}")).collect(), "{report}");
    assert_eq!(report.pending, 0, "{report}");
}
