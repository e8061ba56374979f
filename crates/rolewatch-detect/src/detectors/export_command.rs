//! `export_command`: statements and clients that export whole tables and leave no row counts in
//! pgAudit: `COPY ... TO` (file, program or stdout, including psql's `\copy`), MySQL's
//! `SELECT ... INTO OUTFILE/DUMPFILE`, and dump clients (`pg_dump`, `mysqldump`) by any role
//! outside `admin`.

use chrono::TimeDelta;
use rolewatch_event::{AuditEvent, Severity, Source, StatementClass};
use serde::{Deserialize, Serialize};

use super::{
    Alerts, Common, Detector, EventContext, alert_for, objects_phrase, origin_phrase, outcome_phrase,
};
use crate::ConfigError;
use crate::patterns::{CachedPatterns, Patterns, has_word, sql_words};
use crate::roles::RoleMap;

/// The detector id.
pub const ID: &str = "export_command";

/// `[detectors.export_command]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportCommandConfig {
    /// Whether the detector runs. Default: `true`.
    pub enabled: bool,
    /// Alert severity. Default: `high`.
    pub severity: Severity,
    /// Repeats of the same dedup key (detector + role + kind) within this event-time window
    /// fold into one alert. Default: `"10m"`.
    pub dedup_window: String,
    /// Roles never alerted on (names, globs, `@group`, `@class`). Default: none.
    pub exempt_roles: Vec<String>,
    /// Client application names of dump tools, exact or glob, case-insensitive. Default:
    /// `["pg_dump", "pg_dumpall", "mysqldump", "mariadb-dump", "mysqlpump", "mydumper"]`.
    pub dump_applications: Vec<String>,
}

impl Default for ExportCommandConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::High,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
            dump_applications: [
                "pg_dump",
                "pg_dumpall",
                "mysqldump",
                "mariadb-dump",
                "mysqlpump",
                "mydumper",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

/// The runtime of `export_command`.
pub(crate) struct ExportCommand {
    common: Common,
    dump_applications: CachedPatterns,
    /// The last application checked and the answer: consecutive events mostly share it.
    last_application: Option<(String, bool)>,
}

impl ExportCommand {
    pub(crate) fn new(config: &ExportCommandConfig, roles: &RoleMap) -> Result<Option<Self>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        let common = Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?;
        let dump_applications =
            Patterns::compile("detectors.export_command.dump_applications", &config.dump_applications, true)?;
        Ok(Some(Self {
            common,
            dump_applications: CachedPatterns::new(dump_applications),
            last_application: None,
        }))
    }
}

/// Where a `COPY ... TO` sends its data: `PROGRAM`, `STDOUT` or a file.
fn copy_target(statement: Option<&str>) -> &'static str {
    let Some(statement) = statement else {
        return "an unlogged target";
    };
    let mut words = sql_words(statement).skip_while(|word| !word.eq_ignore_ascii_case("TO")).skip(1);
    match words.next() {
        Some(word) if word.eq_ignore_ascii_case("PROGRAM") => "a program",
        Some(word) if word.eq_ignore_ascii_case("STDOUT") => "the client (STDOUT)",
        _ => "a server file",
    }
}

/// The kind of export, or `None`.
fn export_kind(event: &AuditEvent) -> Option<&'static str> {
    let command = event.command.as_str();
    if command.eq_ignore_ascii_case("COPY") {
        let is_copy_to = event.class == StatementClass::Read
            || event.statement.as_deref().is_some_and(|statement| has_word(statement, "TO"));
        return is_copy_to.then_some("copy");
    }
    if command == "SELECT INTO OUTFILE" {
        return Some("outfile");
    }
    // MySQL and MariaDB sources may tag it plain SELECT; PostgreSQL has no OUTFILE.
    if event.source != Source::Postgres && event.class == StatementClass::Read {
        let statement = event.statement.as_deref()?;
        if has_word(statement, "OUTFILE") || has_word(statement, "DUMPFILE") {
            return Some("outfile");
        }
    }
    None
}

impl ExportCommand {
    fn is_dump_client(&mut self, application: &str) -> bool {
        if let Some((last, answer)) = &self.last_application
            && last == application
        {
            return *answer;
        }
        let answer = self.dump_applications.is_match(application);
        let last = self.last_application.get_or_insert_with(|| (String::new(), answer));
        last.0.clear();
        last.0.push_str(application);
        last.1 = answer;
        answer
    }
}

impl Detector for ExportCommand {
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
        let dump_client = event.application.as_deref().filter(|application| self.is_dump_client(application));
        let kind = match (dump_client, export_kind(event)) {
            (Some(_), _) => "dump_client",
            (None, Some(kind)) => kind,
            (None, None) => return,
        };
        if self.common.is_exempt(context) {
            return;
        }
        let role = context.role_name();
        let Some(dedup_key) = out.key_unless_repeat(format_args!("{ID}|{role}|{kind}"), event.ts) else {
            return;
        };
        let origin = origin_phrase(event);
        let outcome = outcome_phrase(event);
        let summary = match (kind, dump_client) {
            ("dump_client", Some(application)) => {
                format!("{role} ran the dump client {application} ({}) {origin}{outcome}", event.command)
            }
            ("copy", _) => format!(
                "{role} exported {} to {} with COPY {origin}{outcome}",
                objects_phrase(&event.objects),
                copy_target(event.statement.as_deref())
            ),
            _ => format!(
                "{role} exported data to a server file with SELECT ... INTO OUTFILE {origin}{outcome}"
            ),
        };
        let mut alert = alert_for(event, ID, self.common.severity, dedup_key, summary);
        alert.labels.insert("kind".to_owned(), kind.to_owned());
        out.push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine_with, event, run};

    fn copy(role: &str, statement: &str, class: StatementClass) -> AuditEvent {
        let mut copy = event(role, 0);
        copy.class = class;
        copy.command = "COPY".into();
        copy.statement = Some(statement.into());
        copy.rows = Some(0);
        copy
    }

    #[test]
    fn copy_to_stdout_alerts_copy_from_does_not() {
        let mut engine = engine_with(|_| {});
        let alerts = run(
            &mut engine,
            &[
                copy("app_reader", "COPY orders TO STDOUT", StatementClass::Read),
                copy("app_writer", "COPY orders FROM STDIN", StatementClass::Write),
                copy("postgres", "COPY orders TO '/tmp/x'", StatementClass::Read),
            ],
        );
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(
            alerts[0].summary,
            "app_reader exported an unnamed relation to the client (STDOUT) with COPY from 127.0.0.1 (webapp)"
        );
    }

    #[test]
    fn dump_clients_and_outfile() {
        let mut engine = engine_with(|_| {});
        let mut dump = event("app_reader", 0);
        dump.application = Some("pg_dump".into());
        dump.class = StatementClass::Connect;
        dump.command = "CONNECT".into();
        let mut outfile = event("app_reader", 1);
        outfile.source = Source::Mariadb;
        outfile.statement = Some("select * from t into outfile '/tmp/t.csv'".into());
        let alerts = run(&mut engine, &[dump, outfile]);
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        assert!(alerts[0].summary.starts_with("app_reader ran the dump client pg_dump (CONNECT)"));
        assert_eq!(alerts[1].labels["kind"], "outfile");
    }
}
