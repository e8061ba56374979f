//! The detection configuration: the `[roles]`, `[origins]`, `[sensitive]` and `[detectors]`
//! tables of the rolewatch config file, parsed strictly (unknown keys are errors) and validated
//! by [`crate::Engine::new`] into compiled patterns and durations.

use serde::{Deserialize, Serialize};

pub use crate::detectors::admin_from_service_origin::AdminFromServiceOriginConfig;
pub use crate::detectors::auth_failure_burst::AuthFailureBurstConfig;
pub use crate::detectors::dangerous_command::DangerousCommandConfig;
pub use crate::detectors::ddl_by_non_admin::DdlByNonAdminConfig;
pub use crate::detectors::export_command::ExportCommandConfig;
pub use crate::detectors::large_export::LargeExportConfig;
pub use crate::detectors::new_origin::NewOriginConfig;
pub use crate::detectors::privilege_change::PrivilegeChangeByNonAdminConfig;
pub use crate::detectors::sensitive_access::SensitiveAccessConfig;
pub use crate::detectors::source_silent::SourceSilentConfig;
pub use crate::origins::OriginsConfig;
pub use crate::roles::{RoleClass, RolesConfig};
pub use crate::sensitive::SensitiveConfig;

/// The `[detectors]` table: engine-wide settings and one sub-table per detector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorsConfig {
    /// How late (in event time, behind the newest event seen) an event may arrive and still
    /// fold into a dedup window; windows close only when the newest event time minus
    /// `lateness` passes their end. Default: `"1m"`.
    pub lateness: String,
    /// `[detectors.large_export]`: big reads by reader roles, single or cumulated.
    pub large_export: LargeExportConfig,
    /// `[detectors.export_command]`: `COPY ... TO`, `INTO OUTFILE`, dump clients.
    pub export_command: ExportCommandConfig,
    /// `[detectors.ddl_by_non_admin]`: schema changes outside `admin`.
    pub ddl_by_non_admin: DdlByNonAdminConfig,
    /// `[detectors.privilege_change_by_non_admin]`: GRANT/REVOKE and role changes outside `admin`.
    pub privilege_change_by_non_admin: PrivilegeChangeByNonAdminConfig,
    /// `[detectors.sensitive_access]`: reads and writes of `[sensitive]` objects without an
    /// allowance.
    pub sensitive_access: SensitiveAccessConfig,
    /// `[detectors.dangerous_command]`: destructive statements and audit tampering.
    pub dangerous_command: DangerousCommandConfig,
    /// `[detectors.auth_failure_burst]`: password guessing, and a success after it.
    pub auth_failure_burst: AuthFailureBurstConfig,
    /// `[detectors.admin_from_service_origin]`: an admin role used from a service's origin.
    pub admin_from_service_origin: AdminFromServiceOriginConfig,
    /// `[detectors.new_origin]`: a role seen from a new client address or application.
    pub new_origin: NewOriginConfig,
    /// `[detectors.source_silent]`: a source that stops sending events.
    pub source_silent: SourceSilentConfig,
}

impl Default for DetectorsConfig {
    fn default() -> Self {
        Self {
            lateness: "1m".to_owned(),
            large_export: LargeExportConfig::default(),
            export_command: ExportCommandConfig::default(),
            ddl_by_non_admin: DdlByNonAdminConfig::default(),
            privilege_change_by_non_admin: PrivilegeChangeByNonAdminConfig::default(),
            sensitive_access: SensitiveAccessConfig::default(),
            dangerous_command: DangerousCommandConfig::default(),
            auth_failure_burst: AuthFailureBurstConfig::default(),
            admin_from_service_origin: AdminFromServiceOriginConfig::default(),
            new_origin: NewOriginConfig::default(),
            source_silent: SourceSilentConfig::default(),
        }
    }
}

/// Everything the detectors need, gathered from the config file's sections by the binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectionConfig {
    /// `[roles]`.
    pub roles: RolesConfig,
    /// `[origins]`.
    pub origins: OriginsConfig,
    /// `[sensitive]`.
    pub sensitive: SensitiveConfig,
    /// `[detectors]`.
    pub detectors: DetectorsConfig,
}
