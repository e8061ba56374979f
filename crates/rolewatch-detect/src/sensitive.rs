//! `[sensitive]`: which schemas and tables hold sensitive data, and who may touch them.

use std::collections::BTreeMap;

use crate::fast::FastMap;

use serde::{Deserialize, Serialize};

use crate::ConfigError;
use crate::patterns::{Patterns, sql_words};
use crate::roles::{RoleClasses, RoleMap, RoleSelector};

/// How many objects (and role/object pairs) the caches remember before starting over.
const CACHE_CAPACITY: usize = 65_536;

/// The `[sensitive]` section. Objects are `schema.table` as the event model writes them;
/// patterns are exact or glob and match case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensitiveConfig {
    /// Schemas whose every table is sensitive, e.g. `["hr", "pii_*"]`. Default: none.
    pub schemas: Vec<String>,
    /// Sensitive tables: `schema.table` (globs allowed, `*.cards`), or a bare table name that
    /// matches in any schema. Default: none.
    pub tables: Vec<String>,
    /// Allowances: role (name, glob, `@group` or `@class`) -> the sensitive objects it may
    /// touch, as schema names (`"hr"`) or `schema.table` globs (`"hr.salaries"`, `"hr.*"`).
    /// Example: `[sensitive.allow]` then `hr_app = ["hr"]`. Default: none.
    pub allow: BTreeMap<String, Vec<String>>,
    /// Whether admin roles may touch every sensitive object without an allowance.
    /// Default: `true`.
    pub admins_allowed: bool,
}

impl Default for SensitiveConfig {
    fn default() -> Self {
        Self { schemas: Vec::new(), tables: Vec::new(), allow: BTreeMap::new(), admins_allowed: true }
    }
}

/// Schema-level and `schema.table`-level patterns.
#[derive(Debug, Clone)]
struct ObjectPatterns {
    schemas: Patterns,
    qualified: Patterns,
    bare_tables: Patterns,
}

impl ObjectPatterns {
    fn compile(key: &str, schemas: &[String], objects: &[String]) -> Result<Self, ConfigError> {
        let mut schema_patterns = schemas.to_vec();
        let mut qualified = Vec::new();
        let mut bare = Vec::new();
        for object in objects {
            if object.contains('.') {
                qualified.push(object.clone());
            } else if schemas.is_empty() {
                // `[sensitive] tables`: a bare name is a table in any schema.
                bare.push(object.clone());
            } else {
                schema_patterns.push(object.clone());
            }
        }
        Ok(Self {
            schemas: Patterns::compile(key, &schema_patterns, true)?,
            qualified: Patterns::compile(key, &qualified, true)?,
            bare_tables: Patterns::compile(key, &bare, true)?,
        })
    }

    fn is_match(&self, object: &str) -> bool {
        let (schema, table) = object.split_once('.').unwrap_or(("", object));
        (!schema.is_empty() && self.schemas.is_match(schema))
            || self.qualified.is_match(object)
            || self.bare_tables.is_match(table)
    }
}

/// The compiled `[sensitive]` section with its caches.
#[derive(Debug, Clone)]
pub(crate) struct SensitiveMap {
    sensitive: ObjectPatterns,
    allowances: Vec<(RoleSelector, ObjectPatterns)>,
    admins_allowed: bool,
    object_cache: FastMap<String, bool>,
    allowed_cache: FastMap<String, FastMap<String, bool>>,
    allowed_cache_len: usize,
}

impl SensitiveMap {
    pub(crate) fn new(config: &SensitiveConfig, roles: &RoleMap) -> Result<Self, ConfigError> {
        // Schemas go through `schemas`, tables through `tables`: a bare name in `tables` is a
        // table name, never a schema.
        let mut sensitive = ObjectPatterns::compile("sensitive.schemas", &config.schemas, &[])?;
        let tables = ObjectPatterns::compile("sensitive.tables", &[], &config.tables)?;
        sensitive.qualified = tables.qualified;
        sensitive.bare_tables = tables.bare_tables;
        let mut allowances = Vec::new();
        for (role, objects) in &config.allow {
            let key = format!("sensitive.allow.{role}");
            let selector = RoleSelector::compile(&key, std::slice::from_ref(role), roles)?;
            // In allowances a bare name is a schema.
            let patterns = ObjectPatterns::compile(&key, &[], &[])?;
            let schemas: Vec<String> =
                objects.iter().filter(|object| !object.contains('.')).cloned().collect();
            let qualified: Vec<String> =
                objects.iter().filter(|object| object.contains('.')).cloned().collect();
            let patterns = ObjectPatterns {
                schemas: Patterns::compile(&key, &schemas, true)?,
                qualified: Patterns::compile(&key, &qualified, true)?,
                bare_tables: patterns.bare_tables,
            };
            allowances.push((selector, patterns));
        }
        Ok(Self {
            sensitive,
            allowances,
            admins_allowed: config.admins_allowed,
            object_cache: FastMap::default(),
            allowed_cache: FastMap::default(),
            allowed_cache_len: 0,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sensitive.schemas.is_empty()
            && self.sensitive.qualified.is_empty()
            && self.sensitive.bare_tables.is_empty()
    }

    /// Whether `object` (`schema.table`) is sensitive; cached.
    pub(crate) fn is_sensitive(&mut self, object: &str) -> bool {
        if let Some(&answer) = self.object_cache.get(object) {
            return answer;
        }
        let answer = self.sensitive.is_match(object);
        if self.object_cache.len() >= CACHE_CAPACITY {
            self.object_cache.clear();
        }
        self.object_cache.insert(object.to_owned(), answer);
        answer
    }

    /// Whether `role` may touch the sensitive `object`; cached per role and object.
    pub(crate) fn is_allowed(
        &mut self,
        role: &str,
        classes: RoleClasses,
        roles: &RoleMap,
        object: &str,
    ) -> bool {
        if self.admins_allowed && classes.is_admin() {
            return true;
        }
        if let Some(&answer) = self.allowed_cache.get(role).and_then(|objects| objects.get(object)) {
            return answer;
        }
        let answer = self
            .allowances
            .iter()
            .any(|(selector, objects)| selector.matches(role, classes, roles) && objects.is_match(object));
        if self.allowed_cache_len >= CACHE_CAPACITY {
            self.allowed_cache.clear();
            self.allowed_cache_len = 0;
        }
        self.allowed_cache.entry(role.to_owned()).or_default().insert(object.to_owned(), answer);
        self.allowed_cache_len += 1;
        answer
    }

    /// Sensitive objects named in a statement's text, for events whose source did not list
    /// objects (a failed statement, a denied read): every `schema.table` word pair, and bare
    /// names that match a sensitive table. Lower-cased; quotes are dropped.
    pub(crate) fn objects_in_statement(&mut self, statement: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut words = StatementNames::new(statement);
        while let Some(name) = words.next_name() {
            if self.is_sensitive(&name) && !found.contains(&name) {
                found.push(name);
            }
        }
        found
    }
}

/// Reads dotted names (`hr.salaries`, `"HR"."Salaries"`) out of a statement.
struct StatementNames<'a> {
    rest: &'a str,
}

impl<'a> StatementNames<'a> {
    fn new(statement: &'a str) -> Self {
        Self { rest: statement }
    }

    fn next_name(&mut self) -> Option<String> {
        // A word, then optionally `.` and a second word, quotes dropped.
        let mut words = sql_words(self.rest);
        let first = words.next()?;
        let offset = offset_after(self.rest, first);
        let after = self.rest.get(offset..).unwrap_or("");
        let after_trimmed = after.trim_start_matches(['"', '`']);
        self.rest = after;
        if let Some(tail) = after_trimmed.strip_prefix('.') {
            let tail = tail.trim_start_matches(['"', '`']);
            let mut tail_words = sql_words(tail);
            if let Some(second) = tail_words.next()
                && tail.starts_with(second)
            {
                self.rest = tail.get(second.len()..).unwrap_or("");
                return Some(format!("{}.{}", first.to_ascii_lowercase(), second.to_ascii_lowercase()));
            }
        }
        Some(first.to_ascii_lowercase())
    }
}

/// The byte offset just past `word`, a sub-slice of `text`.
fn offset_after(text: &str, word: &str) -> usize {
    let start = (word.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    start.saturating_add(word.len()).min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::RolesConfig;

    fn map(config: SensitiveConfig) -> (SensitiveMap, RoleMap) {
        let roles = RoleMap::new(&RolesConfig {
            admin: vec!["postgres".into()],
            groups: BTreeMap::from([("hr_team".into(), vec!["hr_*".into()])]),
            ..RolesConfig::default()
        })
        .unwrap();
        (SensitiveMap::new(&config, &roles).unwrap(), roles)
    }

    #[test]
    fn schemas_tables_and_bare_tables() {
        let (mut sensitive, _) = map(SensitiveConfig {
            schemas: vec!["hr".into()],
            tables: vec!["public.cards".into(), "ssn".into()],
            ..SensitiveConfig::default()
        });
        assert!(sensitive.is_sensitive("hr.salaries"));
        assert!(sensitive.is_sensitive("HR.Salaries"));
        assert!(sensitive.is_sensitive("public.cards"));
        assert!(sensitive.is_sensitive("other.ssn"));
        assert!(!sensitive.is_sensitive("public.orders"));
        assert!(!sensitive.is_sensitive("hr"));
    }

    #[test]
    fn allowances_by_name_group_and_admin() {
        let (mut sensitive, mut roles) = map(SensitiveConfig {
            schemas: vec!["hr".into(), "pay".into()],
            allow: BTreeMap::from([
                ("@hr_team".into(), vec!["hr".into()]),
                ("payroll".into(), vec!["pay.runs".into()]),
            ]),
            ..SensitiveConfig::default()
        });
        let mut allowed = |role: &str, object: &str| {
            let classes = roles.classes(role);
            sensitive.is_allowed(role, classes, &roles, object)
        };
        assert!(allowed("hr_app", "hr.salaries"));
        assert!(!allowed("hr_app", "pay.runs"));
        assert!(allowed("payroll", "pay.runs"));
        assert!(!allowed("payroll", "pay.bank"));
        assert!(allowed("postgres", "pay.bank"));
        assert!(!allowed("app_reader", "hr.salaries"));
        assert!(!allowed("app_reader", "hr.salaries"));
    }

    #[test]
    fn admins_can_be_refused() {
        let (mut sensitive, mut roles) = map(SensitiveConfig {
            schemas: vec!["hr".into()],
            admins_allowed: false,
            ..SensitiveConfig::default()
        });
        let classes = roles.classes("postgres");
        assert!(!sensitive.is_allowed("postgres", classes, &roles, "hr.salaries"));
    }

    #[test]
    fn objects_from_statement_text() {
        let (mut sensitive, _) = map(SensitiveConfig {
            schemas: vec!["hr".into()],
            tables: vec!["cards".into()],
            ..SensitiveConfig::default()
        });
        assert_eq!(sensitive.objects_in_statement("SELECT * FROM hr.salaries"), ["hr.salaries"]);
        assert_eq!(
            sensitive.objects_in_statement(r#"select * from "HR"."employees" e join cards c on true"#),
            ["hr.employees", "cards"]
        );
        assert!(sensitive.objects_in_statement("SELECT 'hr.salaries' FROM public.orders").is_empty());
    }
}
