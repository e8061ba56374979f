//! The engine: every enabled detector over one stream of events, with folding.

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_event::{Alert, AuditEvent};

use crate::ConfigError;
use crate::config::DetectionConfig;
use crate::detectors::admin_from_service_origin::AdminFromServiceOrigin;
use crate::detectors::auth_failure_burst::AuthFailureBurst;
use crate::detectors::dangerous_command::DangerousCommand;
use crate::detectors::ddl_by_non_admin::DdlByNonAdmin;
use crate::detectors::export_command::ExportCommand;
use crate::detectors::large_export::LargeExport;
use crate::detectors::new_origin::NewOrigin;
use crate::detectors::privilege_change::PrivilegeChangeByNonAdmin;
use crate::detectors::sensitive_access::SensitiveAccess;
use crate::detectors::source_silent::SourceSilent;
use crate::detectors::{Alerts, Detector, EventContext};
use crate::fold::Folder;
use crate::patterns::parse_duration;
use crate::roles::{RoleClasses, RoleMap};
use crate::state::EngineState;

/// How often (in event time) detectors get to expire state and raise time-driven alerts
/// (`source_silent`). Their alerts carry the exact time they became due, so this only bounds
/// how late they are noticed, never what they say.
const TICK: TimeDelta = TimeDelta::seconds(10);

/// One enabled detector and its dedup window.
struct Slot {
    detector: Box<dyn Detector>,
    dedup_window: TimeDelta,
}

/// Runs every enabled detector over a stream of [`AuditEvent`]s and folds repeated alerts.
///
/// Pure and deterministic: no I/O, no wall clock; time is the events' `ts` (and what the
/// caller passes to [`Engine::advance_to`]). The same events in the same order always give the
/// same alerts, ids included.
pub struct Engine {
    roles: RoleMap,
    lateness: TimeDelta,
    newest: Option<DateTime<Utc>>,
    next_tick: Option<DateTime<Utc>>,
    folder: Folder,
    slots: Vec<Slot>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Engine")
            .field("detectors", &self.detectors())
            .field("lateness", &self.lateness)
            .field("newest", &self.newest)
            .finish_non_exhaustive()
    }
}

fn push<D: Detector + 'static>(slots: &mut Vec<Slot>, detector: Option<D>) {
    if let Some(detector) = detector {
        let dedup_window = detector.dedup_window();
        slots.push(Slot { detector: Box::new(detector), dedup_window });
    }
}

impl Engine {
    /// Validates `config` and builds the enabled detectors. Errors name the offending key.
    pub fn new(config: &DetectionConfig) -> Result<Engine, ConfigError> {
        let roles = RoleMap::new(&config.roles)?;
        let lateness = parse_duration("detectors.lateness", &config.detectors.lateness)?;
        let detectors = &config.detectors;
        let mut slots = Vec::new();
        push(&mut slots, LargeExport::new(&detectors.large_export, &roles)?);
        push(&mut slots, ExportCommand::new(&detectors.export_command, &roles)?);
        push(&mut slots, DdlByNonAdmin::new(&detectors.ddl_by_non_admin, &roles)?);
        push(&mut slots, PrivilegeChangeByNonAdmin::new(&detectors.privilege_change_by_non_admin, &roles)?);
        push(&mut slots, SensitiveAccess::new(&detectors.sensitive_access, &config.sensitive, &roles)?);
        push(&mut slots, DangerousCommand::new(&detectors.dangerous_command, &roles)?);
        push(&mut slots, AuthFailureBurst::new(&detectors.auth_failure_burst, &roles)?);
        push(
            &mut slots,
            AdminFromServiceOrigin::new(&detectors.admin_from_service_origin, &config.origins, &roles)?,
        );
        push(&mut slots, NewOrigin::new(&detectors.new_origin, &roles)?);
        push(&mut slots, SourceSilent::new(&detectors.source_silent, &roles)?);
        Ok(Engine { roles, lateness, newest: None, next_tick: None, folder: Folder::default(), slots })
    }

    /// The ids of the enabled detectors, in the order they run.
    pub fn detectors(&self) -> Vec<&'static str> {
        self.slots.iter().map(|slot| slot.detector.id()).collect()
    }

    /// Looks at one event; appends the alerts it raises (and follow-ups of dedup windows that
    /// its time closed) to `alerts`.
    pub fn observe(&mut self, event: &AuditEvent, alerts: &mut Vec<Alert>) {
        let watermark = self.move_time(event.ts);
        self.folder.close_until(watermark, alerts);
        if self.next_tick.is_none_or(|tick| watermark >= tick) {
            self.tick(watermark, alerts);
        }
        let classes = match event.role.as_deref() {
            Some(role) => self.roles.classes(role),
            None => RoleClasses::default(),
        };
        let context = EventContext { role: event.role.as_deref(), classes, roles: &self.roles };
        for slot in &mut self.slots {
            slot.detector.observe(
                event,
                &context,
                &mut Alerts::new(&mut self.folder, slot.dedup_window, alerts),
            );
        }
    }

    /// Declares that event time has reached `now` (as if an event at `now` had been seen):
    /// closes the dedup windows that end before `now - lateness`, emitting their follow-ups,
    /// and raises `source_silent` for sources quiet for longer than their interval. The
    /// binary calls it on a timer with the newest event time, or with the wall clock when it
    /// wants silence noticed while no events arrive at all.
    pub fn advance_to(&mut self, now: DateTime<Utc>, alerts: &mut Vec<Alert>) {
        let watermark = self.move_time(now);
        self.folder.close_until(watermark, alerts);
        self.tick(watermark, alerts);
    }

    /// Ends a one-shot run: emits the follow-ups of every open dedup window.
    pub fn finish(&mut self, alerts: &mut Vec<Alert>) {
        self.folder.close_all(alerts);
    }

    /// What must survive a restart: learned origins, the learning start, sources' last events,
    /// and the open windows (detectors' running counts, dedup windows with their folded repeats).
    pub fn export_state(&self) -> EngineState {
        let mut state = EngineState { newest_event: self.newest, ..EngineState::default() };
        for slot in &self.slots {
            slot.detector.export(&mut state);
        }
        state.windows.dedup = self.folder.export();
        state
    }

    /// Restores [`Engine::export_state`]'s output (call before the first event).
    pub fn import_state(&mut self, state: EngineState) {
        if let Some(newest) = state.newest_event {
            self.newest = Some(self.newest.map_or(newest, |current| current.max(newest)));
        }
        for slot in &mut self.slots {
            slot.detector.import(&state);
        }
        self.folder.import(&state.windows.dedup);
    }

    /// Moves the newest event time forward to `ts` (never back) and returns the watermark.
    fn move_time(&mut self, ts: DateTime<Utc>) -> DateTime<Utc> {
        let newest = match self.newest {
            Some(newest) if newest >= ts => newest,
            _ => {
                self.newest = Some(ts);
                ts
            }
        };
        newest - self.lateness
    }

    fn tick(&mut self, watermark: DateTime<Utc>, alerts: &mut Vec<Alert>) {
        self.next_tick = Some(watermark + TICK);
        for slot in &mut self.slots {
            slot.detector.advance(watermark, &mut Alerts::new(&mut self.folder, slot.dedup_window, alerts));
        }
    }
}

#[cfg(test)]
mod tests {
    use rolewatch_event::StatementClass;

    use super::*;
    use crate::testing::{connect, engine_with, event, read, run};

    /// Failed logins, reads and repeated DDL by a non-admin, a few seconds apart: each detector
    /// with a window, and folding, has something open at most points of the sequence.
    fn sequence() -> Vec<AuditEvent> {
        let ddl = |seconds| {
            let mut ddl = event("app_writer", seconds);
            ddl.command = "DROP TABLE".into();
            ddl.class = StatementClass::Ddl;
            ddl.objects = vec!["public.orders".into()];
            ddl
        };
        let mut events = Vec::new();
        for step in 0..4 {
            let seconds = step * 10;
            events.push(connect("app_reader", seconds, false));
            // One session of report_reader's, and a new session of app_reader's each time.
            events.push(read("report_reader", "s1", seconds + 1, 3_000));
            events.push(read("app_reader", &format!("a{step}"), seconds + 3, 3_000));
            events.push(ddl(seconds + 2));
        }
        events.push(connect("app_reader", 41, false));
        events.push(connect("app_reader", 42, false));
        events.push(connect("app_reader", 43, true));
        events
    }

    /// A restart at any point, through the saved state and its JSON, raises exactly the alerts
    /// (ids included) of one run without it: the failed logins, the rows read and the folded
    /// repeats counted before the restart still count after it.
    #[test]
    fn a_restart_through_the_saved_state_changes_no_alert() {
        let events = sequence();
        let whole = run(&mut engine_with(|_| {}), &events);
        let detectors: std::collections::BTreeSet<&str> =
            whole.iter().map(|alert| alert.detector.as_str()).collect();
        assert!(
            detectors.is_superset(&["auth_failure_burst", "large_export", "ddl_by_non_admin"].into()),
            "{whole:#?}"
        );
        let scopes: std::collections::BTreeSet<&str> =
            whole.iter().filter_map(|alert| alert.labels.get("scope").map(String::as_str)).collect();
        assert_eq!(scopes, ["role", "session"].into(), "{whole:#?}");
        assert!(whole.iter().any(|alert| alert.count > 1), "nothing was folded: {whole:#?}");
        for split in 0..=events.len() {
            let (before, after) = events.split_at(split);
            let mut first = engine_with(|_| {});
            let mut alerts = Vec::new();
            for event in before {
                first.observe(event, &mut alerts);
            }
            let saved = serde_json::to_string(&first.export_state()).unwrap();
            let mut second = engine_with(|_| {});
            second.import_state(serde_json::from_str(&saved).unwrap());
            alerts.extend(run(&mut second, after));
            assert_eq!(alerts, whole, "restarted after {split} events");
        }
    }

    /// A state saved by an earlier version (1, without open windows) still loads.
    #[test]
    fn a_state_without_windows_loads() {
        let saved = r#"{"version":1,"newest_event":"2026-11-26T10:00:00Z","learning_started":"2026-11-26T10:00:00Z","origins":{"app_reader":{"client_addrs":["10.0.0.1"],"applications":["report"]}},"sources":{}}"#;
        let state: EngineState = serde_json::from_str(saved).unwrap();
        assert_eq!(state.windows, crate::OpenWindows::default());
        let mut engine = engine_with(|_| {});
        engine.import_state(state);
        assert!(engine.export_state().origins.contains_key("app_reader"));
    }
}
