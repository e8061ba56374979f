//! Latency from an alert handed to the dispatcher to its arrival at a webhook, at steady state.
//!
//! `cargo bench -p rolewatch-alert --bench latency [-- ALERTS RATE_PER_SECOND]` starts a real
//! HTTP receiver on 127.0.0.1 (axum), runs the [`Dispatcher`] in daemon mode with
//! `group_wait = "0s"`, and enqueues one alert at a time at a steady rate, each in its own group
//! (a distinct role), so every alert is one signed webhook message. The clock starts before
//! `enqueue` (which writes and fsyncs the outbox entry) and stops when the receiver has read the
//! request body. It prints percentiles; it is a measurement, not a test.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rolewatch_alert::{AlertsConfig, Dispatcher};
use rolewatch_event::{Alert, Severity, Source};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn alert(index: usize) -> Alert {
    let ts = "2026-11-26T10:00:00Z".parse().unwrap();
    let role = format!("bench_role_{index}");
    Alert {
        id: format!("bench-{index:08}"),
        detector: "large_export".to_owned(),
        severity: Severity::High,
        role: Some(role.clone()),
        ts,
        summary: format!("{role} read 20000 rows of public.orders in one statement"),
        source: Source::Postgres,
        server: Some("db1".to_owned()),
        database: Some("shop".to_owned()),
        client_addr: Some("10.9.8.7".to_owned()),
        application: Some("psql".to_owned()),
        session_id: None,
        objects: vec!["public.orders".to_owned()],
        evidence: Some("SELECT * FROM orders".to_owned()),
        count: 1,
        last_ts: ts,
        dedup_key: role,
        position: None,
        labels: BTreeMap::new(),
    }
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn start_receiver(arrivals: Arrivals) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let arrivals = arrivals.clone();
        async move {
            let now = Instant::now();
            let message: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(alerts) = message.get("alerts").and_then(serde_json::Value::as_array) {
                let mut arrivals = arrivals.lock().unwrap();
                for alert in alerts {
                    if let Some(id) = alert.get("id").and_then(serde_json::Value::as_str) {
                        arrivals.entry(id.to_owned()).or_insert(now);
                    }
                }
            }
            axum::http::StatusCode::OK
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    // Nearest rank: the smallest value with at least `per_mille`/1000 of the values at or below it.
    let rank = sorted.len().saturating_mul(per_mille).div_ceil(1000);
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arguments: Vec<String> =
        std::env::args().skip(1).filter(|argument| !argument.starts_with("--")).collect();
    let count: usize = arguments.first().and_then(|text| text.parse().ok()).unwrap_or(500);
    let rate: u64 = arguments.get(1).and_then(|text| text.parse().ok()).unwrap_or(50);

    let arrivals: Arrivals = Arc::default();
    let address = start_receiver(arrivals.clone()).await;
    let config: AlertsConfig = toml::from_str(&format!(
        r#"
allow_private_destinations = true
[grouping]
group_wait = "0s"
[[webhook]]
name = "bench"
url = "http://{address}/hook"
secret_env = "BENCH_SECRET"
rate_limit = "1000/s"
"#
    ))
    .unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let lookup = |name: &str| (name == "BENCH_SECRET").then(|| SECRET.to_owned());
    let dispatcher = Arc::new(Dispatcher::open_with_env(&config, outbox.path(), &lookup).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(dispatcher.clone().run(async move {
        let _ = stopped.await;
    }));

    let interval = Duration::from_micros(1_000_000 / rate.max(1));
    let mut ticker = tokio::time::interval(interval);
    let mut sent = HashMap::new();
    let mut enqueue_times = Vec::with_capacity(count);
    for index in 0..count {
        ticker.tick().await;
        let alert = alert(index);
        let started = Instant::now();
        sent.insert(alert.id.clone(), started);
        let dispatcher = dispatcher.clone();
        tokio::task::spawn_blocking(move || dispatcher.enqueue(&[alert])).await.unwrap().unwrap();
        enqueue_times.push(started.elapsed());
    }
    enqueue_times.sort();
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    let _ = daemon.await;

    let arrivals = arrivals.lock().unwrap();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, sent_at)| arrivals.get(id).map(|arrived| arrived.duration_since(*sent_at)))
        .collect();
    latencies.sort();
    println!(
        "latency: {} of {count} alerts delivered at {rate}/s: p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        latencies.len(),
        percentile(&latencies, 500),
        percentile(&latencies, 900),
        percentile(&latencies, 990),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "of which enqueue (outbox write + fsync): p50 {:.2?}, p99 {:.2?}",
        percentile(&enqueue_times, 500),
        percentile(&enqueue_times, 990),
    );
}
