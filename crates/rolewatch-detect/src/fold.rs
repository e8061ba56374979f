//! Suppression: repeats of the same dedup key within a detector's `dedup_window` fold into one.
//!
//! The first occurrence of a key is emitted at once (count 1): a security team wants the first
//! sign of trouble now, not ten minutes later. Repeats while the window is open are folded:
//! nothing is emitted for them until the window closes (the event-time watermark passes
//! `first.ts + dedup_window`, or [`crate::Engine::finish`]). Then, if anything was folded, one
//! follow-up alert with a new id reports them: `count` = the number of folded occurrences,
//! `ts`/`last_ts` = the first and last of them, label `repeat_of` = the first alert's id, summary
//! and evidence those of the first repeat (as Panther titles a deduplicated alert after its first
//! event). So the counts of all alerts of a key add up to the number of occurrences, and a
//! repeat after the first costs a map lookup: detectors ask [`Folder::count_repeat`] before they
//! build an alert.

use crate::fast::FastMap;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_event::{Alert, format_rfc3339};
use sha2::{Digest, Sha256};

use crate::state::DedupWindow;

/// The length of an alert id in hex characters (128 bits).
const ID_HEX_LEN: usize = 32;

/// The open dedup windows of all detectors.
#[derive(Debug, Clone, Default)]
pub(crate) struct Folder {
    windows: FastMap<String, DedupWindow>,
    next_close: Option<DateTime<Utc>>,
    /// Dedup keys are written here first (see `Alerts::key_unless_repeat`): a counted repeat
    /// allocates nothing.
    pub(crate) key_buffer: String,
}

/// The id of an alert: hex SHA-256 of detector, dedup key, position and time, truncated.
pub(crate) fn alert_id(alert: &Alert, salt: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [
        alert.detector.as_str(),
        alert.dedup_key.as_str(),
        alert.position.as_deref().unwrap_or(""),
        &format_rfc3339(&alert.ts),
        salt,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let mut id = hex::encode(hasher.finalize());
    id.truncate(ID_HEX_LEN);
    id
}

impl Folder {
    /// Emits `alert` or folds it into the open window of its dedup key.
    pub(crate) fn offer(&mut self, mut alert: Alert, dedup_window: TimeDelta, out: &mut Vec<Alert>) {
        if let Some(window) = self.windows.get_mut(&alert.dedup_key) {
            if alert.ts < window.end {
                match &mut window.folded {
                    Some(folded) => add_occurrences(folded, alert.count, alert.ts, alert.last_ts),
                    None => window.folded = Some(alert),
                }
                return;
            }
            // The window has expired but the watermark has not closed it yet (lateness): close it.
            if let Some(window) = self.windows.remove(&alert.dedup_key) {
                emit_follow_up(window, out);
            }
        }
        alert.id = alert_id(&alert, "");
        if dedup_window > TimeDelta::zero() {
            let end = alert.ts + dedup_window;
            self.next_close = Some(self.next_close.map_or(end, |next| next.min(end)));
            self.windows.insert(
                alert.dedup_key.clone(),
                DedupWindow { end, first_id: alert.id.clone(), folded: None },
            );
        }
        out.push(alert);
    }

    /// Adds one occurrence of `dedup_key` at `ts` to its open window if that window already holds
    /// a folded repeat; returns whether it did. The caller then need not build the alert: the
    /// follow-up carries the first repeat's summary and evidence either way.
    pub(crate) fn count_repeat(&mut self, dedup_key: &str, ts: DateTime<Utc>) -> bool {
        match self.windows.get_mut(dedup_key) {
            Some(DedupWindow { end, folded: Some(folded), .. }) if ts < *end => {
                add_occurrences(folded, 1, ts, ts);
                true
            }
            _ => false,
        }
    }

    /// Closes the windows that end at or before `watermark`, in order of end then key.
    pub(crate) fn close_until(&mut self, watermark: DateTime<Utc>, out: &mut Vec<Alert>) {
        if self.next_close.is_none_or(|next| next > watermark) {
            return;
        }
        let mut closing: Vec<(DateTime<Utc>, String)> = self
            .windows
            .iter()
            .filter(|(_, window)| window.end <= watermark)
            .map(|(key, window)| (window.end, key.clone()))
            .collect();
        closing.sort();
        for (_, key) in closing {
            if let Some(window) = self.windows.remove(&key) {
                emit_follow_up(window, out);
            }
        }
        self.next_close = self.windows.values().map(|window| window.end).min();
    }

    /// The open windows, for the engine's saved state.
    pub(crate) fn export(&self) -> BTreeMap<String, DedupWindow> {
        self.windows.iter().map(|(key, window)| (key.clone(), window.clone())).collect()
    }

    /// Reopens saved windows; a key already open keeps its window.
    pub(crate) fn import(&mut self, windows: &BTreeMap<String, DedupWindow>) {
        for (key, window) in windows {
            self.windows.entry(key.clone()).or_insert_with(|| window.clone());
        }
        self.next_close = self.windows.values().map(|window| window.end).min();
    }

    /// Closes every window (end of a one-shot run).
    pub(crate) fn close_all(&mut self, out: &mut Vec<Alert>) {
        let mut closing: Vec<(DateTime<Utc>, String)> =
            self.windows.iter().map(|(key, window)| (window.end, key.clone())).collect();
        closing.sort();
        for (_, key) in closing {
            if let Some(window) = self.windows.remove(&key) {
                emit_follow_up(window, out);
            }
        }
        self.next_close = None;
    }
}

/// Counts `count` more occurrences between `ts` and `last_ts` into a folded repeat.
fn add_occurrences(folded: &mut Alert, count: u64, ts: DateTime<Utc>, last_ts: DateTime<Utc>) {
    folded.count = folded.count.saturating_add(count);
    folded.ts = folded.ts.min(ts);
    folded.last_ts = folded.last_ts.max(last_ts);
}

fn emit_follow_up(window: DedupWindow, out: &mut Vec<Alert>) {
    let Some(mut alert) = window.folded else {
        return;
    };
    let times = if alert.count == 1 { "time" } else { "times" };
    alert.summary = format!(
        "repeated {} more {times} until {}: {}",
        alert.count,
        format_rfc3339(&alert.last_ts),
        alert.summary
    );
    alert.labels.insert("repeat_of".to_owned(), window.first_id.clone());
    alert.id = alert_id(&alert, &window.first_id);
    out.push(alert);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolewatch_event::{Severity, Source};

    fn alert(key: &str, second: i64) -> Alert {
        let ts = DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap();
        Alert {
            id: String::new(),
            detector: "d".into(),
            severity: Severity::Low,
            role: None,
            ts,
            summary: format!("at {second}"),
            source: Source::Postgres,
            server: None,
            database: None,
            client_addr: None,
            application: None,
            session_id: None,
            objects: vec![],
            evidence: None,
            count: 1,
            last_ts: ts,
            dedup_key: key.into(),
            position: None,
            labels: Default::default(),
        }
    }

    #[test]
    fn first_now_repeats_at_close() {
        let mut folder = Folder::default();
        let mut out = Vec::new();
        let window = TimeDelta::seconds(600);
        folder.offer(alert("a", 0), window, &mut out);
        folder.offer(alert("a", 10), window, &mut out);
        folder.offer(alert("a", 20), window, &mut out);
        folder.offer(alert("b", 30), window, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].id.len(), 32);
        folder.close_until(alert("x", 599).ts, &mut out);
        assert_eq!(out.len(), 2);
        folder.close_until(alert("x", 600).ts, &mut out);
        assert_eq!(out.len(), 3);
        let follow_up = &out[2];
        assert_eq!(follow_up.count, 2);
        assert!(follow_up.summary.starts_with("repeated 2 more times until"), "{}", follow_up.summary);
        assert!(follow_up.summary.ends_with(": at 10"), "the first repeat's summary: {}", follow_up.summary);
        assert_eq!(follow_up.ts, alert("a", 10).ts);
        assert_eq!(follow_up.last_ts, alert("a", 20).ts);
        assert_eq!(follow_up.labels["repeat_of"], out[0].id);
        assert_ne!(follow_up.id, out[0].id);
        // "b" had no repeats: closing it emits nothing.
        folder.close_all(&mut out);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn counted_repeats_add_to_the_first_folded_one() {
        let mut folder = Folder::default();
        let mut out = Vec::new();
        let window = TimeDelta::seconds(600);
        let ts = |second: i64| alert("x", second).ts;
        // Nothing to add to yet: no window, then a window without a folded repeat.
        assert!(!folder.count_repeat("a", ts(0)));
        folder.offer(alert("a", 0), window, &mut out);
        assert!(!folder.count_repeat("a", ts(5)), "the first repeat is built and offered");
        folder.offer(alert("a", 5), window, &mut out);
        assert!(folder.count_repeat("a", ts(7)));
        assert!(folder.count_repeat("a", ts(3)), "out of order within the window");
        assert!(!folder.count_repeat("a", ts(600)), "past the window's end");
        assert!(!folder.count_repeat("b", ts(7)));
        folder.close_all(&mut out);
        assert_eq!(out.len(), 2);
        let follow_up = &out[1];
        assert_eq!((follow_up.count, follow_up.ts, follow_up.last_ts), (3, ts(3), ts(7)));
        assert!(follow_up.summary.ends_with(": at 5"), "{}", follow_up.summary);
    }

    #[test]
    fn a_repeat_after_the_window_opens_a_new_one() {
        let mut folder = Folder::default();
        let mut out = Vec::new();
        let window = TimeDelta::seconds(60);
        folder.offer(alert("a", 0), window, &mut out);
        folder.offer(alert("a", 30), window, &mut out);
        folder.offer(alert("a", 61), window, &mut out);
        assert_eq!(out.len(), 3, "first, follow-up of the closed window, new first");
        assert_eq!(out[1].count, 1);
        assert_eq!(out[2].count, 1);
        assert!(out[1].labels.contains_key("repeat_of"));
        assert!(!out[2].labels.contains_key("repeat_of"));
    }

    #[test]
    fn zero_window_never_folds() {
        let mut folder = Folder::default();
        let mut out = Vec::new();
        folder.offer(alert("a", 0), TimeDelta::zero(), &mut out);
        folder.offer(alert("a", 0), TimeDelta::zero(), &mut out);
        assert_eq!(out.len(), 2);
    }
}
