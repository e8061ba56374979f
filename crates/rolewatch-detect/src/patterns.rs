//! Compiled name patterns (exact names and globs) and the small parsers config validation needs.

use crate::fast::FastMap;
use std::net::IpAddr;

use chrono::TimeDelta;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::ConfigError;

/// How many distinct names a match cache remembers before it starts over; bounds memory when
/// names are unbounded (generated role names, random application names).
const CACHE_CAPACITY: usize = 65_536;

/// A set of exact names and glob patterns (`*`, `?`, `[abc]`, `{a,b}`), compiled once.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    set: GlobSet,
}

impl Patterns {
    /// Compiles `patterns`; `key` names the config key in errors.
    pub(crate) fn compile(
        key: &str,
        patterns: &[String],
        case_insensitive: bool,
    ) -> Result<Self, ConfigError> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = GlobBuilder::new(pattern)
                .case_insensitive(case_insensitive)
                .literal_separator(false)
                .build()
                .map_err(|error| ConfigError::InvalidPattern {
                    key: key.to_owned(),
                    pattern: pattern.clone(),
                    reason: error.kind().to_string(),
                })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|error| ConfigError::InvalidPattern {
            key: key.to_owned(),
            pattern: patterns.join(", "),
            reason: error.to_string(),
        })?;
        Ok(Self { set })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        !self.set.is_empty() && self.set.is_match(text)
    }
}

/// [`Patterns`] with a per-name answer cache, for names looked up on the hot path.
#[derive(Debug, Clone)]
pub(crate) struct CachedPatterns {
    patterns: Patterns,
    cache: FastMap<String, bool>,
}

impl CachedPatterns {
    pub(crate) fn new(patterns: Patterns) -> Self {
        Self { patterns, cache: FastMap::default() }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub(crate) fn is_match(&mut self, text: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        if let Some(&answer) = self.cache.get(text) {
            return answer;
        }
        let answer = self.patterns.is_match(text);
        if self.cache.len() >= CACHE_CAPACITY {
            self.cache.clear();
        }
        self.cache.insert(text.to_owned(), answer);
        answer
    }
}

/// Parses a humantime duration (`"1m"`, `"15m"`, `"1h"`, `"7d"`); `key` names the config key.
pub(crate) fn parse_duration(key: &str, value: &str) -> Result<TimeDelta, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidDuration {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let duration = humantime::parse_duration(value).map_err(|error| invalid(error.to_string()))?;
    TimeDelta::from_std(duration).map_err(|_| invalid("too long".to_owned()))
}

/// Like [`parse_duration`], for windows that must be longer than zero.
pub(crate) fn parse_positive_duration(key: &str, value: &str) -> Result<TimeDelta, ConfigError> {
    let duration = parse_duration(key, value)?;
    if duration <= TimeDelta::zero() {
        return Err(ConfigError::InvalidDuration {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: "must be longer than zero".to_owned(),
        });
    }
    Ok(duration)
}

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a bare address (a /32 or /128).
    pub(crate) fn parse(key: &str, text: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::InvalidNetwork { key: key.to_owned(), value: text.to_owned() };
        let (address_text, prefix_text) = text.trim().split_once('/').unwrap_or((text.trim(), ""));
        let address: IpAddr = address_text.parse().map_err(|_| invalid())?;
        let max_prefix = if address.is_ipv4() { 32 } else { 128 };
        let prefix =
            if prefix_text.is_empty() { max_prefix } else { prefix_text.parse().map_err(|_| invalid())? };
        if prefix > max_prefix {
            return Err(invalid());
        }
        Ok(Self { address: address.to_canonical(), prefix })
    }

    pub(crate) fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(candidate)) => {
                prefix_equal(u128::from(network.to_bits()), u128::from(candidate.to_bits()), self.prefix, 32)
            }
            (IpAddr::V6(network), IpAddr::V6(candidate)) => {
                prefix_equal(network.to_bits(), candidate.to_bits(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_equal(network: u128, candidate: u128, prefix: u8, width: u32) -> bool {
    let host_bits = width.saturating_sub(u32::from(prefix));
    if host_bits >= 128 {
        return true;
    }
    (network >> host_bits) == (candidate >> host_bits)
}

/// Case-insensitive ASCII substring search (statement text scanning, not on the hot path of
/// plain reads and writes).
pub(crate) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    if needle.is_empty() {
        return true;
    }
    haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle))
}

/// The SQL words of a statement (letters, digits, `_`, `$`), skipping quoted strings and
/// comments, so that `WHERE` inside `'...'` or `-- ...` does not count.
pub(crate) fn sql_words(statement: &str) -> impl Iterator<Item = &str> {
    SqlWords { rest: statement }
}

struct SqlWords<'a> {
    rest: &'a str,
}

impl<'a> Iterator for SqlWords<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let start = self.rest.find(|character: char| {
                character.is_ascii_alphanumeric() || matches!(character, '_' | '\'' | '-' | '/')
            })?;
            let (_, from_start) = self.rest.split_at(start);
            if let Some(after) = from_start.strip_prefix('\'') {
                self.rest = after.split_once('\'').map_or("", |(_, tail)| tail);
                continue;
            }
            if let Some(after) = from_start.strip_prefix("--") {
                self.rest = after.split_once('\n').map_or("", |(_, tail)| tail);
                continue;
            }
            if let Some(after) = from_start.strip_prefix("/*") {
                self.rest = after.split_once("*/").map_or("", |(_, tail)| tail);
                continue;
            }
            if from_start.starts_with(['-', '/']) {
                self.rest = from_start.get(1..).unwrap_or("");
                continue;
            }
            let end = from_start
                .find(|character: char| {
                    !(character.is_ascii_alphanumeric() || matches!(character, '_' | '$'))
                })
                .unwrap_or(from_start.len());
            let (word, tail) = from_start.split_at(end);
            self.rest = tail;
            return Some(word);
        }
    }
}

/// Whether the statement contains `word` as a SQL word (case-insensitive, outside strings).
pub(crate) fn has_word(statement: &str, word: &str) -> bool {
    sql_words(statement).any(|candidate| candidate.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_exact_names() {
        let patterns = Patterns::compile("k", &["app_*".into(), "postgres".into()], false).unwrap();
        assert!(patterns.is_match("app_reader"));
        assert!(patterns.is_match("postgres"));
        assert!(!patterns.is_match("Postgres"));
        assert!(!Patterns::compile("k", &[], false).unwrap().is_match("x"));
        let error = Patterns::compile("roles.admin", &["a[".into()], false).unwrap_err();
        assert!(error.to_string().starts_with("roles.admin: invalid pattern \"a[\""), "{error}");
    }

    #[test]
    fn durations_name_their_key() {
        assert_eq!(parse_duration("k", "1m").unwrap(), TimeDelta::minutes(1));
        assert_eq!(parse_duration("k", "7d").unwrap(), TimeDelta::days(7));
        let error = parse_positive_duration("detectors.x.window", "soon").unwrap_err();
        assert!(error.to_string().starts_with("detectors.x.window: invalid duration \"soon\""), "{error}");
        assert!(parse_positive_duration("k", "0s").is_err());
    }

    #[test]
    fn networks() {
        let network = Network::parse("k", "10.1.0.0/16").unwrap();
        assert!(network.contains("10.1.2.3".parse().unwrap()));
        assert!(network.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!network.contains("10.2.0.1".parse().unwrap()));
        assert!(Network::parse("k", "0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Network::parse("k", "fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        assert!(Network::parse("k", "127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(Network::parse("k", "10.0.0.0/33").is_err());
        assert!(Network::parse("k", "nope").is_err());
    }

    #[test]
    fn sql_words_skip_strings_and_comments() {
        assert!(has_word("DELETE FROM t WHERE id = 1", "where"));
        assert!(!has_word("DELETE FROM t -- where\n", "WHERE"));
        assert!(!has_word("UPDATE t SET note = 'where'", "WHERE"));
        assert!(!has_word("DELETE FROM nowhere", "WHERE"));
        assert!(has_word("a/*x*/ b - c / d WHERE", "WHERE"));
        assert!(contains_ignore_case("SET PGAUDIT.log = none", "pgaudit."));
    }
}
