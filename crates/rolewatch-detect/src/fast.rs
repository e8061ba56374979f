//! Hash maps for the per-event hot path.
//!
//! The detectors look up roles, sessions, addresses and objects several times per event; with
//! std's SipHash that hashing was the largest single cost in the benchmark. foldhash's quality
//! variant is several times faster on short strings and still seeded per process, so keys an
//! attacker chooses (role names, client addresses) cannot be aimed at one bucket in advance.

use std::collections::{HashMap, HashSet};

/// A `HashMap` with foldhash.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

/// A `HashSet` with foldhash.
pub(crate) type FastSet<T> = HashSet<T, foldhash::quality::RandomState>;
