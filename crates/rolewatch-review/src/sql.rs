//! The SQL a finding proposes, in the reviewed server's dialect. rolewatch never runs it.

use crate::catalog::{Dialect, GrantObject};

/// Writes statements for one dialect.
#[derive(Debug, Clone, Copy)]
pub struct SqlWriter {
    dialect: Dialect,
}

impl SqlWriter {
    /// A writer for `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect }
    }

    /// A role or account: `"Name"` / `name` (PostgreSQL), `'name'@'host'` (MariaDB/MySQL
    /// accounts), `'name'` (MariaDB roles).
    pub fn role(&self, name: &str, host: Option<&str>) -> String {
        match self.dialect {
            Dialect::Postgres if name == "PUBLIC" => "PUBLIC".to_owned(),
            Dialect::Postgres => identifier(name),
            Dialect::Mysql => match host {
                Some(host) => format!("{}@{}", string_literal(name), string_literal(host)),
                None => string_literal(name),
            },
        }
    }

    /// An object of a grant.
    pub fn object(&self, object: &GrantObject) -> String {
        match (self.dialect, object) {
            (Dialect::Postgres, GrantObject::Table { schema, name }) => {
                format!("TABLE {}.{}", identifier(schema), identifier(name))
            }
            (Dialect::Postgres, GrantObject::Schema { schema }) => {
                format!("ALL TABLES IN SCHEMA {}", identifier(schema))
            }
            (Dialect::Postgres, GrantObject::Global) => "ALL TABLES IN SCHEMA public".to_owned(),
            (Dialect::Mysql, GrantObject::Table { schema, name }) => {
                format!("{}.{}", backquoted(schema), backquoted(name))
            }
            (Dialect::Mysql, GrantObject::Schema { schema }) => format!("{}.*", backquoted(schema)),
            (Dialect::Mysql, GrantObject::Global) => "*.*".to_owned(),
        }
    }

    /// `REVOKE privileges ON object FROM role;`
    pub fn revoke(
        &self,
        privileges: &[&str],
        object: &GrantObject,
        role: &str,
        host: Option<&str>,
    ) -> String {
        format!("REVOKE {} ON {} FROM {};", privileges.join(", "), self.object(object), self.role(role, host))
    }

    /// `REVOKE role FROM member;`
    pub fn revoke_membership(&self, role: &str, member: &str, member_host: Option<&str>) -> String {
        format!("REVOKE {} FROM {};", self.role(role, None), self.role(member, member_host))
    }

    /// Stops logins: `ALTER ROLE x NOLOGIN;` / `ALTER USER 'x'@'h' ACCOUNT LOCK;`.
    pub fn disable_login(&self, role: &str, host: Option<&str>) -> String {
        match self.dialect {
            Dialect::Postgres => format!("ALTER ROLE {} NOLOGIN;", self.role(role, host)),
            Dialect::Mysql => format!("ALTER USER {} ACCOUNT LOCK;", self.role(role, host)),
        }
    }

    /// Removes the role: `DROP ROLE x;` / `DROP USER 'x'@'h';` / `DROP ROLE 'r';`.
    pub fn drop_role(&self, role: &str, host: Option<&str>) -> String {
        match (self.dialect, host) {
            (Dialect::Mysql, Some(_)) => format!("DROP USER {};", self.role(role, host)),
            _ => format!("DROP ROLE {};", self.role(role, host)),
        }
    }

    /// `ALTER DEFAULT PRIVILEGES FOR ROLE owner [IN SCHEMA s] REVOKE p ON type FROM grantee;`
    pub fn revoke_default(
        &self,
        owner: &str,
        schema: Option<&str>,
        object_type: &str,
        privilege: &str,
        grantee: &str,
    ) -> String {
        let in_schema = schema.map(|schema| format!(" IN SCHEMA {}", identifier(schema))).unwrap_or_default();
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {}{in_schema} REVOKE {privilege} ON {object_type} FROM {};",
            identifier(owner),
            self.role(grantee, None)
        )
    }
}

/// A PostgreSQL identifier, quoted unless it is plain lower case.
pub fn identifier(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && name.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
        });
    if plain && !RESERVED.contains(&name) {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Words PostgreSQL reserves that are plausible role or table names.
const RESERVED: [&str; 15] = [
    "all", "user", "role", "table", "select", "order", "group", "grant", "where", "from", "to", "end",
    "check", "default", "limit",
];

fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

fn backquoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_statements_quote_what_needs_quoting() {
        let sql = SqlWriter::new(Dialect::Postgres);
        let table = GrantObject::Table { schema: "public".into(), name: "Orders".into() };
        assert_eq!(
            sql.revoke(&["INSERT"], &table, "report_reader", None),
            "REVOKE INSERT ON TABLE public.\"Orders\" FROM report_reader;"
        );
        assert_eq!(sql.disable_login("user", None), "ALTER ROLE \"user\" NOLOGIN;");
        assert_eq!(sql.revoke_membership("ops", "a\"b", None), "REVOKE ops FROM \"a\"\"b\";");
        assert_eq!(
            sql.revoke_default("dba_admin", Some("public"), "TABLES", "SELECT", "legacy_etl"),
            "ALTER DEFAULT PRIVILEGES FOR ROLE dba_admin IN SCHEMA public REVOKE SELECT ON TABLES FROM legacy_etl;"
        );
    }

    #[test]
    fn mariadb_statements_name_accounts_with_hosts() {
        let sql = SqlWriter::new(Dialect::Mysql);
        let table = GrantObject::Table { schema: "shop".into(), name: "orders".into() };
        assert_eq!(
            sql.revoke(&["DELETE"], &table, "o'brien", Some("%")),
            "REVOKE DELETE ON `shop`.`orders` FROM 'o''brien'@'%';"
        );
        assert_eq!(sql.disable_login("etl", Some("10.0.0.%")), "ALTER USER 'etl'@'10.0.0.%' ACCOUNT LOCK;");
        assert_eq!(sql.drop_role("auditors", None), "DROP ROLE 'auditors';");
        assert_eq!(sql.drop_role("etl", Some("%")), "DROP USER 'etl'@'%';");
        assert_eq!(sql.object(&GrantObject::Schema { schema: "shop".into() }), "`shop`.*");
    }
}
