//! Delivery counters and the snapshot the binary exports to Prometheus.
//!
//! Labels are bounded: a destination's configured `name` and a failure reason from a fixed set.
//! Never a URL, a role or a statement. Suggested Prometheus names:
//!
//! | field | metric |
//! |---|---|
//! | `delivered` | `rolewatch_alert_messages_delivered_total{destination}` |
//! | `delivered_alerts` | `rolewatch_alert_alerts_delivered_total{destination}` |
//! | `retried` | `rolewatch_alert_retries_total{destination}` |
//! | `failed.*` | `rolewatch_alert_messages_failed_total{destination,reason}` |
//! | `outbox_size` | `rolewatch_alert_outbox_entries` (gauge) |
//! | `outbox_oldest_age_seconds` | `rolewatch_alert_outbox_oldest_age_seconds` (gauge) |

use std::sync::atomic::{AtomicU64, Ordering};

/// Messages that will never be delivered, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailedCounts {
    /// Rejected with a 3xx or a 4xx other than 408 and 429 (`reason="permanent"`).
    pub permanent: u64,
    /// Refused by the SSRF guard (`reason="forbidden_destination"`).
    pub forbidden_destination: u64,
    /// Still failing after `max_age` (`reason="expired"`).
    pub expired: u64,
}

impl FailedCounts {
    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.permanent + self.forbidden_destination + self.expired
    }
}

/// The counters of one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationMetrics {
    /// The destination's configured name.
    pub name: String,
    /// Messages accepted with a 2xx.
    pub delivered: u64,
    /// Alerts (outbox entries) those messages carried.
    pub delivered_alerts: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Messages dead-lettered, by reason.
    pub failed: FailedCounts,
    /// Alerts still in the outbox for this destination.
    pub outbox_size: u64,
    /// Age of the oldest of them, seconds (0 when none).
    pub outbox_oldest_age_seconds: u64,
}

/// A snapshot of the dispatcher's counters (monotonic since open) and gauges (now).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertMetrics {
    /// Outbox entries written by `enqueue` (one per alert and destination).
    pub enqueued: u64,
    /// Alerts dropped by a silence.
    pub silenced: u64,
    /// Messages accepted with a 2xx, all destinations.
    pub delivered: u64,
    /// Alerts those messages carried.
    pub delivered_alerts: u64,
    /// Attempts retried, all destinations.
    pub retried: u64,
    /// Messages dead-lettered, by reason, all destinations.
    pub failed: FailedCounts,
    /// Alerts (entries) in the outbox, pending or in a message not yet delivered.
    pub outbox_size: u64,
    /// Age of the oldest of them, seconds (0 when none): alert on this.
    pub outbox_oldest_age_seconds: u64,
    /// The same, per destination.
    pub destinations: Vec<DestinationMetrics>,
}

/// Live counters of one destination.
#[derive(Debug, Default)]
pub(crate) struct DestinationCounters {
    pub(crate) delivered: AtomicU64,
    pub(crate) delivered_alerts: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) failed_permanent: AtomicU64,
    pub(crate) failed_forbidden: AtomicU64,
    pub(crate) failed_expired: AtomicU64,
}

impl DestinationCounters {
    pub(crate) fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, reason: &str) -> &AtomicU64 {
        match reason {
            "forbidden_destination" => &self.failed_forbidden,
            "expired" => &self.failed_expired,
            _ => &self.failed_permanent,
        }
    }

    pub(crate) fn snapshot(&self, name: &str) -> DestinationMetrics {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DestinationMetrics {
            name: name.to_owned(),
            delivered: load(&self.delivered),
            delivered_alerts: load(&self.delivered_alerts),
            retried: load(&self.retried),
            failed: FailedCounts {
                permanent: load(&self.failed_permanent),
                forbidden_destination: load(&self.failed_forbidden),
                expired: load(&self.failed_expired),
            },
            outbox_size: 0,
            outbox_oldest_age_seconds: 0,
        }
    }
}

/// Live counters of the dispatcher.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) enqueued: AtomicU64,
    pub(crate) silenced: AtomicU64,
}

impl AlertMetrics {
    pub(crate) fn from_destinations(
        enqueued: u64,
        silenced: u64,
        destinations: Vec<DestinationMetrics>,
    ) -> Self {
        let mut metrics = Self { enqueued, silenced, ..Self::default() };
        for destination in &destinations {
            metrics.delivered += destination.delivered;
            metrics.delivered_alerts += destination.delivered_alerts;
            metrics.retried += destination.retried;
            metrics.failed.permanent += destination.failed.permanent;
            metrics.failed.forbidden_destination += destination.failed.forbidden_destination;
            metrics.failed.expired += destination.failed.expired;
            metrics.outbox_size += destination.outbox_size;
            metrics.outbox_oldest_age_seconds =
                metrics.outbox_oldest_age_seconds.max(destination.outbox_oldest_age_seconds);
        }
        metrics.destinations = destinations;
        metrics
    }
}
