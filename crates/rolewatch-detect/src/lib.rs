//! Role-aware streaming detectors: [`AuditEvent`](rolewatch_event::AuditEvent)s in,
//! [`Alert`](rolewatch_event::Alert)s out.
//!
//! The [`Engine`] runs every enabled detector over one stream of events. Each detector looks
//! at an event through the **role map** (`[roles]`: which roles are admins, readers, writers,
//! services) and raises alerts with a severity, a one-sentence summary naming role, origin and
//! evidence, and a **dedup key**. Repeats of a dedup key within the detector's `dedup_window`
//! are **folded**: the first occurrence is emitted at once, the repeats are counted and
//! reported by one follow-up alert when the window closes (see `docs/detectors.md`).
//!
//! Guarantees:
//!
//! * **Pure and deterministic.** No I/O, no wall clock: time is the events' `ts`, and windows
//!   close when event time (minus `lateness`) passes them. The same events in the same order
//!   give the same alerts, ids included (an id is a hash of detector, dedup key, position and
//!   time), so a backtest over the lake and the live pipeline agree.
//! * **Strict config.** Unknown keys are errors; [`Engine::new`] validates durations, globs and
//!   networks and names the offending key.
//! * **Bounded, cheap state.** Per role, session and address, in small maps with caches for
//!   the role and object lookups; expired state is dropped as event time advances.
//!
//! The detectors (alert field `detector`): `large_export`, `export_command`,
//! `ddl_by_non_admin`, `privilege_change_by_non_admin`, `sensitive_access`, `dangerous_command`,
//! `auth_failure_burst`, `admin_from_service_origin`, `new_origin`, `source_silent`.
//!
//! ```
//! use rolewatch_detect::{DetectionConfig, Engine};
//! use rolewatch_event::{AuditEvent, LogFormat, Source, StatementClass};
//!
//! let mut config = DetectionConfig::default();
//! config.roles.reader = vec!["app_reader".into()];
//! let mut engine = Engine::new(&config)?;
//!
//! let mut event = AuditEvent::new(
//!     "2026-11-26T10:00:00Z".parse().unwrap(),
//!     Source::Postgres,
//!     LogFormat::PgauditJsonlog,
//! );
//! event.role = Some("app_reader".into());
//! event.client_addr = Some("127.0.0.1".into());
//! event.application = Some("webapp".into());
//! event.command = "SELECT".into();
//! event.class = StatementClass::Read;
//! event.objects = vec!["public.orders".into()];
//! event.rows = Some(20_000);
//!
//! let mut alerts = Vec::new();
//! engine.observe(&event, &mut alerts);
//! engine.finish(&mut alerts);
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].detector, "large_export");
//! assert_eq!(
//!     alerts[0].summary,
//!     "app_reader read 20000 rows of public.orders in one statement from 127.0.0.1 (webapp)"
//! );
//! # Ok::<(), rolewatch_detect::ConfigError>(())
//! ```

pub mod config;
mod detectors;
mod engine;
mod error;
mod fast;
mod fold;
mod origins;
mod patterns;
mod roles;
mod sensitive;
mod state;
#[cfg(test)]
mod testing;

pub use config::{
    AdminFromServiceOriginConfig, AuthFailureBurstConfig, DangerousCommandConfig, DdlByNonAdminConfig,
    DetectionConfig, DetectorsConfig, ExportCommandConfig, LargeExportConfig, NewOriginConfig, OriginsConfig,
    PrivilegeChangeByNonAdminConfig, RoleClass, RolesConfig, SensitiveAccessConfig, SensitiveConfig,
    SourceSilentConfig,
};
pub use engine::Engine;
pub use error::ConfigError;
pub use state::{
    DedupWindow, EngineState, FailedLogins, LearnedOrigins, OpenWindows, RowBucket, RowsRead, STATE_VERSION,
    SourceSeen,
};

/// The ids of every detector, in the order the engine runs them.
pub const DETECTOR_IDS: [&str; 10] = [
    detectors::large_export::ID,
    detectors::export_command::ID,
    detectors::ddl_by_non_admin::ID,
    detectors::privilege_change::ID,
    detectors::sensitive_access::ID,
    detectors::dangerous_command::ID,
    detectors::auth_failure_burst::ID,
    detectors::admin_from_service_origin::ID,
    detectors::new_origin::ID,
    detectors::source_silent::ID,
];
