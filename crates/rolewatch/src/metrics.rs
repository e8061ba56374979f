//! The Prometheus metrics rolewatch serves, all in one place.
//!
//! Names follow `rolewatch_<stage>_<what>_<unit>`; counters end in `_total`. Labels are small,
//! fixed sets: a configured source name, a format, a reason or status from a closed list, a
//! detector id, a severity, a destination's configured name, a Kafka topic and partition.
//! Never a role, a statement, an address or a URL (unbounded cardinality, and secrets).
//! `docs/metrics.md` is the catalogue; a test checks that it lists exactly what is served.
//!
//! Stages count per chunk, not per event, so metrics cost nothing on the hot path.

#![allow(clippy::expect_used, reason = "metric names and labels are constants: construction cannot fail")]

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use rolewatch_alert::Dispatcher;

/// Every metric of the pipeline, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `rolewatch_source_records_total{source}`: records read (lines, or Kafka messages).
    pub records_read: IntCounterVec,
    /// `rolewatch_source_bytes_total{source}`: bytes read.
    pub bytes_read: IntCounterVec,
    /// `rolewatch_source_last_event_timestamp_seconds{source}`: event time of the newest event.
    pub last_event_timestamp: IntGaugeVec,
    /// `rolewatch_parse_events_total{source}`: events made.
    pub events_parsed: IntCounterVec,
    /// `rolewatch_parse_rejected_total{source,reason}`: records that could not be parsed.
    pub rejected: IntCounterVec,
    /// `rolewatch_parse_skipped_total{source,reason}`: well-formed lines that are not audit records.
    pub skipped: IntCounterVec,
    /// `rolewatch_lake_events_stored_total`: events in files the lake holds (created or replayed).
    pub events_stored: IntCounter,
    /// `rolewatch_detect_redetected_events_total`: events read back from the lake on start and
    /// detected again, because their chunk was committed just before a stop that may have come
    /// before its alerts reached the outbox.
    pub redetected_events: IntCounter,
    /// `rolewatch_lake_dead_letters_stored_total`: rejected records stored as dead letters.
    pub dead_letters_stored: IntCounter,
    /// `rolewatch_lake_files_total{kind,status}`: files written (`created`) or found identical
    /// (`replayed`), by kind (`events`, `dead_letters`).
    pub files: IntCounterVec,
    /// `rolewatch_lake_bytes_written_total{kind}`: bytes of files created.
    pub bytes_written: IntCounterVec,
    /// `rolewatch_lake_flush_duration_seconds`: time to encode and store one chunk.
    pub flush_duration: Histogram,
    /// `rolewatch_lake_write_errors_total{kind}`: failed lake writes, by kind (`integrity` for a
    /// different object already at a key, `store` for the store failing).
    pub write_errors: IntCounterVec,
    /// `rolewatch_lake_last_manifest_timestamp_seconds`: when the newest manifest this process
    /// committed was created (Unix seconds).
    pub last_manifest_timestamp: IntGauge,
    /// `rolewatch_detect_state_saved_timestamp_seconds`: when this process last saved the
    /// detectors' learned state (Unix seconds).
    pub detector_state_saved: IntGauge,
    /// `rolewatch_detect_alerts_total{detector,severity}`: alerts raised.
    pub alerts: IntCounterVec,
    /// `rolewatch_ready`: 1 when the pipeline can make progress (sources reachable), else 0.
    pub ready: IntGauge,
    /// `rolewatch_kafka_assigned_partitions`: partitions this member holds.
    pub kafka_assigned: IntGauge,
    /// `rolewatch_kafka_consumer_lag{topic,partition}`: records in the partition after its
    /// durable position.
    pub kafka_lag: IntGaugeVec,
    /// `rolewatch_kafka_partition_stalled{topic,partition}`: 1 while a chunk of the partition
    /// cannot be stored (the partition is paused and the chunk retried), else 0.
    pub kafka_stalled: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric, plus `rolewatch_build_info{version}`.
    pub fn new() -> Self {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new("rolewatch_build_info", "Always 1; the version as a label"),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let metrics = Self {
            records_read: counter_vec("rolewatch_source_records_total", "Records read", &["source"]),
            bytes_read: counter_vec("rolewatch_source_bytes_total", "Bytes read", &["source"]),
            last_event_timestamp: gauge_vec(
                "rolewatch_source_last_event_timestamp_seconds",
                "Event time (Unix seconds) of the newest event read",
                &["source"],
            ),
            events_parsed: counter_vec(
                "rolewatch_parse_events_total",
                "Events made by the parser",
                &["source"],
            ),
            rejected: counter_vec(
                "rolewatch_parse_rejected_total",
                "Records that could not be parsed (kept as dead letters)",
                &["source", "reason"],
            ),
            skipped: counter_vec(
                "rolewatch_parse_skipped_total",
                "Well-formed lines that are not audit records",
                &["source", "reason"],
            ),
            events_stored: IntCounter::new("rolewatch_lake_events_stored_total", "Events stored in the lake")
                .expect("valid metric"),
            redetected_events: IntCounter::new(
                "rolewatch_detect_redetected_events_total",
                "Events read back from the lake and detected again after a stop between a chunk's commit and its alerts",
            )
            .expect("valid metric"),
            dead_letters_stored: IntCounter::new(
                "rolewatch_lake_dead_letters_stored_total",
                "Rejected records stored in the lake's dead-letter area",
            )
            .expect("valid metric"),
            files: counter_vec(
                "rolewatch_lake_files_total",
                "Lake files written (created) or found identical (replayed)",
                &["kind", "status"],
            ),
            bytes_written: counter_vec(
                "rolewatch_lake_bytes_written_total",
                "Bytes of lake files created",
                &["kind"],
            ),
            flush_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "rolewatch_lake_flush_duration_seconds",
                    "Time to encode and store one chunk",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )
            .expect("valid metric"),
            write_errors: counter_vec(
                "rolewatch_lake_write_errors_total",
                "Failed lake writes (integrity: different object at the key; store: the store failed)",
                &["kind"],
            ),
            last_manifest_timestamp: IntGauge::new(
                "rolewatch_lake_last_manifest_timestamp_seconds",
                "When the newest manifest this process committed was created (Unix seconds)",
            )
            .expect("valid metric"),
            detector_state_saved: IntGauge::new(
                "rolewatch_detect_state_saved_timestamp_seconds",
                "When this process last saved the detectors' learned state (Unix seconds)",
            )
            .expect("valid metric"),
            alerts: counter_vec("rolewatch_detect_alerts_total", "Alerts raised", &["detector", "severity"]),
            ready: IntGauge::new("rolewatch_ready", "1 when the pipeline can make progress")
                .expect("valid metric"),
            kafka_assigned: IntGauge::new(
                "rolewatch_kafka_assigned_partitions",
                "Kafka partitions this member holds",
            )
            .expect("valid metric"),
            kafka_lag: gauge_vec(
                "rolewatch_kafka_consumer_lag",
                "Records in the partition after its durable position",
                &["topic", "partition"],
            ),
            kafka_stalled: gauge_vec(
                "rolewatch_kafka_partition_stalled",
                "1 while a chunk of the partition cannot be stored",
                &["topic", "partition"],
            ),
            registry,
        };
        let collectors: [Box<dyn Collector>; 15] = [
            Box::new(build_info),
            Box::new(metrics.records_read.clone()),
            Box::new(metrics.bytes_read.clone()),
            Box::new(metrics.last_event_timestamp.clone()),
            Box::new(metrics.events_parsed.clone()),
            Box::new(metrics.rejected.clone()),
            Box::new(metrics.skipped.clone()),
            Box::new(metrics.events_stored.clone()),
            Box::new(metrics.redetected_events.clone()),
            Box::new(metrics.dead_letters_stored.clone()),
            Box::new(metrics.files.clone()),
            Box::new(metrics.bytes_written.clone()),
            Box::new(metrics.flush_duration.clone()),
            Box::new(metrics.write_errors.clone()),
            Box::new(metrics.alerts.clone()),
        ];
        for collector in collectors {
            metrics.registry.register(collector).expect("metric names are unique");
        }
        for collector in [
            Box::new(metrics.ready.clone()) as Box<dyn Collector>,
            Box::new(metrics.last_manifest_timestamp.clone()),
            Box::new(metrics.detector_state_saved.clone()),
            Box::new(metrics.kafka_assigned.clone()),
            Box::new(metrics.kafka_lag.clone()),
            Box::new(metrics.kafka_stalled.clone()),
        ] {
            metrics.registry.register(collector).expect("metric names are unique");
        }
        // Both kinds are served from the start, at 0, so `rate()` and `increase()` in alerting
        // rules see the first error instead of a series appearing out of nothing.
        for kind in ["integrity", "store"] {
            metrics.write_errors.with_label_values(&[kind]);
        }
        metrics
    }

    /// Adds the alert dispatcher's delivery counters and outbox gauges, read at each scrape.
    pub fn register_dispatcher(&self, dispatcher: Arc<Dispatcher>) {
        let collector = DispatcherCollector::new(dispatcher);
        self.registry.register(Box::new(collector)).expect("metric names are unique");
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let families = self.registry.gather();
        if let Err(error) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

/// Exports [`rolewatch_alert::AlertMetrics`] snapshots: the dispatcher keeps its own atomics, so
/// each scrape copies them into fresh metric vectors.
struct DispatcherCollector {
    dispatcher: Arc<Dispatcher>,
    templates: DispatcherMetrics,
}

struct DispatcherMetrics {
    delivered: IntCounterVec,
    delivered_alerts: IntCounterVec,
    retried: IntCounterVec,
    failed: IntCounterVec,
    enqueued: IntCounter,
    silenced: IntCounter,
    outbox_entries: IntGaugeVec,
    outbox_oldest_age: IntGaugeVec,
}

impl DispatcherMetrics {
    fn new() -> Self {
        Self {
            delivered: counter_vec(
                "rolewatch_alert_messages_delivered_total",
                "Alert messages accepted with a 2xx",
                &["destination"],
            ),
            delivered_alerts: counter_vec(
                "rolewatch_alert_alerts_delivered_total",
                "Alerts carried by delivered messages",
                &["destination"],
            ),
            retried: counter_vec(
                "rolewatch_alert_retries_total",
                "Delivery attempts retried",
                &["destination"],
            ),
            failed: counter_vec(
                "rolewatch_alert_messages_failed_total",
                "Alert messages dead-lettered (permanent, forbidden_destination, expired)",
                &["destination", "reason"],
            ),
            enqueued: IntCounter::new("rolewatch_alert_enqueued_total", "Outbox entries written")
                .expect("valid metric"),
            silenced: IntCounter::new("rolewatch_alert_silenced_total", "Alerts dropped by a silence")
                .expect("valid metric"),
            outbox_entries: gauge_vec(
                "rolewatch_alert_outbox_entries",
                "Alerts waiting in the outbox",
                &["destination"],
            ),
            outbox_oldest_age: gauge_vec(
                "rolewatch_alert_outbox_oldest_age_seconds",
                "Age of the oldest alert waiting in the outbox",
                &["destination"],
            ),
        }
    }

    fn collectors(&self) -> [&dyn Collector; 8] {
        [
            &self.delivered,
            &self.delivered_alerts,
            &self.retried,
            &self.failed,
            &self.enqueued,
            &self.silenced,
            &self.outbox_entries,
            &self.outbox_oldest_age,
        ]
    }
}

impl DispatcherCollector {
    fn new(dispatcher: Arc<Dispatcher>) -> Self {
        Self { dispatcher, templates: DispatcherMetrics::new() }
    }
}

impl Collector for DispatcherCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.templates.collectors().into_iter().flat_map(Collector::desc).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = self.dispatcher.metrics();
        let fresh = DispatcherMetrics::new();
        fresh.enqueued.inc_by(snapshot.enqueued);
        fresh.silenced.inc_by(snapshot.silenced);
        for destination in &snapshot.destinations {
            let name = [destination.name.as_str()];
            fresh.delivered.with_label_values(&name).inc_by(destination.delivered);
            fresh.delivered_alerts.with_label_values(&name).inc_by(destination.delivered_alerts);
            fresh.retried.with_label_values(&name).inc_by(destination.retried);
            let failed = destination.failed;
            for (reason, count) in [
                ("permanent", failed.permanent),
                ("forbidden_destination", failed.forbidden_destination),
                ("expired", failed.expired),
            ] {
                fresh.failed.with_label_values(&[destination.name.as_str(), reason]).inc_by(count);
            }
            fresh.outbox_entries.with_label_values(&name).set(saturating_i64(destination.outbox_size));
            fresh
                .outbox_oldest_age
                .with_label_values(&name)
                .set(saturating_i64(destination.outbox_oldest_age_seconds));
        }
        fresh.collectors().into_iter().flat_map(Collector::collect).collect()
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered_with_help_and_type() {
        let metrics = Metrics::new();
        metrics.records_read.with_label_values(&["pg-main"]).inc_by(3);
        metrics.rejected.with_label_values(&["pg-main", "invalid_json"]).inc();
        metrics.flush_duration.observe(0.02);
        let text = metrics.render();
        assert!(text.contains("# TYPE rolewatch_source_records_total counter"), "{text}");
        assert!(text.contains("rolewatch_source_records_total{source=\"pg-main\"} 3"), "{text}");
        assert!(
            text.contains("rolewatch_parse_rejected_total{reason=\"invalid_json\",source=\"pg-main\"} 1")
        );
        assert!(text.contains("rolewatch_lake_flush_duration_seconds_bucket"));
        assert!(text.contains("rolewatch_build_info{version="));
    }

    /// The metric names a scrape shows (`# TYPE` lines), with a dispatcher registered.
    fn served_names() -> std::collections::BTreeSet<String> {
        let outbox = tempfile::tempdir().unwrap();
        let config: rolewatch_alert::AlertsConfig = toml::from_str(
            "allow_private_destinations = true\n[[webhook]]\nname = \"soc\"\nurl = \"http://127.0.0.1:9/x\"\nsecret_env = \"S\"\n",
        )
        .unwrap();
        let lookup = |_: &str| Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let metrics = Metrics::new();
        metrics.register_dispatcher(Arc::new(
            Dispatcher::open_with_env(&config, outbox.path(), &lookup).unwrap(),
        ));
        // Vectors appear once they have a child: touch every one.
        metrics.records_read.with_label_values(&["s"]);
        metrics.bytes_read.with_label_values(&["s"]);
        metrics.last_event_timestamp.with_label_values(&["s"]);
        metrics.events_parsed.with_label_values(&["s"]);
        metrics.rejected.with_label_values(&["s", "invalid_json"]);
        metrics.skipped.with_label_values(&["s", "server_chatter"]);
        metrics.files.with_label_values(&["events", "created"]);
        metrics.bytes_written.with_label_values(&["events"]);
        metrics.write_errors.with_label_values(&["store"]);
        metrics.alerts.with_label_values(&["large_export", "high"]);
        metrics.kafka_lag.with_label_values(&["pg", "0"]);
        metrics.kafka_stalled.with_label_values(&["pg", "0"]);
        metrics
            .render()
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_catalogue_lists_exactly_what_is_served() {
        let catalogue = include_str!("../../../docs/metrics.md");
        let documented: std::collections::BTreeSet<String> = catalogue
            .lines()
            .filter_map(|line| line.strip_prefix("| `rolewatch_"))
            .filter_map(|rest| rest.split('`').next())
            .map(|name| format!("rolewatch_{name}"))
            .collect();
        assert_eq!(documented, served_names());
    }

    #[test]
    fn dispatcher_counters_are_exported() {
        let outbox = tempfile::tempdir().unwrap();
        let config: rolewatch_alert::AlertsConfig = toml::from_str(
            "allow_private_destinations = true\n[[webhook]]\nname = \"soc\"\nurl = \"http://127.0.0.1:9/x\"\nsecret_env = \"S\"\n",
        )
        .unwrap();
        let lookup = |_: &str| Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let dispatcher = Arc::new(Dispatcher::open_with_env(&config, outbox.path(), &lookup).unwrap());
        let metrics = Metrics::new();
        metrics.register_dispatcher(dispatcher);
        let text = metrics.render();
        assert!(text.contains("rolewatch_alert_outbox_entries{destination=\"soc\"} 0"), "{text}");
        assert!(
            text.contains("rolewatch_alert_messages_failed_total{destination=\"soc\",reason=\"expired\"} 0")
        );
        assert!(!text.contains("127.0.0.1:9"), "a destination URL leaked into metrics");
    }
}
