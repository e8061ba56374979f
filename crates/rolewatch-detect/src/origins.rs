//! `[origins]`: where services connect from, compiled into a matcher.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ConfigError;
use crate::patterns::{CachedPatterns, Network, Patterns};

/// The `[origins]` section: what a service's connection looks like. Used by
/// `admin_from_service_origin` (an admin role used from an application's origin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginsConfig {
    /// Client application names (`application_name`) of services, exact or glob, matched
    /// case-insensitively, e.g. `["api-server", "worker-*"]`. Default: none.
    pub service_applications: Vec<String>,
    /// Client networks of services in CIDR notation, e.g. `["10.20.0.0/16", "fd00:1::/64"]`; a
    /// bare address means that one host. Default: none.
    pub service_networks: Vec<String>,
}

/// The compiled `[origins]`.
#[derive(Debug, Clone)]
pub(crate) struct ServiceOrigins {
    applications: CachedPatterns,
    networks: Vec<Network>,
}

/// Why an origin counts as a service origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceMatch {
    /// The application name is in `service_applications`.
    Application,
    /// The client address is in `service_networks`.
    Network,
}

impl ServiceOrigins {
    pub(crate) fn new(config: &OriginsConfig) -> Result<Self, ConfigError> {
        let networks = config
            .service_networks
            .iter()
            .map(|network| Network::parse("origins.service_networks", network))
            .collect::<Result<Vec<_>, _>>()?;
        let applications =
            Patterns::compile("origins.service_applications", &config.service_applications, true)?;
        Ok(Self { applications: CachedPatterns::new(applications), networks })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.networks.is_empty() && !self.applications_configured()
    }

    fn applications_configured(&self) -> bool {
        !self.applications.is_empty()
    }

    /// Whether the origin is a service's, and why (application first).
    pub(crate) fn classify(
        &mut self,
        application: Option<&str>,
        client_addr: Option<&str>,
    ) -> Option<ServiceMatch> {
        if application.is_some_and(|application| self.applications.is_match(application)) {
            return Some(ServiceMatch::Application);
        }
        if self.networks.is_empty() {
            return None;
        }
        let address: IpAddr = client_addr?.trim_matches(['[', ']']).parse().ok()?;
        self.networks.iter().any(|network| network.contains(address)).then_some(ServiceMatch::Network)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applications_and_networks() {
        let mut origins = ServiceOrigins::new(&OriginsConfig {
            service_applications: vec!["api-server".into(), "worker-*".into()],
            service_networks: vec!["10.20.0.0/16".into()],
        })
        .unwrap();
        assert_eq!(origins.classify(Some("API-SERVER"), None), Some(ServiceMatch::Application));
        assert_eq!(origins.classify(Some("worker-7"), Some("1.2.3.4")), Some(ServiceMatch::Application));
        assert_eq!(origins.classify(Some("psql"), Some("10.20.3.4")), Some(ServiceMatch::Network));
        assert_eq!(origins.classify(Some("psql"), Some("10.21.3.4")), None);
        assert_eq!(origins.classify(Some("psql"), Some("db-host.example")), None);
        assert_eq!(origins.classify(None, None), None);
        assert!(!origins.is_empty());
    }

    #[test]
    fn bad_network_names_the_key() {
        let error = ServiceOrigins::new(&OriginsConfig {
            service_networks: vec!["10.0.0/8x".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(error.to_string().starts_with("origins.service_networks: invalid network"), "{error}");
    }
}
