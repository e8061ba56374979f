//! `source_silent`: a source (the event's `server`, or its database family when the event
//! names no server) that sends no events for longer than its interval: a stopped audit plugin,
//! a rotated-away log, a broken shipper. Detected in event time: when the newest event of any
//! source (or [`crate::Engine::advance_to`]) passes `last event + interval`. Off unless an
//! interval is configured. One alert per silence; the source sending again re-arms it.

use std::collections::BTreeMap;

use crate::fast::FastMap;

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_event::{Alert, AuditEvent, Severity, Source, format_rfc3339};
use serde::{Deserialize, Serialize};

use super::{Alerts, Common, Detector, EventContext, window_phrase};
use crate::ConfigError;
use crate::patterns::parse_positive_duration;
use crate::roles::RoleMap;
use crate::state::{EngineState, SourceSeen};

/// The detector id.
pub const ID: &str = "source_silent";

/// `[detectors.source_silent]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSilentConfig {
    /// Whether the detector runs; it also needs `interval` or `intervals`. Default: `true`.
    pub enabled: bool,
    /// Alert severity. Default: `medium`.
    pub severity: Severity,
    /// Repeats of the same dedup key (detector + source) within this event-time window fold
    /// into one alert (a flapping source). Default: `"10m"`.
    pub dedup_window: String,
    /// The silence allowed for every source without its own entry in `intervals`, e.g.
    /// `"15m"`. Default: unset (only the sources in `intervals` are watched).
    pub interval: Option<String>,
    /// Per source (the `server` name, or `postgres`/`mariadb`/`mysql` for events without one),
    /// the silence allowed. A source listed here is watched from the first event the engine
    /// sees, even if it never sends anything. Default: none.
    pub intervals: BTreeMap<String, String>,
}

impl Default for SourceSilentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Medium,
            dedup_window: "10m".to_owned(),
            interval: None,
            intervals: BTreeMap::new(),
        }
    }
}

/// What is known about one source.
#[derive(Debug, Clone)]
struct Watched {
    source: Source,
    last_seen: DateTime<Utc>,
    interval: TimeDelta,
    /// Whether the current silence has been reported.
    reported: bool,
}

/// The runtime of `source_silent`.
pub(crate) struct SourceSilent {
    common: Common,
    default_interval: Option<TimeDelta>,
    intervals: BTreeMap<String, TimeDelta>,
    watched: FastMap<String, Watched>,
    /// The earliest time a watched source can become silent.
    next_due: Option<DateTime<Utc>>,
    /// The configured sources not seen yet are added at the first event.
    seeded: bool,
}

impl SourceSilent {
    pub(crate) fn new(config: &SourceSilentConfig, roles: &RoleMap) -> Result<Option<Self>, ConfigError> {
        if !config.enabled || (config.interval.is_none() && config.intervals.is_empty()) {
            return Ok(None);
        }
        let default_interval = config
            .interval
            .as_deref()
            .map(|interval| parse_positive_duration("detectors.source_silent.interval", interval))
            .transpose()?;
        let mut intervals = BTreeMap::new();
        for (source, interval) in &config.intervals {
            let key = format!("detectors.source_silent.intervals.{source}");
            intervals.insert(source.clone(), parse_positive_duration(&key, interval)?);
        }
        Ok(Some(Self {
            common: Common::new(ID, config.severity, &config.dedup_window, &[], roles)?,
            default_interval,
            intervals,
            watched: FastMap::default(),
            next_due: None,
            seeded: false,
        }))
    }

    fn interval_of(&self, key: &str) -> Option<TimeDelta> {
        self.intervals.get(key).copied().or(self.default_interval)
    }

    fn update_due(&mut self, due: DateTime<Utc>) {
        self.next_due = Some(self.next_due.map_or(due, |next| next.min(due)));
    }
}

/// The source key of an event.
fn source_key(event: &AuditEvent) -> &str {
    event.server.as_deref().unwrap_or(event.source.as_str())
}

impl Detector for SourceSilent {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, _context: &EventContext<'_>, _out: &mut Alerts<'_>) {
        if !self.seeded {
            self.seeded = true;
            let configured: Vec<(String, TimeDelta)> =
                self.intervals.iter().map(|(key, interval)| (key.clone(), *interval)).collect();
            for (key, interval) in configured {
                if !self.watched.contains_key(&key) {
                    self.update_due(event.ts + interval);
                    let watched =
                        Watched { source: event.source, last_seen: event.ts, interval, reported: false };
                    self.watched.insert(key, watched);
                }
            }
        }
        let key = source_key(event);
        if let Some(watched) = self.watched.get_mut(key) {
            if event.ts > watched.last_seen {
                watched.last_seen = event.ts;
                watched.source = event.source;
            }
            if watched.reported {
                watched.reported = false;
                let due = watched.last_seen + watched.interval;
                self.update_due(due);
            }
            return;
        }
        let Some(interval) = self.interval_of(key) else {
            return;
        };
        self.watched.insert(
            key.to_owned(),
            Watched { source: event.source, last_seen: event.ts, interval, reported: false },
        );
        self.update_due(event.ts + interval);
    }

    fn advance(&mut self, watermark: DateTime<Utc>, out: &mut Alerts<'_>) {
        if self.next_due.is_none_or(|due| due >= watermark) {
            return;
        }
        let mut silent: Vec<(&String, &mut Watched)> = self
            .watched
            .iter_mut()
            .filter(|(_, watched)| !watched.reported && watched.last_seen + watched.interval < watermark)
            .collect();
        silent.sort_by_key(|(key, _)| key.as_str());
        for (key, watched) in silent {
            watched.reported = true;
            let due = watched.last_seen + watched.interval;
            let interval = window_phrase(watched.interval);
            let mut labels = BTreeMap::new();
            labels.insert("interval".to_owned(), interval.clone());
            labels.insert("last_seen".to_owned(), format_rfc3339(&watched.last_seen));
            out.push(Alert {
                id: String::new(),
                detector: ID.to_owned(),
                severity: self.common.severity,
                role: None,
                ts: due,
                summary: format!(
                    "source {key} ({}) sent no events for more than {interval}: its last event was at {}",
                    watched.source,
                    format_rfc3339(&watched.last_seen)
                ),
                source: watched.source,
                server: (key.as_str() != watched.source.as_str()).then(|| key.clone()),
                database: None,
                client_addr: None,
                application: None,
                session_id: None,
                objects: Vec::new(),
                evidence: None,
                count: 1,
                last_ts: due,
                dedup_key: format!("{ID}|{key}"),
                position: None,
                labels,
            });
        }
        self.next_due = self
            .watched
            .values()
            .filter(|watched| !watched.reported)
            .map(|watched| watched.last_seen + watched.interval)
            .min();
    }

    fn export(&self, state: &mut EngineState) {
        for (key, watched) in &self.watched {
            state
                .sources
                .insert(key.clone(), SourceSeen { source: watched.source, last_seen: watched.last_seen });
        }
    }

    fn import(&mut self, state: &EngineState) {
        for (key, seen) in &state.sources {
            let Some(interval) = self.interval_of(key) else {
                continue;
            };
            self.watched.insert(
                key.clone(),
                Watched { source: seen.source, last_seen: seen.last_seen, interval, reported: false },
            );
            self.update_due(seen.last_seen + interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine_with, event, ts};

    fn from_server(server: &str, second: i64) -> AuditEvent {
        let mut event = event("app_reader", second);
        event.server = Some(server.into());
        event
    }

    #[test]
    fn off_by_default() {
        let mut engine = engine_with(|_| {});
        assert!(!engine.detectors().contains(&ID));
        let mut alerts = Vec::new();
        engine.observe(&from_server("pg-a", 0), &mut alerts);
        engine.advance_to(ts(86_400), &mut alerts);
        assert!(alerts.is_empty());
    }

    #[test]
    fn a_quiet_source_alerts_once_and_rearms_when_it_speaks() {
        let mut engine = engine_with(|config| {
            config.detectors.source_silent.interval = Some("15m".into());
            config.detectors.source_silent.intervals.insert("pg-never".into(), "1h".into());
        });
        let mut alerts = Vec::new();
        engine.observe(&from_server("pg-a", 0), &mut alerts);
        engine.observe(&from_server("pg-b", 0), &mut alerts);
        // pg-b keeps talking; pg-a stops.
        for minute in 1..=20 {
            engine.observe(&from_server("pg-b", minute * 60), &mut alerts);
        }
        let before: Vec<_> = alerts.iter().map(|alert| alert.summary.clone()).collect();
        assert_eq!(
            before,
            ["source pg-a (postgres) sent no events for more than 15m: its last event was at \
              2026-11-26T10:00:00.000000Z"]
        );
        assert_eq!(alerts[0].ts, ts(15 * 60));
        engine.advance_to(ts(2 * 3600), &mut alerts);
        let keys: Vec<_> = alerts.iter().map(|alert| alert.dedup_key.as_str()).collect();
        assert_eq!(keys, ["source_silent|pg-a", "source_silent|pg-b", "source_silent|pg-never"]);
        // pg-a speaks again, then goes quiet again: a new alert after the dedup window.
        engine.observe(&from_server("pg-a", 3 * 3600), &mut alerts);
        engine.advance_to(ts(4 * 3600), &mut alerts);
        assert_eq!(alerts.len(), 4, "{alerts:#?}");
        assert_eq!(alerts[3].ts, ts(3 * 3600 + 15 * 60));
    }
}
