//! `sensitive_access`: reads and writes of `[sensitive]` schemas and tables by roles without an
//! allowance (admin roles are allowed unless `[sensitive] admins_allowed = false`), allowed by
//! the database or denied by it. A denied read still alerts, at `denied_severity`: it is a probe.
//! When the source names no objects (a failed statement), the statement text is scanned for
//! sensitive `schema.table` names.

use chrono::TimeDelta;
use rolewatch_event::{AuditEvent, Severity, StatementClass};
use serde::{Deserialize, Serialize};

use super::{Alerts, Common, Detector, EventContext, alert_for, origin_phrase, outcome_phrase};
use crate::ConfigError;
use crate::roles::RoleMap;
use crate::sensitive::{SensitiveConfig, SensitiveMap};

/// The detector id.
pub const ID: &str = "sensitive_access";

/// `[detectors.sensitive_access]`. What is sensitive and who may touch it is `[sensitive]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensitiveAccessConfig {
    /// Whether the detector runs (it also needs `[sensitive]` schemas or tables). Default: `true`.
    pub enabled: bool,
    /// Severity of an access the database allowed. Default: `high`.
    pub severity: Severity,
    /// Severity of an access the database denied (permission denied). Default: `medium`.
    pub denied_severity: Severity,
    /// Repeats of the same dedup key (detector + role + object + allowed/denied) within this
    /// event-time window fold into one alert. Default: `"10m"`.
    pub dedup_window: String,
    /// Roles never alerted on (prefer `[sensitive.allow]`, which is per object). Default: none.
    pub exempt_roles: Vec<String>,
}

impl Default for SensitiveAccessConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::High,
            denied_severity: Severity::Medium,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
        }
    }
}

/// The runtime of `sensitive_access`.
pub(crate) struct SensitiveAccess {
    common: Common,
    denied_severity: Severity,
    sensitive: SensitiveMap,
}

impl SensitiveAccess {
    pub(crate) fn new(
        config: &SensitiveAccessConfig,
        sensitive: &SensitiveConfig,
        roles: &RoleMap,
    ) -> Result<Option<Self>, ConfigError> {
        let map = SensitiveMap::new(sensitive, roles)?;
        if !config.enabled || map.is_empty() {
            return Ok(None);
        }
        let common = Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?;
        Ok(Some(Self { common, denied_severity: config.denied_severity, sensitive: map }))
    }
}

impl Detector for SensitiveAccess {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        let verb = match (event.class, event.success) {
            (StatementClass::Read, true) => "read",
            (StatementClass::Write, true) => "wrote",
            (StatementClass::Read, false) => "tried to read",
            (StatementClass::Write, false) => "tried to write",
            _ => return,
        };
        let role = context.role.unwrap_or("");
        let mut touched: Vec<String> = Vec::new();
        if event.objects.is_empty() {
            if let Some(statement) = event.statement.as_deref() {
                touched = self.sensitive.objects_in_statement(statement);
            }
        } else {
            for object in &event.objects {
                if self.sensitive.is_sensitive(object) {
                    touched.push(object.to_string());
                }
            }
        }
        if touched.is_empty() {
            return;
        }
        let (sensitive, roles, classes) = (&mut self.sensitive, context.roles, context.classes);
        touched.retain(|object| !sensitive.is_allowed(role, classes, roles, object));
        let Some(first) = touched.first() else {
            return;
        };
        if self.common.is_exempt(context) {
            return;
        }
        let outcome_key = if event.success { "allowed" } else { "denied" };
        let severity = if event.success { self.common.severity } else { self.denied_severity };
        let role_name = context.role_name();
        let Some(dedup_key) =
            out.key_unless_repeat(format_args!("{ID}|{role_name}|{first}|{outcome_key}"), event.ts)
        else {
            return;
        };
        let summary = format!(
            "{role_name} ({}) {verb} sensitive {} without an allowance {}{}",
            classes.describe(),
            touched.join(", "),
            origin_phrase(event),
            outcome_phrase(event)
        );
        let mut alert = alert_for(event, ID, severity, dedup_key, summary);
        alert.labels.insert("access".to_owned(), outcome_key.to_owned());
        alert.objects = touched;
        out.push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine_with, event, run};

    fn read_of(role: &str, objects: &[&str], statement: &str, success: bool) -> AuditEvent {
        let mut read = event(role, 0);
        read.objects = objects.iter().map(|object| (*object).into()).collect();
        read.statement = Some(statement.into());
        read.success = success;
        read.error_message = (!success).then(|| "permission denied for table salaries".into());
        read
    }

    #[test]
    fn denied_read_found_in_statement_text() {
        let mut engine = engine_with(|_| {});
        let alerts = run(&mut engine, &[read_of("app_reader", &[], "SELECT * FROM hr.salaries", false)]);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].severity, Severity::Medium);
        assert_eq!(
            alerts[0].summary,
            "app_reader (reader) tried to read sensitive hr.salaries without an allowance from 127.0.0.1 \
             (webapp) (failed: permission denied for table salaries)"
        );
        assert_eq!(alerts[0].objects, ["hr.salaries"]);
    }

    #[test]
    fn admins_and_allowed_roles_are_quiet() {
        let mut engine = engine_with(|config| {
            config.sensitive.allow.insert("hr_app".into(), vec!["hr".into()]);
        });
        let alerts = run(
            &mut engine,
            &[
                read_of("dba_admin", &["hr.salaries"], "SELECT 1", true),
                read_of("hr_app", &["hr.salaries"], "SELECT 1", true),
                read_of("app_reader", &["public.orders"], "SELECT 1", true),
            ],
        );
        assert!(alerts.is_empty(), "{alerts:#?}");
    }

    #[test]
    fn allowed_read_by_a_stranger_is_high() {
        let mut engine = engine_with(|_| {});
        let alerts =
            run(&mut engine, &[read_of("intern", &["public.orders", "hr.salaries"], "SELECT", true)]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].severity, Severity::High);
        assert!(alerts[0].summary.starts_with("intern (unknown) read sensitive hr.salaries"));
    }
}
