//! The delivery loop of one destination: fold due groups into messages, send the head message
//! when the rate limit allows, and apply the outcome (remove, retry later, or dead-letter).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use rolewatch_event::{Alert, Severity, Source};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::destination::DestinationKind;
use crate::dispatcher::{Dispatcher, Lane, Mode, QueuedMessage};
use crate::grouping::{GroupKey, PendingEntry};
use crate::metrics::DestinationCounters;
use crate::outbox::{DeadLetter, StoredEntry, StoredMessage};
use crate::pacing::{jitter_random, retry_delay};
use crate::render::{MessageContent, slack_body, webhook_body};
use crate::send::{Outcome, send_once};

/// The detector id of the notice sent when a message is dead-lettered.
pub const DELIVERY_FAILED_DETECTOR: &str = "delivery_failed";

/// How long to wait before trying again after the outbox could not be written.
const OUTBOX_ERROR_PAUSE: Duration = Duration::from_secs(1);

enum Next {
    Send(Arc<StoredMessage>),
    WaitUntil(Instant),
    Idle,
}

impl Dispatcher {
    /// Delivers for one destination until the mode says stop.
    #[tracing::instrument(level = "debug", skip(self, lane), fields(destination = %lane.destination.name))]
    pub(crate) async fn run_lane(&self, lane: &Lane, mode: Mode) {
        let until = match mode {
            Mode::Drain { until } => Some(until),
            Mode::Daemon => None,
        };
        loop {
            let now = Instant::now();
            if until.is_some_and(|until| now >= until) {
                return;
            }
            if until.is_none() && self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if !self.fold_due_groups(lane, now, until.is_some()).await {
                tokio::time::sleep(OUTBOX_ERROR_PAUSE).await;
                continue;
            }
            let next = next_action(lane, now);
            let wait_until = match next {
                Next::Send(message) => {
                    let outcome = send_once(&lane.destination, &message, self.allow_private).await;
                    self.apply_outcome(lane, &message, outcome).await;
                    continue;
                }
                Next::WaitUntil(at) => Some(at),
                Next::Idle if until.is_some() => return,
                Next::Idle => None,
            };
            let group_due = lane.state().grouper.next_due();
            let wake_at = [wait_until, group_due, until].into_iter().flatten().min();
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = lane.wake.notified() => {}
                    }
                }
                None => lane.wake.notified().await,
            }
        }
    }

    /// Turns due groups into durable messages. `false` if the outbox could not be written.
    async fn fold_due_groups(&self, lane: &Lane, now: Instant, flush_all: bool) -> bool {
        let due = lane.state().grouper.take_due(now, flush_all);
        let mut healthy = true;
        for (key, entries) in due {
            if !healthy {
                lane.state().grouper.restore(key, entries, now);
                continue;
            }
            let message = self.render_message(lane, &key, &entries);
            let outbox = Arc::clone(&self.outbox);
            let written =
                tokio::task::spawn_blocking(move || outbox.write_message(&message).map(|()| message)).await;
            match written {
                Ok(Ok(message)) => {
                    let mut state = lane.state();
                    for member in &message.members {
                        state.reserved.remove(member);
                    }
                    state.queue.push_back(QueuedMessage {
                        message: Arc::new(message),
                        attempts: 0,
                        next_attempt: now,
                    });
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot write a message to the outbox; its alerts stay pending");
                    lane.state().grouper.restore(key, entries, now);
                    healthy = false;
                }
                Err(error) => {
                    tracing::error!(%error, "outbox task failed; the alerts stay pending");
                    lane.state().grouper.restore(key, entries, now);
                    healthy = false;
                }
            }
        }
        healthy
    }

    fn render_message(&self, lane: &Lane, key: &GroupKey, entries: &[PendingEntry]) -> StoredMessage {
        let destination = &lane.destination;
        let created_at = Utc::now();
        let members: Vec<String> = entries.iter().map(|entry| entry.entry_id.clone()).collect();
        let mut hasher = Sha256::new();
        hasher.update(destination.name.as_bytes());
        hasher.update(created_at.timestamp_nanos_opt().unwrap_or_default().to_le_bytes());
        for member in &members {
            hasher.update(member.as_bytes());
        }
        let digest = hasher.finalize();
        let message_id = format!("msg_{}", hex::encode(digest.get(..12).unwrap_or(&digest)));
        let alerts: Vec<Alert> = entries.iter().map(|entry| entry.alert.clone()).collect();
        let content = MessageContent {
            message_id: &message_id,
            destination: &destination.name,
            group: key,
            alerts: &alerts,
            max_listed: self.grouping.max_alerts_per_message,
            query_lake: &self.query_lake,
        };
        let body = match destination.kind {
            DestinationKind::Webhook { .. } => webhook_body(&content),
            DestinationKind::Slack => slack_body(&content),
        };
        let count = content.occurrences();
        StoredMessage {
            version: 1,
            id: message_id,
            destination: destination.name.clone(),
            created_at,
            oldest_enqueued_at: entries.iter().map(|entry| entry.enqueued_at).min().unwrap_or(created_at),
            members,
            alerts,
            count,
            // Bodies are rendered from JSON values, so they are UTF-8.
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn apply_outcome(&self, lane: &Lane, message: &StoredMessage, outcome: Outcome) {
        let counters = &lane.counters;
        match outcome {
            Outcome::Delivered { status } => {
                pop_head(lane, &message.id);
                DestinationCounters::add(&counters.delivered, 1);
                DestinationCounters::add(
                    &counters.delivered_alerts,
                    u64::try_from(message.members.len()).unwrap_or(0),
                );
                tracing::info!(message_id = %message.id, alerts = message.members.len(), count = message.count, status, "alert message delivered");
                let outbox = Arc::clone(&self.outbox);
                let (destination, id) = (message.destination.clone(), message.id.clone());
                let removed =
                    tokio::task::spawn_blocking(move || outbox.remove_message(&destination, &id)).await;
                if !matches!(removed, Ok(Ok(()))) {
                    // It stays on disk and will be sent again by the next run: at least once.
                    tracing::error!(message_id = %message.id, "delivered message could not be removed from the outbox");
                }
            }
            Outcome::Retry { reason, status, retry_after } => {
                let destination = &lane.destination;
                let age = (Utc::now() - message.oldest_enqueued_at).to_std().unwrap_or(Duration::ZERO);
                if age >= destination.max_age {
                    pop_head(lane, &message.id);
                    self.dead_letter(lane, message, "expired", status).await;
                    return;
                }
                let (attempt, delay) = {
                    let mut state = lane.state();
                    let Some(head) = state.queue.front_mut().filter(|head| head.message.id == message.id)
                    else {
                        return;
                    };
                    head.attempts += 1;
                    let delay = match retry_after {
                        Some(asked) => asked.min(destination.backoff_max),
                        None => retry_delay(
                            head.attempts,
                            destination.backoff_initial,
                            destination.backoff_max,
                            jitter_random(),
                        ),
                    };
                    head.next_attempt = Instant::now() + delay;
                    (head.attempts, delay)
                };
                DestinationCounters::add(&counters.retried, 1);
                tracing::warn!(message_id = %message.id, reason, status, attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "alert delivery failed; will retry");
            }
            Outcome::Permanent { reason, status } => {
                pop_head(lane, &message.id);
                self.dead_letter(lane, message, reason, status).await;
            }
        }
    }

    /// Moves a message to `dead/`, counts it, and tells the other destinations.
    async fn dead_letter(
        &self,
        lane: &Lane,
        message: &StoredMessage,
        reason: &'static str,
        status: Option<u16>,
    ) {
        DestinationCounters::add(lane.counters.failed(reason), 1);
        let dead = DeadLetter {
            version: 1,
            destination: message.destination.clone(),
            message_id: message.id.clone(),
            reason: reason.to_owned(),
            status,
            failed_at: Utc::now(),
            count: message.count,
            alerts: message.alerts.clone(),
            body: message.body.clone(),
        };
        let outbox = Arc::clone(&self.outbox);
        let file = match tokio::task::spawn_blocking(move || outbox.dead_letter(&dead)).await {
            Ok(Ok(file)) => file.display().to_string(),
            Ok(Err(error)) => {
                tracing::error!(message_id = %message.id, %error, "cannot dead-letter a message; it stays in the outbox");
                String::new()
            }
            Err(error) => {
                tracing::error!(message_id = %message.id, %error, "cannot dead-letter a message; it stays in the outbox");
                String::new()
            }
        };
        tracing::error!(message_id = %message.id, reason, status, alerts = message.members.len(), file = %file, "alert message dead-lettered");

        if message.alerts.iter().all(|alert| alert.detector == DELIVERY_FAILED_DETECTOR) {
            // Never report a failed failure report: two broken destinations would ping-pong.
            return;
        }
        let notice = delivery_failed_alert(message, reason, status);
        for other in self.lanes.iter().filter(|other| other.destination.name != lane.destination.name) {
            let entry = StoredEntry::new(&other.destination.name, notice.clone(), Utc::now());
            if let Err(error) = self.enqueue_to_lane(other, vec![entry]).await {
                tracing::error!(notify = %other.destination.name, %error, "cannot enqueue the delivery failure notice");
            }
        }
    }
}

fn next_action(lane: &Lane, now: Instant) -> Next {
    let mut state = lane.state();
    let Some(head) = state.queue.front() else { return Next::Idle };
    if head.next_attempt > now {
        return Next::WaitUntil(head.next_attempt);
    }
    let message = Arc::clone(&head.message);
    if state.bucket.try_take(now) { Next::Send(message) } else { Next::WaitUntil(state.bucket.ready_at(now)) }
}

fn pop_head(lane: &Lane, message_id: &str) {
    let mut state = lane.state();
    if state.queue.front().is_some_and(|head| head.message.id == message_id) {
        state.queue.pop_front();
    }
}

/// The notice sent through the other destinations when a message is dead-lettered. It names
/// the destination, never its URL.
fn delivery_failed_alert(message: &StoredMessage, reason: &str, status: Option<u16>) -> Alert {
    let now = Utc::now();
    let digest = Sha256::new()
        .chain_update(DELIVERY_FAILED_DETECTOR)
        .chain_update(&message.destination)
        .chain_update(&message.id)
        .finalize();
    let status_text = status.map(|status| format!(" (HTTP {status})")).unwrap_or_default();
    let mut labels = BTreeMap::new();
    labels.insert("destination".to_owned(), message.destination.clone());
    labels.insert("reason".to_owned(), reason.to_owned());
    labels.insert("message_id".to_owned(), message.id.clone());
    if let Some(status) = status {
        labels.insert("status".to_owned(), status.to_string());
    }
    Alert {
        id: hex::encode(digest.get(..16).unwrap_or(&digest)),
        detector: DELIVERY_FAILED_DETECTOR.to_owned(),
        severity: Severity::High,
        role: None,
        ts: now,
        summary: format!(
            "rolewatch could not deliver message {} ({} alerts, {} occurrences) to destination {}: {reason}{status_text}; \
             it is kept in the outbox's dead/ directory",
            message.id,
            message.alerts.len(),
            message.count,
            message.destination
        ),
        source: message.alerts.first().map_or(Source::Postgres, |alert| alert.source),
        server: None,
        database: None,
        client_addr: None,
        application: None,
        session_id: None,
        objects: Vec::new(),
        evidence: None,
        count: 1,
        last_ts: now,
        dedup_key: message.destination.clone(),
        position: None,
        labels,
    }
}
