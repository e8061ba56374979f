//! What the database says exists: roles, memberships, grants and default privileges, read
//! read-only from the server's catalogs into one model shared by PostgreSQL and MariaDB/MySQL.

mod mysql;
mod postgres;
mod target;

use serde::Serialize;

pub use target::CatalogTarget;

use crate::ReviewError;

/// The SQL dialect the proposals are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MariaDB and MySQL.
    Mysql,
}

/// One role (PostgreSQL) or account (MariaDB/MySQL: `user@host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogRole {
    /// The role or user name, as it appears in the audit log's `role`.
    pub name: String,
    /// The account's host pattern (MariaDB/MySQL), `None` for PostgreSQL and MariaDB roles.
    pub host: Option<String>,
    /// Whether it can log in (PostgreSQL `rolcanlogin`; MariaDB: a user, not a role, and not
    /// locked).
    pub can_login: bool,
    /// Superuser (PostgreSQL `rolsuper`; MariaDB/MySQL `SUPER` or `ALL` on `*.*`).
    pub superuser: bool,
    /// Other administrative rights: `CREATEROLE`, `CREATEDB`, `REPLICATION`, `BYPASSRLS`,
    /// `GRANT OPTION`, `CREATE USER`.
    pub admin_rights: Vec<String>,
    /// Built into the server (`pg_*` roles, `mariadb.sys`, `PUBLIC`): never flagged.
    pub system: bool,
}

impl CatalogRole {
    /// Whether the role holds any administrative power.
    pub fn is_privileged(&self) -> bool {
        self.superuser || !self.admin_rights.is_empty()
    }
}

/// `member` is a member of `role` (PostgreSQL `pg_auth_members`, MariaDB `roles_mapping`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// The role granted.
    pub role: String,
    /// The role or user it is granted to.
    pub member: String,
    /// The member account's host (MariaDB/MySQL).
    pub member_host: Option<String>,
    /// The member may grant the role on.
    pub admin_option: bool,
    /// The member uses the role's privileges without `SET ROLE` (PostgreSQL `INHERIT`; a
    /// MariaDB default role).
    pub inherit: bool,
}

/// What a grant is on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GrantObject {
    /// One table or view, `schema.name` (MariaDB: `database.table`).
    Table {
        /// The schema (MariaDB: the database).
        schema: String,
        /// The table or view.
        name: String,
    },
    /// Every table of a schema (MariaDB `db.*`).
    Schema {
        /// The schema (MariaDB: the database).
        schema: String,
    },
    /// Every table everywhere (MariaDB `*.*`).
    Global,
}

impl std::fmt::Display for GrantObject {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Table { schema, name } => write!(formatter, "{schema}.{name}"),
            Self::Schema { schema } => write!(formatter, "{schema}.*"),
            Self::Global => formatter.write_str("*.*"),
        }
    }
}

/// One privilege on one object held by one grantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The role or user holding it; `PUBLIC` for everyone.
    pub grantee: String,
    /// The grantee account's host (MariaDB/MySQL).
    pub grantee_host: Option<String>,
    /// Upper case: `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`, ...
    pub privilege: String,
    /// What it is on.
    pub object: GrantObject,
    /// Held `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// A PostgreSQL default privilege: what `owner`'s future objects grant to `grantee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultPrivilege {
    /// The role whose new objects get the privilege.
    pub owner: String,
    /// The schema it is limited to, if any.
    pub schema: Option<String>,
    /// `TABLES`, `SEQUENCES`, `FUNCTIONS`, `TYPES` or `SCHEMAS`.
    pub object_type: String,
    /// Who receives it.
    pub grantee: String,
    /// The privilege, upper case.
    pub privilege: String,
}

/// Everything read from one server's catalogs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    /// The dialect of the proposals.
    pub dialect: Dialect,
    /// The event `source` this server's audit records carry: `postgres`, `mariadb`, `mysql`.
    pub source: String,
    /// The server's version string.
    pub server_version: String,
    /// The database whose table grants were read (PostgreSQL: grants are per database).
    /// `None` when grants of every database were read (MariaDB/MySQL).
    pub database: Option<String>,
    /// Roles and accounts.
    pub roles: Vec<CatalogRole>,
    /// Role memberships.
    pub memberships: Vec<Membership>,
    /// Table, schema and global grants.
    pub grants: Vec<Grant>,
    /// PostgreSQL default privileges.
    pub default_privileges: Vec<DefaultPrivilege>,
}

impl Catalog {
    /// Connects read-only to `target` and reads its catalogs. The session is made read-only
    /// and checked to be so before the first catalog query; nothing is ever written.
    pub async fn read(target: &CatalogTarget) -> Result<Catalog, ReviewError> {
        match target.dialect() {
            Dialect::Postgres => postgres::read(target).await,
            Dialect::Mysql => mysql::read(target).await,
        }
    }

    /// The role (first account) named `name`.
    pub fn role(&self, name: &str) -> Option<&CatalogRole> {
        self.roles.iter().find(|role| role.name == name)
    }
}
