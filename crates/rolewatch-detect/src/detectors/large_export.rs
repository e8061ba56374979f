//! `large_export`: a reader role reads more than `rows` rows, in one statement or cumulated
//! over `window` per session and per role.
//!
//! The cumulative count is Guardium's "Records Affected Threshold" running count (ANCHORS.md
//! §1.1): it defeats exports chunked into small `LIMIT ... OFFSET` reads. After an alert the
//! counter restarts, so a continuing export alerts again only after another `rows` worth.
//! A statement that alerts on its own also restarts the session and role counters, so one big
//! read raises one alert, not three.

use std::collections::VecDeque;

use crate::fast::FastMap;

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_event::{AuditEvent, Severity, StatementClass};
use serde::{Deserialize, Serialize};

use super::{
    Alerts, Common, Detector, EventContext, alert_for, objects_phrase, origin_phrase, window_phrase,
};
use crate::ConfigError;
use crate::patterns::parse_positive_duration;
use crate::roles::{RoleClass, RoleClasses, RoleMap};
use crate::state::{EngineState, RowBucket, RowsRead};

/// The detector id.
pub const ID: &str = "large_export";

/// How many time buckets a window is cut into: the running count forgets old reads with a
/// precision of `window / BUCKETS` (a minute for a one-hour window), in bounded memory.
const BUCKETS: i32 = 60;

/// `[detectors.large_export]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LargeExportConfig {
    /// Whether the detector runs. Default: `true`.
    pub enabled: bool,
    /// Alert severity. Default: `high`.
    pub severity: Severity,
    /// Repeats of the same dedup key within this event-time window fold into one alert.
    /// Default: `"10m"`.
    pub dedup_window: String,
    /// Roles never alerted on (names, globs, `@group`, `@class`). Default: none.
    pub exempt_roles: Vec<String>,
    /// Alert when more than this many rows are read (`>`, so exactly `rows` is fine).
    /// Default: `10000`.
    pub rows: u64,
    /// The window of the running count per session and per role. Default: `"1h"`.
    pub window: String,
    /// The role classes watched: `reader`, `writer`, `service`, `unknown`, `admin`.
    /// Default: `["reader", "unknown"]`.
    pub role_classes: Vec<RoleClass>,
    /// Whether reads are counted per session. Default: `true`.
    pub per_session: bool,
    /// Whether reads are counted per role across its sessions. Default: `true`.
    pub per_role: bool,
}

impl Default for LargeExportConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::High,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
            rows: 10_000,
            window: "1h".to_owned(),
            role_classes: vec![RoleClass::Reader, RoleClass::Unknown],
            per_session: true,
            per_role: true,
        }
    }
}

/// A running count of rows over a sliding window, in at most `BUCKETS + 1` buckets.
#[derive(Debug, Clone, Default)]
struct RowWindow {
    /// (bucket start, rows, statements), oldest first.
    buckets: VecDeque<(DateTime<Utc>, u64, u32)>,
    rows: u64,
    statements: u32,
}

impl RowWindow {
    /// Adds a read at `ts` and forgets the buckets that started `window` or more before it.
    fn add(&mut self, ts: DateTime<Utc>, rows: u64, window: TimeDelta, bucket: TimeDelta) {
        while let Some(&(start, old_rows, old_statements)) = self.buckets.front() {
            if start > ts - window {
                break;
            }
            self.buckets.pop_front();
            self.rows = self.rows.saturating_sub(old_rows);
            self.statements = self.statements.saturating_sub(old_statements);
        }
        match self.buckets.back_mut() {
            // Same bucket, or a late read: count it in the newest bucket.
            Some((start, bucket_rows, bucket_statements)) if ts < *start + bucket => {
                *bucket_rows = bucket_rows.saturating_add(rows);
                *bucket_statements = bucket_statements.saturating_add(1);
            }
            _ => self.buckets.push_back((ts, rows, 1)),
        }
        self.rows = self.rows.saturating_add(rows);
        self.statements = self.statements.saturating_add(1);
    }

    fn reset(&mut self) {
        self.buckets.clear();
        self.rows = 0;
        self.statements = 0;
    }

    fn newest(&self) -> Option<DateTime<Utc>> {
        self.buckets.back().map(|(start, _, _)| *start)
    }

    fn export(&self) -> RowsRead {
        RowsRead {
            buckets: self
                .buckets
                .iter()
                .map(|&(start, rows, statements)| RowBucket { start, rows, statements })
                .collect(),
        }
    }

    /// A window of the saved buckets, in time order.
    fn import(saved: &RowsRead) -> Self {
        let mut window = RowWindow::default();
        let mut buckets: Vec<&RowBucket> = saved.buckets.iter().collect();
        buckets.sort_by_key(|bucket| bucket.start);
        for bucket in buckets {
            window.buckets.push_back((bucket.start, bucket.rows, bucket.statements));
            window.rows = window.rows.saturating_add(bucket.rows);
            window.statements = window.statements.saturating_add(bucket.statements);
        }
        window
    }
}

/// The runtime of `large_export`.
pub(crate) struct LargeExport {
    common: Common,
    threshold: u64,
    window: TimeDelta,
    bucket: TimeDelta,
    classes: RoleClasses,
    per_session: bool,
    per_role: bool,
    /// server ("" when unknown) -> session -> count. Keyed by server too because MariaDB
    /// connection ids are small integers that repeat across servers.
    sessions: FastMap<String, FastMap<String, RowWindow>>,
    roles: FastMap<String, RowWindow>,
}

impl LargeExport {
    pub(crate) fn new(config: &LargeExportConfig, roles: &RoleMap) -> Result<Option<Self>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        let common = Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?;
        let window = parse_positive_duration("detectors.large_export.window", &config.window)?;
        Ok(Some(Self {
            common,
            threshold: config.rows,
            window,
            bucket: window / BUCKETS,
            classes: RoleClasses::of(&config.role_classes),
            per_session: config.per_session,
            per_role: config.per_role,
            sessions: FastMap::default(),
            roles: FastMap::default(),
        }))
    }

    /// Raises the alert for `rows` read in `statements` statements (`scope`: one statement, a
    /// session or the role), unless it only adds to a folded repeat.
    #[allow(clippy::too_many_arguments)]
    fn raise(
        &self,
        event: &AuditEvent,
        context: &EventContext<'_>,
        scope: &str,
        rows: u64,
        statements: u32,
        out: &mut Alerts<'_>,
    ) {
        let role = context.role_name();
        let session = event.session_id.as_deref().unwrap_or("?");
        let dedup_key = match scope {
            "statement" => format!("{ID}|{role}|statement"),
            "session" => format!("{ID}|{role}|session|{}|{session}", event.server.as_deref().unwrap_or("")),
            _ => format!("{ID}|{role}|role"),
        };
        if out.repeat(&dedup_key, event.ts) {
            return;
        }
        let origin = origin_phrase(event);
        let objects = objects_phrase(&event.objects);
        let window = window_phrase(self.window);
        let summary = match scope {
            "statement" => format!("{role} read {rows} rows of {objects} in one statement {origin}"),
            "session" => format!(
                "{role} read {rows} rows in {statements} statements within {window} in session {session} \
                 {origin}, the last of {objects}"
            ),
            _ => format!(
                "{role} read {rows} rows in {statements} statements within {window} across its sessions, \
                 the last {origin} of {objects}"
            ),
        };
        let mut alert = alert_for(event, ID, self.common.severity, dedup_key, summary);
        alert.labels.insert("scope".to_owned(), scope.to_owned());
        alert.labels.insert("rows".to_owned(), rows.to_string());
        alert.labels.insert("threshold".to_owned(), self.threshold.to_string());
        alert.labels.insert("statements".to_owned(), statements.to_string());
        if scope != "statement" {
            alert.labels.insert("window".to_owned(), window);
        }
        out.push(alert);
    }

    /// Adds a read to its session's running count; returns (rows, statements) and restarts the
    /// count when it crosses the threshold.
    fn add_to_session(&mut self, event: &AuditEvent, rows: u64) -> Option<(u64, u32)> {
        let session = event.session_id.as_deref()?;
        let server = event.server.as_deref().unwrap_or("");
        // Look up by &str first: the entry API would allocate the key on every event.
        let sessions = match self.sessions.get_mut(server) {
            Some(sessions) => sessions,
            None => self.sessions.entry(server.to_owned()).or_default(),
        };
        let window = match sessions.get_mut(session) {
            Some(window) => window,
            None => sessions.entry(session.to_owned()).or_default(),
        };
        window.add(event.ts, rows, self.window, self.bucket);
        if window.rows <= self.threshold {
            return None;
        }
        let crossed = (window.rows, window.statements);
        window.reset();
        Some(crossed)
    }

    fn reset_session(&mut self, event: &AuditEvent) {
        if let (Some(session), Some(sessions)) =
            (event.session_id.as_deref(), self.sessions.get_mut(event.server.as_deref().unwrap_or("")))
            && let Some(window) = sessions.get_mut(session)
        {
            window.reset();
        }
    }

    fn forget_session(&mut self, event: &AuditEvent) {
        if let (Some(session), Some(sessions)) =
            (event.session_id.as_deref(), self.sessions.get_mut(event.server.as_deref().unwrap_or("")))
        {
            sessions.remove(session);
        }
    }
}

impl Detector for LargeExport {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        if event.class == StatementClass::Disconnect {
            self.forget_session(event);
            return;
        }
        let (StatementClass::Read, true, Some(rows), Some(role)) =
            (event.class, event.success, event.rows, context.role)
        else {
            return;
        };
        if rows == 0 || !context.classes.intersects(self.classes) {
            return;
        }
        if rows > self.threshold {
            if !self.common.is_exempt(context) {
                self.raise(event, context, "statement", rows, 1, out);
            }
            // The statement is reported: restart the running counts.
            self.reset_session(event);
            if let Some(window) = self.roles.get_mut(role) {
                window.reset();
            }
            return;
        }
        let (window_length, bucket) = (self.window, self.bucket);
        let session_crossed = if self.per_session { self.add_to_session(event, rows) } else { None };
        let mut role_crossed = None;
        if self.per_role {
            let window = match self.roles.get_mut(role) {
                Some(window) => window,
                None => self.roles.entry(role.to_owned()).or_default(),
            };
            if session_crossed.is_some() {
                window.reset();
            } else {
                window.add(event.ts, rows, window_length, bucket);
                if window.rows > self.threshold {
                    role_crossed = Some((window.rows, window.statements));
                    window.reset();
                }
            }
        }
        if self.common.is_exempt(context) {
            return;
        }
        if let Some((total, statements)) = session_crossed {
            self.raise(event, context, "session", total, statements, out);
        } else if let Some((total, statements)) = role_crossed {
            self.raise(event, context, "role", total, statements, out);
        }
    }

    fn advance(&mut self, watermark: DateTime<Utc>, _out: &mut Alerts<'_>) {
        let horizon = watermark - self.window;
        let live = |window: &RowWindow| window.newest().is_some_and(|newest| newest > horizon);
        for sessions in self.sessions.values_mut() {
            sessions.retain(|_, window| live(window));
        }
        self.sessions.retain(|_, sessions| !sessions.is_empty());
        self.roles.retain(|_, window| live(window));
    }

    fn export(&self, state: &mut EngineState) {
        state.windows.rows_by_session = self
            .sessions
            .iter()
            .map(|(server, sessions)| {
                let sessions = sessions.iter().map(|(session, window)| (session.clone(), window.export()));
                (server.clone(), sessions.collect())
            })
            .collect();
        state.windows.rows_by_role =
            self.roles.iter().map(|(role, window)| (role.clone(), window.export())).collect();
    }

    /// Restores saved windows where this run has none yet (call before the first event).
    fn import(&mut self, state: &EngineState) {
        for (server, sessions) in &state.windows.rows_by_session {
            let known = self.sessions.entry(server.clone()).or_default();
            for (session, saved) in sessions {
                known.entry(session.clone()).or_insert_with(|| RowWindow::import(saved));
            }
        }
        for (role, saved) in &state.windows.rows_by_role {
            self.roles.entry(role.clone()).or_insert_with(|| RowWindow::import(saved));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{engine_with, read, run};

    #[test]
    fn single_statement_over_threshold_alerts_once() {
        let mut engine = engine_with(|_| {});
        let alerts = run(&mut engine, &[read("app_reader", "s1", 0, 20_000)]);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(
            alerts[0].summary,
            "app_reader read 20000 rows of public.orders in one statement from 127.0.0.1 (webapp)"
        );
        assert_eq!(alerts[0].labels["scope"], "statement");
    }

    #[test]
    fn exactly_the_threshold_is_fine() {
        let mut engine = engine_with(|_| {});
        assert!(run(&mut engine, &[read("app_reader", "s1", 0, 10_000)]).is_empty());
    }

    #[test]
    fn chunks_within_the_window_alert_and_restart_the_count() {
        let mut engine = engine_with(|_| {});
        let events: Vec<_> = (0..6).map(|chunk| read("report_reader", "s1", chunk * 60, 4_000)).collect();
        let alerts = run(&mut engine, &events);
        // 12000 after three chunks; the count restarts; 12000 again after three more: folded.
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        assert_eq!(alerts[0].labels["scope"], "session");
        assert!(alerts[0].summary.contains("read 12000 rows in 3 statements within 1h in session s1"));
        assert_eq!(alerts[1].count, 1);
    }

    #[test]
    fn chunks_spread_over_more_than_the_window_are_fine() {
        let mut engine = engine_with(|_| {});
        let events: Vec<_> =
            (0..3).map(|chunk| read("report_reader", "s1", chunk * 31 * 60, 4_000)).collect();
        assert!(run(&mut engine, &events).is_empty());
    }

    #[test]
    fn chunks_across_sessions_alert_per_role() {
        let mut engine = engine_with(|_| {});
        let events: Vec<_> =
            (0..3).map(|chunk| read("report_reader", &format!("s{chunk}"), chunk * 60, 4_000)).collect();
        let alerts = run(&mut engine, &events);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].labels["scope"], "role");
    }

    #[test]
    fn writers_and_admins_are_not_watched_by_default() {
        let mut engine = engine_with(|_| {});
        let alerts =
            run(&mut engine, &[read("app_writer", "s1", 0, 50_000), read("postgres", "s2", 0, 50_000)]);
        assert!(alerts.is_empty(), "{alerts:#?}");
    }
}
