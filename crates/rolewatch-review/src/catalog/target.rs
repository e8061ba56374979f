//! The catalog URL: which server to review, with the password kept out of every message.

use std::fmt;

use url::Url;

use super::Dialect;
use crate::ReviewError;

/// A server to read catalogs from: `postgres://user[:password]@host:port/database` or
/// `mysql://user[:password]@host:port/` (also `postgresql://`, `mariadb://`). Query parameters
/// pass through to the driver: `sslmode=require` (PostgreSQL), `ssl-mode=REQUIRED` (MySQL).
///
/// The password comes from the URL or, when the URL has none, from the caller (an environment
/// variable in the CLI). `Display` and `Debug` show the URL with the password replaced by `***`.
#[derive(Clone)]
pub struct CatalogTarget {
    url: Url,
    dialect: Dialect,
    password: Option<String>,
}

impl CatalogTarget {
    /// Parses `url`; `fallback_password` is used when the URL carries none.
    pub fn parse(url: &str, fallback_password: Option<String>) -> Result<Self, ReviewError> {
        let invalid =
            |reason: &str| ReviewError::CatalogUrl { url: redact_unparsed(url), reason: reason.to_owned() };
        let mut parsed = Url::parse(url).map_err(|error| invalid(&error.to_string()))?;
        let dialect = match parsed.scheme() {
            "postgres" | "postgresql" => Dialect::Postgres,
            "mysql" | "mariadb" => Dialect::Mysql,
            other => {
                return Err(invalid(&format!(
                    "unsupported scheme {other:?}, expected postgres:// or mysql:// (mariadb://)"
                )));
            }
        };
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        if parsed.username().is_empty() {
            return Err(invalid("no user name"));
        }
        let in_url = parsed.password().map(|password| {
            url::form_urlencoded::parse(format!("p={password}").as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default()
        });
        let password = in_url.or(fallback_password);
        // The password is kept apart, never in the URL that is shown or handed on.
        let _ = parsed.set_password(None);
        if dialect == Dialect::Mysql && parsed.scheme() == "mariadb" {
            let _ = parsed.set_scheme("mysql");
        }
        Ok(Self { url: parsed, dialect, password })
    }

    /// The dialect, from the URL's scheme.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL without its password.
    pub(crate) fn url_without_password(&self) -> &str {
        self.url.as_str()
    }

    /// The password, if any.
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The URL as shown in messages: the password, if any, as `***`.
    pub fn redacted(&self) -> String {
        let mut shown = self.url.clone();
        if self.password.is_some() {
            let _ = shown.set_password(Some("***"));
        }
        shown.to_string()
    }
}

impl fmt::Display for CatalogTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.redacted())
    }
}

impl fmt::Debug for CatalogTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("CatalogTarget").field("url", &self.redacted()).finish()
    }
}

/// A URL that did not parse, shown without anything between `://` and the last `@`.
fn redact_unparsed(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let (head, _) = url.split_at(scheme_end + 3);
            let (_, tail) = url.split_at(at);
            format!("{head}***{tail}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let target = CatalogTarget::parse("postgres://auditor:s%40cret@127.0.0.1:5432/shop", None).unwrap();
        assert_eq!(target.password(), Some("s@cret"));
        assert_eq!(target.to_string(), "postgres://auditor:***@127.0.0.1:5432/shop");
        assert!(!format!("{target:?}").contains("cret"));
        assert!(!target.url_without_password().contains("cret"));
    }

    #[test]
    fn the_fallback_password_is_used_only_without_one_in_the_url() {
        let target = CatalogTarget::parse("mariadb://u@localhost:3306/", Some("envpw".into())).unwrap();
        assert_eq!(target.dialect(), Dialect::Mysql);
        assert_eq!(target.password(), Some("envpw"));
        let target = CatalogTarget::parse("mysql://u:urlpw@localhost/", Some("envpw".into())).unwrap();
        assert_eq!(target.password(), Some("urlpw"));
    }

    #[test]
    fn bad_urls_are_refused_without_showing_the_password() {
        let error = CatalogTarget::parse("oracle://u:topsecret@h/db", None).unwrap_err().to_string();
        assert!(error.contains("unsupported scheme"), "{error}");
        assert!(!error.contains("topsecret"), "{error}");
        let error = CatalogTarget::parse("postgres://u:topsecret@[bad/db", None).unwrap_err().to_string();
        assert!(!error.contains("topsecret"), "{error}");
        assert!(CatalogTarget::parse("postgres://127.0.0.1/db", None).is_err());
    }
}
