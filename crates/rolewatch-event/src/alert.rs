use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Source;

/// How urgent an alert is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording, not worth a page.
    Info,
    /// Unusual but probably benign.
    Low,
    /// Needs a look the same day.
    Medium,
    /// Needs a look now.
    High,
    /// Evidence of compromise or of tampering with the evidence.
    Critical,
}

impl Severity {
    /// The name as written in config, JSON and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::Info, Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|severity| severity.as_str() == text)
            .ok_or_else(|| format!("unknown severity {text:?}, expected info, low, medium, high or critical"))
    }
}

/// What a detector raises about risky behaviour.
///
/// `id` is derived from the detector, the dedup key and the triggering record's position, so
/// running the same detectors over the same events always yields the same ids (a replay or a
/// backtest never mints new alerts for old evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable identifier (hex), the same on every delivery attempt and every replay.
    pub id: String,
    /// The detector's id, e.g. `large_export`.
    pub detector: String,
    /// How urgent it is.
    pub severity: Severity,
    /// The role whose behaviour raised it.
    pub role: Option<String>,
    /// Event time of the (first) triggering event, UTC.
    #[serde(with = "crate::timestamp")]
    pub ts: DateTime<Utc>,
    /// One sentence a person reads at a glance: who did what, from where, with what evidence.
    pub summary: String,
    /// The database family of the triggering events.
    pub source: Source,
    /// The server, when known.
    pub server: Option<String>,
    /// The database, when known.
    pub database: Option<String>,
    /// The client address of the triggering event.
    pub client_addr: Option<String>,
    /// The client application of the triggering event.
    pub application: Option<String>,
    /// The session of the triggering event.
    pub session_id: Option<String>,
    /// The objects involved.
    pub objects: Vec<String>,
    /// The statement that triggered it (as logged; delivery truncates and redacts it).
    pub evidence: Option<String>,
    /// How many occurrences this alert stands for (1 unless repeats were folded into it).
    pub count: u64,
    /// Event time of the last occurrence folded into this alert.
    #[serde(with = "crate::timestamp")]
    pub last_ts: DateTime<Utc>,
    /// What makes two occurrences "the same" for folding: detector-specific, e.g. the role.
    pub dedup_key: String,
    /// Where the triggering record was read: `file:line (byte N)` or `topic[partition]@offset`.
    pub position: Option<String>,
    /// Free-form labels for routing (detector-specific facts such as `rows`).
    pub labels: BTreeMap<String, String>,
}
