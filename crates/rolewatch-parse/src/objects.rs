//! The tables a statement names, for events whose source does not say: a statement PostgreSQL
//! refused (`ERROR` + `STATEMENT`, no pgAudit record), a MariaDB `QUERY` or a MySQL statement
//! with no table records (denied statements have none).
//!
//! A full SQL parse (sqlparser) costs tens of microseconds, a hundred times the rest of an
//! event, so it is used only for those events, never for pgAudit records, and its answers are
//! kept in a bounded cache keyed by the statement text: failures repeat (a denied query retried,
//! a password guessed). Statements longer than [`MAX_PARSED_BYTES`] and statements sqlparser
//! cannot read get no objects. Common table expressions are not tables and are left out;
//! quoting is dropped (`"Hr"."Salaries"` is `Hr.Salaries`).

use std::collections::HashMap;
use std::ops::ControlFlow;

use rolewatch_event::Text;
use sqlparser::ast::{CopySource, ObjectName, ObjectType, Query, Statement, Visit, Visitor};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

/// Statements longer than this are not parsed.
const MAX_PARSED_BYTES: usize = 64 * 1024;
/// Statements whose objects are remembered; the cache starts over when it is full.
const MAX_CACHED: usize = 4096;

/// Which SQL the statements are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlDialect {
    Postgres,
    MySql,
}

/// Finds the tables of statements, remembering recent answers.
pub(crate) struct ObjectFinder {
    dialect: SqlDialect,
    cache: HashMap<String, Vec<Text>>,
}

#[derive(Default)]
struct Relations {
    names: Vec<String>,
    common_table_expressions: Vec<String>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.common_table_expressions
                .extend(with.cte_tables.iter().map(|cte| cte.alias.name.value.clone()));
        }
        ControlFlow::Continue(())
    }

    /// Table names sqlparser does not visit as relations: `COPY t`, `DROP TABLE t`.
    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        match statement {
            Statement::Copy { source: CopySource::Table { table_name, .. }, .. } => {
                self.pre_visit_relation(table_name)
            }
            Statement::Drop { object_type: ObjectType::Table | ObjectType::View, names, .. } => {
                names.iter().try_for_each(|name| self.pre_visit_relation(name))
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let parts: Vec<&str> =
            relation.0.iter().filter_map(|part| part.as_ident()).map(|ident| ident.value.as_str()).collect();
        let name = parts.join(".");
        if !name.is_empty() && !self.names.contains(&name) {
            self.names.push(name);
        }
        ControlFlow::Continue(())
    }
}

fn parse_objects(dialect: &dyn Dialect, statement: &str) -> Vec<String> {
    if statement.len() > MAX_PARSED_BYTES {
        return Vec::new();
    }
    let Ok(statements) = Parser::parse_sql(dialect, statement) else {
        return Vec::new();
    };
    let mut relations = Relations::default();
    let _ = statements.visit(&mut relations);
    let Relations { names, common_table_expressions } = relations;
    names.into_iter().filter(|name| !common_table_expressions.contains(name)).collect()
}

impl ObjectFinder {
    pub(crate) fn new(dialect: SqlDialect) -> Self {
        Self { dialect, cache: HashMap::new() }
    }

    /// The tables `statement` names, in the order it names them.
    pub(crate) fn objects(&mut self, statement: &str) -> Vec<Text> {
        if let Some(known) = self.cache.get(statement) {
            return known.clone();
        }
        let objects: Vec<Text> = match self.dialect {
            SqlDialect::Postgres => parse_objects(&PostgreSqlDialect {}, statement),
            SqlDialect::MySql => parse_objects(&MySqlDialect {}, statement),
        }
        .into_iter()
        .map(Text::from)
        .collect();
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(statement.to_owned(), objects.clone());
        objects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tables_but_not_common_table_expressions() {
        let mut postgres = ObjectFinder::new(SqlDialect::Postgres);
        assert_eq!(postgres.objects("SELECT * FROM hr.salaries"), ["hr.salaries"]);
        assert_eq!(
            postgres.objects(
                "WITH x AS (SELECT * FROM a JOIN b.c ON true) INSERT INTO \"Hr\".\"Log\" SELECT * FROM x"
            ),
            ["a", "b.c", "Hr.Log"]
        );
        assert_eq!(postgres.objects("COPY orders TO STDOUT"), ["orders"]);
        assert_eq!(postgres.objects("CREATE ROLE sneaky LOGIN"), Vec::<String>::new());
        assert_eq!(postgres.objects("not sql at all"), Vec::<String>::new());
        let mut mysql = ObjectFinder::new(SqlDialect::MySql);
        assert_eq!(mysql.objects("select * from `shop`.`salaries` s, orders"), ["shop.salaries", "orders"]);
        assert_eq!(mysql.objects("SELECT 1; DROP TABLE t1"), ["t1"]);
        for (statement, table) in [
            ("TRUNCATE t2", "t2"),
            ("CREATE TABLE t3 (a int)", "t3"),
            ("CREATE TABLE t3 AS SELECT * FROM t0", "t3"),
            ("ALTER TABLE t4 ADD COLUMN b int", "t4"),
            ("UPDATE t5 SET a = 1", "t5"),
            ("DELETE FROM t6", "t6"),
            ("INSERT INTO t7 VALUES (1)", "t7"),
            ("DROP VIEW t8", "t8"),
        ] {
            assert_eq!(postgres.objects(statement).first().map(Text::as_str), Some(table), "{statement}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut postgres = ObjectFinder::new(SqlDialect::Postgres);
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(postgres.objects(&deep), Vec::<String>::new());
        let long = format!("SELECT * FROM t WHERE a IN ({})", "1,".repeat(40_000));
        assert_eq!(postgres.objects(&long), Vec::<String>::new());
    }
}
