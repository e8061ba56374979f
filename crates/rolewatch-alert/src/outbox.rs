//! The durable outbox: what is written before delivery is attempted and removed only after a
//! 2xx.
//!
//! ```text
//! <outbox>/entries/<destination>/<entry id>.json     one per (alert, destination), from enqueue
//! <outbox>/messages/<destination>/<message id>.json  a group of entries rendered as one message
//! <outbox>/dead/<destination>-<message id>.json       messages rejected for good, with all alerts
//! ```
//!
//! Every file is written to a `.tmp` sibling, fsynced, renamed into place, and the directory is
//! fsynced, so a file either exists complete or not at all. An entry becomes part of a message
//! by writing the message (which lists its entries) first and removing the entries second; a
//! crash in between is repaired at open by removing entries that a message already lists. So
//! every alert is in exactly one place at every instant, and delivery is at least once.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rolewatch_event::Alert;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AlertError;

/// The format version written in every outbox file.
const FORMAT_VERSION: u32 = 1;

/// One alert waiting to be grouped into a message for one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    pub(crate) version: u32,
    pub(crate) entry_id: String,
    pub(crate) enqueued_at: DateTime<Utc>,
    pub(crate) alert: Alert,
}

impl StoredEntry {
    pub(crate) fn new(destination: &str, alert: Alert, enqueued_at: DateTime<Utc>) -> Self {
        Self { version: FORMAT_VERSION, entry_id: entry_id(destination, &alert.id), enqueued_at, alert }
    }
}

/// The id of an (alert, destination) pair: the same alert enqueued twice is one entry.
pub(crate) fn entry_id(destination: &str, alert_id: &str) -> String {
    let digest = Sha256::new().chain_update(destination).chain_update([0]).chain_update(alert_id).finalize();
    hex::encode(digest.get(..16).unwrap_or(&digest))
}

/// A message: the exact body sent (and signed) on every attempt, and every alert it stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredMessage {
    pub(crate) version: u32,
    /// The `webhook-id`: stable across retries and restarts.
    pub(crate) id: String,
    pub(crate) destination: String,
    pub(crate) created_at: DateTime<Utc>,
    /// When the oldest of its alerts was enqueued: `max_age` counts from here.
    pub(crate) oldest_enqueued_at: DateTime<Utc>,
    /// The entries folded into it.
    pub(crate) members: Vec<String>,
    /// Every alert, including those not listed in the body.
    pub(crate) alerts: Vec<Alert>,
    /// The sum of the alerts' counts.
    pub(crate) count: u64,
    pub(crate) body: String,
}

/// A message that will never be delivered, kept for an operator.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DeadLetter {
    pub(crate) version: u32,
    pub(crate) destination: String,
    pub(crate) message_id: String,
    /// `permanent`, `forbidden_destination` or `expired`.
    pub(crate) reason: String,
    /// The last HTTP status, if a response was received.
    pub(crate) status: Option<u16>,
    pub(crate) failed_at: DateTime<Utc>,
    pub(crate) count: u64,
    pub(crate) alerts: Vec<Alert>,
    pub(crate) body: String,
}

/// The outbox directory.
#[derive(Debug)]
pub(crate) struct Outbox {
    root: PathBuf,
}

impl Outbox {
    /// Creates the directories (for every destination) and removes leftover temp files.
    pub(crate) fn open(root: &Path, destinations: &[&str]) -> Result<Self, AlertError> {
        let outbox = Self { root: root.to_owned() };
        for destination in destinations {
            for directory in [outbox.entries_dir(destination), outbox.messages_dir(destination)] {
                fs::create_dir_all(&directory).map_err(|error| AlertError::outbox(&directory, error))?;
                remove_temp_files(&directory)?;
            }
        }
        let dead = outbox.dead_dir();
        fs::create_dir_all(&dead).map_err(|error| AlertError::outbox(&dead, error))?;
        remove_temp_files(&dead)?;
        Ok(outbox)
    }

    fn entries_dir(&self, destination: &str) -> PathBuf {
        self.root.join("entries").join(destination)
    }

    fn messages_dir(&self, destination: &str) -> PathBuf {
        self.root.join("messages").join(destination)
    }

    pub(crate) fn dead_dir(&self) -> PathBuf {
        self.root.join("dead")
    }

    /// Writes entries durably: each file fsynced, then one directory fsync for the batch.
    pub(crate) fn write_entries(&self, destination: &str, entries: &[StoredEntry]) -> Result<(), AlertError> {
        let directory = self.entries_dir(destination);
        for entry in entries {
            let bytes = serde_json::to_vec(entry).map_err(|error| corrupt(&directory, &error))?;
            write_file(&directory, &format!("{}.json", entry.entry_id), &bytes)?;
        }
        sync_dir(&directory)
    }

    /// Entries of a destination, in no particular order. Unreadable files are reported and left.
    pub(crate) fn load_entries(&self, destination: &str) -> Result<Vec<StoredEntry>, AlertError> {
        load_json(&self.entries_dir(destination))
    }

    /// Writes a message durably, then removes the entries it folds.
    pub(crate) fn write_message(&self, message: &StoredMessage) -> Result<(), AlertError> {
        let directory = self.messages_dir(&message.destination);
        let bytes = serde_json::to_vec(message).map_err(|error| corrupt(&directory, &error))?;
        write_file(&directory, &format!("{}.json", message.id), &bytes)?;
        sync_dir(&directory)?;
        self.remove_entries(&message.destination, &message.members)
    }

    /// Removes entries (already folded into a durable message); missing files are fine.
    pub(crate) fn remove_entries(&self, destination: &str, entry_ids: &[String]) -> Result<(), AlertError> {
        let directory = self.entries_dir(destination);
        for entry_id in entry_ids {
            remove_if_present(&directory.join(format!("{entry_id}.json")))?;
        }
        sync_dir(&directory)
    }

    /// Messages of a destination, oldest first.
    pub(crate) fn load_messages(&self, destination: &str) -> Result<Vec<StoredMessage>, AlertError> {
        let mut messages: Vec<StoredMessage> = load_json(&self.messages_dir(destination))?;
        messages.sort_by(|left, right| {
            left.created_at.cmp(&right.created_at).then_with(|| left.id.cmp(&right.id))
        });
        Ok(messages)
    }

    /// Removes a delivered message.
    pub(crate) fn remove_message(&self, destination: &str, message_id: &str) -> Result<(), AlertError> {
        let directory = self.messages_dir(destination);
        remove_if_present(&directory.join(format!("{message_id}.json")))?;
        sync_dir(&directory)
    }

    /// Moves a message to `dead/` (written first, removed second) and returns the file.
    pub(crate) fn dead_letter(&self, dead: &DeadLetter) -> Result<PathBuf, AlertError> {
        let directory = self.dead_dir();
        let bytes = serde_json::to_vec_pretty(dead).map_err(|error| corrupt(&directory, &error))?;
        let name = format!("{}-{}.json", dead.destination, dead.message_id);
        write_file(&directory, &name, &bytes)?;
        sync_dir(&directory)?;
        self.remove_message(&dead.destination, &dead.message_id)?;
        Ok(directory.join(name))
    }
}

fn corrupt(path: &Path, error: &serde_json::Error) -> AlertError {
    AlertError::OutboxCorrupt { path: path.to_owned(), message: error.to_string() }
}

fn write_file(directory: &Path, name: &str, bytes: &[u8]) -> Result<(), AlertError> {
    let final_path = directory.join(name);
    let temp_path = directory.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temp_path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp_path, &final_path)
    };
    write().map_err(|error| {
        let _ = fs::remove_file(&temp_path);
        AlertError::outbox(&final_path, error)
    })
}

fn sync_dir(directory: &Path) -> Result<(), AlertError> {
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| AlertError::outbox(directory, error))
}

fn remove_if_present(path: &Path) -> Result<(), AlertError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(AlertError::outbox(path, error)),
    }
}

fn remove_temp_files(directory: &Path) -> Result<(), AlertError> {
    let listing = fs::read_dir(directory).map_err(|error| AlertError::outbox(directory, error))?;
    for item in listing {
        let path = item.map_err(|error| AlertError::outbox(directory, error))?.path();
        if path.extension().is_some_and(|extension| extension == "tmp") {
            remove_if_present(&path)?;
        }
    }
    Ok(())
}

fn load_json<T: serde::de::DeserializeOwned>(directory: &Path) -> Result<Vec<T>, AlertError> {
    let listing = fs::read_dir(directory).map_err(|error| AlertError::outbox(directory, error))?;
    let mut loaded = Vec::new();
    for item in listing {
        let path = item.map_err(|error| AlertError::outbox(directory, error))?.path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let bytes = fs::read(&path).map_err(|error| AlertError::outbox(&path, error))?;
        match serde_json::from_slice(&bytes) {
            Ok(value) => loaded.push(value),
            Err(error) => {
                // Left in place for an operator: deleting it could lose an alert.
                tracing::error!(path = %path.display(), %error, "unreadable outbox file skipped");
            }
        }
    }
    Ok(loaded)
}
