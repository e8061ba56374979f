//! What the operator says about roles and origins (`[roles]` and `[origins]` of the rolewatch
//! config), compiled for the review: which roles are admins, readers, writers or services, and
//! which origins belong to services.

use std::net::IpAddr;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::ReviewError;

/// The operator's intent, as plain lists (the binary fills it from the config file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Admin roles (names or globs).
    pub admin: Vec<String>,
    /// Read-only roles.
    pub reader: Vec<String>,
    /// Roles that write data.
    pub writer: Vec<String>,
    /// Service accounts.
    pub service: Vec<String>,
    /// Application names of services (globs, case-insensitive).
    pub service_applications: Vec<String>,
    /// Networks of services (CIDR or one address).
    pub service_networks: Vec<String>,
}

/// [`PolicyConfig`], compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    admin: GlobSet,
    reader: GlobSet,
    writer: GlobSet,
    service: GlobSet,
    service_applications: GlobSet,
    service_networks: Vec<(IpAddr, u8)>,
}

impl Policy {
    /// Compiles the patterns and networks; errors name the key.
    pub fn new(config: &PolicyConfig) -> Result<Self, ReviewError> {
        Ok(Self {
            admin: globs("roles.admin", &config.admin, false)?,
            reader: globs("roles.reader", &config.reader, false)?,
            writer: globs("roles.writer", &config.writer, false)?,
            service: globs("roles.service", &config.service, false)?,
            service_applications: globs("origins.service_applications", &config.service_applications, true)?,
            service_networks: config
                .service_networks
                .iter()
                .map(|network| parse_network(network))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether the config names `role` an admin.
    pub fn is_admin(&self, role: &str) -> bool {
        self.admin.is_match(role)
    }

    /// Whether the config names `role` a reader.
    pub fn is_reader(&self, role: &str) -> bool {
        self.reader.is_match(role)
    }

    /// Whether the config names `role` a writer.
    pub fn is_writer(&self, role: &str) -> bool {
        self.writer.is_match(role)
    }

    /// Whether the config names `role` a service account.
    pub fn is_service(&self, role: &str) -> bool {
        self.service.is_match(role)
    }

    /// Whether any service origin is configured.
    pub fn knows_service_origins(&self) -> bool {
        !self.service_applications.is_empty() || !self.service_networks.is_empty()
    }

    /// Whether a connection from `application` at `client_addr` is a service's.
    pub fn is_service_origin(&self, application: Option<&str>, client_addr: Option<&str>) -> bool {
        if application.is_some_and(|application| self.service_applications.is_match(application)) {
            return true;
        }
        let Some(address) =
            client_addr.and_then(|address| address.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        else {
            return false;
        };
        self.service_networks.iter().any(|(network, prefix)| contains(*network, *prefix, address))
    }
}

fn globs(key: &str, patterns: &[String], case_insensitive: bool) -> Result<GlobSet, ReviewError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .literal_separator(false)
            .build()
            .map_err(|error| ReviewError::Policy {
                key: key.to_owned(),
                reason: format!("{pattern:?}: {}", error.kind()),
            })?;
        builder.add(glob);
    }
    builder.build().map_err(|error| ReviewError::Policy { key: key.to_owned(), reason: error.to_string() })
}

fn parse_network(text: &str) -> Result<(IpAddr, u8), ReviewError> {
    let invalid = |reason: &str| ReviewError::Policy {
        key: "origins.service_networks".to_owned(),
        reason: format!("{text:?}: {reason}"),
    };
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.trim().parse().map_err(|_| invalid("not an IP address"))?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| invalid("not a prefix length"))?,
        None => max,
    };
    if prefix > max {
        return Err(invalid("prefix too long"));
    }
    Ok((address, prefix))
}

fn contains(network: IpAddr, prefix: u8, address: IpAddr) -> bool {
    let (network, address, width) = match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            (u128::from(u32::from(network)), u128::from(u32::from(address)), 32u32)
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => (u128::from(network), u128::from(address), 128u32),
        _ => return false,
    };
    let host_bits = width.saturating_sub(u32::from(prefix));
    let mask = if host_bits >= 128 { 0 } else { u128::MAX << host_bits };
    (network & mask) == (address & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_origins() {
        let policy = Policy::new(&PolicyConfig {
            admin: vec!["dba_*".into()],
            reader: vec!["app_reader".into()],
            service: vec!["svc_*".into()],
            service_applications: vec!["API-*".into()],
            service_networks: vec!["10.20.0.0/16".into(), "fd00:1::/64".into(), "192.0.2.7".into()],
            ..PolicyConfig::default()
        })
        .unwrap();
        assert!(policy.is_admin("dba_admin") && !policy.is_admin("app_reader"));
        assert!(policy.is_reader("app_reader") && policy.is_service("svc_api"));
        assert!(policy.is_service_origin(Some("api-server"), None));
        assert!(policy.is_service_origin(None, Some("10.20.3.4")));
        assert!(!policy.is_service_origin(None, Some("10.21.3.4")));
        assert!(policy.is_service_origin(Some("psql"), Some("fd00:1::9")));
        assert!(policy.is_service_origin(None, Some("192.0.2.7")));
        assert!(!policy.is_service_origin(Some("psql"), Some("192.0.2.8")));
        assert!(!policy.is_service_origin(None, Some("not an address")));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let error =
            Policy::new(&PolicyConfig { service_networks: vec!["10.0.0.0/40".into()], ..Default::default() })
                .unwrap_err()
                .to_string();
        assert!(error.contains("origins.service_networks"), "{error}");
        let error = Policy::new(&PolicyConfig { admin: vec!["[".into()], ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(error.contains("roles.admin"), "{error}");
    }
}
