//! What the engine keeps across restarts: learned origins, the learning start, when each
//! source was last heard from, and the windows still open (failed logins and rows read counted
//! so far, alerts whose repeats are being folded).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rolewatch_event::{Alert, Source};
use serde::{Deserialize, Serialize};

/// The version of [`EngineState`]'s shape written by this crate. Version 2 added
/// [`EngineState::windows`]; a version 1 state reads as one without open windows.
pub const STATE_VERSION: u32 = 2;

/// The engine's persistent state, from [`crate::Engine::export_state`]. The binary stores it
/// (JSON is fine) and hands it back with [`crate::Engine::import_state`] after a restart, so
/// that a restart neither forgets what was learned nor lets a burst of failed logins or an
/// export spread across it go unnoticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineState {
    /// The shape version, [`STATE_VERSION`].
    pub version: u32,
    /// The newest event time the engine had seen.
    pub newest_event: Option<DateTime<Utc>>,
    /// When `new_origin` started learning (the first event the engine ever saw).
    pub learning_started: Option<DateTime<Utc>>,
    /// Per role, the origins `new_origin` has seen.
    pub origins: BTreeMap<String, LearnedOrigins>,
    /// Per source (`server`, or the database family when the event names no server), when
    /// `source_silent` last heard from it.
    pub sources: BTreeMap<String, SourceSeen>,
    /// The windows open when the state was exported.
    #[serde(default)]
    pub windows: OpenWindows,
}

impl Default for EngineState {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            newest_event: None,
            learning_started: None,
            origins: BTreeMap::new(),
            sources: BTreeMap::new(),
            windows: OpenWindows::default(),
        }
    }
}

/// The origins seen for one role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedOrigins {
    /// Client addresses.
    pub client_addrs: BTreeSet<String>,
    /// Client application names.
    pub applications: BTreeSet<String>,
}

/// When a source was last heard from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSeen {
    /// Its database family.
    pub source: Source,
    /// The time of its newest event.
    pub last_seen: DateTime<Utc>,
}

/// The windows the detectors and the engine had open: counts that a restart would otherwise
/// start again from zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenWindows {
    /// `auth_failure_burst`: the recent failed logins per role.
    pub failed_logins_by_role: BTreeMap<String, FailedLogins>,
    /// `auth_failure_burst`: the recent failed logins per client address.
    pub failed_logins_by_address: BTreeMap<String, FailedLogins>,
    /// `large_export`: rows read per server (`""` when unknown), then per session.
    pub rows_by_session: BTreeMap<String, BTreeMap<String, RowsRead>>,
    /// `large_export`: rows read per role, across its sessions.
    pub rows_by_role: BTreeMap<String, RowsRead>,
    /// Per dedup key, the alert whose repeats are folded until the window ends.
    pub dedup: BTreeMap<String, DedupWindow>,
}

/// The recent failed logins of one role or address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedLogins {
    /// Their times, oldest first (at most the detector's `failures + 1`).
    pub recent: Vec<DateTime<Utc>>,
    /// When the last burst was detected, if a success after it could still raise an alert.
    pub last_burst: Option<DateTime<Utc>>,
}

/// Rows read within the sliding window, in buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowsRead {
    /// The buckets, oldest first.
    pub buckets: Vec<RowBucket>,
}

/// The reads of one bucket of a [`RowsRead`] window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowBucket {
    /// When the bucket starts (its first read).
    pub start: DateTime<Utc>,
    /// Rows read in it.
    pub rows: u64,
    /// Statements that read them.
    pub statements: u32,
}

/// An open dedup window: repeats of its key until `end` fold into one follow-up alert. The
/// engine's folder holds its open windows in this shape, and saves them as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupWindow {
    /// When the window ends.
    pub end: DateTime<Utc>,
    /// The id of the alert that opened it.
    pub first_id: String,
    /// The first folded repeat (its summary, evidence and labels stand for all of them), with
    /// the count, ts and last_ts of the repeats folded so far.
    pub folded: Option<Alert>,
}
