//! `privilege_change_by_non_admin`: `GRANT`/`REVOKE` and `CREATE/ALTER/DROP ROLE|USER|GROUP`
//! (class `ROLE`) by any role outside `admin`, done or attempted (a denied `CREATE ROLE` is
//! exactly what privilege escalation attempts look like).

use chrono::TimeDelta;
use rolewatch_event::{AuditEvent, Severity, StatementClass};
use serde::{Deserialize, Serialize};

use super::{Alerts, Common, Detector, EventContext, alert_for, origin_phrase, outcome_phrase};
use crate::ConfigError;
use crate::roles::RoleMap;

/// The detector id.
pub const ID: &str = "privilege_change_by_non_admin";

/// `[detectors.privilege_change_by_non_admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivilegeChangeByNonAdminConfig {
    /// Whether the detector runs. Default: `true`.
    pub enabled: bool,
    /// Alert severity. Default: `high`.
    pub severity: Severity,
    /// Repeats of the same dedup key (detector + role) within this event-time window fold into
    /// one alert. Default: `"10m"`.
    pub dedup_window: String,
    /// Roles never alerted on (names, globs, `@group`, `@class`). Default: none.
    pub exempt_roles: Vec<String>,
}

impl Default for PrivilegeChangeByNonAdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::High,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
        }
    }
}

/// The runtime of `privilege_change_by_non_admin`.
pub(crate) struct PrivilegeChangeByNonAdmin {
    common: Common,
}

impl PrivilegeChangeByNonAdmin {
    pub(crate) fn new(
        config: &PrivilegeChangeByNonAdminConfig,
        roles: &RoleMap,
    ) -> Result<Option<Self>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        Ok(Some(Self {
            common: Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?,
        }))
    }
}

/// Whether the command changes privileges, for sources that do not tag the class `ROLE`.
fn is_privilege_command(command: &str) -> bool {
    let mut words = command.split_ascii_whitespace();
    matches!(
        (words.next(), words.next()),
        (Some("GRANT" | "REVOKE"), _)
            | (Some("CREATE" | "ALTER" | "DROP" | "RENAME"), Some("ROLE" | "USER" | "GROUP"))
    )
}

impl Detector for PrivilegeChangeByNonAdmin {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        if context.classes.is_admin() {
            return;
        }
        if event.class != StatementClass::Role && !is_privilege_command(&event.command) {
            return;
        }
        if self.common.is_exempt(context) {
            return;
        }
        let role = context.role_name();
        let Some(dedup_key) = out.key_unless_repeat(format_args!("{ID}|{role}"), event.ts) else {
            return;
        };
        let verb = if event.success { "ran" } else { "attempted" };
        let target = if event.objects.is_empty() {
            String::new()
        } else {
            format!(" on {}", event.objects.join(", "))
        };
        let summary = format!(
            "{role} ({}) {verb} {}{target} {}{}",
            context.classes.describe(),
            event.command,
            origin_phrase(event),
            outcome_phrase(event)
        );
        let mut alert = alert_for(event, ID, self.common.severity, dedup_key, summary);
        alert.labels.insert("role_class".to_owned(), context.classes.describe());
        out.push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine_with, event, run};

    fn role_statement(role: &str, command: &str, class: StatementClass, success: bool) -> AuditEvent {
        let mut statement = event(role, 0);
        statement.class = class;
        statement.command = command.into();
        statement.success = success;
        statement.error_message = (!success).then(|| "permission denied to create role".into());
        statement
    }

    #[test]
    fn denied_create_role_by_writer_alerts() {
        let mut engine = engine_with(|_| {});
        let alerts = run(
            &mut engine,
            &[
                role_statement("app_writer", "CREATE ROLE", StatementClass::Role, false),
                role_statement("postgres", "CREATE ROLE", StatementClass::Role, true),
                role_statement("dba_admin", "GRANT", StatementClass::Role, true),
            ],
        );
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(
            alerts[0].summary,
            "app_writer (writer) attempted CREATE ROLE from 127.0.0.1 (webapp) (failed: permission denied to \
             create role)"
        );
    }

    #[test]
    fn commands_without_the_role_class_are_recognized() {
        assert!(is_privilege_command("GRANT"));
        assert!(is_privilege_command("ALTER USER"));
        assert!(!is_privilege_command("ALTER TABLE"));
        assert!(!is_privilege_command("SELECT"));
    }
}
