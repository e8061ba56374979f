//! AT-13: internal destinations are refused (at open for literal addresses, at connect time for
//! names), and redirects are not followed.

use std::time::Duration;

use rolewatch_alert::AlertError;

use crate::common::{Receiver, Reply, SECRET, alert, config, open, try_open, webhook_section};

#[tokio::test]
async fn literal_internal_addresses_are_refused_at_open() {
    let stub = Receiver::start(vec![]).await;
    let port = stub.address.port();
    let outbox = tempfile::tempdir().unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/admin"),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        format!("https://[::1]:{port}/admin"),
        "https://10.0.0.1/".to_owned(),
        "https://[::ffff:127.0.0.1]/".to_owned(),
        "https://[fd00:ec2::254]/".to_owned(),
        "https://0x7f.1/".to_owned(),
    ] {
        let config = config(&format!("[alerts]\n{}", webhook_section("soc", &url)));
        let error = try_open(&config, outbox.path(), &[("SECRET", SECRET)]).unwrap_err();
        assert!(matches!(error, AlertError::ForbiddenDestination { .. }), "{url}: {error}");
        let message = error.to_string();
        assert!(
            message.contains("soc") && !message.contains("169.254") && !message.contains("admin"),
            "{message}"
        );
    }
    assert!(stub.received().is_empty());
}

#[tokio::test]
async fn plain_http_needs_the_explicit_escape_hatch() {
    let outbox = tempfile::tempdir().unwrap();
    let config = config(&format!("[alerts]\n{}", webhook_section("soc", "http://hooks.example.com/x")));
    let error = try_open(&config, outbox.path(), &[("SECRET", SECRET)]).unwrap_err();
    assert!(matches!(error, AlertError::InvalidUrl { .. }), "{error}");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_connect_time() {
    let internal = Receiver::start(vec![]).await;
    let outbox = tempfile::tempdir().unwrap();
    let url = format!("https://localhost:{}/admin", internal.address.port());
    let config = config(&format!("[alerts]\n{}", webhook_section("soc", &url)));
    let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
    dispatcher.enqueue(&[alert("a1", "large_export", "app")]).unwrap();

    let report = dispatcher.drain(Duration::from_secs(20)).await;

    assert_eq!((report.delivered, report.failed_permanent, report.retried), (0, 1, 0), "{report}");
    assert_eq!(dispatcher.metrics().failed.forbidden_destination, 1);
    assert!(internal.received().is_empty(), "the internal service got a request");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let internal = Receiver::start(vec![]).await;
    let redirecting = Receiver::start(vec![Reply::Redirect(internal.url("/admin"))]).await;
    let outbox = tempfile::tempdir().unwrap();
    // The redirecting stub is itself on loopback, so the escape hatch is on: the point is that
    // even then a redirect is never followed.
    let config = config(&format!(
        "[alerts]\nallow_private_destinations = true\n{}",
        webhook_section("soc", &redirecting.url("/hook"))
    ));
    let dispatcher = open(&config, outbox.path(), &[("SECRET", SECRET)]);
    dispatcher.enqueue(&[alert("a1", "large_export", "app")]).unwrap();

    let report = dispatcher.drain(Duration::from_secs(20)).await;

    assert_eq!(redirecting.received().len(), 1);
    assert_eq!(internal.received().len(), 0, "the redirect target got a request");
    assert_eq!((report.delivered, report.failed_permanent), (0, 1), "{report}");
}
