//! `dangerous_command`: statements that destroy data, run code on the server, or blind the
//! audit trail, by any role (admins included: a `DROP DATABASE` deserves a look whoever ran it;
//! use `exempt_roles` for a migration role). Changes to audit settings are tampering with the
//! evidence and get `audit_tamper_severity`.

use chrono::TimeDelta;
use rolewatch_event::{AuditEvent, Severity, StatementClass};
use serde::{Deserialize, Serialize};

use super::{
    Alerts, Common, Detector, EventContext, alert_for, objects_phrase, origin_phrase, outcome_phrase,
};
use crate::ConfigError;
use crate::patterns::{contains_ignore_case, has_word, sql_words};
use crate::roles::RoleMap;

/// The detector id.
pub const ID: &str = "dangerous_command";

/// `[detectors.dangerous_command]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DangerousCommandConfig {
    /// Whether the detector runs. Default: `true`.
    pub enabled: bool,
    /// Alert severity of destructive and code-running statements. Default: `high`.
    pub severity: Severity,
    /// Alert severity of changes to audit settings (`pgaudit.*`, `server_audit_*`, ...).
    /// Default: `critical`.
    pub audit_tamper_severity: Severity,
    /// Repeats of the same dedup key (detector + role + kind) within this event-time window
    /// fold into one alert. Default: `"10m"`.
    pub dedup_window: String,
    /// Roles never alerted on (names, globs, `@group`, `@class`). Default: none.
    pub exempt_roles: Vec<String>,
    /// Function languages that run unsandboxed code on the server. Default:
    /// `["c", "internal", "plpythonu", "plpython2u", "plpython3u", "plperlu", "pltclu", "plsh"]`.
    pub untrusted_languages: Vec<String>,
    /// Substrings (case-insensitive) naming audit settings; a `SET`, `ALTER SYSTEM`,
    /// `ALTER ROLE/DATABASE ... SET` touching one is tampering. Default:
    /// `["pgaudit", "server_audit", "audit_log"]`.
    pub audit_settings: Vec<String>,
}

impl Default for DangerousCommandConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::High,
            audit_tamper_severity: Severity::Critical,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
            untrusted_languages: [
                "c",
                "internal",
                "plpythonu",
                "plpython2u",
                "plpython3u",
                "plperlu",
                "pltclu",
                "plsh",
            ]
            .map(str::to_owned)
            .to_vec(),
            audit_settings: ["pgaudit", "server_audit", "audit_log"].map(str::to_owned).to_vec(),
        }
    }
}

/// The runtime of `dangerous_command`.
pub(crate) struct DangerousCommand {
    common: Common,
    audit_tamper_severity: Severity,
    untrusted_languages: Vec<String>,
    audit_settings: Vec<String>,
}

impl DangerousCommand {
    pub(crate) fn new(config: &DangerousCommandConfig, roles: &RoleMap) -> Result<Option<Self>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        if config.audit_settings.iter().any(String::is_empty) {
            return Err(ConfigError::InvalidValue {
                key: "detectors.dangerous_command.audit_settings".to_owned(),
                reason: "an empty entry would match every statement".to_owned(),
            });
        }
        Ok(Some(Self {
            common: Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?,
            audit_tamper_severity: config.audit_tamper_severity,
            untrusted_languages: config.untrusted_languages.clone(),
            audit_settings: config.audit_settings.clone(),
        }))
    }

    fn mentions_audit_setting(&self, event: &AuditEvent) -> bool {
        event.statement.as_deref().is_some_and(|statement| {
            self.audit_settings.iter().any(|setting| contains_ignore_case(statement, setting))
        })
    }

    fn untrusted_language(&self, statement: &str) -> Option<String> {
        let mut words = sql_words(statement);
        let mut found = None;
        while let Some(word) = words.next() {
            let candidate = if word.eq_ignore_ascii_case("LANGUAGE") {
                match words.next() {
                    Some(language) => language,
                    None => break,
                }
            } else {
                continue;
            };
            if self.untrusted_languages.iter().any(|language| language.eq_ignore_ascii_case(candidate)) {
                found = Some(candidate.to_ascii_lowercase());
            }
        }
        found
    }

    /// What makes the event dangerous: (kind for the dedup key, description, is tampering).
    fn classify(&self, event: &AuditEvent) -> Option<(&'static str, String, bool)> {
        let command = event.command.as_str();
        let statement = event.statement.as_deref();
        let simple = |kind: &'static str, description: &str| Some((kind, description.to_owned(), false));
        match command {
            "SELECT" | "INSERT" | "CONNECT" | "DISCONNECT" => None,
            "DROP DATABASE" | "DROP TABLE" | "DROP SCHEMA" => simple("drop", command),
            "TRUNCATE" | "TRUNCATE TABLE" => simple("truncate", "TRUNCATE"),
            "DELETE" | "UPDATE" => {
                let statement = statement?;
                (!has_word(statement, "WHERE"))
                    .then(|| ("unbounded_write", format!("{command} without WHERE"), false))
            }
            "COPY" => statement
                .filter(|statement| has_word(statement, "PROGRAM"))
                .and_then(|_| simple("copy_program", "COPY ... PROGRAM (runs a shell command)")),
            "ALTER SYSTEM" if self.mentions_audit_setting(event) => {
                Some(("audit_tamper", "ALTER SYSTEM of an audit setting".to_owned(), true))
            }
            "ALTER SYSTEM" => simple("alter_system", "ALTER SYSTEM"),
            "CREATE FUNCTION" | "CREATE PROCEDURE" | "CREATE LANGUAGE" | "CREATE EXTENSION" | "DO" => {
                let language = self.untrusted_language(statement?).or_else(|| {
                    // CREATE EXTENSION plpython3u / CREATE LANGUAGE plperlu name the language directly.
                    sql_words(statement.unwrap_or(""))
                        .find(|word| {
                            self.untrusted_languages
                                .iter()
                                .any(|language| language.eq_ignore_ascii_case(word))
                        })
                        .filter(|_| matches!(command, "CREATE EXTENSION" | "CREATE LANGUAGE"))
                        .map(str::to_ascii_lowercase)
                })?;
                Some(("untrusted_language", format!("{command} in untrusted language {language}"), false))
            }
            "LOAD DATA" | "LOAD" => simple("load", command),
            "DROP EXTENSION" | "UNINSTALL PLUGIN" | "UNINSTALL SONAME"
                if self.mentions_audit_setting(event) =>
            {
                Some(("audit_tamper", format!("{command} of the audit plugin"), true))
            }
            _ if event.class == StatementClass::MiscSet
                || command.starts_with("SET")
                || command.starts_with("ALTER ROLE")
                || command.starts_with("ALTER USER")
                || command.starts_with("ALTER DATABASE") =>
            {
                self.mentions_audit_setting(event)
                    .then(|| ("audit_tamper", format!("{command} of an audit setting"), true))
            }
            _ => None,
        }
    }
}

impl Detector for DangerousCommand {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        let Some((kind, description, tamper)) = self.classify(event) else {
            return;
        };
        if self.common.is_exempt(context) {
            return;
        }
        let role = context.role_name();
        let Some(dedup_key) = out.key_unless_repeat(format_args!("{ID}|{role}|{kind}"), event.ts) else {
            return;
        };
        let verb = if event.success { "ran" } else { "attempted" };
        let target = if event.objects.is_empty() {
            String::new()
        } else {
            format!(" on {}", objects_phrase(&event.objects))
        };
        let summary = format!(
            "{role} ({}) {verb} {description}{target} {}{}",
            context.classes.describe(),
            origin_phrase(event),
            outcome_phrase(event)
        );
        let severity = if tamper { self.audit_tamper_severity } else { self.common.severity };
        let mut alert = alert_for(event, ID, severity, dedup_key, summary);
        alert.labels.insert("kind".to_owned(), kind.to_owned());
        out.push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine_with, event, run};

    fn statement(role: &str, command: &str, class: StatementClass, text: &str) -> AuditEvent {
        let mut statement = event(role, 0);
        statement.command = command.into();
        statement.class = class;
        statement.statement = Some(text.into());
        statement
    }

    fn kinds(events: &[AuditEvent]) -> Vec<String> {
        let mut engine = engine_with(|config| config.detectors.dangerous_command.dedup_window = "0s".into());
        run(&mut engine, events)
            .into_iter()
            .filter(|alert| alert.detector == ID)
            .map(|alert| alert.labels["kind"].clone())
            .collect()
    }

    #[test]
    fn recognizes_each_kind() {
        use StatementClass::{Ddl, MiscSet, Write};
        let events = [
            statement("app_writer", "DELETE", Write, "DELETE FROM orders"),
            statement("app_writer", "UPDATE", Write, "update orders set note = 'where'"),
            statement("dba_admin", "DROP TABLE", Ddl, "DROP TABLE orders"),
            statement("app_writer", "TRUNCATE TABLE", Write, "TRUNCATE orders"),
            statement("app_writer", "COPY", Write, "COPY t FROM PROGRAM 'curl x'"),
            statement("dba_admin", "ALTER SYSTEM", MiscSet, "ALTER SYSTEM SET work_mem = '1GB'"),
            statement("dba_admin", "ALTER SYSTEM", MiscSet, "ALTER SYSTEM SET pgaudit.log = 'none'"),
            statement("app_writer", "SET", MiscSet, "SET pgaudit.log = 'none'"),
            statement("x", "SET", MiscSet, "SET GLOBAL server_audit_logging = OFF"),
            statement(
                "x",
                "CREATE FUNCTION",
                Ddl,
                "CREATE FUNCTION f() RETURNS int AS $$ 1 $$ LANGUAGE plpython3u",
            ),
            statement("x", "CREATE EXTENSION", Ddl, "CREATE EXTENSION plperlu"),
            statement("x", "LOAD DATA", Write, "LOAD DATA INFILE '/etc/passwd' INTO TABLE t"),
            statement("x", "DROP EXTENSION", Ddl, "DROP EXTENSION pgaudit"),
        ];
        assert_eq!(
            kinds(&events),
            [
                "unbounded_write",
                "unbounded_write",
                "drop",
                "truncate",
                "copy_program",
                "alter_system",
                "audit_tamper",
                "audit_tamper",
                "audit_tamper",
                "untrusted_language",
                "untrusted_language",
                "load",
                "audit_tamper",
            ]
        );
    }

    #[test]
    fn near_misses_stay_quiet() {
        use StatementClass::{Ddl, Function, MiscSet, Write};
        let events = [
            statement("app_writer", "DELETE", Write, "DELETE FROM orders WHERE id > 20000"),
            statement("app_writer", "UPDATE", Write, "UPDATE orders SET a = 1 WHERE customer = 'x'"),
            statement("app_writer", "SET", MiscSet, "SET search_path = app"),
            statement(
                "x",
                "CREATE FUNCTION",
                Ddl,
                "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
            ),
            statement("x", "CREATE EXTENSION", Ddl, "CREATE EXTENSION pgaudit"),
            statement("x", "DO", Function, "DO $$ BEGIN END $$"),
            statement("x", "COPY", Write, "COPY t FROM STDIN"),
        ];
        assert!(kinds(&events).is_empty());
    }

    #[test]
    fn tampering_is_critical() {
        let mut engine = engine_with(|_| {});
        let alerts = run(
            &mut engine,
            &[statement("app_writer", "SET", StatementClass::MiscSet, "SET pgaudit.log = 'none'")],
        );
        assert_eq!(alerts[0].severity, Severity::Critical);
        assert_eq!(
            alerts[0].summary,
            "app_writer (writer) ran SET of an audit setting from 127.0.0.1 (webapp)"
        );
    }
}
