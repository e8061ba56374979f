//! `ddl_by_non_admin`: schema changes (class `DDL`) by any role outside `admin`, successful or
//! failed (a denied `ALTER TABLE` is an attempt worth knowing about).

use chrono::TimeDelta;
use rolewatch_event::{AuditEvent, Severity, StatementClass};
use serde::{Deserialize, Serialize};

use super::{
    Alerts, Common, Detector, EventContext, alert_for, objects_phrase, origin_phrase, outcome_phrase,
};
use crate::ConfigError;
use crate::patterns::sql_words;
use crate::roles::RoleMap;

/// The detector id.
pub const ID: &str = "ddl_by_non_admin";

/// `[detectors.ddl_by_non_admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdlByNonAdminConfig {
    /// Whether the detector runs. Default: `true`.
    pub enabled: bool,
    /// Alert severity. Default: `medium`.
    pub severity: Severity,
    /// Repeats of the same dedup key (detector + role) within this event-time window fold into
    /// one alert. Default: `"10m"`.
    pub dedup_window: String,
    /// Roles never alerted on, e.g. a migration role (names, globs, `@group`, `@class`).
    /// Default: none.
    pub exempt_roles: Vec<String>,
    /// Whether `CREATE TEMP[ORARY] TABLE` (session-private, gone at disconnect) is ignored.
    /// Default: `true`.
    pub ignore_temporary: bool,
}

impl Default for DdlByNonAdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Medium,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
            ignore_temporary: true,
        }
    }
}

/// The runtime of `ddl_by_non_admin`.
pub(crate) struct DdlByNonAdmin {
    common: Common,
    ignore_temporary: bool,
}

impl DdlByNonAdmin {
    pub(crate) fn new(config: &DdlByNonAdminConfig, roles: &RoleMap) -> Result<Option<Self>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        let common = Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?;
        Ok(Some(Self { common, ignore_temporary: config.ignore_temporary }))
    }
}

/// `CREATE [GLOBAL|LOCAL] TEMP[ORARY] ...`.
fn is_temporary(statement: &str) -> bool {
    let mut words = sql_words(statement);
    if !words.next().is_some_and(|word| word.eq_ignore_ascii_case("CREATE")) {
        return false;
    }
    words.take(2).any(|word| word.eq_ignore_ascii_case("TEMP") || word.eq_ignore_ascii_case("TEMPORARY"))
}

impl Detector for DdlByNonAdmin {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        if event.class != StatementClass::Ddl || context.classes.is_admin() {
            return;
        }
        if self.ignore_temporary && event.statement.as_deref().is_some_and(is_temporary) {
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
        let summary = format!(
            "{role} ({}) {verb} {} on {} {}{}",
            context.classes.describe(),
            event.command,
            objects_phrase(&event.objects),
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

    fn ddl(role: &str, statement: &str) -> AuditEvent {
        let mut ddl = event(role, 0);
        ddl.class = StatementClass::Ddl;
        ddl.command = "ALTER TABLE".into();
        ddl.objects = vec!["public.orders_copy".into()];
        ddl.statement = Some(statement.into());
        ddl
    }

    #[test]
    fn writer_ddl_alerts_admin_ddl_does_not() {
        let mut engine = engine_with(|_| {});
        let alerts = run(
            &mut engine,
            &[
                ddl("app_writer", "ALTER TABLE public.orders_copy ADD COLUMN exfil text"),
                ddl("dba_admin", "ALTER TABLE orders ADD COLUMN region text"),
            ],
        );
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(
            alerts[0].summary,
            "app_writer (writer) ran ALTER TABLE on public.orders_copy from 127.0.0.1 (webapp)"
        );
        assert_eq!(alerts[0].severity, Severity::Medium);
    }

    /// A migration's thousand `ALTER TABLE`s: the first alerts at once, the rest fold into one
    /// follow-up that counts them all and shows the first repeat's statement.
    #[test]
    fn a_burst_of_ddl_is_one_alert_and_one_counted_follow_up() {
        let mut engine = engine_with(|_| {});
        let events: Vec<AuditEvent> = (0..1000)
            .map(|n| {
                let mut event =
                    ddl("app_writer", &format!("ALTER TABLE public.orders_copy ADD COLUMN c{n} int"));
                event.ts = crate::testing::ts(n / 10);
                event
            })
            .collect();
        let alerts = run(&mut engine, &events);
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        assert_eq!(alerts[0].evidence.as_deref(), Some("ALTER TABLE public.orders_copy ADD COLUMN c0 int"));
        let follow_up = &alerts[1];
        assert_eq!(follow_up.count, 999);
        assert_eq!((follow_up.ts, follow_up.last_ts), (crate::testing::ts(0), crate::testing::ts(99)));
        assert_eq!(follow_up.evidence.as_deref(), Some("ALTER TABLE public.orders_copy ADD COLUMN c1 int"));
        assert_eq!(follow_up.labels["repeat_of"], alerts[0].id);
    }

    #[test]
    fn temporary_tables_are_ignored_unless_configured() {
        let temp = ddl("app_writer", "create temp table scratch (a int)");
        assert!(run(&mut engine_with(|_| {}), std::slice::from_ref(&temp)).is_empty());
        let mut engine = engine_with(|config| config.detectors.ddl_by_non_admin.ignore_temporary = false);
        assert_eq!(run(&mut engine, &[temp]).len(), 1);
    }

    #[test]
    fn exempt_roles_are_quiet() {
        let mut engine =
            engine_with(|config| config.detectors.ddl_by_non_admin.exempt_roles = vec!["app_*".into()]);
        assert!(run(&mut engine, &[ddl("app_writer", "ALTER TABLE t ADD c int")]).is_empty());
    }
}
