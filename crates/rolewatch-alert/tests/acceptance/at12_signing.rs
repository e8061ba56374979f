//! AT-12: webhook signatures verify with the reference verifier; rotation sends two `v1,`
//! entries; a replay outside the tolerance and a tampered body are rejected; retries keep the id.

use std::time::{Duration, SystemTime};

use rolewatch_alert::{VerifyError, verify};

use crate::common::{NEW_SECRET, Receiver, Reply, SECRET, alert, config, open, webhook_section};

const TOLERANCE: Duration = Duration::from_secs(300);

#[tokio::test(start_paused = true)]
async fn signatures_verify_rotate_and_resist_replay_and_tampering() {
    let receiver = Receiver::start(vec![Reply::Status(503)]).await;
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!(
        "[alerts]\nallow_private_destinations = true\n{}",
        webhook_section("soc", &receiver.url("/hook"))
    ));
    let rotating = format!("{SECRET},{NEW_SECRET}");
    let dispatcher = open(&config, outbox.path(), &[("SECRET", &rotating)]);
    dispatcher.enqueue(&[alert("a1", "large_export", "app")]).unwrap();
    let report = dispatcher.drain(Duration::from_secs(600)).await;
    assert_eq!((report.delivered, report.retried), (1, 1), "{report}");

    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].webhook_id(), received[1].webhook_id(), "same id on retries");
    for request in &received {
        let signature = request.headers.get("webhook-signature").unwrap().to_str().unwrap();
        assert_eq!(signature.split(' ').filter(|entry| entry.starts_with("v1,")).count(), 2, "{signature}");
        for secrets in [&[SECRET][..], &[NEW_SECRET][..], &[SECRET, NEW_SECRET][..]] {
            let verified = verify(&request.headers, &request.body, secrets, TOLERANCE, SystemTime::now());
            assert_eq!(verified, Ok(request.webhook_id()));
        }
    }

    let captured = &received[1];
    let replayed_later = SystemTime::now() + Duration::from_secs(600);
    assert_eq!(
        verify(&captured.headers, &captured.body, &[SECRET], TOLERANCE, replayed_later),
        Err(VerifyError::TimestampOutOfTolerance)
    );
    let tampered = String::from_utf8(captured.body.to_vec()).unwrap().replace("\"count\":1", "\"count\":0");
    assert_ne!(tampered.as_bytes(), &captured.body[..]);
    assert_eq!(
        verify(&captured.headers, tampered.as_bytes(), &[SECRET], TOLERANCE, SystemTime::now()),
        Err(VerifyError::NoMatchingSignature)
    );
    assert_eq!(
        verify(
            &captured.headers,
            &captured.body,
            &["whsec_c29tZW9uZSBlbHNlJ3Mga2V5"],
            TOLERANCE,
            SystemTime::now()
        ),
        Err(VerifyError::NoMatchingSignature)
    );
}
