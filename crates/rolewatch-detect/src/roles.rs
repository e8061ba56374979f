//! The role map: `[roles]` in the config, compiled into a role -> classes lookup.

use std::collections::BTreeMap;

use crate::fast::FastMap;

use serde::{Deserialize, Serialize};

use crate::ConfigError;
use crate::patterns::Patterns;

/// The `[roles]` section: which database roles are administrators, readers, writers and
/// services. Entries are exact role names or globs (`app_*`, `svc_{api,batch}`), matched
/// case-sensitively. A role may match several classes; `admin` wins for every "non-admin" rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolesConfig {
    /// Administrator roles: DBAs and superusers. Exempt from `ddl_by_non_admin`,
    /// `privilege_change_by_non_admin`, `export_command`; allowed on sensitive objects unless
    /// `[sensitive] admins_allowed = false`. Default: none.
    pub admin: Vec<String>,
    /// Read-only roles (reporting, BI, read replicas of applications): the roles `large_export`
    /// watches. Default: none.
    pub reader: Vec<String>,
    /// Application roles that write data. Default: none.
    pub writer: Vec<String>,
    /// Technical accounts of services (ETL, monitoring). Default: none.
    pub service: Vec<String>,
    /// Named groups of roles, referred to as `@name` in `[sensitive.allow]` keys and in
    /// detectors' `exempt_roles`. Default: none.
    pub groups: BTreeMap<String, Vec<String>>,
    /// The class of a role that matches none of `admin`, `reader`, `writer`, `service`:
    /// `unknown` (default), `reader`, `writer` or `service`. `admin` is refused: an unmapped
    /// role is never trusted.
    pub default_class: RoleClass,
}

/// A class of roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleClass {
    /// Administrators.
    Admin,
    /// Readers.
    Reader,
    /// Writers.
    Writer,
    /// Service accounts.
    Service,
    /// Roles not in the map (when `default_class = "unknown"`).
    #[default]
    Unknown,
}

impl RoleClass {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Reader => "reader",
            Self::Writer => "writer",
            Self::Service => "service",
            Self::Unknown => "unknown",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Admin => 1,
            Self::Reader => 2,
            Self::Writer => 4,
            Self::Service => 8,
            Self::Unknown => 16,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Admin, Self::Reader, Self::Writer, Self::Service, Self::Unknown]
            .into_iter()
            .find(|class| class.as_str() == name)
    }
}

/// The set of classes a role belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RoleClasses(u8);

impl RoleClasses {
    pub(crate) fn of(classes: &[RoleClass]) -> Self {
        Self(classes.iter().fold(0, |bits, class| bits | class.bit()))
    }

    pub(crate) fn contains(self, class: RoleClass) -> bool {
        self.0 & class.bit() != 0
    }

    pub(crate) fn intersects(self, other: RoleClasses) -> bool {
        self.0 & other.0 != 0
    }

    pub(crate) fn is_admin(self) -> bool {
        self.contains(RoleClass::Admin)
    }

    /// The classes for display: `admin`, `reader+writer`, ...
    pub(crate) fn describe(self) -> String {
        let names: Vec<&str> =
            [RoleClass::Admin, RoleClass::Reader, RoleClass::Writer, RoleClass::Service, RoleClass::Unknown]
                .into_iter()
                .filter(|class| self.contains(*class))
                .map(RoleClass::as_str)
                .collect();
        if names.is_empty() { "none".to_owned() } else { names.join("+") }
    }
}

/// How many role names the class cache remembers before starting over.
const ROLE_CACHE_CAPACITY: usize = 65_536;

/// The compiled role map, with a cache so that each role name is matched against the globs once.
#[derive(Debug, Clone)]
pub(crate) struct RoleMap {
    admin: Patterns,
    reader: Patterns,
    writer: Patterns,
    service: Patterns,
    groups: BTreeMap<String, Patterns>,
    default_class: RoleClass,
    cache: FastMap<String, RoleClasses>,
    /// The last role looked up: consecutive events mostly share a role, and comparing two
    /// short strings is cheaper than hashing one.
    last: Option<(String, RoleClasses)>,
}

impl RoleMap {
    pub(crate) fn new(config: &RolesConfig) -> Result<Self, ConfigError> {
        if config.default_class == RoleClass::Admin {
            return Err(ConfigError::InvalidValue {
                key: "roles.default_class".to_owned(),
                reason: "must not be admin: an unmapped role is never trusted".to_owned(),
            });
        }
        let mut groups = BTreeMap::new();
        for (name, members) in &config.groups {
            groups.insert(name.clone(), Patterns::compile(&format!("roles.groups.{name}"), members, false)?);
        }
        Ok(Self {
            admin: Patterns::compile("roles.admin", &config.admin, false)?,
            reader: Patterns::compile("roles.reader", &config.reader, false)?,
            writer: Patterns::compile("roles.writer", &config.writer, false)?,
            service: Patterns::compile("roles.service", &config.service, false)?,
            groups,
            default_class: config.default_class,
            cache: FastMap::default(),
            last: None,
        })
    }

    /// The classes of `role`, from the cache when it was seen before.
    pub(crate) fn classes(&mut self, role: &str) -> RoleClasses {
        if let Some((last_role, classes)) = &self.last
            && last_role == role
        {
            return *classes;
        }
        let classes = match self.cache.get(role) {
            Some(&classes) => classes,
            None => {
                let classes = self.classes_uncached(role);
                if self.cache.len() >= ROLE_CACHE_CAPACITY {
                    self.cache.clear();
                }
                self.cache.insert(role.to_owned(), classes);
                classes
            }
        };
        match &mut self.last {
            Some((last_role, last_classes)) => {
                last_role.clear();
                last_role.push_str(role);
                *last_classes = classes;
            }
            None => self.last = Some((role.to_owned(), classes)),
        }
        classes
    }

    fn classes_uncached(&self, role: &str) -> RoleClasses {
        let mut matched = Vec::with_capacity(4);
        for (class, patterns) in [
            (RoleClass::Admin, &self.admin),
            (RoleClass::Reader, &self.reader),
            (RoleClass::Writer, &self.writer),
            (RoleClass::Service, &self.service),
        ] {
            if patterns.is_match(role) {
                matched.push(class);
            }
        }
        if matched.is_empty() {
            matched.push(self.default_class);
        }
        RoleClasses::of(&matched)
    }

    fn has_group(&self, name: &str) -> bool {
        self.groups.contains_key(name)
    }

    fn in_group(&self, group: &str, role: &str) -> bool {
        self.groups.get(group).is_some_and(|patterns| patterns.is_match(role))
    }
}

/// A list of role selectors from the config: names, globs, `@group` and `@class`
/// (`@admin`, `@reader`, `@writer`, `@service`, `@unknown`).
#[derive(Debug, Clone)]
pub(crate) struct RoleSelector {
    patterns: Patterns,
    groups: Vec<String>,
    classes: RoleClasses,
}

impl RoleSelector {
    pub(crate) fn compile(key: &str, entries: &[String], roles: &RoleMap) -> Result<Self, ConfigError> {
        let mut names = Vec::new();
        let mut groups = Vec::new();
        let mut classes = Vec::new();
        for entry in entries {
            let Some(reference) = entry.strip_prefix('@') else {
                names.push(entry.clone());
                continue;
            };
            if roles.has_group(reference) {
                groups.push(reference.to_owned());
            } else if let Some(class) = RoleClass::from_name(reference) {
                classes.push(class);
            } else {
                return Err(ConfigError::UnknownGroup { key: key.to_owned(), group: reference.to_owned() });
            }
        }
        Ok(Self {
            patterns: Patterns::compile(key, &names, false)?,
            groups,
            classes: RoleClasses::of(&classes),
        })
    }

    pub(crate) fn matches(&self, role: &str, classes: RoleClasses, roles: &RoleMap) -> bool {
        classes.intersects(self.classes)
            || self.patterns.is_match(role)
            || self.groups.iter().any(|group| roles.in_group(group, role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RolesConfig {
        RolesConfig {
            admin: vec!["postgres".into(), "dba_*".into()],
            reader: vec!["app_reader".into(), "report_*".into(), "dba_readonly".into()],
            writer: vec!["app_writer".into()],
            groups: BTreeMap::from([("hr_apps".into(), vec!["hr_*".into()])]),
            ..RolesConfig::default()
        }
    }

    #[test]
    fn classes_from_names_and_globs_admin_wins() {
        let mut roles = RoleMap::new(&config()).unwrap();
        assert!(roles.classes("postgres").is_admin());
        assert!(roles.classes("report_reader").contains(RoleClass::Reader));
        let both = roles.classes("dba_readonly");
        assert!(both.is_admin() && both.contains(RoleClass::Reader));
        assert_eq!(both.describe(), "admin+reader");
        assert_eq!(roles.classes("stranger").describe(), "unknown");
        // Cached answers are the same.
        assert_eq!(roles.classes("stranger").describe(), "unknown");
    }

    #[test]
    fn default_class_is_configurable_but_never_admin() {
        let mut roles = RoleMap::new(&RolesConfig { default_class: RoleClass::Writer, ..config() }).unwrap();
        assert!(roles.classes("stranger").contains(RoleClass::Writer));
        let error = RoleMap::new(&RolesConfig { default_class: RoleClass::Admin, ..config() }).unwrap_err();
        assert!(error.to_string().starts_with("roles.default_class:"), "{error}");
    }

    #[test]
    fn selectors_resolve_groups_and_classes() {
        let mut roles = RoleMap::new(&config()).unwrap();
        let selector =
            RoleSelector::compile("k", &["@hr_apps".into(), "@admin".into(), "etl".into()], &roles).unwrap();
        for (role, expected) in [("hr_app", true), ("postgres", true), ("etl", true), ("app_reader", false)] {
            let classes = roles.classes(role);
            assert_eq!(selector.matches(role, classes, &roles), expected, "{role}");
        }
        let error = RoleSelector::compile("sensitive.allow", &["@nope".into()], &roles).unwrap_err();
        assert_eq!(error.to_string(), "sensitive.allow: unknown role group \"nope\"");
    }
}
