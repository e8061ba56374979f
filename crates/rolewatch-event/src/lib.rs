//! The vocabulary of rolewatch.
//!
//! Every stage speaks in the types defined here and in nothing else:
//!
//! * [`AuditEvent`] is one normalized audit record: who (role), from where (client address,
//!   application), when (UTC), what (command, [`StatementClass`], objects, statement, rows), whether
//!   it succeeded, and where the record came from ([`SourcePosition`]). The parsers produce it, the
//!   lake stores it, the detectors read it.
//! * [`Alert`] is what a detector raises about one or more events, with a [`Severity`].
//! * [`schema::event_schema`] is the Arrow schema of the lake's `events` table; its column names
//!   are the JSON keys of an [`AuditEvent`].
//!
//! This crate does no I/O. The field-by-field reference for operators and analysts is
//! `docs/event-model.md`; the doc comments below say the same, closer to the code.
//!
//! ```
//! use rolewatch_event::{AuditEvent, LogFormat, Source, StatementClass};
//!
//! let mut event = AuditEvent::new(
//!     "2026-11-26T10:00:00.123456Z".parse().unwrap(),
//!     Source::Postgres,
//!     LogFormat::PgauditJsonlog,
//! );
//! event.role = Some("app_reader".into());
//! event.command = "SELECT".into();
//! event.class = StatementClass::Read;
//! event.rows = Some(20_000);
//! let json = serde_json::to_string(&event).unwrap();
//! assert!(json.contains(r#""ts":"2026-11-26T10:00:00.123456Z""#));
//! assert!(json.contains(r#""class":"READ""#));
//! ```

mod alert;
mod class;
mod event;
pub mod schema;
mod timestamp;

pub use alert::{Alert, Severity};
pub use class::StatementClass;
pub use event::{AuditEvent, LogFormat, Source, SourcePosition, Text};
pub use timestamp::format_rfc3339;
