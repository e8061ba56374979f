//! MariaDB and MySQL: `mysql.user`, `mysql.db`, `mysql.tables_priv` and `mysql.roles_mapping`
//! (MariaDB) or `mysql.role_edges` (MySQL 8), read in a read-only transaction of a read-only
//! session. Every column is cast to text so that `ENUM` and `SET` columns decode the same on
//! both servers.

use std::collections::BTreeMap;
use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection};

use super::{Catalog, CatalogRole, CatalogTarget, Dialect, Grant, GrantObject, Membership};
use crate::ReviewError;

/// The table privileges a review judges, with their `mysql.user` / `mysql.db` columns.
const DATA_PRIVILEGES: [(&str, &str); 4] = [
    ("SELECT", "Select_priv"),
    ("INSERT", "Insert_priv"),
    ("UPDATE", "Update_priv"),
    ("DELETE", "Delete_priv"),
];

/// The `mysql.user` columns both servers have, after the role columns.
macro_rules! user_privilege_columns {
    () => {
        "CAST(Select_priv AS CHAR), CAST(Insert_priv AS CHAR), CAST(Update_priv AS CHAR), \
         CAST(Delete_priv AS CHAR), CAST(Super_priv AS CHAR), CAST(Grant_priv AS CHAR), \
         CAST(Create_user_priv AS CHAR), CAST(Create_priv AS CHAR), CAST(Drop_priv AS CHAR), \
         CAST(File_priv AS CHAR) FROM mysql.user ORDER BY User, Host"
    };
}
const USERS: &str = concat!(
    "SELECT CAST(User AS CHAR), CAST(Host AS CHAR), CAST(IFNULL(is_role, 'N') AS CHAR), \
     CAST(IFNULL(default_role, '') AS CHAR), ",
    user_privilege_columns!()
);
/// MySQL 8 has no `is_role` / `default_role` columns.
const USERS_MYSQL: &str = concat!(
    "SELECT CAST(User AS CHAR), CAST(Host AS CHAR), CAST('N' AS CHAR), CAST('' AS CHAR), ",
    user_privilege_columns!()
);
/// MariaDB keeps the account lock only in `mysql.global_priv`.
const LOCKED_MARIADB: &str = "SELECT CAST(User AS CHAR), CAST(Host AS CHAR) FROM mysql.global_priv \
    WHERE JSON_VALUE(Priv, '$.account_locked') = 'true'";
const LOCKED_MYSQL: &str =
    "SELECT CAST(User AS CHAR), CAST(Host AS CHAR) FROM mysql.user WHERE account_locked = 'Y'";
const DATABASES: &str = "SELECT CAST(User AS CHAR), CAST(Host AS CHAR), CAST(Db AS CHAR), \
    CAST(Select_priv AS CHAR), CAST(Insert_priv AS CHAR), CAST(Update_priv AS CHAR), CAST(Delete_priv AS CHAR), \
    CAST(Grant_priv AS CHAR) FROM mysql.db ORDER BY User, Host, Db";
const TABLES: &str = "SELECT CAST(User AS CHAR), CAST(Host AS CHAR), CAST(Db AS CHAR), CAST(Table_name AS CHAR), \
    CAST(Table_priv AS CHAR) FROM mysql.tables_priv ORDER BY User, Host, Db, Table_name";
const ROLES_MAPPING: &str = "SELECT CAST(User AS CHAR), CAST(Host AS CHAR), CAST(Role AS CHAR), \
    CAST(Admin_option AS CHAR) FROM mysql.roles_mapping ORDER BY Role, User, Host";
const ROLE_EDGES: &str = "SELECT CAST(TO_USER AS CHAR), CAST(TO_HOST AS CHAR), CAST(FROM_USER AS CHAR), \
    CAST(WITH_ADMIN_OPTION AS CHAR) FROM mysql.role_edges ORDER BY FROM_USER, TO_USER, TO_HOST";

/// Accounts the server creates for itself.
const SYSTEM_ACCOUNTS: [&str; 4] = ["mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"];

/// A `mysql.user` row: user, host, is_role, default_role, then the flags of `USERS`.
#[rustfmt::skip]
type UserRow = (String, String, String, String, String, String, String, String, String, String, String, String, String, String);

/// A `mysql.db` row: user, host, db, the four data privileges, grant option.
type DbRow = (String, String, String, String, String, String, String, String);

pub(super) async fn read(target: &CatalogTarget) -> Result<Catalog, ReviewError> {
    let failed = |step: &str| {
        let url = target.redacted();
        let step = step.to_owned();
        move |source| ReviewError::Catalog { url, step, source }
    };
    let mut options = MySqlConnectOptions::from_str(target.url_without_password())
        .map_err(failed("parse the URL"))?
        .disable_statement_logging();
    if let Some(password) = target.password() {
        options = options.password(password);
    }
    let mut connection = MySqlConnection::connect_with(&options).await.map_err(failed("connect"))?;
    sqlx::raw_sql("SET SESSION TRANSACTION READ ONLY")
        .execute(&mut connection)
        .await
        .map_err(failed("make the session read-only"))?;
    sqlx::raw_sql("START TRANSACTION READ ONLY").execute(&mut connection).await.map_err(failed("begin"))?;
    // MariaDB calls it tx_read_only (transaction_read_only from 11.1), MySQL 8 only
    // transaction_read_only.
    let read_only: i64 = match sqlx::query_scalar("SELECT CAST(@@session.transaction_read_only AS SIGNED)")
        .fetch_one(&mut connection)
        .await
    {
        Ok(value) => value,
        Err(_) => sqlx::query_scalar("SELECT CAST(@@session.tx_read_only AS SIGNED)")
            .fetch_one(&mut connection)
            .await
            .map_err(failed("check read-only"))?,
    };
    if read_only != 1 {
        return Err(ReviewError::NotReadOnly {
            url: target.redacted(),
            detail: format!("tx_read_only = {read_only}"),
        });
    }
    let server_version: String = sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)")
        .fetch_one(&mut connection)
        .await
        .map_err(failed("read the version"))?;
    let mariadb = server_version.to_ascii_lowercase().contains("mariadb");

    let users: Vec<UserRow> = sqlx::query_as(if mariadb { USERS } else { USERS_MYSQL })
        .fetch_all(&mut connection)
        .await
        .map_err(failed("read mysql.user"))?;
    let locked: Vec<(String, String)> = sqlx::query_as(if mariadb { LOCKED_MARIADB } else { LOCKED_MYSQL })
        .fetch_all(&mut connection)
        .await
        .map_err(failed("read account locks"))?;
    let databases: Vec<DbRow> =
        sqlx::query_as(DATABASES).fetch_all(&mut connection).await.map_err(failed("read mysql.db"))?;
    let tables: Vec<(String, String, String, String, String)> =
        sqlx::query_as(TABLES).fetch_all(&mut connection).await.map_err(failed("read mysql.tables_priv"))?;
    let mappings: Vec<(String, String, String, String)> = if mariadb {
        sqlx::query_as(ROLES_MAPPING)
            .fetch_all(&mut connection)
            .await
            .map_err(failed("read mysql.roles_mapping"))?
    } else {
        sqlx::query_as(ROLE_EDGES)
            .fetch_all(&mut connection)
            .await
            .map_err(failed("read mysql.role_edges"))?
    };
    sqlx::raw_sql("ROLLBACK").execute(&mut connection).await.map_err(failed("end the transaction"))?;
    connection.close().await.map_err(failed("close"))?;

    let yes = |flag: &str| flag.eq_ignore_ascii_case("Y");
    let mut roles = Vec::new();
    let mut grants = Vec::new();
    let mut default_roles: BTreeMap<(String, String), String> = BTreeMap::new();
    for row in users {
        let (
            user,
            host,
            is_role,
            default_role,
            select,
            insert,
            update,
            delete,
            sup,
            grant,
            create_user,
            create,
            drop,
            file,
        ) = row;
        let is_role = yes(&is_role);
        let is_locked =
            locked.iter().any(|(locked_user, locked_host)| *locked_user == user && *locked_host == host);
        let mut admin_rights = Vec::new();
        for (held, right) in [(&grant, "GRANT OPTION"), (&create_user, "CREATE USER"), (&file, "FILE")] {
            if yes(held) {
                admin_rights.push(right.to_owned());
            }
        }
        if yes(&create) && yes(&drop) {
            admin_rights.push("CREATE, DROP ON *.*".to_owned());
        }
        let account_host = (!is_role).then(|| host.clone());
        for ((privilege, _), held) in DATA_PRIVILEGES.iter().zip([&select, &insert, &update, &delete]) {
            if yes(held) {
                grants.push(Grant {
                    grantee: user.clone(),
                    grantee_host: account_host.clone(),
                    privilege: (*privilege).to_owned(),
                    object: GrantObject::Global,
                    grantable: yes(&grant),
                });
            }
        }
        if !default_role.is_empty() {
            default_roles.insert((user.clone(), host.clone()), default_role);
        }
        roles.push(CatalogRole {
            system: SYSTEM_ACCOUNTS.contains(&user.as_str()),
            name: user,
            host: account_host,
            can_login: !is_role && !is_locked,
            superuser: yes(&sup),
            admin_rights,
        });
    }
    for (user, host, database, select, insert, update, delete, grant) in databases {
        for ((privilege, _), held) in DATA_PRIVILEGES.iter().zip([&select, &insert, &update, &delete]) {
            if yes(held) {
                grants.push(Grant {
                    grantee: user.clone(),
                    grantee_host: account_host_of(&roles, &user, &host),
                    privilege: (*privilege).to_owned(),
                    object: GrantObject::Schema { schema: database.clone() },
                    grantable: yes(&grant),
                });
            }
        }
    }
    for (user, host, database, table, privileges) in tables {
        let grantable = privileges.split(',').any(|privilege| privilege.trim().eq_ignore_ascii_case("Grant"));
        for privilege in privileges.split(',').map(str::trim).filter(|privilege| !privilege.is_empty()) {
            if privilege.eq_ignore_ascii_case("Grant") {
                continue;
            }
            grants.push(Grant {
                grantee: user.clone(),
                grantee_host: account_host_of(&roles, &user, &host),
                privilege: privilege.to_ascii_uppercase(),
                object: GrantObject::Table { schema: database.clone(), name: table.clone() },
                grantable,
            });
        }
    }
    let memberships = mappings
        .into_iter()
        .map(|(user, host, role, admin_option)| Membership {
            inherit: default_roles.get(&(user.clone(), host.clone())).is_some_and(|default| *default == role),
            member_host: account_host_of(&roles, &user, &host),
            member: user,
            role,
            admin_option: yes(&admin_option),
        })
        .collect();
    Ok(Catalog {
        dialect: Dialect::Mysql,
        source: if mariadb { "mariadb" } else { "mysql" }.to_owned(),
        server_version,
        database: None,
        roles,
        memberships,
        grants,
        default_privileges: Vec::new(),
    })
}

/// The host of account `user@host`, or `None` when `user` is a role (roles have no host).
fn account_host_of(roles: &[CatalogRole], user: &str, host: &str) -> Option<String> {
    let is_role = roles.iter().any(|role| role.name == user && role.host.is_none());
    (!is_role || !host.is_empty()).then(|| host.to_owned())
}
