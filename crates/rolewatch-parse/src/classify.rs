//! A fast first-keywords classifier: statement text to command tag and [`StatementClass`].
//!
//! Used for records that do not carry a class (PostgreSQL's `ERROR` + `STATEMENT` lines,
//! MariaDB and MySQL audit records). It skips leading whitespace and comments, looks at the first
//! keywords, and never allocates for the common commands. Text with several statements is
//! classified as its riskiest statement. pgAudit records already carry their
//! class and command and never come through here.

use rolewatch_event::{StatementClass, Text};

/// The result of classifying a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The command tag, upper case: `SELECT`, `CREATE TABLE`, `COPY`, ...
    pub command: Text,
    /// The class.
    pub class: StatementClass,
}

/// Skips whitespace, `-- line` and `/* block */` comments.
fn skip_noise(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return text;
        }
    }
}

/// The next keyword (letters and underscores), upper-cased, and the text after it.
fn next_word(text: &str) -> (Text, &str) {
    let text = skip_noise(text);
    let end = text
        .find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
        .unwrap_or(text.len());
    let (word, rest) = text.split_at(end);
    (Text::from(word).to_ascii_uppercase(), rest)
}

fn contains_word(text: &str, word: &str) -> bool {
    text.split(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
        .any(|candidate| candidate.eq_ignore_ascii_case(word))
}

/// Whether the text after `CREATE TABLE` makes a table from a query: `AS` (or MySQL's bare
/// `SELECT`) outside parentheses, quotes and comments. `AS` inside the column list
/// (`GENERATED ALWAYS AS IDENTITY`, a generated column's expression) does not.
fn creates_table_from_query(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (mut depth, mut index) = (0usize, 0);
    while let Some(&byte) = bytes.get(index) {
        if let Some(after) = skip_quoted(bytes, index) {
            index = after;
            continue;
        }
        index = match byte {
            b'(' => {
                depth += 1;
                index + 1
            }
            b')' => {
                depth = depth.saturating_sub(1);
                index + 1
            }
            b';' if depth == 0 => return false,
            _ if byte.is_ascii_alphabetic() || byte == b'_' => {
                let word = bytes.get(index..).unwrap_or_default();
                let length =
                    word.iter().take_while(|byte| byte.is_ascii_alphanumeric() || **byte == b'_').count();
                let word = word.get(..length).unwrap_or_default();
                if depth == 0 && (word.eq_ignore_ascii_case(b"AS") || word.eq_ignore_ascii_case(b"SELECT")) {
                    return true;
                }
                index + length
            }
            _ => index + 1,
        };
    }
    false
}

const DDL_OBJECTS: &[&str] = &[
    "TABLE",
    "VIEW",
    "INDEX",
    "SCHEMA",
    "SEQUENCE",
    "FUNCTION",
    "PROCEDURE",
    "TRIGGER",
    "TYPE",
    "DOMAIN",
    "EXTENSION",
    "DATABASE",
    "MATERIALIZED",
    "POLICY",
    "RULE",
    "SERVER",
    "TABLESPACE",
    "AGGREGATE",
    "PUBLICATION",
    "SUBSCRIPTION",
    "EVENT",
    "FOREIGN",
    "COLLATION",
    "OPERATOR",
    "STATISTICS",
];

/// How much a class matters to an auditor, to pick the class of multi-statement text.
fn weight(class: StatementClass) -> u8 {
    match class {
        StatementClass::Role => 7,
        StatementClass::Ddl => 6,
        StatementClass::Write => 5,
        StatementClass::Function => 4,
        StatementClass::Read => 3,
        StatementClass::MiscSet => 2,
        StatementClass::Misc => 1,
        StatementClass::Connect | StatementClass::Disconnect => 0,
    }
}

/// Splits text at the `;` that end statements: not inside quotes (`'`, `"`, backticks, with
/// `\` escapes), PostgreSQL dollar quotes (`$tag$ ... $tag$`) or `--` and `/* */` comments.
/// MySQL's `#` comments are not skipped (in PostgreSQL `#` is an operator): text after one is
/// classified too, which can only make the class riskier, never hide a statement.
fn split_statements(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut statements = Vec::new();
    let (mut start, mut index) = (0, 0);
    while let Some(&byte) = bytes.get(index) {
        index = match skip_quoted(bytes, index) {
            Some(after) => after,
            None if byte == b';' => {
                statements.push(text.get(start..index).unwrap_or_default());
                start = index + 1;
                index + 1
            }
            None => index + 1,
        };
    }
    statements.push(text.get(start.min(text.len())..).unwrap_or_default());
    statements
}

/// Where a quoted string or identifier, a comment or a dollar-quoted body that starts at
/// `index` ends (the index just after it); `None` when none starts there.
fn skip_quoted(bytes: &[u8], index: usize) -> Option<usize> {
    let byte = *bytes.get(index)?;
    let rest = bytes.get(index..).unwrap_or_default();
    let skip_past = |from: usize, needle: &[u8]| {
        memchr::memmem::find(bytes.get(from..).unwrap_or_default(), needle)
            .map_or(bytes.len(), |found| from + found + needle.len())
    };
    match byte {
        b'\'' | b'"' | b'`' => {
            let mut at = index + 1;
            while let Some(&inner) = bytes.get(at) {
                match inner {
                    b'\\' => at += 2,
                    _ if inner == byte => break,
                    _ => at += 1,
                }
            }
            Some(at + 1)
        }
        b'-' if rest.starts_with(b"--") => Some(skip_past(index, b"\n")),
        b'/' if rest.starts_with(b"/*") => Some(skip_past(index + 2, b"*/")),
        b'$' => {
            let tag_length =
                rest.iter().skip(1).take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
            match rest.get(tag_length + 1) {
                Some(b'$') => {
                    let tag = rest.get(..tag_length + 2).unwrap_or_default();
                    Some(skip_past(index + tag.len(), tag))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Classifies statement text. Several statements (`SELECT 1; DROP TABLE t`) are classified as
/// the one that matters most to an auditor: ROLE, then DDL, WRITE, FUNCTION, READ, SET, MISC.
pub fn classify(text: &str) -> Classified {
    let single = memchr::memchr(b';', text.as_bytes())
        .is_none_or(|at| text.get(at + 1..).is_some_and(|after| skip_noise(after).is_empty()));
    if single {
        return classify_one(text);
    }
    split_statements(text)
        .into_iter()
        .filter(|statement| !skip_noise(statement).is_empty())
        .map(classify_one)
        .reduce(|best, next| if weight(next.class) > weight(best.class) { next } else { best })
        .unwrap_or_else(|| classify_one(text))
}

/// Classifies one statement by its first keywords.
fn classify_one(statement: &str) -> Classified {
    let (first, rest) = next_word(statement);
    let simple = |command: &str, class| Classified { command: Text::from(command), class };
    match first.as_str() {
        "SELECT" => {
            if contains_word(rest, "INTO")
                && (contains_word(rest, "OUTFILE") || contains_word(rest, "DUMPFILE"))
            {
                simple("SELECT INTO OUTFILE", StatementClass::Read)
            } else {
                simple("SELECT", StatementClass::Read)
            }
        }
        "VALUES" | "TABLE" | "SHOW" | "DESCRIBE" | "DESC" => simple(&first, StatementClass::Read),
        "WITH" => {
            // A CTE's class is its main statement's: look for a data-changing keyword after it.
            if ["INSERT", "UPDATE", "DELETE", "MERGE"].iter().any(|word| contains_word(rest, word)) {
                simple("WITH", StatementClass::Write)
            } else {
                simple("SELECT", StatementClass::Read)
            }
        }
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "TRUNCATE" | "REPLACE" => {
            simple(&first, StatementClass::Write)
        }
        "LOAD" => simple("LOAD DATA", StatementClass::Write),
        "COPY" => {
            let class = if contains_word(rest, "TO") { StatementClass::Read } else { StatementClass::Write };
            simple("COPY", class)
        }
        "EXPLAIN" => {
            // Skip `(ANALYZE, BUFFERS)` or `ANALYZE VERBOSE` to reach the explained statement.
            let mut explained = skip_noise(rest);
            if let Some(options) = explained.strip_prefix('(') {
                explained = options.split_once(')').map_or("", |(_, after)| after);
            }
            loop {
                let (word, after) = next_word(explained);
                if !matches!(word.as_str(), "ANALYZE" | "ANALYSE" | "VERBOSE") {
                    break;
                }
                explained = after;
            }
            let analyzed = contains_word(rest, "ANALYZE") || contains_word(rest, "ANALYSE");
            simple("EXPLAIN", if analyzed { classify_one(explained).class } else { StatementClass::Misc })
        }
        "GRANT" | "REVOKE" => simple(&first, StatementClass::Role),
        "CREATE" | "ALTER" | "DROP" => {
            let (mut object, mut after) = next_word(rest);
            if object == "OR" {
                // CREATE OR REPLACE <object>
                let (_, after_replace) = next_word(after);
                (object, after) = next_word(after_replace);
            }
            while matches!(object.as_str(), "TEMP" | "TEMPORARY" | "UNLOGGED" | "UNIQUE" | "GLOBAL" | "LOCAL")
            {
                (object, after) = next_word(after);
            }
            let class = match object.as_str() {
                "ROLE" | "USER" | "GROUP" => StatementClass::Role,
                _ if DDL_OBJECTS.contains(&object.as_str()) => StatementClass::Ddl,
                _ => StatementClass::Ddl,
            };
            let command = if object == "TABLE" && first == "CREATE" && creates_table_from_query(after) {
                Text::const_new("CREATE TABLE AS")
            } else if object.is_empty() {
                first.clone()
            } else {
                let mut command = first.clone();
                command.push(' ');
                command.push_str(&object);
                command
            };
            Classified { command, class }
        }
        "RENAME" if next_word(rest).0 == "USER" => simple("RENAME USER", StatementClass::Role),
        "COMMENT" | "SECURITY" | "REINDEX" | "CLUSTER" | "RENAME" => simple(&first, StatementClass::Ddl),
        // MySQL and MariaDB: `SET PASSWORD [FOR user] = ...` changes an account.
        "SET" if next_word(rest).0 == "PASSWORD" => simple("SET PASSWORD", StatementClass::Role),
        "SET" | "RESET" => simple(&first, StatementClass::MiscSet),
        "CALL" | "DO" | "EXECUTE" => simple(&first, StatementClass::Function),
        "" => simple("UNKNOWN", StatementClass::Misc),
        _ => Classified { command: first, class: StatementClass::Misc },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(statement: &str, command: &str, class: StatementClass) {
        assert_eq!(classify(statement), Classified { command: command.into(), class }, "{statement}");
    }

    #[test]
    fn classifies_common_statements() {
        check("select * from t", "SELECT", StatementClass::Read);
        check("  -- why\n/* a */ SELECT 1", "SELECT", StatementClass::Read);
        check("WITH x AS (SELECT 1) SELECT * FROM x", "SELECT", StatementClass::Read);
        check("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "WITH", StatementClass::Write);
        check("INSERT INTO employees VALUES (1)", "INSERT", StatementClass::Write);
        check("COPY orders TO STDOUT", "COPY", StatementClass::Read);
        check("copy orders from stdin", "COPY", StatementClass::Write);
        check("SELECT * INTO OUTFILE '/tmp/x' FROM t", "SELECT INTO OUTFILE", StatementClass::Read);
        check("CREATE TABLE t (a int)", "CREATE TABLE", StatementClass::Ddl);
        check("create temp table t (a int)", "CREATE TABLE", StatementClass::Ddl);
        check("CREATE TABLE c AS SELECT * FROM t", "CREATE TABLE AS", StatementClass::Ddl);
        check(
            "create table c (a, b) with (fillfactor = 70) as table t",
            "CREATE TABLE AS",
            StatementClass::Ddl,
        );
        check("CREATE TABLE c ENGINE=InnoDB SELECT * FROM t", "CREATE TABLE AS", StatementClass::Ddl);
        check(
            "CREATE TABLE t (\n  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  b int GENERATED ALWAYS AS (id * 2) STORED\n);",
            "CREATE TABLE",
            StatementClass::Ddl,
        );
        check(
            "CREATE TABLE t (\"as\" int, c text DEFAULT 'x AS y') -- AS\n",
            "CREATE TABLE",
            StatementClass::Ddl,
        );
        check("CREATE OR REPLACE FUNCTION f() RETURNS int", "CREATE FUNCTION", StatementClass::Ddl);
        check("ALTER TABLE t ADD COLUMN b int", "ALTER TABLE", StatementClass::Ddl);
        check("DROP ROLE sneaky", "DROP ROLE", StatementClass::Role);
        check("create role sneaky login", "CREATE ROLE", StatementClass::Role);
        check("GRANT SELECT ON t TO r", "GRANT", StatementClass::Role);
        check("SET search_path = x", "SET", StatementClass::MiscSet);
        check("SET PASSWORD FOR u1 = PASSWORD(*****)", "SET PASSWORD", StatementClass::Role);
        check("RENAME USER a TO b", "RENAME USER", StatementClass::Role);
        check("RENAME TABLE a TO b", "RENAME", StatementClass::Ddl);
        check("EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN", StatementClass::Write);
        check("EXPLAIN SELECT 1", "EXPLAIN", StatementClass::Misc);
        check("vacuum t", "VACUUM", StatementClass::Misc);
        check("", "UNKNOWN", StatementClass::Misc);
    }

    #[test]
    fn classifies_multi_statement_text_by_its_riskiest_statement() {
        check("SELECT 1;", "SELECT", StatementClass::Read);
        check("SELECT 1; DROP TABLE t", "DROP TABLE", StatementClass::Ddl);
        check("select 'a;b'; select \"c;d\"", "SELECT", StatementClass::Read);
        check("SELECT 1 -- ; GRANT\n; UPDATE t SET a = 1", "UPDATE", StatementClass::Write);
        check("SELECT '\\'; DROP ROLE x'", "SELECT", StatementClass::Read);
        check("DO $body$ BEGIN; GRANT x TO y; END $body$; SELECT 1", "DO", StatementClass::Function);
        check(
            "/* ; */ INSERT INTO t VALUES (1); CREATE USER u; SELECT 2",
            "CREATE USER",
            StatementClass::Role,
        );
        check(";;", "UNKNOWN", StatementClass::Misc);
        check("SELECT 1 # ; DROP TABLE t", "DROP TABLE", StatementClass::Ddl);
    }
}
