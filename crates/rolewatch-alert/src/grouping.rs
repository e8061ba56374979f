//! Folding alerts into messages, in the spirit of Alertmanager. Pure: time is an argument.
//!
//! Per destination, alerts with equal `group_by` values form a group. A new group waits
//! `group_wait`; once it has sent, later alerts of the group go out at most once per
//! `group_interval`; a group quiet for `repeat_interval` is forgotten. See
//! [`crate::GroupingConfig`] for the operator's view.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rolewatch_event::Alert;
use tokio::time::Instant;

use crate::config::GroupingConfig;
use crate::destination::alert_field;

/// The group a message is about: `group_by` keys and the alert's values (`""` when absent).
pub(crate) type GroupKey = Vec<(String, String)>;

/// An alert waiting in a group.
#[derive(Debug, Clone)]
pub(crate) struct PendingEntry {
    pub(crate) entry_id: String,
    pub(crate) enqueued_at: DateTime<Utc>,
    pub(crate) alert: Alert,
}

#[derive(Debug)]
struct GroupState {
    pending: Vec<PendingEntry>,
    /// When the oldest pending entry arrived.
    pending_since: Option<Instant>,
    last_sent: Option<Instant>,
    last_arrival: Instant,
}

/// The groups of one destination.
#[derive(Debug)]
pub(crate) struct Grouper {
    group_by: Vec<String>,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    groups: BTreeMap<GroupKey, GroupState>,
}

impl Grouper {
    pub(crate) fn new(config: &GroupingConfig) -> Self {
        Self {
            group_by: config.group_by.clone(),
            group_wait: config.group_wait,
            group_interval: config.group_interval,
            repeat_interval: config.repeat_interval,
            groups: BTreeMap::new(),
        }
    }

    pub(crate) fn key_of(&self, alert: &Alert) -> GroupKey {
        self.group_by.iter().map(|key| (key.clone(), alert_field(alert, key).unwrap_or_default())).collect()
    }

    /// Adds an entry that arrived at `arrived` (in the past for entries found at start-up).
    pub(crate) fn add(&mut self, entry: PendingEntry, arrived: Instant) {
        let key = self.key_of(&entry.alert);
        let repeat_interval = self.repeat_interval;
        let group = self.groups.entry(key).or_insert_with(|| GroupState {
            pending: Vec::new(),
            pending_since: None,
            last_sent: None,
            last_arrival: arrived,
        });
        if group.pending.is_empty()
            && arrived.saturating_duration_since(group.last_arrival) >= repeat_interval
        {
            // Quiet for long enough: the group starts afresh and waits `group_wait` again.
            group.last_sent = None;
        }
        group.last_arrival = group.last_arrival.max(arrived);
        group.pending_since = Some(group.pending_since.map_or(arrived, |since| since.min(arrived)));
        group.pending.push(entry);
    }

    fn due_at(&self, group: &GroupState) -> Option<Instant> {
        let since = group.pending_since?;
        Some(match group.last_sent {
            Some(sent) => sent + self.group_interval,
            None => since + self.group_wait,
        })
    }

    /// The earliest time a group is due, if any entry is pending.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.groups.values().filter_map(|group| self.due_at(group)).min()
    }

    /// Takes the groups due at `now` (all pending groups when `flush_all`), oldest entry first
    /// within each, and forgets quiet groups.
    pub(crate) fn take_due(&mut self, now: Instant, flush_all: bool) -> Vec<(GroupKey, Vec<PendingEntry>)> {
        let due_keys: Vec<GroupKey> = self
            .groups
            .iter()
            .filter(|(_, group)| self.due_at(group).is_some_and(|due| flush_all || due <= now))
            .map(|(key, _)| key.clone())
            .collect();
        let mut taken = Vec::new();
        for key in due_keys {
            if let Some(group) = self.groups.get_mut(&key) {
                let mut entries = std::mem::take(&mut group.pending);
                entries.sort_by(|left, right| {
                    left.alert.ts.cmp(&right.alert.ts).then(left.entry_id.cmp(&right.entry_id))
                });
                group.pending_since = None;
                group.last_sent = Some(now);
                taken.push((key, entries));
            }
        }
        let repeat_interval = self.repeat_interval;
        self.groups.retain(|_, group| {
            !group.pending.is_empty() || now.saturating_duration_since(group.last_arrival) < repeat_interval
        });
        taken
    }

    /// Puts entries back (a message could not be written); they are due again at once.
    pub(crate) fn restore(&mut self, key: GroupKey, entries: Vec<PendingEntry>, now: Instant) {
        let group = self.groups.entry(key).or_insert_with(|| GroupState {
            pending: Vec::new(),
            pending_since: None,
            last_sent: None,
            last_arrival: now,
        });
        group.last_sent = None;
        group.pending_since = Some(now.checked_sub(Duration::from_secs(86_400 * 365)).unwrap_or(now));
        group.pending.extend(entries);
    }

    pub(crate) fn pending_entries(&self) -> usize {
        self.groups.values().map(|group| group.pending.len()).sum()
    }

    pub(crate) fn oldest_enqueued_at(&self) -> Option<DateTime<Utc>> {
        self.groups.values().flat_map(|group| group.pending.iter().map(|entry| entry.enqueued_at)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(role: &str, id: &str) -> Alert {
        let json = serde_json::json!({
            "id": id, "detector": "d", "severity": "high", "role": role, "ts": "2026-11-26T10:00:00Z",
            "summary": "s", "source": "postgres", "server": null, "database": null, "client_addr": null,
            "application": null, "session_id": null, "objects": [], "evidence": null, "count": 1,
            "last_ts": "2026-11-26T10:00:00Z", "dedup_key": role, "position": null, "labels": {}
        });
        serde_json::from_value(json).unwrap()
    }

    fn entry(role: &str, id: &str) -> PendingEntry {
        PendingEntry { entry_id: id.to_owned(), enqueued_at: Utc::now(), alert: alert(role, id) }
    }

    fn config() -> GroupingConfig {
        GroupingConfig {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(3600),
            ..GroupingConfig::default()
        }
    }

    #[test]
    fn a_new_group_waits_group_wait_then_folds_per_group_interval() {
        let start = Instant::now();
        let mut grouper = Grouper::new(&config());
        grouper.add(entry("a", "1"), start);
        grouper.add(entry("a", "2"), start + Duration::from_secs(10));
        grouper.add(entry("b", "3"), start + Duration::from_secs(20));
        assert_eq!(grouper.next_due(), Some(start + Duration::from_secs(30)));
        assert!(grouper.take_due(start + Duration::from_secs(29), false).is_empty());

        let first = grouper.take_due(start + Duration::from_secs(30), false);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.len(), 2, "both alerts of role a in one message");
        assert_eq!(first[0].0, vec![("detector".into(), "d".into()), ("role".into(), "a".into())]);

        let second = grouper.take_due(start + Duration::from_secs(50), false);
        assert_eq!(second.len(), 1, "role b is due at 20 + 30");

        grouper.add(entry("a", "4"), start + Duration::from_secs(60));
        assert_eq!(
            grouper.next_due(),
            Some(start + Duration::from_secs(330)),
            "group_interval after the last send"
        );
    }

    #[test]
    fn a_quiet_group_is_forgotten_after_repeat_interval() {
        let start = Instant::now();
        let mut grouper = Grouper::new(&config());
        grouper.add(entry("a", "1"), start);
        assert_eq!(grouper.take_due(start + Duration::from_secs(30), false).len(), 1);
        let later = start + Duration::from_secs(3600 + 1);
        grouper.add(entry("a", "2"), later);
        assert_eq!(grouper.next_due(), Some(later + Duration::from_secs(30)));
    }

    #[test]
    fn flush_all_takes_every_pending_group_now() {
        let start = Instant::now();
        let mut grouper = Grouper::new(&config());
        grouper.add(entry("a", "1"), start);
        grouper.add(entry("b", "2"), start);
        assert_eq!(grouper.take_due(start, true).len(), 2);
        assert_eq!(grouper.pending_entries(), 0);
        assert_eq!(grouper.next_due(), None);
    }
}
