//! The [`Dispatcher`]: opening, enqueueing, metrics, and the two delivery modes.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::Utc;
use rolewatch_event::Alert;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{AlertsConfig, GroupingConfig};
use crate::destination::{Destination, EnvLookup, Settings, Silence, validate};
use crate::error::AlertError;
use crate::grouping::{Grouper, PendingEntry};
use crate::metrics::{AlertMetrics, Counters, DestinationCounters};
use crate::outbox::{Outbox, StoredEntry, StoredMessage};
use crate::pacing::TokenBucket;

/// A message waiting for delivery, with its retry state (kept in memory: after a restart,
/// retries start over, which only makes them sooner).
#[derive(Debug)]
pub(crate) struct QueuedMessage {
    pub(crate) message: Arc<StoredMessage>,
    pub(crate) attempts: u32,
    pub(crate) next_attempt: Instant,
}

/// The mutable state of one destination.
#[derive(Debug)]
pub(crate) struct LaneState {
    pub(crate) grouper: Grouper,
    /// Messages in creation order; only the head is sent, so order is kept.
    pub(crate) queue: VecDeque<QueuedMessage>,
    /// Ids of the entries on disk not yet folded into a message.
    pub(crate) reserved: HashSet<String>,
    pub(crate) bucket: TokenBucket,
}

/// One destination and everything about it.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) destination: Destination,
    pub(crate) state: Mutex<LaneState>,
    pub(crate) wake: Notify,
    pub(crate) counters: DestinationCounters,
}

impl Lane {
    pub(crate) fn state(&self) -> MutexGuard<'_, LaneState> {
        // A panic while holding the lock leaves consistent data (every update is one step).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Delivers alerts to webhooks and Slack, never losing one, never flooding.
///
/// See the crate documentation for the guarantees. `Debug` shows destination names only.
pub struct Dispatcher {
    pub(crate) lanes: Vec<Lane>,
    pub(crate) grouping: GroupingConfig,
    pub(crate) silences: Vec<Silence>,
    pub(crate) query_lake: String,
    pub(crate) allow_private: bool,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) counters: Counters,
    /// Set when daemon mode is asked to stop: lanes finish the step they are in (an HTTP
    /// request ends within its timeout) and return at the next safe point, so no message or
    /// group is ever dropped from memory half-way.
    pub(crate) stopping: AtomicBool,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Dispatcher")
            .field("destinations", &self.lanes.iter().map(|lane| &lane.destination).collect::<Vec<_>>())
            .field("allow_private", &self.allow_private)
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

/// What one [`Dispatcher::drain`] achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages accepted with a 2xx.
    pub delivered: u64,
    /// Alerts (outbox entries) those messages carried.
    pub alerts_delivered: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Messages dead-lettered: rejected (3xx, 4xx), refused by the SSRF guard, or expired.
    pub failed_permanent: u64,
    /// Alerts (entries) still in the outbox, to be delivered by a later run.
    pub pending: u64,
}

impl fmt::Display for DeliveryReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "delivered {} messages ({} alerts), {} retries, {} messages dead-lettered, {} alerts left in the outbox",
            self.delivered, self.alerts_delivered, self.retried, self.failed_permanent, self.pending
        )
    }
}

/// How a lane's loop ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Until the task is cancelled; groups wait as configured.
    Daemon,
    /// Until nothing is pending or `until`; every pending group is sent at once.
    Drain { until: Instant },
}

impl Dispatcher {
    /// Validates config, resolves secrets from env/files, opens (creates) the outbox directory,
    /// and loads what a previous run left in it.
    pub fn open(config: &AlertsConfig, outbox_dir: &Path) -> Result<Dispatcher, AlertError> {
        Self::open_with_env(config, outbox_dir, &|variable| std::env::var(variable).ok())
    }

    /// [`Dispatcher::open`] with the environment given as a lookup function, for tests and for
    /// callers that keep secrets elsewhere than in the process environment.
    pub fn open_with_env(
        config: &AlertsConfig,
        outbox_dir: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Dispatcher, AlertError> {
        let Settings { destinations, grouping, silences, query_lake } = validate(config, env)?;
        let names: Vec<String> = destinations.iter().map(|destination| destination.name.clone()).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let outbox = Outbox::open(outbox_dir, &name_refs)?;
        warn_about_unknown_destinations(outbox_dir, &name_refs);

        let now = Instant::now();
        let wall_now = Utc::now();
        let mut lanes = Vec::new();
        for destination in destinations {
            let messages = outbox.load_messages(&destination.name)?;
            let folded: HashSet<&String> = messages.iter().flat_map(|message| &message.members).collect();
            let (stale, entries): (Vec<StoredEntry>, Vec<StoredEntry>) = outbox
                .load_entries(&destination.name)?
                .into_iter()
                .partition(|entry| folded.contains(&entry.entry_id));
            if !stale.is_empty() {
                // A crash between writing a message and removing its entries.
                let stale_ids: Vec<String> = stale.into_iter().map(|entry| entry.entry_id).collect();
                outbox.remove_entries(&destination.name, &stale_ids)?;
            }
            let mut grouper = Grouper::new(&grouping);
            let mut reserved = HashSet::new();
            let pending_count = entries.len();
            for entry in entries {
                let age = (wall_now - entry.enqueued_at).to_std().unwrap_or(Duration::ZERO);
                reserved.insert(entry.entry_id.clone());
                grouper.add(
                    PendingEntry {
                        entry_id: entry.entry_id,
                        enqueued_at: entry.enqueued_at,
                        alert: entry.alert,
                    },
                    now.checked_sub(age).unwrap_or(now),
                );
            }
            if pending_count > 0 || !messages.is_empty() {
                tracing::info!(
                    destination = %destination.name,
                    entries = pending_count,
                    messages = messages.len(),
                    "resuming delivery of alerts left in the outbox"
                );
            }
            let queue = messages
                .into_iter()
                .map(|message| QueuedMessage { message: Arc::new(message), attempts: 0, next_attempt: now })
                .collect();
            let bucket = TokenBucket::new(destination.rate_limit, now);
            lanes.push(Lane {
                destination,
                state: Mutex::new(LaneState { grouper, queue, reserved, bucket }),
                wake: Notify::new(),
                counters: DestinationCounters::default(),
            });
        }
        Ok(Dispatcher {
            lanes,
            grouping,
            silences,
            query_lake,
            allow_private: config.allow_private_destinations,
            outbox: Arc::new(outbox),
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
        })
    }
}

impl Dispatcher {
    /// Durably writes alerts to the outbox (each file fsynced, then its directory) before any
    /// delivery attempt: one entry per (alert, destination) after silences and routing. Returns
    /// the number of entries written; an alert already pending for a destination is not
    /// written twice.
    ///
    /// This does blocking file I/O: from async code, call it in `spawn_blocking`.
    pub fn enqueue(&self, alerts: &[Alert]) -> Result<usize, AlertError> {
        let now = Utc::now();
        let mut written = 0;
        for lane in &self.lanes {
            let entries: Vec<StoredEntry> = alerts
                .iter()
                .filter(|alert| lane.destination.route.accepts(alert))
                .filter(|alert| !self.is_silenced(alert, now))
                .map(|alert| StoredEntry::new(&lane.destination.name, alert.clone(), now))
                .collect();
            let entries = reserve(lane, entries);
            if entries.is_empty() {
                continue;
            }
            if let Err(error) = self.outbox.write_entries(&lane.destination.name, &entries) {
                unreserve(lane, &entries);
                return Err(error);
            }
            written += entries.len();
            commit(lane, entries);
        }
        let silenced = alerts.iter().filter(|alert| self.is_silenced(alert, now)).count();
        DestinationCounters::add(&self.counters.silenced, u64::try_from(silenced).unwrap_or(u64::MAX));
        DestinationCounters::add(&self.counters.enqueued, u64::try_from(written).unwrap_or(u64::MAX));
        Ok(written)
    }

    fn is_silenced(&self, alert: &Alert, now: chrono::DateTime<Utc>) -> bool {
        match self.silences.iter().find(|silence| silence.silences(alert, now)) {
            Some(silence) => {
                tracing::debug!(
                    detector = %alert.detector,
                    alert_id = %alert.id,
                    expires = %silence.expires,
                    comment = silence.comment.as_deref().unwrap_or(""),
                    "alert silenced"
                );
                true
            }
            None => false,
        }
    }

    /// Writes entries from async code (the dead-letter fallback), off the runtime's threads.
    pub(crate) async fn enqueue_to_lane(
        &self,
        lane: &Lane,
        entries: Vec<StoredEntry>,
    ) -> Result<(), AlertError> {
        let entries = reserve(lane, entries);
        if entries.is_empty() {
            return Ok(());
        }
        let outbox = Arc::clone(&self.outbox);
        let name = lane.destination.name.clone();
        let (result, entries) =
            tokio::task::spawn_blocking(move || (outbox.write_entries(&name, &entries), entries))
                .await
                .map_err(|error| AlertError::Task(error.to_string()))?;
        if let Err(error) = result {
            unreserve(lane, &entries);
            return Err(error);
        }
        DestinationCounters::add(&self.counters.enqueued, u64::try_from(entries.len()).unwrap_or(u64::MAX));
        commit(lane, entries);
        Ok(())
    }

    /// A snapshot of the counters and gauges.
    pub fn metrics(&self) -> AlertMetrics {
        let now = Utc::now();
        let destinations = self
            .lanes
            .iter()
            .map(|lane| {
                let mut metrics = lane.counters.snapshot(&lane.destination.name);
                let state = lane.state();
                let queued: usize = state.queue.iter().map(|queued| queued.message.members.len()).sum();
                let oldest = state
                    .queue
                    .iter()
                    .map(|queued| queued.message.oldest_enqueued_at)
                    .chain(state.grouper.oldest_enqueued_at())
                    .min();
                metrics.outbox_size =
                    u64::try_from(queued + state.grouper.pending_entries()).unwrap_or(u64::MAX);
                metrics.outbox_oldest_age_seconds = oldest
                    .map(|oldest| u64::try_from((now - oldest).num_seconds()).unwrap_or(0))
                    .unwrap_or(0);
                metrics
            })
            .collect();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        AlertMetrics::from_destinations(
            load(&self.counters.enqueued),
            load(&self.counters.silenced),
            destinations,
        )
    }

    fn is_idle(&self) -> bool {
        self.lanes.iter().all(|lane| {
            let state = lane.state();
            state.queue.is_empty() && state.grouper.pending_entries() == 0
        })
    }

    /// One-shot mode: delivers everything pending (without waiting for `group_wait`) until done
    /// or until `deadline` passes, and says what happened. Undelivered alerts stay in the outbox
    /// for the next run; `pending` says how many.
    pub async fn drain(&self, deadline: Duration) -> DeliveryReport {
        let before = self.metrics();
        let until = Instant::now() + deadline;
        loop {
            futures::future::join_all(
                self.lanes.iter().map(|lane| self.run_lane(lane, Mode::Drain { until })),
            )
            .await;
            // A dead letter on one destination enqueues a notice for the others: go round again.
            if Instant::now() >= until || self.is_idle() {
                break;
            }
        }
        let after = self.metrics();
        DeliveryReport {
            delivered: after.delivered - before.delivered,
            alerts_delivered: after.delivered_alerts - before.delivered_alerts,
            retried: after.retried - before.retried,
            failed_permanent: after.failed.total() - before.failed.total(),
            pending: after.outbox_size,
        }
    }

    /// Daemon mode: delivers in the background, one task per destination, until `shutdown`
    /// resolves. Then each lane finishes the step it is in (a request in flight ends within the
    /// destination's `timeout`) and stops at a safe point: everything not delivered stays in
    /// the outbox and in memory, so a [`Dispatcher::drain`] right after delivers it, and a
    /// restart would too.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.lanes.len() {
            let dispatcher = Arc::clone(&self);
            tasks.spawn(async move {
                if let Some(lane) = dispatcher.lanes.get(index) {
                    dispatcher.run_lane(lane, Mode::Daemon).await;
                }
            });
        }
        shutdown.await;
        self.stopping.store(true, Ordering::SeqCst);
        for lane in &self.lanes {
            lane.wake.notify_one();
        }
        while tasks.join_next().await.is_some() {}
        self.stopping.store(false, Ordering::SeqCst);
    }
}

/// Keeps only entries not already pending, and marks them pending.
fn reserve(lane: &Lane, entries: Vec<StoredEntry>) -> Vec<StoredEntry> {
    let mut state = lane.state();
    entries.into_iter().filter(|entry| state.reserved.insert(entry.entry_id.clone())).collect()
}

fn unreserve(lane: &Lane, entries: &[StoredEntry]) {
    let mut state = lane.state();
    for entry in entries {
        state.reserved.remove(&entry.entry_id);
    }
}

/// Hands durable entries to the grouper and wakes the lane.
fn commit(lane: &Lane, entries: Vec<StoredEntry>) {
    let now = Instant::now();
    {
        let mut state = lane.state();
        for entry in entries {
            state.grouper.add(
                PendingEntry { entry_id: entry.entry_id, enqueued_at: entry.enqueued_at, alert: entry.alert },
                now,
            );
        }
    }
    lane.wake.notify_one();
}

fn warn_about_unknown_destinations(outbox_dir: &Path, known: &[&str]) {
    for kind in ["entries", "messages"] {
        let Ok(listing) = std::fs::read_dir(outbox_dir.join(kind)) else { continue };
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            let has_files =
                std::fs::read_dir(item.path()).map(|mut files| files.next().is_some()).unwrap_or(false);
            if has_files && !known.contains(&name.as_str()) {
                tracing::warn!(
                    destination = %name,
                    directory = kind,
                    "the outbox holds alerts for a destination that is no longer configured; left in place"
                );
            }
        }
    }
}
