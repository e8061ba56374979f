//! The one error type of this crate: a configuration that does not validate.

/// Why a detection configuration was rejected. Every variant names the config key
/// (`detectors.auth_failure_burst.window`, `roles.admin`, ...) so an operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A duration that humantime cannot read (`"1m"`, `"15m"`, `"1h"`, `"7d"` are fine).
    #[error("{key}: invalid duration {value:?}: {reason}")]
    InvalidDuration {
        /// The config key.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A role, application or object pattern that is not a valid glob.
    #[error("{key}: invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The config key.
        key: String,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A network that is not `address/prefix` (or a bare address).
    #[error("{key}: invalid network {value:?}, expected CIDR such as 10.0.0.0/8 or fd00::/8")]
    InvalidNetwork {
        /// The config key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A `@group` reference to a group that `[roles.groups]` does not define.
    #[error("{key}: unknown role group {group:?}")]
    UnknownGroup {
        /// The config key.
        key: String,
        /// The group name, without the `@`.
        group: String,
    },
    /// Any other value out of range.
    #[error("{key}: {reason}")]
    InvalidValue {
        /// The config key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}
