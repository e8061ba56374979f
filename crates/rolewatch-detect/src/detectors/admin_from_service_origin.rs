//! `admin_from_service_origin`: an admin role used from a service's origin: an application in
//! `[origins] service_applications` or a client address in `service_networks`. Services must
//! run with their own least-privilege roles; a superuser behind an application is either a
//! misconfiguration or a stolen credential.

use chrono::TimeDelta;
use rolewatch_event::{AuditEvent, Severity, StatementClass};
use serde::{Deserialize, Serialize};

use super::{Alerts, Common, Detector, EventContext, alert_for, origin_phrase};
use crate::ConfigError;
use crate::origins::{OriginsConfig, ServiceMatch, ServiceOrigins};
use crate::roles::RoleMap;

/// The detector id.
pub const ID: &str = "admin_from_service_origin";

/// `[detectors.admin_from_service_origin]`. The origins themselves are `[origins]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminFromServiceOriginConfig {
    /// Whether the detector runs (it also needs `[origins]`). Default: `true`.
    pub enabled: bool,
    /// Alert severity. Default: `high`.
    pub severity: Severity,
    /// Repeats of the same dedup key (detector + role + origin) within this event-time window
    /// fold into one alert. Default: `"10m"`.
    pub dedup_window: String,
    /// Admin roles never alerted on (names, globs, `@group`). Default: none.
    pub exempt_roles: Vec<String>,
}

impl Default for AdminFromServiceOriginConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::High,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
        }
    }
}

/// The runtime of `admin_from_service_origin`.
pub(crate) struct AdminFromServiceOrigin {
    common: Common,
    origins: ServiceOrigins,
}

impl AdminFromServiceOrigin {
    pub(crate) fn new(
        config: &AdminFromServiceOriginConfig,
        origins: &OriginsConfig,
        roles: &RoleMap,
    ) -> Result<Option<Self>, ConfigError> {
        let origins = ServiceOrigins::new(origins)?;
        if !config.enabled || origins.is_empty() {
            return Ok(None);
        }
        let common = Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?;
        Ok(Some(Self { common, origins }))
    }
}

impl Detector for AdminFromServiceOrigin {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        // The end of a session is not a use of the role: its login and statements already were,
        // and counting the DISCONNECT only adds a "repeated" follow-up to every session.
        if !context.classes.is_admin() || event.class == StatementClass::Disconnect {
            return;
        }
        let application = event.application.as_deref();
        let address = event.client_addr.as_deref();
        let Some(matched) = self.origins.classify(application, address) else {
            return;
        };
        if self.common.is_exempt(context) {
            return;
        }
        let role = context.role_name();
        let (reason, origin_key) = match matched {
            ServiceMatch::Application => {
                let application = application.unwrap_or("");
                (format!("application {application} is a service application"), format!("app:{application}"))
            }
            ServiceMatch::Network => {
                let address = address.unwrap_or("");
                (format!("{address} is in a service network"), format!("addr:{address}"))
            }
        };
        let Some(dedup_key) = out.key_unless_repeat(format_args!("{ID}|{role}|{origin_key}"), event.ts)
        else {
            return;
        };
        let summary =
            format!("admin role {role} used {} by {}: {reason}", origin_phrase(event), event.command);
        let mut alert = alert_for(event, ID, self.common.severity, dedup_key, summary);
        alert.labels.insert(
            "matched".to_owned(),
            match matched {
                ServiceMatch::Application => "service_applications",
                ServiceMatch::Network => "service_networks",
            }
            .to_owned(),
        );
        out.push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{connect, engine_with, run};

    #[test]
    fn the_end_of_a_session_is_not_a_repeat() {
        let mut engine = engine_with(|_| ());
        let mut login = connect("postgres", 0, true);
        login.application = Some("api-server".into());
        let mut logout = login.clone();
        logout.command = "DISCONNECT".into();
        logout.class = StatementClass::Disconnect;
        logout.ts += TimeDelta::seconds(1);
        let alerts = run(&mut engine, &[login, logout]);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].labels.get("command").map(String::as_str), Some("CONNECT"));
    }

    #[test]
    fn superuser_behind_the_api_server_alerts_once_per_window() {
        let mut engine = engine_with(|config| config.origins.service_networks = vec!["10.0.0.0/8".into()]);
        let mut login = connect("postgres", 0, true);
        login.application = Some("api-server".into());
        let mut again = login.clone();
        again.ts += TimeDelta::seconds(1);
        let mut from_network = connect("dba_admin", 2, true);
        from_network.client_addr = Some("10.1.2.3".into());
        from_network.application = Some("psql".into());
        let from_laptop = connect("dba_admin", 3, true);
        let service_role = {
            let mut login = connect("svc_api", 4, true);
            login.application = Some("api-server".into());
            login
        };
        let alerts = run(&mut engine, &[login, again, from_network, from_laptop, service_role]);
        let summaries: Vec<_> = alerts.iter().map(|alert| (alert.count, alert.summary.as_str())).collect();
        assert_eq!(
            summaries,
            [
                (
                    1,
                    "admin role postgres used from 127.0.0.1 (api-server) by CONNECT: application api-server is a \
                     service application"
                ),
                (
                    1,
                    "admin role dba_admin used from 10.1.2.3 (psql) by CONNECT: 10.1.2.3 is in a service network"
                ),
                (
                    1,
                    "repeated 1 more time until 2026-11-26T10:00:01.000000Z: admin role postgres used from \
                     127.0.0.1 (api-server) by CONNECT: application api-server is a service application"
                ),
            ]
        );
    }
}
