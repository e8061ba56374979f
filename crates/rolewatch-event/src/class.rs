use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of statement an event records: pgAudit's class vocabulary plus connection events.
///
/// pgAudit writes the class itself; for sources that do not (MariaDB, MySQL, failed statements
/// from PostgreSQL's `ERROR` lines) the parser derives it from the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatementClass {
    /// `SELECT`, `COPY ... TO`: reads data.
    Read,
    /// `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`, `COPY ... FROM`: changes data.
    Write,
    /// Schema changes: `CREATE`, `ALTER`, `DROP` of tables, views, functions and the like.
    Ddl,
    /// Privileges and roles: `GRANT`, `REVOKE`, `CREATE/ALTER/DROP ROLE` or `USER`.
    Role,
    /// Function calls and `DO` blocks.
    Function,
    /// Everything else: `VACUUM`, `CHECKPOINT`, `DISCARD`, `FETCH`, ...
    Misc,
    /// `SET` and `RESET` of settings.
    MiscSet,
    /// A login attempt, successful or not.
    Connect,
    /// The end of a session.
    Disconnect,
}

impl StatementClass {
    /// Every class, in declaration order.
    pub const ALL: [StatementClass; 9] = [
        Self::Read,
        Self::Write,
        Self::Ddl,
        Self::Role,
        Self::Function,
        Self::Misc,
        Self::MiscSet,
        Self::Connect,
        Self::Disconnect,
    ];

    /// The name as written in JSON, Parquet and pgAudit records (`READ`, `MISC_SET`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Ddl => "DDL",
            Self::Role => "ROLE",
            Self::Function => "FUNCTION",
            Self::Misc => "MISC",
            Self::MiscSet => "MISC_SET",
            Self::Connect => "CONNECT",
            Self::Disconnect => "DISCONNECT",
        }
    }
}

impl fmt::Display for StatementClass {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The error of parsing a [`StatementClass`] from text that is not one of its names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown statement class {0:?}")]
pub struct UnknownClass(pub String);

impl FromStr for StatementClass {
    type Err = UnknownClass;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // A match, not a search of ALL: every pgAudit record is read through here.
        Ok(match text {
            "READ" => Self::Read,
            "WRITE" => Self::Write,
            "DDL" => Self::Ddl,
            "ROLE" => Self::Role,
            "FUNCTION" => Self::Function,
            "MISC" => Self::Misc,
            "MISC_SET" => Self::MiscSet,
            "CONNECT" => Self::Connect,
            "DISCONNECT" => Self::Disconnect,
            _ => return Err(UnknownClass(text.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for class in StatementClass::ALL {
            assert_eq!(class.as_str().parse::<StatementClass>(), Ok(class));
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
        }
        assert!("select".parse::<StatementClass>().is_err());
    }

    /// A class's place in `ALL` is its discriminant: counters index arrays by `class as usize`.
    #[test]
    fn all_is_in_declaration_order() {
        for (index, class) in StatementClass::ALL.into_iter().enumerate() {
            assert_eq!(class as usize, index);
        }
    }
}
