use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::StatementClass;

/// The text of an event's short fields (role, database, command, object names, ...): a string
/// that keeps up to 24 bytes inline, so the fields of a typical event need no allocation of
/// their own. It derefs to `str` and converts from `&str` and `String`.
pub type Text = compact_str::CompactString;

/// The database family that wrote an audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// PostgreSQL (pgAudit and the server's own log lines).
    Postgres,
    /// MariaDB and the server_audit family (RDS MariaDB, the AWS plugin of RDS for MySQL).
    Mariadb,
    /// MySQL Enterprise Audit and Percona's audit plugins.
    Mysql,
}

impl Source {
    /// The name as written in JSON and Parquet.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mariadb => "mariadb",
            Self::Mysql => "mysql",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::Postgres, Self::Mariadb, Self::Mysql]
            .into_iter()
            .find(|source| source.as_str() == text)
            .ok_or_else(|| format!("unknown source {text:?}, expected postgres, mariadb or mysql"))
    }
}

/// The log format a record was read in. Its names are the `--format` values of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogFormat {
    /// PostgreSQL `jsonlog` (PG 15+) carrying pgAudit records.
    #[serde(rename = "pgaudit-jsonlog")]
    PgauditJsonlog,
    /// PostgreSQL `csvlog` carrying pgAudit records.
    #[serde(rename = "pgaudit-csvlog")]
    PgauditCsvlog,
    /// PostgreSQL `stderr` logs with a `log_line_prefix`, carrying pgAudit records.
    #[serde(rename = "pgaudit-stderr")]
    PgauditStderr,
    /// The MariaDB server_audit file format and its AWS variants.
    #[serde(rename = "mariadb-audit")]
    MariadbAudit,
    /// MySQL Enterprise Audit and Percona audit JSON.
    #[serde(rename = "mysql-audit-json")]
    MysqlAuditJson,
}

impl LogFormat {
    /// Every format, in declaration order.
    pub const ALL: [LogFormat; 5] = [
        Self::PgauditJsonlog,
        Self::PgauditCsvlog,
        Self::PgauditStderr,
        Self::MariadbAudit,
        Self::MysqlAuditJson,
    ];

    /// The `--format` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PgauditJsonlog => "pgaudit-jsonlog",
            Self::PgauditCsvlog => "pgaudit-csvlog",
            Self::PgauditStderr => "pgaudit-stderr",
            Self::MariadbAudit => "mariadb-audit",
            Self::MysqlAuditJson => "mysql-audit-json",
        }
    }

    /// The database family whose logs this format carries.
    pub fn source(self) -> Source {
        match self {
            Self::PgauditJsonlog | Self::PgauditCsvlog | Self::PgauditStderr => Source::Postgres,
            Self::MariadbAudit => Source::Mariadb,
            Self::MysqlAuditJson => Source::Mysql,
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|format| format.as_str() == text).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|format| format.as_str()).collect();
            format!("unknown format {text:?}, expected one of {}", known.join(", "))
        })
    }
}

/// Where a raw record was read: a byte range of a file, or a Kafka offset.
#[derive(Debug, PartialEq, Eq, Hash)]
pub enum SourcePosition {
    /// A record read from a file (or stdin, named `-`).
    File {
        /// The path as given on the command line or in the config (shared by every record of
        /// the file).
        file: Arc<str>,
        /// The 1-based line the record starts on.
        line: u64,
        /// The byte offset of the record's first byte.
        offset: u64,
    },
    /// A record read from Kafka.
    Kafka {
        /// The topic (shared by every record of the partition).
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The record's offset in its partition.
        offset: i64,
    },
}

impl Clone for SourcePosition {
    fn clone(&self) -> Self {
        match self {
            Self::File { file, line, offset } => {
                Self::File { file: Arc::clone(file), line: *line, offset: *offset }
            }
            Self::Kafka { topic, partition, offset } => {
                Self::Kafka { topic: Arc::clone(topic), partition: *partition, offset: *offset }
            }
        }
    }

    /// Keeps the file or topic name when it is the same shared one: a parser that remembers
    /// each record's position takes no reference count per record.
    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (
                Self::File { file, line, offset },
                Self::File { file: source_file, line: source_line, offset: source_offset },
            ) if Arc::ptr_eq(file, source_file) => {
                *line = *source_line;
                *offset = *source_offset;
            }
            (
                Self::Kafka { topic, partition, offset },
                Self::Kafka { topic: source_topic, partition: source_partition, offset: source_offset },
            ) if Arc::ptr_eq(topic, source_topic) => {
                *partition = *source_partition;
                *offset = *source_offset;
            }
            (this, source) => *this = source.clone(),
        }
    }
}

impl fmt::Display for SourcePosition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { file, line, offset } => write!(formatter, "{file}:{line} (byte {offset})"),
            Self::Kafka { topic, partition, offset } => {
                write!(formatter, "{topic}[{partition}]@{offset}")
            }
        }
    }
}

/// One normalized audit record.
///
/// The JSON keys (NDJSON output) and the Parquet column names are the field names below;
/// `docs/event-model.md` documents each one for analysts. Optional fields are `null` when the
/// source does not say, never an empty string standing for "unknown".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When the server wrote the record, in UTC (JSON: RFC 3339 with microseconds and `Z`).
    #[serde(with = "crate::timestamp")]
    pub ts: DateTime<Utc>,
    /// The database family: `postgres`, `mariadb` or `mysql`.
    pub source: Source,
    /// The log format the record was read in, e.g. `pgaudit-jsonlog`.
    pub format: LogFormat,
    /// The server's name as configured for the source (`--server`, or the config), if any.
    pub server: Option<Text>,
    /// The database the session was connected to.
    pub database: Option<Text>,
    /// The database role (user) the session authenticated as.
    pub role: Option<Text>,
    /// The client's address (IP or host name), `null` for local socket connections.
    pub client_addr: Option<Text>,
    /// The client's TCP port.
    pub client_port: Option<u16>,
    /// The client application name (`application_name` in PostgreSQL).
    pub application: Option<Text>,
    /// The server's session (connection) identifier.
    pub session_id: Option<Text>,
    /// The command tag in upper case: `SELECT`, `CREATE TABLE`, `CONNECT`, ...
    pub command: Text,
    /// The statement class.
    pub class: StatementClass,
    /// The objects the statement touched, as `schema.table`, in the order the source names them.
    pub objects: Vec<Text>,
    /// The statement text, `null` when the source did not log it.
    pub statement: Option<String>,
    /// Bind parameters: `null` when not logged, an empty list when there were none.
    pub parameters: Option<Vec<String>>,
    /// Rows read or written, `null` when the source does not say.
    pub rows: Option<u64>,
    /// `false` for failed statements and failed logins.
    pub success: bool,
    /// The SQLSTATE (PostgreSQL) or server error number (MariaDB, MySQL) of a failure.
    pub error_code: Option<Text>,
    /// The server's error message of a failure.
    pub error_message: Option<String>,
    /// pgAudit's statement id, counted per session.
    pub statement_id: Option<u64>,
    /// pgAudit's sub-statement id (functions, triggers, CTAS).
    pub substatement_id: Option<u64>,
    /// The file the record was read from, for file sources.
    pub source_file: Option<Arc<str>>,
    /// The 1-based line of `source_file` the record starts on.
    pub source_line: Option<u64>,
    /// The Kafka topic the record was read from, for Kafka sources.
    pub source_topic: Option<Arc<str>>,
    /// The Kafka partition.
    pub source_partition: Option<i32>,
    /// The byte offset in `source_file`, or the Kafka offset in `source_partition`.
    pub source_offset: Option<i64>,
}

impl AuditEvent {
    /// An event with the required fields set and every optional one empty; the command is
    /// empty and the class [`StatementClass::Misc`] until the parser says better.
    #[inline]
    pub fn new(ts: DateTime<Utc>, source: Source, format: LogFormat) -> Self {
        Self {
            ts,
            source,
            format,
            server: None,
            database: None,
            role: None,
            client_addr: None,
            client_port: None,
            application: None,
            session_id: None,
            command: Text::default(),
            class: StatementClass::Misc,
            objects: Vec::new(),
            statement: None,
            parameters: None,
            rows: None,
            success: true,
            error_code: None,
            error_message: None,
            statement_id: None,
            substatement_id: None,
            source_file: None,
            source_line: None,
            source_topic: None,
            source_partition: None,
            source_offset: None,
        }
    }

    /// Records where the event's raw record was read.
    #[inline]
    pub fn set_position(&mut self, position: &SourcePosition) {
        match position {
            SourcePosition::File { file, line, offset } => {
                self.source_file = Some(file.clone());
                self.source_line = Some(*line);
                self.source_offset = i64::try_from(*offset).ok();
            }
            SourcePosition::Kafka { topic, partition, offset } => {
                self.source_topic = Some(topic.clone());
                self.source_partition = Some(*partition);
                self.source_offset = Some(*offset);
            }
        }
    }

    /// Where the event's raw record was read, if the parser said.
    pub fn position(&self) -> Option<SourcePosition> {
        if let (Some(topic), Some(partition), Some(offset)) =
            (&self.source_topic, self.source_partition, self.source_offset)
        {
            return Some(SourcePosition::Kafka { topic: topic.clone(), partition, offset });
        }
        let file = self.source_file.as_ref()?;
        Some(SourcePosition::File {
            file: file.clone(),
            line: self.source_line.unwrap_or(0),
            offset: self.source_offset.and_then(|offset| u64::try_from(offset).ok()).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `clone_from` gives what `clone` gives, keeping the shared name when it is the same one.
    #[test]
    fn clone_from_keeps_a_shared_name_and_replaces_the_rest() {
        let file: Arc<str> = Arc::from("pg.log");
        let other: Arc<str> = Arc::from("pg.log");
        let topic: Arc<str> = Arc::from("pg");
        let mut position = SourcePosition::File { file: Arc::clone(&file), line: 1, offset: 0 };
        let sources = [
            SourcePosition::File { file: Arc::clone(&file), line: 7, offset: 700 },
            SourcePosition::File { file: Arc::clone(&other), line: 8, offset: 800 },
            SourcePosition::Kafka { topic: Arc::clone(&topic), partition: 2, offset: 9 },
            SourcePosition::Kafka { topic: Arc::clone(&topic), partition: 1, offset: 10 },
            SourcePosition::File { file: Arc::clone(&file), line: 9, offset: 900 },
        ];
        for source in &sources {
            position.clone_from(source);
            assert_eq!(&position, source);
        }
        let SourcePosition::File { file: kept, .. } = &position else { panic!("{position}") };
        assert!(Arc::ptr_eq(kept, &file));
        // The source positions and `position` hold the name: no reference was lost or leaked.
        assert_eq!(Arc::strong_count(&file), 4);
        assert_eq!(Arc::strong_count(&topic), 3);
        assert_eq!(Arc::strong_count(&other), 2);
    }

    fn sample() -> AuditEvent {
        let mut event = AuditEvent::new(
            "2026-11-26T10:00:00.5Z".parse().unwrap(),
            Source::Postgres,
            LogFormat::PgauditJsonlog,
        );
        event.role = Some("app_reader".into());
        event.command = "SELECT".into();
        event.class = StatementClass::Read;
        event.objects = vec!["public.orders".into()];
        event.parameters = Some(vec![]);
        event.rows = Some(3);
        event.set_position(&SourcePosition::File { file: "x.json".into(), line: 7, offset: 812 });
        event
    }

    #[test]
    fn json_has_the_documented_keys_and_utc_micros() {
        let json: serde_json::Value = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["ts"], "2026-11-26T10:00:00.500000Z");
        assert_eq!(json["source"], "postgres");
        assert_eq!(json["format"], "pgaudit-jsonlog");
        assert_eq!(json["class"], "READ");
        assert_eq!(json["objects"][0], "public.orders");
        assert_eq!(json["rows"], 3);
        assert_eq!(json["client_addr"], serde_json::Value::Null);
        assert_eq!(json["source_offset"], 812);
        for key in [
            "server",
            "database",
            "role",
            "client_addr",
            "client_port",
            "application",
            "session_id",
            "command",
            "statement",
            "parameters",
            "success",
            "error_code",
            "source_file",
            "source_topic",
            "source_partition",
        ] {
            assert!(json.get(key).is_some(), "missing key {key}");
        }
    }

    #[test]
    fn json_round_trips() {
        let event = sample();
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<AuditEvent>(&text).unwrap(), event);
    }

    #[test]
    fn position_round_trips() {
        let event = sample();
        assert_eq!(
            event.position(),
            Some(SourcePosition::File { file: "x.json".into(), line: 7, offset: 812 })
        );
        assert_eq!(event.position().unwrap().to_string(), "x.json:7 (byte 812)");
    }

    #[test]
    fn format_names_parse() {
        for format in LogFormat::ALL {
            assert_eq!(format.as_str().parse::<LogFormat>(), Ok(format));
        }
        let error = "pgaudit".parse::<LogFormat>().unwrap_err();
        assert!(error.contains("pgaudit-jsonlog"), "{error}");
    }
}
