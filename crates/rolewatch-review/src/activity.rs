//! What each role did in the period, folded from the lake's events: seen succeeding or only
//! failing, which privileges it exercised on which objects, from which origins, and which roles
//! it switched to with `SET ROLE`.
//!
//! Attribution: logins, origins and the count of statements go to the role the session
//! authenticated as; privileges and statement classes go to the role in effect, which is the
//! `SET ROLE` target after a successful `SET ROLE` in the session, until `RESET ROLE` or
//! `SET ROLE NONE`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::lake::ActivityEvent;

/// Uses of one privilege on one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Use {
    /// Successful statements.
    pub count: u64,
    /// The last one.
    pub last: DateTime<Utc>,
}

impl Use {
    fn add(entry: Option<&mut Use>, ts: DateTime<Utc>) -> Option<Use> {
        match entry {
            Some(existing) => {
                existing.count += 1;
                existing.last = existing.last.max(ts);
                None
            }
            None => Some(Use { count: 1, last: ts }),
        }
    }
}

/// Statements of one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// Successful events.
    pub ok: u64,
    /// Failed events.
    pub failed: u64,
}

/// One role's activity in the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoleActivity {
    /// Successful events of sessions that authenticated as the role.
    pub successes: u64,
    /// Failed events (statements and logins) of the role.
    pub failures: u64,
    /// Successful logins.
    pub logins: u64,
    /// Failed logins.
    pub failed_logins: u64,
    /// The first event, successful or not.
    pub first_seen: Option<DateTime<Utc>>,
    /// The last successful event.
    pub last_success: Option<DateTime<Utc>>,
    /// The last failed event.
    pub last_failure: Option<DateTime<Utc>>,
    /// Successful statements run with this role in effect, per class (`READ`, `WRITE`, `DDL`...).
    pub classes: BTreeMap<String, u64>,
    /// Privileges exercised with this role in effect: object -> privilege -> uses.
    pub privileges: BTreeMap<String, BTreeMap<String, Use>>,
    /// Origins of its sessions: `application @ address` -> events.
    pub origins: BTreeMap<String, OriginUse>,
    /// Roles this role's sessions switched to with `SET ROLE` -> times.
    pub set_role: BTreeMap<String, u64>,
    /// Roles whose sessions switched to this role -> statements run as it.
    pub assumed_by: BTreeMap<String, u64>,
    /// Events per day.
    pub daily: BTreeMap<NaiveDate, DayCount>,
}

impl RoleActivity {
    /// Whether the role did anything successfully (itself, or through `SET ROLE`).
    pub fn seen_succeeding(&self) -> bool {
        self.successes > 0 || !self.assumed_by.is_empty()
    }

    /// Whether it exercised `privilege` on an object `matches` accepts.
    pub fn exercised(&self, privilege: &str, matches: &dyn Fn(&str) -> bool) -> Option<Use> {
        let mut found: Option<Use> = None;
        for (object, uses) in &self.privileges {
            if !matches(object) {
                continue;
            }
            if let Some(found_use) = uses.get(privilege) {
                found = Some(match found {
                    Some(previous) => Use {
                        count: previous.count + found_use.count,
                        last: previous.last.max(found_use.last),
                    },
                    None => *found_use,
                });
            }
        }
        found
    }
}

/// One origin of a role's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginUse {
    /// The client application.
    pub application: Option<String>,
    /// The client address (`null`: local socket).
    pub client_addr: Option<String>,
    /// Events from it.
    pub events: u64,
    /// The last one.
    pub last: DateTime<Utc>,
}

/// The activity of every role seen in the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// Event files read.
    pub files: u64,
    /// Rows in them.
    pub rows_read: u64,
    /// Events in the period from the reviewed server's family (`source`).
    pub events: u64,
    /// The last event's time.
    pub last_event: Option<DateTime<Utc>>,
    /// Per role.
    pub roles: BTreeMap<String, RoleActivity>,
}

/// Folds events into an [`Activity`], keeping each session's `SET ROLE` state.
#[derive(Debug)]
pub struct ActivityBuilder {
    sources: Vec<String>,
    database: Option<String>,
    fold_case: bool,
    activity: Activity,
    /// (source, session id) -> the role in effect after `SET ROLE`.
    sessions: HashMap<(String, String), String>,
}

impl ActivityBuilder {
    /// Keeps events whose `source` is one of `sources`; objects count only for sessions in
    /// `database` when given (PostgreSQL grants are per database). `fold_case` compares object
    /// names case-insensitively (MariaDB/MySQL).
    pub fn new(sources: &[&str], database: Option<&str>, fold_case: bool) -> Self {
        Self {
            sources: sources.iter().map(|source| (*source).to_owned()).collect(),
            database: database.map(str::to_owned),
            fold_case,
            activity: Activity::default(),
            sessions: HashMap::new(),
        }
    }

    /// Counts a file read.
    pub fn file_read(&mut self, rows: u64) {
        self.activity.files += 1;
        self.activity.rows_read += rows;
    }

    /// Observes one event.
    pub fn observe(&mut self, event: ActivityEvent) {
        if !self.sources.contains(&event.source) {
            return;
        }
        let Some(role) = event.role.clone() else { return };
        self.activity.events += 1;
        self.activity.last_event = Some(self.activity.last_event.map_or(event.ts, |last| last.max(event.ts)));
        let session_key = event.session_id.as_ref().map(|id| (event.source.clone(), id.clone()));
        let is_login = event.command == "CONNECT";
        let is_logout = event.command == "DISCONNECT";
        if is_logout {
            // The end of a session is no use of the role: MariaDB logs one, as a success, even
            // after a failed login.
            if let Some(key) = &session_key {
                self.sessions.remove(key);
            }
            return;
        }

        let login = self.activity.roles.entry(role.clone()).or_default();
        login.first_seen = Some(login.first_seen.map_or(event.ts, |first| first.min(event.ts)));
        let day = login.daily.entry(event.ts.date_naive()).or_default();
        if event.success {
            day.ok += 1;
            login.successes += 1;
            login.last_success = Some(login.last_success.map_or(event.ts, |last| last.max(event.ts)));
        } else {
            day.failed += 1;
            login.failures += 1;
            login.last_failure = Some(login.last_failure.map_or(event.ts, |last| last.max(event.ts)));
        }
        if is_login {
            if event.success {
                login.logins += 1;
            } else {
                login.failed_logins += 1;
            }
        }
        // PostgreSQL logs a connection before the client names its application: a session's
        // origin is taken from its statements then, not from a nameless CONNECT.
        let nameless_session_event = is_login && event.application.is_none();
        if event.success && !nameless_session_event {
            let origin_key = format!(
                "{} @ {}",
                event.application.as_deref().unwrap_or("(no application)"),
                event.client_addr.as_deref().unwrap_or("local socket")
            );
            let origin = login.origins.entry(origin_key).or_insert_with(|| OriginUse {
                application: event.application.clone(),
                client_addr: event.client_addr.clone(),
                events: 0,
                last: event.ts,
            });
            origin.events += 1;
            origin.last = origin.last.max(event.ts);
        }
        if !event.success {
            return;
        }
        if let Some(switch) = event.statement.as_deref().and_then(parse_set_role) {
            if let Some(key) = session_key {
                match switch {
                    RoleSwitch::To(target) => {
                        *login.set_role.entry(target.clone()).or_default() += 1;
                        self.sessions.insert(key, target);
                    }
                    RoleSwitch::Reset => {
                        self.sessions.remove(&key);
                    }
                }
            }
            return;
        }
        let effective = session_key.as_ref().and_then(|key| self.sessions.get(key)).cloned();
        let acting = match &effective {
            Some(target) if *target != role => {
                let acting = self.activity.roles.entry(target.clone()).or_default();
                *acting.assumed_by.entry(role.clone()).or_default() += 1;
                acting.last_success = Some(acting.last_success.map_or(event.ts, |last| last.max(event.ts)));
                acting.first_seen = Some(acting.first_seen.map_or(event.ts, |first| first.min(event.ts)));
                acting
            }
            _ => self.activity.roles.entry(role).or_default(),
        };
        *acting.classes.entry(event.class.clone()).or_default() += 1;
        let in_database = match (&self.database, &event.database) {
            (Some(wanted), Some(database)) => wanted == database,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !in_database {
            return;
        }
        for (object, privilege) in privileges_exercised(&event) {
            let object = if self.fold_case { object.to_lowercase() } else { object };
            let uses = acting.privileges.entry(object).or_default();
            if let Some(new) = Use::add(uses.get_mut(privilege), event.ts) {
                uses.insert(privilege.to_owned(), new);
            }
        }
    }

    /// The activity folded so far.
    pub fn finish(self) -> Activity {
        self.activity
    }
}

/// A `SET ROLE` statement's effect.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RoleSwitch {
    /// `SET [SESSION | LOCAL] ROLE name`.
    To(String),
    /// `RESET ROLE`, `SET ROLE NONE`, `SET ROLE DEFAULT`.
    Reset,
}

/// Reads `SET ROLE x`, `SET SESSION ROLE "x"`, `RESET ROLE`, `SET ROLE NONE`.
fn parse_set_role(statement: &str) -> Option<RoleSwitch> {
    let trimmed = statement.trim().trim_end_matches(';').trim();
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let upper: Vec<String> = words.iter().take(3).map(|word| word.to_ascii_uppercase()).collect();
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    let rest_from = match upper.as_slice() {
        ["RESET", "ROLE", ..] => return Some(RoleSwitch::Reset),
        ["SET", "ROLE", ..] => 2,
        ["SET", "SESSION" | "LOCAL", "ROLE"] => 3,
        _ => return None,
    };
    let name = words.get(rest_from..)?.join(" ");
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    if name.eq_ignore_ascii_case("NONE") || name.eq_ignore_ascii_case("DEFAULT") {
        return Some(RoleSwitch::Reset);
    }
    let unquoted = strip_quotes(name);
    Some(RoleSwitch::To(unquoted))
}

fn strip_quotes(name: &str) -> String {
    for quote in ['"', '\'', '`'] {
        if let Some(inner) = name.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)) {
            let doubled = format!("{quote}{quote}");
            return inner.replace(&doubled, &quote.to_string());
        }
    }
    name.to_owned()
}

/// The table privileges a successful statement needed, per object.
///
/// `SELECT` reads every object; `INSERT`, `UPDATE`, `DELETE` (and `MERGE`, `REPLACE`) write the
/// first object, their target, and read the others; `UPDATE` and `DELETE` also count as reading
/// their target (a `WHERE` clause needs `SELECT`), so a grant they rely on is never proposed
/// for revocation. `TRUNCATE` truncates every object; `COPY` reads (`READ` class, `COPY ... TO`)
/// or inserts (`WRITE` class, `COPY ... FROM`); `CREATE TABLE AS` and `SELECT INTO` read.
pub fn privileges_exercised(event: &ActivityEvent) -> Vec<(String, &'static str)> {
    let objects = &event.objects;
    let mut used = Vec::new();
    let mut target_then_reads = |target_privileges: &[&'static str]| {
        for (index, object) in objects.iter().enumerate() {
            if index == 0 {
                for privilege in target_privileges {
                    used.push((object.clone(), *privilege));
                }
            } else {
                used.push((object.clone(), "SELECT"));
            }
        }
    };
    match event.command.as_str() {
        "INSERT" => target_then_reads(&["INSERT"]),
        "UPDATE" => target_then_reads(&["UPDATE", "SELECT"]),
        "DELETE" => target_then_reads(&["DELETE", "SELECT"]),
        "MERGE" => target_then_reads(&["INSERT", "UPDATE", "DELETE", "SELECT"]),
        "REPLACE" => target_then_reads(&["INSERT", "DELETE"]),
        "SELECT"
        | "CREATE TABLE AS"
        | "SELECT INTO"
        | "CREATE MATERIALIZED VIEW"
        | "REFRESH MATERIALIZED VIEW" => {
            used.extend(objects.iter().map(|object| (object.clone(), "SELECT")));
        }
        "TRUNCATE" | "TRUNCATE TABLE" if objects.is_empty() => {
            // pgAudit logs TRUNCATE as a utility statement, without its relations: read them
            // from the statement.
            let default_schema =
                if event.source == "postgres" { Some("public") } else { event.database.as_deref() };
            let named = event
                .statement
                .as_deref()
                .map(|text| truncated_tables(text, default_schema))
                .unwrap_or_default();
            used.extend(named.into_iter().map(|object| (object, "TRUNCATE")));
        }
        "TRUNCATE" | "TRUNCATE TABLE" => {
            used.extend(objects.iter().map(|object| (object.clone(), "TRUNCATE")))
        }
        "COPY" => {
            let privilege = if event.class == "WRITE" { "INSERT" } else { "SELECT" };
            used.extend(objects.iter().map(|object| (object.clone(), privilege)));
        }
        _ => {}
    }
    used
}

/// The tables of `TRUNCATE [TABLE] [ONLY] a, b.c [*] [RESTART IDENTITY] [CASCADE]`, as
/// `schema.table`; unqualified names get `default_schema` (PostgreSQL: `public`, the default
/// `search_path`; MariaDB: the session's database), or are left out without one.
fn truncated_tables(statement: &str, default_schema: Option<&str>) -> Vec<String> {
    let text = statement.trim().trim_end_matches(';');
    let mut words = text.split_whitespace().peekable();
    if !words.next().is_some_and(|word| word.eq_ignore_ascii_case("TRUNCATE")) {
        return Vec::new();
    }
    let rest: Vec<&str> = words
        .skip_while(|word| word.eq_ignore_ascii_case("TABLE") || word.eq_ignore_ascii_case("ONLY"))
        .take_while(|word| {
            !["RESTART", "CONTINUE", "CASCADE", "RESTRICT"]
                .iter()
                .any(|keyword| word.eq_ignore_ascii_case(keyword))
        })
        .collect();
    rest.join(" ")
        .split(',')
        .filter_map(|name| {
            let name = name.trim().trim_end_matches('*').trim();
            let name = name.strip_prefix("ONLY ").unwrap_or(name).trim();
            if name.is_empty() {
                return None;
            }
            let parts: Vec<String> = name.split('.').map(|part| unfold(part.trim())).collect();
            match parts.as_slice() {
                [table] => default_schema.map(|schema| format!("{schema}.{table}")),
                [schema, table] => Some(format!("{schema}.{table}")),
                _ => None,
            }
        })
        .collect()
}

/// A name part as the server stores it: quoted parts as written, unquoted ones folded to lower
/// case (PostgreSQL's rule; MariaDB names are compared case-insensitively anyway).
fn unfold(part: &str) -> String {
    let quoted =
        ['"', '`'].iter().any(|quote| part.starts_with(*quote) && part.ends_with(*quote) && part.len() >= 2);
    if quoted { strip_quotes(part) } else { part.to_lowercase() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        role: &str,
        session: &str,
        command: &str,
        class: &str,
        objects: &[&str],
        statement: &str,
    ) -> ActivityEvent {
        ActivityEvent {
            ts: "2026-11-20T10:00:00Z".parse().unwrap(),
            source: "postgres".into(),
            database: Some("shop".into()),
            role: Some(role.into()),
            client_addr: Some("127.0.0.1".into()),
            application: Some("psql".into()),
            session_id: Some(session.into()),
            command: command.into(),
            class: class.into(),
            objects: objects.iter().map(|object| (*object).to_owned()).collect(),
            statement: Some(statement.into()),
            success: true,
        }
    }

    #[test]
    fn truncate_names_its_tables_in_the_statement() {
        assert_eq!(truncated_tables("TRUNCATE t;", Some("public")), ["public.t"]);
        assert_eq!(
            truncated_tables("truncate table only sales.a, \"B\" * RESTART IDENTITY CASCADE", Some("public")),
            ["sales.a", "public.B"]
        );
        assert!(truncated_tables("TRUNCATE t", None).is_empty());
        assert!(truncated_tables("SELECT 1", Some("public")).is_empty());
        let mut event = event("w", "s", "TRUNCATE TABLE", "WRITE", &[], "TRUNCATE orders;");
        assert_eq!(privileges_exercised(&event), [("public.orders".to_owned(), "TRUNCATE")]);
        event.objects = vec!["public.x".into()];
        assert_eq!(privileges_exercised(&event), [("public.x".to_owned(), "TRUNCATE")]);
    }

    #[test]
    fn set_role_statements() {
        assert_eq!(parse_set_role("SET ROLE ops"), Some(RoleSwitch::To("ops".into())));
        assert_eq!(parse_set_role("set session role \"Ops Team\";"), Some(RoleSwitch::To("Ops Team".into())));
        assert_eq!(parse_set_role("RESET ROLE"), Some(RoleSwitch::Reset));
        assert_eq!(parse_set_role("SET ROLE NONE"), Some(RoleSwitch::Reset));
        assert_eq!(parse_set_role("SET search_path = x"), None);
        assert_eq!(parse_set_role("SET ROLE"), None);
        assert_eq!(parse_set_role("SET DEFAULT ROLE r FOR u"), None);
    }

    #[test]
    fn privileges_go_to_the_role_in_effect() {
        let mut builder = ActivityBuilder::new(&["postgres"], Some("shop"), false);
        builder.observe(event("alice", "s1", "SELECT", "READ", &["public.orders"], "SELECT * FROM orders"));
        builder.observe(event("alice", "s1", "SET", "MISC_SET", &[], "SET ROLE ops"));
        builder.observe(event(
            "alice",
            "s1",
            "UPDATE",
            "WRITE",
            &["public.orders", "public.rates"],
            "UPDATE ...",
        ));
        builder.observe(event("alice", "s1", "RESET", "MISC_SET", &[], "RESET ROLE"));
        builder.observe(event("alice", "s1", "DELETE", "WRITE", &["public.orders"], "DELETE ..."));
        let mut other_database =
            event("alice", "s2", "TRUNCATE TABLE", "WRITE", &["public.orders"], "TRUNCATE orders");
        other_database.database = Some("postgres".into());
        builder.observe(other_database);
        let mut failed_login = event("carol", "s4", "CONNECT", "CONNECT", &[], "");
        failed_login.success = false;
        builder.observe(failed_login);
        builder.observe(event("carol", "s4", "DISCONNECT", "DISCONNECT", &[], ""));
        let mut failed = event("bob", "s3", "SELECT", "READ", &["public.orders"], "SELECT 1");
        failed.success = false;
        builder.observe(failed);
        let activity = builder.finish();

        let alice = &activity.roles["alice"];
        assert_eq!(alice.successes, 6);
        assert_eq!(alice.set_role["ops"], 1);
        assert!(alice.privileges["public.orders"].contains_key("SELECT"));
        assert!(alice.privileges["public.orders"].contains_key("DELETE"));
        assert!(!alice.privileges["public.orders"].contains_key("UPDATE"));
        assert!(!alice.privileges["public.orders"].contains_key("TRUNCATE"), "another database");
        let ops = &activity.roles["ops"];
        assert_eq!(ops.assumed_by["alice"], 1);
        assert_eq!(ops.privileges["public.orders"]["UPDATE"].count, 1);
        assert_eq!(ops.privileges["public.rates"]["SELECT"].count, 1);
        assert!(ops.seen_succeeding());
        let bob = &activity.roles["bob"];
        assert!(!bob.seen_succeeding());
        assert_eq!(bob.failures, 1);
        assert!(bob.privileges.is_empty());
        let carol = &activity.roles["carol"];
        assert!(!carol.seen_succeeding(), "a session's end after a failed login is no success");
        assert_eq!((carol.failed_logins, carol.successes), (1, 0));
    }

    #[test]
    fn other_sources_are_ignored() {
        let mut builder = ActivityBuilder::new(&["mariadb"], None, true);
        builder.observe(event("alice", "s1", "SELECT", "READ", &["public.orders"], "SELECT 1"));
        let mut maria = event("alice", "7", "SELECT", "READ", &["Shop.Orders"], "SELECT 1");
        maria.source = "mariadb".into();
        builder.observe(maria);
        let activity = builder.finish();
        assert_eq!(activity.events, 1);
        assert!(activity.roles["alice"].privileges.contains_key("shop.orders"));
    }
}
