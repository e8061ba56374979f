//! The SSRF guard: destination addresses are checked after DNS resolution, at connect time.
//!
//! A webhook URL is operator input, and a hostile or careless one could point rolewatch at an
//! internal service or a cloud metadata endpoint. So every address a destination resolves to is
//! classified here, in the HTTP client's own DNS resolver ([`GuardedResolver`]), which defeats
//! DNS rebinding: the address checked is the address connected to. URLs with a literal IP never
//! reach a resolver, so they are checked by [`check_url`] before each request (and at open).
//! Redirects are never followed, so a `302` to an internal address goes nowhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused, or `None` when it is a public address.
pub(crate) fn forbidden_reason(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    if address.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if address.is_loopback() {
        Some("loopback")
    } else if address.is_private() {
        Some("private")
    } else if address.is_link_local() {
        // 169.254.0.0/16 holds the AWS, GCP and Azure metadata endpoint 169.254.169.254.
        Some("link-local or metadata")
    } else if a == 100 && (64..128).contains(&b) {
        // CGNAT 100.64.0.0/10 holds Alibaba Cloud's metadata endpoint 100.100.100.200.
        Some("shared address space")
    } else if a == 192 && b == 0 && c == 0 {
        // 192.0.0.0/24 holds Oracle Cloud's legacy metadata endpoint 192.0.0.192.
        Some("protocol assignments or metadata")
    } else if address.is_multicast() || address.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn forbidden_v6(address: Ipv6Addr) -> Option<&'static str> {
    let segments = address.segments();
    let first = segments.first().copied().unwrap_or(0);
    if let Some(v4) = address.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches the IPv4 address on dual-stack sockets.
        return forbidden_v4(v4).map(|_| "ipv4-mapped internal address");
    }
    if address.is_unspecified() {
        Some("unspecified")
    } else if address.is_loopback() {
        Some("loopback")
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        // fc00::/7 holds AWS's IPv6 metadata endpoint fd00:ec2::254.
        Some("unique-local or metadata")
    } else if first & 0xff00 == 0xff00 {
        Some("multicast")
    } else if segments.get(..6) == Some(&[0, 0, 0, 0, 0, 0]) {
        // The deprecated IPv4-compatible form ::a.b.c.d.
        Some("ipv4-compatible")
    } else if segments.get(..6) == Some(&[0x64, 0xff9b, 0, 0, 0, 0]) {
        // NAT64 64:ff9b::/96 translates to the embedded IPv4 address.
        let [.., high, low] = segments;
        let v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
        forbidden_v4(v4).map(|_| "nat64 of an internal address")
    } else if first == 0x2002 {
        // 6to4 2002:aabb:ccdd::/48 embeds the IPv4 address aa.bb.cc.dd.
        let high = segments.get(1).copied().unwrap_or(0);
        let low = segments.get(2).copied().unwrap_or(0);
        let v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
        forbidden_v4(v4).map(|_| "6to4 of an internal address")
    } else {
        None
    }
}

/// Checks the scheme and, for a literal-IP URL, the address. `Err` holds a reason without the
/// URL.
pub(crate) fn check_url(url: &Url, allow_private: bool) -> Result<(), UrlRefusal> {
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in a URL would end up in headers we do not control; refuse them.
        return Err(UrlRefusal::Scheme("credentials in the url are not supported".into()));
    }
    let Some(host) = url.host_str() else {
        return Err(UrlRefusal::Scheme("no host".into()));
    };
    // The url crate writes IPv6 hosts in brackets and normalizes IPv4 forms such as `0x7f.1`.
    let literal = host.strip_prefix('[').and_then(|inner| inner.strip_suffix(']')).unwrap_or(host);
    // A name is checked at connect time, by the resolver.
    if let Ok(address) = literal.parse::<IpAddr>()
        && let Some(reason) = forbidden_reason(address).filter(|_| !allow_private)
    {
        return Err(UrlRefusal::Forbidden(reason));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_private => Ok(()),
        "http" => Err(UrlRefusal::Scheme("http:// needs allow_private_destinations = true".into())),
        other => Err(UrlRefusal::Scheme(format!("scheme {other} is not https"))),
    }
}

/// Why a URL was refused before any request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlRefusal {
    /// The scheme or shape of the URL.
    Scheme(String),
    /// The literal address is internal.
    Forbidden(&'static str),
}

/// The error a [`GuardedResolver`] returns; found again in the `reqwest::Error` source chain
/// to tell a refusal (permanent) from a DNS outage (transient).
#[derive(Debug)]
pub(crate) struct ForbiddenAddress {
    pub(crate) reason: &'static str,
}

impl std::fmt::Display for ForbiddenAddress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "destination resolves only to refused addresses ({})", self.reason)
    }
}

impl std::error::Error for ForbiddenAddress {}

/// A DNS resolver that drops internal addresses unless `allow_private`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match forbidden_reason(address.ip()) {
                    Some(reason) if !allow_private => {
                        refusal = Some(reason);
                        false
                    }
                    _ => true,
                })
                .collect();
            if allowed.is_empty()
                && let Some(reason) = refusal
            {
                tracing::warn!(reason, "refused to connect: the destination resolves to an internal address");
                return Err(Box::new(ForbiddenAddress { reason }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Finds a connect-time refusal in an error's source chain.
pub(crate) fn find_refusal(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(refusal) = error.downcast_ref::<ForbiddenAddress>() {
            return Some(refusal.reason);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        for text in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "192.0.0.192",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "ff02::1",
        ] {
            let address: IpAddr = text.parse().unwrap();
            assert!(forbidden_reason(address).is_some(), "{text} should be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for text in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1", "2002:101:101::1"]
        {
            let address: IpAddr = text.parse().unwrap();
            assert_eq!(forbidden_reason(address), None, "{text} should be allowed");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_and_literal_addresses() {
        let check = |text: &str, allow| check_url(&Url::parse(text).unwrap(), allow);
        assert!(check("https://hooks.example.com/x", false).is_ok());
        assert!(matches!(check("http://hooks.example.com/x", false), Err(UrlRefusal::Scheme(_))));
        assert!(matches!(check("ftp://hooks.example.com/x", true), Err(UrlRefusal::Scheme(_))));
        assert!(matches!(check("https://user:pw@hooks.example.com/x", false), Err(UrlRefusal::Scheme(_))));
        assert_eq!(
            check("https://169.254.169.254/", false),
            Err(UrlRefusal::Forbidden("link-local or metadata"))
        );
        assert!(check("https://[::ffff:127.0.0.1]/", false).is_err());
        assert!(check("https://0x7f.1/", false).is_err(), "the url crate normalizes 0x7f.1 to 127.0.0.1");
        assert!(check("http://127.0.0.1:8080/", true).is_ok());
    }
}
