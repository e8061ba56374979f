//! The detectors. Each file has the same parts: its config struct (the operator's manual for
//! `[detectors.<id>]`), its runtime (`new` validates the config, `observe` looks at one event),
//! and its tests.

pub mod admin_from_service_origin;
pub mod auth_failure_burst;
pub mod dangerous_command;
pub mod ddl_by_non_admin;
pub mod export_command;
pub mod large_export;
pub mod new_origin;
pub mod privilege_change;
pub mod sensitive_access;
pub mod source_silent;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_event::{Alert, AuditEvent, Severity, Text};

use crate::ConfigError;
use crate::fold::Folder;
use crate::patterns::parse_duration;
use crate::roles::{RoleClasses, RoleMap, RoleSelector};
use crate::state::EngineState;

/// What the engine knows about an event before the detectors look at it.
pub(crate) struct EventContext<'a> {
    /// The event's role, if any.
    pub(crate) role: Option<&'a str>,
    /// The role's classes (empty when there is no role).
    pub(crate) classes: RoleClasses,
    /// The role map, for `@group` selectors.
    pub(crate) roles: &'a RoleMap,
}

impl EventContext<'_> {
    /// The role for summaries and dedup keys.
    pub(crate) fn role_name(&self) -> &str {
        self.role.unwrap_or("<unknown role>")
    }
}

/// Where a detector's alerts go: the engine's [`Folder`] with the detector's dedup window, then
/// the engine's output.
pub(crate) struct Alerts<'a> {
    folder: &'a mut Folder,
    dedup_window: TimeDelta,
    out: &'a mut Vec<Alert>,
}

impl<'a> Alerts<'a> {
    pub(crate) fn new(folder: &'a mut Folder, dedup_window: TimeDelta, out: &'a mut Vec<Alert>) -> Self {
        Self { folder, dedup_window, out }
    }

    /// Emits `alert`, or folds it into the open dedup window of its key.
    pub(crate) fn push(&mut self, alert: Alert) {
        self.folder.offer(alert, self.dedup_window, self.out);
    }

    /// Counts one more occurrence of `dedup_key` at `ts` (an alert of count 1 whose `ts` and
    /// `last_ts` are both `ts`) when it would only add to an already folded repeat; returns
    /// whether it did, and then the caller builds no alert. A detector that fires on every
    /// event of a busy role (thousands of `ALTER TABLE`s in a migration) asks this first:
    /// building an alert (summary, labels, a dozen strings) costs more than the event's parse.
    pub(crate) fn repeat(&mut self, dedup_key: &str, ts: DateTime<Utc>) -> bool {
        self.dedup_window > TimeDelta::zero() && self.folder.count_repeat(dedup_key, ts)
    }

    /// The dedup key `key` for an alert at `ts`, or `None` when the occurrence was only counted
    /// as a repeat ([`Alerts::repeat`]). The key is written into a reused buffer, so that a
    /// counted repeat (most of a busy role's events) formats it without allocating.
    pub(crate) fn key_unless_repeat(
        &mut self,
        key: std::fmt::Arguments<'_>,
        ts: DateTime<Utc>,
    ) -> Option<String> {
        let mut buffer = std::mem::take(&mut self.folder.key_buffer);
        buffer.clear();
        // Writing to a `String` only fails if a `Display` implementation does; ours do not.
        std::fmt::Write::write_fmt(&mut buffer, key).ok()?;
        if self.repeat(&buffer, ts) {
            self.folder.key_buffer = buffer;
            return None;
        }
        Some(buffer)
    }
}

/// One detector's runtime.
pub(crate) trait Detector: Send {
    /// The detector's id (the alert's `detector` field).
    fn id(&self) -> &'static str;
    /// The detector's `dedup_window`.
    fn dedup_window(&self) -> TimeDelta;
    /// Looks at one event and pushes the alerts it raises (before folding).
    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>);
    /// Event time has reached `watermark` (already minus lateness): expire state, raise alerts
    /// that are due to time passing.
    fn advance(&mut self, _watermark: DateTime<Utc>, _out: &mut Alerts<'_>) {}
    /// Adds what must survive a restart to `state`.
    fn export(&self, _state: &mut EngineState) {}
    /// Restores what [`Detector::export`] saved.
    fn import(&mut self, _state: &EngineState) {}
}

/// The settings every detector has, validated.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) severity: Severity,
    pub(crate) dedup_window: TimeDelta,
    pub(crate) exempt: RoleSelector,
}

impl Common {
    pub(crate) fn new(
        detector: &str,
        severity: Severity,
        dedup_window: &str,
        exempt_roles: &[String],
        roles: &RoleMap,
    ) -> Result<Self, ConfigError> {
        let prefix = format!("detectors.{detector}");
        Ok(Self {
            severity,
            dedup_window: parse_duration(&format!("{prefix}.dedup_window"), dedup_window)?,
            exempt: RoleSelector::compile(&format!("{prefix}.exempt_roles"), exempt_roles, roles)?,
        })
    }

    /// Whether the event's role is in `exempt_roles` (checked only when about to alert).
    pub(crate) fn is_exempt(&self, context: &EventContext<'_>) -> bool {
        context.role.is_some_and(|role| self.exempt.matches(role, context.classes, context.roles))
    }
}

/// "from 127.0.0.1 (webapp)", "from a local connection (psql)", ...
pub(crate) fn origin_phrase(event: &AuditEvent) -> String {
    match (event.client_addr.as_deref(), event.application.as_deref()) {
        (Some(address), Some(application)) => format!("from {address} ({application})"),
        (Some(address), None) => format!("from {address}"),
        (None, Some(application)) => format!("from a local connection ({application})"),
        (None, None) => "from a local connection".to_owned(),
    }
}

/// "public.orders, public.items" or "an unnamed relation".
/// An alert's copy of an event's text field.
fn owned(text: Option<&Text>) -> Option<String> {
    text.map(Text::to_string)
}

pub(crate) fn objects_phrase(objects: &[Text]) -> String {
    if objects.is_empty() {
        "an unnamed relation".to_owned()
    } else {
        objects.iter().map(Text::as_str).collect::<Vec<_>>().join(", ")
    }
}

/// " (failed: permission denied ...)" for failed statements, "" otherwise.
pub(crate) fn outcome_phrase(event: &AuditEvent) -> String {
    if event.success {
        return String::new();
    }
    match event.error_message.as_deref() {
        Some(message) => format!(" (failed: {message})"),
        None => " (failed)".to_owned(),
    }
}

/// A humantime rendering of a window for summaries: `1m`, `1h`, `7days`.
pub(crate) fn window_phrase(window: TimeDelta) -> String {
    window.to_std().map(|window| humantime::format_duration(window).to_string()).unwrap_or_default()
}

/// An alert about `event`, with everything but the id (assigned when it is emitted).
pub(crate) fn alert_for(
    event: &AuditEvent,
    detector: &'static str,
    severity: Severity,
    dedup_key: String,
    summary: String,
) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("success".to_owned(), event.success.to_string());
    labels.insert("command".to_owned(), event.command.to_string());
    Alert {
        id: String::new(),
        detector: detector.to_owned(),
        severity,
        role: owned(event.role.as_ref()),
        ts: event.ts,
        summary,
        source: event.source,
        server: owned(event.server.as_ref()),
        database: owned(event.database.as_ref()),
        client_addr: owned(event.client_addr.as_ref()),
        application: owned(event.application.as_ref()),
        session_id: owned(event.session_id.as_ref()),
        objects: event.objects.iter().map(Text::to_string).collect(),
        evidence: event.statement.clone(),
        count: 1,
        last_ts: event.ts,
        dedup_key,
        position: event.position().map(|position| position.to_string()),
        labels,
    }
}
