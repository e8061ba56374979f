//! `new_origin`: a role seen from a client address or application it was never seen from,
//! after a learning period that starts at the first event the engine ever saw. What was learned
//! is part of [`crate::EngineState`], so a restart does not start learning again (Elastic's
//! "new terms", Matano's never-before-seen IP pattern; ANCHORS.md §1).
//!
//! Only successful events teach or alert: failed logins from an attacker's address must not
//! become "known" during learning (they are `auth_failure_burst`'s business).

use crate::fast::{FastMap, FastSet};

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_event::{AuditEvent, Severity, Text, format_rfc3339};
use serde::{Deserialize, Serialize};

use super::{Alerts, Common, Detector, EventContext, alert_for};
use crate::ConfigError;
use crate::patterns::parse_duration;
use crate::roles::RoleMap;
use crate::state::EngineState;

/// The detector id.
pub const ID: &str = "new_origin";

/// `[detectors.new_origin]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewOriginConfig {
    /// Whether the detector runs. Default: `true`.
    pub enabled: bool,
    /// Alert severity. Default: `low`.
    pub severity: Severity,
    /// Repeats of the same dedup key (detector + role + origin) within this event-time window
    /// fold into one alert. Default: `"10m"`.
    pub dedup_window: String,
    /// Roles never alerted on (names, globs, `@group`, `@class`). Default: none.
    pub exempt_roles: Vec<String>,
    /// How long after the first event the engine ever saw it only learns. Default: `"7d"`.
    pub learning_period: String,
    /// Whether new client addresses alert. Default: `true`.
    pub client_addr: bool,
    /// Whether new client applications alert. Default: `true`.
    pub application: bool,
}

impl Default for NewOriginConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Low,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
            learning_period: "7d".to_owned(),
            client_addr: true,
            application: true,
        }
    }
}

/// The origins seen for one role.
#[derive(Debug, Clone, Default)]
struct Known {
    addresses: FastSet<String>,
    applications: FastSet<String>,
}

/// The runtime of `new_origin`.
pub(crate) struct NewOrigin {
    common: Common,
    learning_period: TimeDelta,
    learning_period_text: String,
    track_addresses: bool,
    track_applications: bool,
    learning_started: Option<DateTime<Utc>>,
    known: FastMap<String, Known>,
    /// The last (role, address, application) checked: consecutive events of a session share
    /// it, and comparing strings is cheaper than three hash lookups.
    last_checked: Option<(String, Option<Text>, Option<Text>)>,
}

impl NewOrigin {
    pub(crate) fn new(config: &NewOriginConfig, roles: &RoleMap) -> Result<Option<Self>, ConfigError> {
        if !config.enabled || !(config.client_addr || config.application) {
            return Ok(None);
        }
        Ok(Some(Self {
            common: Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?,
            learning_period: parse_duration("detectors.new_origin.learning_period", &config.learning_period)?,
            learning_period_text: config.learning_period.clone(),
            track_addresses: config.client_addr,
            track_applications: config.application,
            learning_started: None,
            known: FastMap::default(),
            last_checked: None,
        }))
    }

    fn same_as_last(&self, role: &str, event: &AuditEvent) -> bool {
        self.last_checked.as_ref().is_some_and(|(last_role, address, application)| {
            last_role == role && *address == event.client_addr && *application == event.application
        })
    }

    fn remember_last(&mut self, role: &str, event: &AuditEvent) {
        match &mut self.last_checked {
            Some((last_role, address, application)) => {
                last_role.clear();
                last_role.push_str(role);
                address.clone_from(&event.client_addr);
                application.clone_from(&event.application);
            }
            None => {
                self.last_checked =
                    Some((role.to_owned(), event.client_addr.clone(), event.application.clone()))
            }
        }
    }

    fn raise(
        &self,
        event: &AuditEvent,
        context: &EventContext<'_>,
        kind: &str,
        value: &str,
        out: &mut Alerts<'_>,
    ) {
        if self.common.is_exempt(context) {
            return;
        }
        let role = context.role_name();
        let period = &self.learning_period_text;
        let summary = if kind == "client_addr" {
            let application = event
                .application
                .as_deref()
                .map(|application| format!(" ({application})"))
                .unwrap_or_default();
            format!(
                "{role} seen from new client address {value}{application} after the {period} learning period"
            )
        } else {
            let address = event.client_addr.as_deref().unwrap_or("a local connection");
            format!(
                "{role} seen using new application {value} from {address} after the {period} learning period"
            )
        };
        let mut alert =
            alert_for(event, ID, self.common.severity, format!("{ID}|{role}|{kind}|{value}"), summary);
        alert.labels.insert("kind".to_owned(), kind.to_owned());
        alert.labels.insert("learning_period".to_owned(), period.clone());
        if let Some(started) = self.learning_started {
            alert.labels.insert("learning_started".to_owned(), format_rfc3339(&started));
        }
        out.push(alert);
    }
}

impl Detector for NewOrigin {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        let started = *self.learning_started.get_or_insert(event.ts);
        let (Some(role), true) = (context.role, event.success) else {
            return;
        };
        if self.same_as_last(role, event) {
            return;
        }
        self.remember_last(role, event);
        let learning = event.ts < started + self.learning_period;
        let known = match self.known.get_mut(role) {
            Some(known) => known,
            None => self.known.entry(role.to_owned()).or_default(),
        };
        let mut new_address = None;
        if let Some(address) = event.client_addr.as_deref().filter(|_| self.track_addresses)
            && !known.addresses.contains(address)
        {
            known.addresses.insert(address.to_owned());
            new_address = Some(address);
        }
        let mut new_application = None;
        if let Some(application) = event.application.as_deref().filter(|_| self.track_applications)
            && !known.applications.contains(application)
        {
            known.applications.insert(application.to_owned());
            new_application = Some(application);
        }
        if learning {
            return;
        }
        if let Some(address) = new_address {
            self.raise(event, context, "client_addr", address, out);
        }
        if let Some(application) = new_application {
            self.raise(event, context, "application", application, out);
        }
    }

    fn export(&self, state: &mut EngineState) {
        state.learning_started = self.learning_started;
        for (role, known) in &self.known {
            let learned = state.origins.entry(role.clone()).or_default();
            learned.client_addrs.extend(known.addresses.iter().cloned());
            learned.applications.extend(known.applications.iter().cloned());
        }
    }

    fn import(&mut self, state: &EngineState) {
        if let Some(started) = state.learning_started {
            self.learning_started =
                Some(self.learning_started.map_or(started, |current| current.min(started)));
        }
        for (role, learned) in &state.origins {
            let known = self.known.entry(role.clone()).or_default();
            known.addresses.extend(learned.client_addrs.iter().cloned());
            known.applications.extend(learned.applications.iter().cloned());
        }
        self.last_checked = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;
    use crate::testing::{connect, engine_with, run};

    fn at_day(role: &str, day: i64, address: &str, application: &str) -> AuditEvent {
        let mut event = connect(role, day * 86_400, true);
        event.client_addr = Some(address.into());
        event.application = Some(application.into());
        event
    }

    #[test]
    fn learns_for_a_week_then_alerts_on_new_origins() {
        let mut engine = engine_with(|_| {});
        let alerts = run(
            &mut engine,
            &[
                at_day("app_reader", 0, "10.0.0.1", "webapp"),
                at_day("app_reader", 3, "10.0.0.2", "webapp"),
                at_day("app_reader", 8, "10.0.0.2", "webapp"),
                at_day("app_reader", 9, "10.0.0.1", "webapp"),
                at_day("app_reader", 10, "10.6.6.6", "psql"),
            ],
        );
        let summaries: Vec<_> = alerts.iter().map(|alert| alert.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "app_reader seen from new client address 10.6.6.6 (psql) after the 7d learning period",
                "app_reader seen using new application psql from 10.6.6.6 after the 7d learning period",
            ]
        );
    }

    #[test]
    fn learned_origins_survive_a_restart() {
        let mut engine = engine_with(|_| {});
        run(&mut engine, &[at_day("app_reader", 0, "10.0.0.1", "webapp")]);
        let state = engine.export_state();
        let json = serde_json::to_string(&state).unwrap();
        let mut restarted: Engine = engine_with(|_| {});
        restarted.import_state(serde_json::from_str(&json).unwrap());
        let alerts = run(
            &mut restarted,
            &[at_day("app_reader", 8, "10.0.0.1", "webapp"), at_day("app_reader", 8, "10.0.0.9", "webapp")],
        );
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].labels["kind"], "client_addr");
    }
}
