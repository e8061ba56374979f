//! The cross of the catalog with the activity: the findings, each with proposed SQL, the
//! evidence behind it and the risk of applying it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::activity::{Activity, RoleActivity, Use};
use crate::catalog::{Catalog, CatalogRole, Grant, GrantObject};
use crate::policy::Policy;
use crate::sql::SqlWriter;

/// The privileges a review judges: those an audit log shows being used. Others (`REFERENCES`,
/// `TRIGGER`, `EXECUTE`...) are counted in [`CatalogSummary::grants_not_judged`].
pub const JUDGED_PRIVILEGES: [&str; 5] = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"];
const WRITE_PRIVILEGES: [&str; 4] = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"];
/// Statement classes that change nothing: a role whose work is only these is used for reads.
const ROUTINE_CLASSES: [&str; 5] = ["READ", "MISC", "MISC_SET", "CONNECT", "DISCONNECT"];

/// How risky applying a proposal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// Unlikely to break anything the lake shows.
    Low,
    /// May break something used less often than the period, or outside what the lake sees.
    Medium,
    /// Touches administrative power: review with the role's owner first.
    High,
}

impl RiskLevel {
    /// `low`, `medium`, `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// The risk of applying a finding's SQL, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    /// How risky.
    pub level: RiskLevel,
    /// What could break.
    pub reason: String,
}

/// What every finding carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proposal {
    /// Statements to run, in order, by a human after review (comments start with `--`).
    pub proposed_sql: Vec<String>,
    /// What the catalog and the lake show.
    pub evidence: Vec<String>,
    /// The risk of applying it.
    pub risk: Risk,
}

/// A role that can log in but was never seen, or only seen failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnusedRole {
    /// The role or user.
    pub role: String,
    /// The account's host (MariaDB/MySQL).
    pub host: Option<String>,
    /// `never_seen`, `only_failing`, or `no_members` (a group role nobody holds or assumes).
    pub kind: String,
    /// Proposal, evidence, risk.
    #[serde(flatten)]
    pub proposal: Proposal,
}

/// A grant never exercised in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnusedPrivilege {
    /// The grantee.
    pub role: String,
    /// The grantee's host (MariaDB/MySQL).
    pub host: Option<String>,
    /// `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`.
    pub privilege: String,
    /// `schema.table`, `db.*` or `*.*`.
    pub object: String,
    /// Proposal, evidence, risk.
    #[serde(flatten)]
    pub proposal: Proposal,
}

/// A role whose grants or powers are broader than what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BroaderThanUse {
    /// The role.
    pub role: String,
    /// The account's host (MariaDB/MySQL).
    pub host: Option<String>,
    /// `holds_unused_write_grants` or `admin_used_for_routine_reads`.
    pub kind: String,
    /// Proposal, evidence, risk.
    #[serde(flatten)]
    pub proposal: Proposal,
}

/// A role used from an origin its class should not come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnexpectedOrigin {
    /// The role.
    pub role: String,
    /// `admin_from_service_origin` or `service_from_other_origin`.
    pub kind: String,
    /// The client application.
    pub application: Option<String>,
    /// The client address (`null`: local socket).
    pub client_addr: Option<String>,
    /// Events from that origin in the period.
    pub events: u64,
    /// Proposal, evidence, risk.
    #[serde(flatten)]
    pub proposal: Proposal,
}

/// A membership never used: no `SET ROLE`, and no inherited privilege exercised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnusedMembership {
    /// The role granted.
    pub role: String,
    /// The member.
    pub member: String,
    /// The member's host (MariaDB/MySQL).
    pub member_host: Option<String>,
    /// Proposal, evidence, risk.
    #[serde(flatten)]
    pub proposal: Proposal,
}

/// Counts from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogSummary {
    /// `postgres`, `mariadb`, `mysql`.
    pub source: String,
    /// The server's version.
    pub server_version: String,
    /// The database whose grants were read (PostgreSQL).
    pub database: Option<String>,
    /// Roles and accounts (system ones included).
    pub roles: usize,
    /// Roles that can log in.
    pub login_roles: usize,
    /// Memberships.
    pub memberships: usize,
    /// Grants.
    pub grants: usize,
    /// Grants of privileges a log cannot show being used.
    pub grants_not_judged: usize,
    /// Default privileges.
    pub default_privileges: usize,
}

/// One role's line in the activity table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleSummary {
    /// The role.
    pub role: String,
    /// In the catalog (a role seen in the lake may have been dropped since).
    pub in_catalog: bool,
    /// Can log in.
    pub can_login: bool,
    /// Superuser or other admin rights (catalog), or `admin` in `[roles]`.
    pub privileged: bool,
    /// What the lake shows.
    #[serde(flatten)]
    pub activity: RoleActivity,
}

/// The period reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// Its start: events before are ignored.
    pub since: DateTime<Utc>,
    /// When the review ran.
    pub until: DateTime<Utc>,
}

/// The whole review. Its JSON is the `--output json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// The period.
    pub period: Period,
    /// The catalog read.
    pub catalog: CatalogSummary,
    /// The lake read: files, rows, events of the server's family.
    pub lake: LakeSummary,
    /// Roles that can log in and were never seen, or only failing.
    pub unused_roles: Vec<UnusedRole>,
    /// Grants never exercised.
    pub unused_privileges: Vec<UnusedPrivilege>,
    /// Roles broader than their use.
    pub broader_than_use: Vec<BroaderThanUse>,
    /// Roles used from unexpected origins.
    pub unexpected_origins: Vec<UnexpectedOrigin>,
    /// Memberships never used.
    pub unused_memberships: Vec<UnusedMembership>,
    /// Every catalog role and every role seen, with its activity.
    pub activity: Vec<RoleSummary>,
}

/// What was read from the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LakeSummary {
    /// Event files read.
    pub files: u64,
    /// Rows in them.
    pub rows_read: u64,
    /// Events in the period from the reviewed server's family.
    pub events: u64,
    /// The last event.
    pub last_event: Option<DateTime<Utc>>,
}

/// Crosses `catalog` with `activity` under `policy`.
pub fn review(catalog: &Catalog, activity: &Activity, policy: &Policy, period: Period) -> Review {
    let cross = Cross::new(catalog, activity, policy, period);
    Review {
        period,
        catalog: cross.catalog_summary(),
        lake: LakeSummary {
            files: activity.files,
            rows_read: activity.rows_read,
            events: activity.events,
            last_event: activity.last_event,
        },
        unused_roles: cross.unused_roles(),
        unused_privileges: cross.unused_privileges(),
        broader_than_use: cross.broader_than_use(),
        unexpected_origins: cross.unexpected_origins(),
        unused_memberships: cross.unused_memberships(),
        activity: cross.role_summaries(),
    }
}

struct Cross<'a> {
    catalog: &'a Catalog,
    activity: &'a Activity,
    policy: &'a Policy,
    period: Period,
    sql: SqlWriter,
    fold_case: bool,
    empty: RoleActivity,
}

impl<'a> Cross<'a> {
    fn new(catalog: &'a Catalog, activity: &'a Activity, policy: &'a Policy, period: Period) -> Self {
        Self {
            catalog,
            activity,
            policy,
            period,
            sql: SqlWriter::new(catalog.dialect),
            fold_case: catalog.dialect == crate::catalog::Dialect::Mysql,
            empty: RoleActivity::default(),
        }
    }

    fn of(&self, role: &str) -> &RoleActivity {
        self.activity.roles.get(role).unwrap_or(&self.empty)
    }

    fn period_text(&self) -> String {
        format!(
            "{} to {}",
            self.period.since.format("%Y-%m-%d %H:%M UTC"),
            self.period.until.format("%Y-%m-%d %H:%M UTC")
        )
    }

    fn privileged(&self, role: &CatalogRole) -> bool {
        role.is_privileged() || self.policy.is_admin(&role.name)
    }

    fn reviewable(&self, role: &CatalogRole) -> bool {
        !role.system
    }

    fn catalog_summary(&self) -> CatalogSummary {
        CatalogSummary {
            source: self.catalog.source.clone(),
            server_version: self.catalog.server_version.clone(),
            database: self.catalog.database.clone(),
            roles: self.catalog.roles.len(),
            login_roles: self.catalog.roles.iter().filter(|role| role.can_login).count(),
            memberships: self.catalog.memberships.len(),
            grants: self.catalog.grants.len(),
            grants_not_judged: self
                .catalog
                .grants
                .iter()
                .filter(|grant| !JUDGED_PRIVILEGES.contains(&grant.privilege.as_str()))
                .count(),
            default_privileges: self.catalog.default_privileges.len(),
        }
    }

    /// Roles whose exercise of a privilege counts for a grant to `grantee`: the grantee (also
    /// when assumed through `SET ROLE`) and every member that inherits it, transitively.
    fn holders(&self, grantee: &str) -> BTreeSet<String> {
        if grantee == "PUBLIC" {
            return self.activity.roles.keys().cloned().collect();
        }
        let mut holders = BTreeSet::from([grantee.to_owned()]);
        let mut pending = vec![grantee.to_owned()];
        while let Some(role) = pending.pop() {
            for membership in self.catalog.memberships.iter().filter(|membership| membership.role == role) {
                if membership.inherit && holders.insert(membership.member.clone()) {
                    pending.push(membership.member.clone());
                }
            }
        }
        holders
    }

    fn object_matcher(&self, object: &GrantObject) -> impl Fn(&str) -> bool + use<> {
        let fold = self.fold_case;
        let normal = move |text: &str| if fold { text.to_lowercase() } else { text.to_owned() };
        let (exact, prefix) = match object {
            GrantObject::Table { schema, name } => (Some(normal(&format!("{schema}.{name}"))), None),
            GrantObject::Schema { schema } => (None, Some(normal(&format!("{schema}.")))),
            GrantObject::Global => (None, None),
        };
        move |event_object: &str| match (&exact, &prefix) {
            (Some(exact), _) => event_object == exact,
            (None, Some(prefix)) => event_object.starts_with(prefix.as_str()),
            (None, None) => true,
        }
    }

    /// Whether `grant` was exercised, and by whom.
    fn grant_use(&self, grant: &Grant) -> Option<(String, Use)> {
        let matcher = self.object_matcher(&grant.object);
        self.holders(&grant.grantee)
            .into_iter()
            .filter_map(|holder| {
                self.of(&holder).exercised(&grant.privilege, &matcher).map(|found| (holder, found))
            })
            .max_by_key(|(_, found)| found.count)
    }

    fn grants_of(&self, role: &str, host: Option<&str>) -> impl Iterator<Item = &'a Grant> + use<'a, '_> {
        let host = host.map(str::to_owned);
        let role = role.to_owned();
        self.catalog
            .grants
            .iter()
            .filter(move |grant| grant.grantee == role && (host.is_none() || grant.grantee_host == host))
    }

    fn unused_roles(&self) -> Vec<UnusedRole> {
        let mut found = Vec::new();
        for role in self.catalog.roles.iter().filter(|role| self.reviewable(role)) {
            let activity = self.of(&role.name);
            let host = role.host.as_deref();
            let grants: Vec<&Grant> = self.grants_of(&role.name, host).collect();
            let kind = if role.can_login
                && activity.successes == 0
                && activity.failures == 0
                && activity.assumed_by.is_empty()
            {
                "never_seen"
            } else if role.can_login && !activity.seen_succeeding() && activity.failures > 0 {
                "only_failing"
            } else if !role.can_login
                && !activity.seen_succeeding()
                && !self.catalog.memberships.iter().any(|membership| membership.role == role.name)
            {
                "no_members"
            } else {
                continue;
            };
            let mut evidence = Vec::new();
            match kind {
                "never_seen" => evidence.push(format!(
                    "can log in; no event from it in the lake for {} ({} events of {} roles read)",
                    self.period_text(),
                    self.activity.events,
                    self.activity.roles.len()
                )),
                "only_failing" => evidence.push(format!(
                    "can log in; {} failed events ({} failed logins), the last at {}, and no success in {}",
                    activity.failures,
                    activity.failed_logins,
                    activity.last_failure.map(|ts| ts.to_rfc3339()).unwrap_or_default(),
                    self.period_text()
                )),
                _ => evidence.push(format!(
                    "cannot log in, is granted to no role, and no session switched to it in {}",
                    self.period_text()
                )),
            }
            if !grants.is_empty() {
                evidence.push(format!("holds {} grants: {}", grants.len(), describe_grants(&grants)));
            }
            if role.is_privileged() {
                evidence.push(format!(
                    "administrative power: {}",
                    if role.superuser { "superuser".to_owned() } else { role.admin_rights.join(", ") }
                ));
            }
            let mut sql = Vec::new();
            if role.can_login {
                sql.push("-- step 1: stop logins (reversible), then wait for complaints".to_owned());
                sql.push(self.sql.disable_login(&role.name, host));
            }
            sql.push("-- step 2: remove its grants, then the role".to_owned());
            sql.extend(
                grants
                    .iter()
                    .map(|grant| self.sql.revoke(&[&grant.privilege], &grant.object, &grant.grantee, host)),
            );
            for default in
                self.catalog.default_privileges.iter().filter(|default| default.grantee == role.name)
            {
                sql.push(self.sql.revoke_default(
                    &default.owner,
                    default.schema.as_deref(),
                    &default.object_type,
                    &default.privilege,
                    &default.grantee,
                ));
            }
            for membership in
                self.catalog.memberships.iter().filter(|membership| membership.member == role.name)
            {
                sql.push(self.sql.revoke_membership(
                    &membership.role,
                    &membership.member,
                    membership.member_host.as_deref(),
                ));
            }
            if self.catalog.dialect == crate::catalog::Dialect::Postgres {
                sql.push(
                    "-- objects it owns, in every database: REASSIGN OWNED BY ... TO ...; before DROP"
                        .to_owned(),
                );
            }
            sql.push(self.sql.drop_role(&role.name, host));
            let risk = if role.is_privileged() {
                Risk {
                    level: RiskLevel::High,
                    reason: "an administrative role: break-glass or maintenance accounts are rarely used but needed; \
                             confirm with its owner"
                        .to_owned(),
                }
            } else if kind == "only_failing" {
                Risk {
                    level: RiskLevel::Low,
                    reason: "nothing succeeded as this role in the period; the failures may be someone guessing its \
                             password"
                        .to_owned(),
                }
            } else {
                Risk {
                    level: RiskLevel::Medium,
                    reason: "a job that runs less often than the period (quarterly, yearly) or against a server whose \
                             logs are not in the lake would fail; NOLOGIN is undone with ALTER ROLE ... LOGIN, DROP \
                             is not undone"
                        .to_owned(),
                }
            };
            found.push(UnusedRole {
                role: role.name.clone(),
                host: role.host.clone(),
                kind: kind.to_owned(),
                proposal: Proposal { proposed_sql: sql, evidence, risk },
            });
        }
        found
    }

    fn judged_grants(&self) -> impl Iterator<Item = &'a Grant> + use<'a, '_> {
        self.catalog.grants.iter().filter(|grant| {
            JUDGED_PRIVILEGES.contains(&grant.privilege.as_str())
                && self.catalog.role(&grant.grantee).is_none_or(|role| !role.system && !role.superuser)
        })
    }

    fn unused_privileges(&self) -> Vec<UnusedPrivilege> {
        let mut found = Vec::new();
        for grant in self.judged_grants() {
            if self.grant_use(grant).is_some() {
                continue;
            }
            let holder_activity = self.of(&grant.grantee);
            let holders = self.holders(&grant.grantee);
            let mut evidence = vec![format!(
                "granted {} on {} ; no successful statement needing it by {} in {}",
                grant.privilege,
                grant.object,
                holders.iter().cloned().collect::<Vec<_>>().join(", "),
                self.period_text()
            )];
            let used_elsewhere: BTreeSet<&str> = holder_activity
                .privileges
                .values()
                .flat_map(|uses| uses.keys())
                .map(String::as_str)
                .collect();
            if holder_activity.seen_succeeding() {
                evidence.push(format!(
                    "the role was active: {} successful events, last at {}; privileges it did use: {}",
                    holder_activity.successes,
                    holder_activity.last_success.map(|ts| ts.to_rfc3339()).unwrap_or_default(),
                    if used_elsewhere.is_empty() {
                        "none".to_owned()
                    } else {
                        used_elsewhere.into_iter().collect::<Vec<_>>().join(", ")
                    }
                ));
            } else {
                evidence.push("the role itself was not seen succeeding in the period".to_owned());
            }
            if grant.grantable {
                evidence.push("held WITH GRANT OPTION: grants it passed on go with it".to_owned());
            }
            let risk = match (&grant.object, holder_activity.seen_succeeding()) {
                (GrantObject::Table { .. }, true) => Risk {
                    level: RiskLevel::Low,
                    reason:
                        "the role was active in the period and never needed this privilege; a rare code path \
                             (month-end job, admin screen) would get 'permission denied'"
                            .to_owned(),
                },
                (GrantObject::Table { .. }, false) => Risk {
                    level: RiskLevel::Medium,
                    reason: "the role was idle in the period: whatever uses it runs rarely or not at all"
                        .to_owned(),
                },
                _ => Risk {
                    level: RiskLevel::Medium,
                    reason: "a grant on a whole database or server: tables created later are covered too"
                        .to_owned(),
                },
            };
            found.push(UnusedPrivilege {
                role: grant.grantee.clone(),
                host: grant.grantee_host.clone(),
                privilege: grant.privilege.clone(),
                object: grant.object.to_string(),
                proposal: Proposal {
                    proposed_sql: vec![self.sql.revoke(
                        &[&grant.privilege],
                        &grant.object,
                        &grant.grantee,
                        grant.grantee_host.as_deref(),
                    )],
                    evidence,
                    risk,
                },
            });
        }
        found
    }

    fn broader_than_use(&self) -> Vec<BroaderThanUse> {
        let mut found = Vec::new();
        for role in self.catalog.roles.iter().filter(|role| self.reviewable(role) && role.can_login) {
            let activity = self.of(&role.name);
            if !activity.seen_succeeding() {
                continue;
            }
            let host = role.host.as_deref();
            let wrote = activity
                .privileges
                .values()
                .any(|uses| uses.keys().any(|privilege| WRITE_PRIVILEGES.contains(&privilege.as_str())));
            let write_grants: Vec<&Grant> = self
                .grants_of(&role.name, host)
                .filter(|grant| WRITE_PRIVILEGES.contains(&grant.privilege.as_str()))
                .collect();
            if !wrote && !write_grants.is_empty() && !role.superuser {
                let mut by_object: BTreeMap<&GrantObject, Vec<&str>> = BTreeMap::new();
                for grant in &write_grants {
                    by_object.entry(&grant.object).or_default().push(&grant.privilege);
                }
                let mut evidence = vec![
                    format!("holds write grants: {}", describe_grants(&write_grants)),
                    format!(
                        "wrote nothing in {}: {} successful events, classes {}",
                        self.period_text(),
                        activity.successes,
                        describe_counts(&activity.classes)
                    ),
                ];
                if self.policy.is_reader(&role.name) {
                    evidence.push("[roles] lists it as a reader".to_owned());
                }
                found.push(BroaderThanUse {
                    role: role.name.clone(),
                    host: role.host.clone(),
                    kind: "holds_unused_write_grants".to_owned(),
                    proposal: Proposal {
                        proposed_sql: by_object
                            .into_iter()
                            .map(|(object, privileges)| {
                                self.sql.revoke(&privileges, object, &role.name, host)
                            })
                            .collect(),
                        evidence,
                        risk: Risk {
                            level: if self.policy.is_reader(&role.name) {
                                RiskLevel::Low
                            } else {
                                RiskLevel::Medium
                            },
                            reason: "a write path used less often than the period would fail".to_owned(),
                        },
                    },
                });
            }
            let only_routine = activity.classes.keys().all(|class| ROUTINE_CLASSES.contains(&class.as_str()));
            let reads = activity.classes.get("READ").copied().unwrap_or(0);
            if self.privileged(role) && only_routine && reads > 0 {
                found.push(self.admin_for_reads(role, activity, reads));
            }
        }
        found
    }

    fn admin_for_reads(&self, role: &CatalogRole, activity: &RoleActivity, reads: u64) -> BroaderThanUse {
        let host = role.host.as_deref();
        let read_objects: Vec<&String> = activity
            .privileges
            .iter()
            .filter(|(_, uses)| uses.contains_key("SELECT"))
            .map(|(object, _)| object)
            .collect();
        let power = if role.superuser {
            "superuser".to_owned()
        } else if role.admin_rights.is_empty() {
            "admin in [roles]".to_owned()
        } else {
            role.admin_rights.join(", ")
        };
        let reader = format!("{}_read", role.name);
        let mut sql = vec![format!("-- a least-privilege role for the reads {} does", role.name)];
        match self.catalog.dialect {
            crate::catalog::Dialect::Postgres => {
                sql.push(format!("CREATE ROLE {} LOGIN;", crate::sql::identifier(&reader)));
                for object in &read_objects {
                    if let Some((schema, name)) = object.split_once('.') {
                        let table = GrantObject::Table { schema: schema.to_owned(), name: name.to_owned() };
                        sql.push(format!(
                            "GRANT SELECT ON {} TO {};",
                            self.sql.object(&table),
                            crate::sql::identifier(&reader)
                        ));
                    }
                }
                let unused: Vec<&str> = role
                    .admin_rights
                    .iter()
                    .filter_map(|right| match right.as_str() {
                        "CREATEROLE" => Some("NOCREATEROLE"),
                        "CREATEDB" => Some("NOCREATEDB"),
                        "REPLICATION" => Some("NOREPLICATION"),
                        "BYPASSRLS" => Some("NOBYPASSRLS"),
                        _ => None,
                    })
                    .collect();
                if role.superuser {
                    sql.push(format!("ALTER ROLE {} NOSUPERUSER;", self.sql.role(&role.name, None)));
                } else if !unused.is_empty() {
                    sql.push(format!("ALTER ROLE {} {};", self.sql.role(&role.name, None), unused.join(" ")));
                }
            }
            crate::catalog::Dialect::Mysql => {
                let account = self.sql.role(&reader, Some(host.unwrap_or("%")));
                sql.push(format!("CREATE USER {account} IDENTIFIED BY '...';"));
                for object in &read_objects {
                    if let Some((schema, name)) = object.split_once('.') {
                        let table = GrantObject::Table { schema: schema.to_owned(), name: name.to_owned() };
                        sql.push(format!("GRANT SELECT ON {} TO {account};", self.sql.object(&table)));
                    }
                }
                sql.push(
                    "-- then move the reads to it and narrow the admin account's global privileges"
                        .to_owned(),
                );
            }
        }
        BroaderThanUse {
            role: role.name.clone(),
            host: role.host.clone(),
            kind: "admin_used_for_routine_reads".to_owned(),
            proposal: Proposal {
                proposed_sql: sql,
                evidence: vec![
                    format!("administrative power: {power}"),
                    format!(
                        "in {} it only read: {} reads, classes {}, objects {}",
                        self.period_text(),
                        reads,
                        describe_counts(&activity.classes),
                        read_objects.iter().map(|object| object.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ],
                risk: Risk {
                    level: RiskLevel::High,
                    reason:
                        "removing administrative power breaks maintenance done less often than the period; \
                             move the reads first, then narrow the role"
                            .to_owned(),
                },
            },
        }
    }

    fn unexpected_origins(&self) -> Vec<UnexpectedOrigin> {
        let mut found = Vec::new();
        for (name, activity) in &self.activity.roles {
            let catalog_role = self.catalog.role(name);
            if catalog_role.is_some_and(|role| role.system) {
                continue;
            }
            let admin = self.policy.is_admin(name) || catalog_role.is_some_and(CatalogRole::is_privileged);
            let service = self.policy.is_service(name);
            for origin in activity.origins.values() {
                let from_service = self
                    .policy
                    .is_service_origin(origin.application.as_deref(), origin.client_addr.as_deref());
                let kind = if admin && from_service {
                    "admin_from_service_origin"
                } else if service && !admin && self.policy.knows_service_origins() && !from_service {
                    "service_from_other_origin"
                } else {
                    continue;
                };
                let where_from = format!(
                    "{} from {}",
                    origin.application.as_deref().unwrap_or("(no application)"),
                    origin.client_addr.as_deref().unwrap_or("the local socket")
                );
                let evidence = vec![
                    format!(
                        "{} events from {where_from}, the last at {}",
                        origin.events,
                        origin.last.to_rfc3339()
                    ),
                    if kind == "admin_from_service_origin" {
                        format!("{name} is an administrative role; that origin is a service's ([origins])")
                    } else {
                        format!(
                            "{name} is a service account ([roles] service); that origin is not a service's ([origins])"
                        )
                    },
                ];
                let proposed_sql = match self.catalog.dialect {
                    crate::catalog::Dialect::Postgres => vec![
                        format!(
                            "-- origins are limited in pg_hba.conf, not in SQL: allow {name} only from its expected hosts"
                        ),
                        format!("-- e.g.  host  all  {name}  <expected address>/32  scram-sha-256"),
                        "-- and rotate its password if this origin is not explained".to_owned(),
                    ],
                    crate::catalog::Dialect::Mysql => vec![
                        format!("-- limit the account's host to its expected origin, e.g.:"),
                        format!(
                            "RENAME USER {} TO {};",
                            self.sql
                                .role(name, catalog_role.and_then(|role| role.host.as_deref()).or(Some("%"))),
                            self.sql.role(name, Some("<expected host>"))
                        ),
                    ],
                };
                found.push(UnexpectedOrigin {
                    role: name.clone(),
                    kind: kind.to_owned(),
                    application: origin.application.clone(),
                    client_addr: origin.client_addr.clone(),
                    events: origin.events,
                    proposal: Proposal {
                        proposed_sql,
                        evidence,
                        risk: Risk {
                            level: RiskLevel::Medium,
                            reason: "if the origin is legitimate (a new host, a migration), restricting it cuts that \
                                     client off"
                                .to_owned(),
                        },
                    },
                });
            }
        }
        found
    }

    fn unused_memberships(&self) -> Vec<UnusedMembership> {
        let mut found = Vec::new();
        for membership in &self.catalog.memberships {
            let member_role = self.catalog.role(&membership.member);
            if member_role.is_some_and(|role| role.system || role.superuser) {
                continue;
            }
            let member = self.of(&membership.member);
            let switches = member.set_role.get(&membership.role).copied().unwrap_or(0);
            if switches > 0 {
                continue;
            }
            let role_grants: Vec<&Grant> = self.grants_of(&membership.role, None).collect();
            let inherited_use = membership.inherit
                && role_grants.iter().any(|grant| {
                    let matcher = self.object_matcher(&grant.object);
                    member.exercised(&grant.privilege, &matcher).is_some()
                });
            if inherited_use {
                continue;
            }
            let mut evidence = vec![format!(
                "{} never ran SET ROLE {} in {}",
                membership.member,
                membership.role,
                self.period_text()
            )];
            if membership.inherit {
                evidence.push(format!(
                    "it inherits the role, but used none of its {} grants ({})",
                    role_grants.len(),
                    describe_grants(&role_grants)
                ));
            } else {
                evidence.push("it does not inherit the role: its privileges need SET ROLE".to_owned());
            }
            if membership.admin_option {
                evidence.push("held WITH ADMIN OPTION: it can grant the role to others".to_owned());
            }
            let active = member.seen_succeeding();
            found.push(UnusedMembership {
                role: membership.role.clone(),
                member: membership.member.clone(),
                member_host: membership.member_host.clone(),
                proposal: Proposal {
                    proposed_sql: vec![self.sql.revoke_membership(
                        &membership.role,
                        &membership.member,
                        membership.member_host.as_deref(),
                    )],
                    evidence,
                    risk: Risk {
                        level: if active { RiskLevel::Low } else { RiskLevel::Medium },
                        reason: if active {
                            "the member was active in the period without needing the role".to_owned()
                        } else {
                            "the member was idle in the period: a rare job may rely on the role".to_owned()
                        },
                    },
                },
            });
        }
        found
    }

    fn role_summaries(&self) -> Vec<RoleSummary> {
        let mut names: BTreeSet<&str> =
            self.catalog.roles.iter().filter(|role| !role.system).map(|role| role.name.as_str()).collect();
        names.extend(self.activity.roles.keys().map(String::as_str));
        names
            .into_iter()
            .map(|name| {
                let catalog_role = self.catalog.role(name);
                RoleSummary {
                    role: name.to_owned(),
                    in_catalog: catalog_role.is_some(),
                    can_login: self.catalog.roles.iter().any(|role| role.name == name && role.can_login),
                    privileged: catalog_role.is_some_and(|role| self.privileged(role))
                        || self.policy.is_admin(name),
                    activity: self.of(name).clone(),
                }
            })
            .collect()
    }
}

fn describe_grants(grants: &[&Grant]) -> String {
    let mut by_object: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for grant in grants {
        by_object.entry(grant.object.to_string()).or_default().push(&grant.privilege);
    }
    if by_object.is_empty() {
        return "none".to_owned();
    }
    by_object
        .into_iter()
        .map(|(object, privileges)| format!("{} on {object}", privileges.join("/")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts.iter().map(|(class, count)| format!("{class} {count}")).collect::<Vec<_>>().join(", ")
}
