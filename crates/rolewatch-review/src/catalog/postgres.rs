//! PostgreSQL: `pg_roles`, `pg_auth_members`, `information_schema.role_table_grants` and
//! `pg_default_acl`, read in a read-only transaction of a read-only session.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::{Catalog, CatalogRole, CatalogTarget, DefaultPrivilege, Dialect, Grant, GrantObject, Membership};
use crate::ReviewError;

/// Roles: name, can login, superuser, the other administrative attributes.
const ROLES: &str = "SELECT rolname::text, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, \
    rolreplication, rolbypassrls FROM pg_catalog.pg_roles ORDER BY rolname";

/// Memberships. `inherit_option` exists from PostgreSQL 16 on; before, the member's
/// `rolinherit` decides.
const MEMBERSHIPS_15: &str = "SELECT r.rolname::text, m.rolname::text, am.admin_option, m.rolinherit \
    FROM pg_catalog.pg_auth_members am \
    JOIN pg_catalog.pg_roles r ON r.oid = am.roleid \
    JOIN pg_catalog.pg_roles m ON m.oid = am.member ORDER BY 1, 2";
const MEMBERSHIPS_16: &str = "SELECT r.rolname::text, m.rolname::text, am.admin_option, am.inherit_option \
    FROM pg_catalog.pg_auth_members am \
    JOIN pg_catalog.pg_roles r ON r.oid = am.roleid \
    JOIN pg_catalog.pg_roles m ON m.oid = am.member ORDER BY 1, 2";

/// Table grants, without the owner's own (implicit, not revocable in a useful way) and
/// without the system schemas.
const GRANTS: &str = "SELECT g.grantee::text, g.table_schema::text, g.table_name::text, \
    g.privilege_type::text, g.is_grantable::text = 'YES' \
    FROM information_schema.role_table_grants g \
    JOIN pg_catalog.pg_namespace n ON n.nspname = g.table_schema \
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = g.table_name \
    WHERE g.table_schema NOT IN ('pg_catalog', 'information_schema') \
      AND g.grantee <> pg_catalog.pg_get_userbyid(c.relowner) \
    ORDER BY 1, 2, 3, 4";

/// Default privileges, one row per (owner, schema, type, grantee, privilege).
const DEFAULT_PRIVILEGES: &str = "SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text, n.nspname::text, \
    CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' \
      WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' ELSE d.defaclobjtype::text END, \
    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, \
    a.privilege_type::text \
    FROM pg_catalog.pg_default_acl d \
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace \
    CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a ORDER BY 1, 2, 3, 4, 5";

pub(super) async fn read(target: &CatalogTarget) -> Result<Catalog, ReviewError> {
    let failed = |step: &str| {
        let url = target.redacted();
        let step = step.to_owned();
        move |source| ReviewError::Catalog { url, step, source }
    };
    let mut options = PgConnectOptions::from_str(target.url_without_password())
        .map_err(failed("parse the URL"))?
        .application_name("rolewatch-review")
        // Every transaction of this session is read-only unless it says otherwise, and it never
        // does: the review only reads.
        .options([("default_transaction_read_only", "on")])
        .disable_statement_logging();
    if let Some(password) = target.password() {
        options = options.password(password);
    }
    let mut connection = PgConnection::connect_with(&options).await.map_err(failed("connect"))?;
    sqlx::raw_sql("BEGIN TRANSACTION READ ONLY").execute(&mut connection).await.map_err(failed("begin"))?;
    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
        .fetch_one(&mut connection)
        .await
        .map_err(failed("check read-only"))?;
    if read_only != "on" {
        return Err(ReviewError::NotReadOnly {
            url: target.redacted(),
            detail: format!("transaction_read_only = {read_only}"),
        });
    }
    let (server_version, version_number, database): (String, i32, String) = sqlx::query_as(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int, current_database()::text",
    )
    .fetch_one(&mut connection)
    .await
    .map_err(failed("read the server version"))?;

    let role_rows: Vec<(String, bool, bool, bool, bool, bool, bool)> =
        sqlx::query_as(ROLES).fetch_all(&mut connection).await.map_err(failed("read pg_roles"))?;
    let roles = role_rows
        .into_iter()
        .map(|(name, can_login, superuser, create_role, create_db, replication, bypass_rls)| {
            let admin_rights = [
                (create_role, "CREATEROLE"),
                (create_db, "CREATEDB"),
                (replication, "REPLICATION"),
                (bypass_rls, "BYPASSRLS"),
            ]
            .into_iter()
            .filter(|(held, _)| *held)
            .map(|(_, right)| right.to_owned())
            .collect();
            let system = name.starts_with("pg_");
            CatalogRole { name, host: None, can_login, superuser, admin_rights, system }
        })
        .collect();

    let membership_query = if version_number >= 160_000 { MEMBERSHIPS_16 } else { MEMBERSHIPS_15 };
    let membership_rows: Vec<(String, String, bool, bool)> = sqlx::query_as(membership_query)
        .fetch_all(&mut connection)
        .await
        .map_err(failed("read pg_auth_members"))?;
    let memberships = membership_rows
        .into_iter()
        .map(|(role, member, admin_option, inherit)| Membership {
            role,
            member,
            member_host: None,
            admin_option,
            inherit,
        })
        .collect();

    let grant_rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(GRANTS)
        .fetch_all(&mut connection)
        .await
        .map_err(failed("read information_schema.role_table_grants"))?;
    let grants = grant_rows
        .into_iter()
        .map(|(grantee, schema, name, privilege, grantable)| Grant {
            grantee,
            grantee_host: None,
            privilege: privilege.to_ascii_uppercase(),
            object: GrantObject::Table { schema, name },
            grantable,
        })
        .collect();

    let default_rows: Vec<(String, Option<String>, String, String, String)> =
        sqlx::query_as(DEFAULT_PRIVILEGES)
            .fetch_all(&mut connection)
            .await
            .map_err(failed("read pg_default_acl"))?;
    let default_privileges = default_rows
        .into_iter()
        .map(|(owner, schema, object_type, grantee, privilege)| DefaultPrivilege {
            owner,
            schema,
            object_type,
            grantee,
            privilege: privilege.to_ascii_uppercase(),
        })
        .collect();

    sqlx::raw_sql("ROLLBACK").execute(&mut connection).await.map_err(failed("end the transaction"))?;
    connection.close().await.map_err(failed("close"))?;
    Ok(Catalog {
        dialect: Dialect::Postgres,
        source: "postgres".to_owned(),
        server_version,
        database: Some(database),
        roles,
        memberships,
        grants,
        default_privileges,
    })
}
