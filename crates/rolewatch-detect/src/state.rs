//! What the engine keeps across restarts: learned origins, the learning start, and when each
//! source was last heard from.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rolewatch_event::Source;
use serde::{Deserialize, Serialize};

/// The version of [`EngineState`]'s shape written by this crate.
pub const STATE_VERSION: u32 = 1;

/// The engine's persistent state, from [`crate::Engine::export_state`]. The binary stores it
/// (JSON is fine) and hands it back with [`crate::Engine::import_state`] after a restart.
/// Open windows and running counts are not kept: they restart empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Default for EngineState {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            newest_event: None,
            learning_started: None,
            origins: BTreeMap::new(),
            sources: BTreeMap::new(),
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
