//! AT-14: canary secrets never leak: not in `Debug` of the config or the dispatcher, not in
//! error messages, not in logs (captured at TRACE through a global subscriber), not in metrics,
//! not in the outbox or its dead letters, not in what receivers get.
//!
//! A process of its own: it installs the global tracing subscriber, so that events logged on
//! blocking threads are captured too.

#[cfg(test)]
#[path = "acceptance/common.rs"]
mod common;

#[cfg(test)]
mod at14 {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use base64::Engine as _;

    use crate::common::{Receiver, Reply, alert, config, open, try_open};

    const CANARY: &str = "CANARY";

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn all_files_under(directory: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
        let mut found = Vec::new();
        for item in std::fs::read_dir(directory).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                found.extend(all_files_under(&path));
            } else {
                found.push((
                    path.clone(),
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
                ));
            }
        }
        found
    }

    #[tokio::test(start_paused = true)]
    async fn canary_secrets_never_appear_anywhere() {
        let logs = Buffer::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();

        let signing_secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode("CANARY_HMAC_KEY_0123456789")
        );
        // A webhook that fails with 500 then 403 (dead letter), a Slack webhook whose URL path is
        // the credential, and a webhook whose port is closed (connection errors).
        let failing = Receiver::start(vec![Reply::Status(500), Reply::Status(403)]).await;
        let slack = Receiver::start(vec![Reply::Status(503)]).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let webhook_url = failing.url("/hook?token=CANARY_TOKEN");
        let slack_url = slack.url("/services/CANARY_HOOK/B000/XXXX");
        let closed_url = format!("http://{closed}/CANARY_PATH");
        let variables = [
            ("SOC_URL", webhook_url.as_str()),
            ("SOC_SECRET", signing_secret.as_str()),
            ("SLACK_URL", slack_url.as_str()),
            ("DOWN_URL", closed_url.as_str()),
        ];
        let config = config(
            r#"
[alerts]
allow_private_destinations = true
[[alerts.webhook]]
name = "soc"
url_env = "SOC_URL"
secret_env = "SOC_SECRET"
timeout = "1s"
[[alerts.webhook]]
name = "down"
url_env = "DOWN_URL"
secret_env = "SOC_SECRET"
timeout = "1s"
[[alerts.slack]]
name = "secops"
webhook_url_env = "SLACK_URL"
"#,
        );
        let outbox = tempfile::tempdir().unwrap();
        let dispatcher = open(&config, outbox.path(), &variables);
        dispatcher.enqueue(&[alert("a1", "large_export", "app"), alert("a2", "new_origin", "etl")]).unwrap();
        let report = dispatcher.drain(Duration::from_secs(20)).await;
        assert!(report.failed_permanent >= 1 && report.retried >= 2, "{report}");
        assert!(report.pending > 0, "the closed port keeps its alerts: {report}");

        let mut exposed: Vec<(String, String)> = vec![
            ("config Debug".into(), format!("{config:?}")),
            ("dispatcher Debug".into(), format!("{dispatcher:?}")),
            ("metrics".into(), format!("{:?}", dispatcher.metrics())),
            ("report".into(), report.to_string()),
        ];

        // Errors about malformed secrets and URLs never echo them.
        let malformed = [
            ("SOC_URL", "https://CANARY_HOST.example/x"),
            ("SOC_SECRET", "whsec_CANARY!!not-base64"),
            ("SLACK_URL", "CANARY not a url"),
            ("DOWN_URL", "ftp://CANARY_FTP/x"),
        ];
        let error = try_open(&config, outbox.path(), &malformed).unwrap_err();
        exposed.push(("error".into(), error.to_string()));
        exposed.push(("error Debug".into(), format!("{error:?}")));
        let only_bad_url = [
            ("SOC_URL", "CANARY not a url"),
            ("SOC_SECRET", signing_secret.as_str()),
            ("SLACK_URL", slack_url.as_str()),
            ("DOWN_URL", closed_url.as_str()),
        ];
        let error = try_open(&config, outbox.path(), &only_bad_url).unwrap_err();
        exposed.push(("url error".into(), error.to_string()));
        let bad_scheme = [
            ("SOC_URL", "ftp://CANARY_FTP/x"),
            ("SOC_SECRET", signing_secret.as_str()),
            ("SLACK_URL", slack_url.as_str()),
            ("DOWN_URL", closed_url.as_str()),
        ];
        let error = try_open(&config, outbox.path(), &bad_scheme).unwrap_err();
        exposed.push(("scheme error".into(), error.to_string()));

        for (path, content) in all_files_under(outbox.path()) {
            exposed.push((path.display().to_string(), content));
        }
        for request in failing.received().into_iter().chain(slack.received()) {
            let headers: Vec<String> = request
                .headers
                .iter()
                .filter(|(name, _)| name.as_str() != "host")
                .map(|(name, value)| format!("{name}: {value:?}"))
                .collect();
            exposed.push(("request headers".into(), headers.join("\n")));
            exposed.push(("request body".into(), String::from_utf8_lossy(&request.body).into_owned()));
        }
        let captured = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(
            captured.contains("dead-lettered") && captured.contains("will retry"),
            "the logs were captured:\n{captured}"
        );
        exposed.push(("logs".into(), captured));

        assert!(
            all_files_under(outbox.path())
                .iter()
                .any(|(path, _)| path.starts_with(outbox.path().join("dead")))
        );
        for (place, text) in &exposed {
            assert!(!text.contains(CANARY), "a canary leaked into {place}:\n{text}");
            assert!(!text.contains(&signing_secret), "the signing secret leaked into {place}");
        }
    }
}
