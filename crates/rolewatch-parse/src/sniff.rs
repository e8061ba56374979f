//! `--format auto`: telling the format from the first lines of an input.
//!
//! Each format has a shape its first record cannot hide: a jsonlog object has
//! `"error_severity"`; MySQL audit JSON is an array or has `"audit_record"`/`"class"`; a csvlog
//! row starts with a timestamp and a comma; a server_audit record starts with `YYYYMMDD hh:mm:ss`
//! or epoch microseconds and has an operation in its seventh field; a stderr line has a
//! `SEVERITY:  ` after its prefix. The first non-blank lines are tried in order, and the first
//! that fits decides.

use rolewatch_event::LogFormat;

use crate::prefix::{LOG_LINE_PREFIX_PRESETS, LogLinePrefix};
use crate::timestamp::parse_naive_prefix;

const MARIADB_OPERATIONS: [&str; 13] = [
    "QUERY",
    "CONNECT",
    "DISCONNECT",
    "FAILED_CONNECT",
    "CHANGE_USER",
    "READ",
    "WRITE",
    "CREATE",
    "ALTER",
    "DROP",
    "RENAME",
    "AUDIT_CONFIG",
    "PROXY_CONNECT",
];

/// Prefixes tried by [`sniff_log_line_prefix`], richest first: a richer prefix with `%q`
/// matches the lines of background processes as well as the poorer one does.
const SNIFFED_PREFIXES: [&str; 7] = [
    "%m [%p] %q%u@%d %r %a %c %e ",
    "%m [%p] %q%u@%d %r %a %c ",
    "%m [%p] %q%u@%d/%a ",
    LOG_LINE_PREFIX_PRESETS[1].1,
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    LOG_LINE_PREFIX_PRESETS[2].1,
    LOG_LINE_PREFIX_PRESETS[0].1,
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn format_of_line(line: &[u8]) -> Option<LogFormat> {
    let line = line.trim_ascii();
    if line.starts_with(b"{") {
        if contains(line, b"\"error_severity\"") {
            return Some(LogFormat::PgauditJsonlog);
        }
        if contains(line, b"\"audit_record\"")
            || (contains(line, b"\"class\"") && contains(line, b"\"timestamp\""))
        {
            return Some(LogFormat::MysqlAuditJson);
        }
        return None;
    }
    if line == b"[" || line.starts_with(b"[{") || line.starts_with(b"[ {") {
        return Some(LogFormat::MysqlAuditJson);
    }
    let text = std::str::from_utf8(line).ok()?;
    let fields: Vec<&str> = text.splitn(8, ',').collect();
    if let [timestamp, _, _, _, connection, query, operation, ..] = fields.as_slice() {
        let epoch = timestamp.len() >= 13 && timestamp.bytes().all(|byte| byte.is_ascii_digit());
        let local = parse_naive_prefix(timestamp.as_bytes()).is_some_and(|(_, rest)| rest.is_empty())
            && timestamp.as_bytes().get(4).is_some_and(u8::is_ascii_digit);
        let ids = [connection, query].iter().all(|id| id.bytes().all(|byte| byte.is_ascii_digit()));
        if (epoch || local) && ids && MARIADB_OPERATIONS.contains(operation) {
            return Some(LogFormat::MariadbAudit);
        }
    }
    if let Some((_, rest)) = parse_naive_prefix(line)
        && line.get(4) == Some(&b'-')
    {
        // csvlog: `2026-11-26 17:41:53.656 UTC,` — the zone is followed by a comma.
        let fraction = rest
            .strip_prefix(b".")
            .map_or(0, |digits| 1 + digits.iter().take_while(|byte| byte.is_ascii_digit()).count());
        let zone = rest.get(fraction..).and_then(|zone| zone.strip_prefix(b" "))?;
        let zone_length = zone
            .iter()
            .take_while(|byte| byte.is_ascii_alphanumeric() || **byte == b'+' || **byte == b'-')
            .count();
        if zone_length > 0 && zone.get(zone_length) == Some(&b',') {
            return Some(LogFormat::PgauditCsvlog);
        }
    }
    sniff_log_line_prefix_of(&[text]).map(|_| LogFormat::PgauditStderr)
}

fn sniff_log_line_prefix_of(lines: &[&str]) -> Option<&'static str> {
    let mut best: Option<(&'static str, usize)> = None;
    for text in SNIFFED_PREFIXES {
        let Ok(prefix) = LogLinePrefix::compile(text) else { continue };
        let matching = lines.iter().filter(|line| prefix.matches(line)).count();
        if matching > best.map_or(0, |(_, count)| count) {
            best = Some((text, matching));
        }
    }
    best.map(|(text, _)| text)
}

/// The format of an input, told from its first lines (without their line terminators), or
/// `None` when no format fits. `pgaudit-stderr` is recognised only when a line starts with one
/// of the well-known prefixes ([`sniff_log_line_prefix`]).
pub fn sniff_format(first_lines: &[&[u8]]) -> Option<LogFormat> {
    first_lines.iter().filter(|line| !line.trim_ascii().is_empty()).find_map(|line| format_of_line(line))
}

/// The `log_line_prefix` of a stderr log, when one of the presets or a few common settings
/// matches one of its first lines. Prefer the server's real setting (`SHOW log_line_prefix`):
/// a prefix that merely matches may still read a field wrongly.
pub fn sniff_log_line_prefix(first_lines: &[&[u8]]) -> Option<&'static str> {
    let lines: Vec<&str> = first_lines.iter().filter_map(|line| std::str::from_utf8(line).ok()).collect();
    sniff_log_line_prefix_of(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(text: &str) -> Option<LogFormat> {
        let lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
        sniff_format(&lines)
    }

    #[test]
    fn tells_every_format_from_its_first_lines() {
        assert_eq!(
            sniff(
                r#"{"timestamp":"2026-11-26 17:41:53.656 UTC","pid":1,"error_severity":"LOG","message":"x"}"#
            ),
            Some(LogFormat::PgauditJsonlog)
        );
        assert_eq!(
            sniff(
                "2026-11-26 17:41:53.656 UTC,,,4384,,6b086f61.1120,1,,2026-11-26 17:41:53 UTC,,0,LOG,00000,\"x\""
            ),
            Some(LogFormat::PgauditCsvlog)
        );
        assert_eq!(
            sniff("2026-11-26 17:41:53.656 UTC [4384] LOG:  starting PostgreSQL 15.18"),
            Some(LogFormat::PgauditStderr)
        );
        assert_eq!(
            sniff("2020-11-13 08:07:36 UTC::@:[32064]:LOG:  AUDIT: SESSION,1"),
            Some(LogFormat::PgauditStderr)
        );
        assert_eq!(
            sniff("20220527 05:51:28,ip-10-19-0-161,admin,localhost,1554,0,CONNECT,,,0"),
            Some(LogFormat::MariadbAudit)
        );
        assert_eq!(
            sniff("1616096245123456,ip-1,admin,1.2.3.4,5,0,FAILED_CONNECT,,,1045"),
            Some(LogFormat::MariadbAudit)
        );
        assert_eq!(sniff("\n[\n  {\n"), Some(LogFormat::MysqlAuditJson));
        assert_eq!(
            sniff(
                r#"{ "timestamp": "2020-10-19 19:21:33", "id": 0, "class": "audit", "event": "startup" },"#
            ),
            Some(LogFormat::MysqlAuditJson)
        );
        assert_eq!(sniff(r#"{"audit_record":{"name":"Query"}}"#), Some(LogFormat::MysqlAuditJson));
        assert_eq!(sniff("hello world\n{}"), None);
        assert_eq!(sniff(""), None);
    }

    #[test]
    fn tells_the_prefix_of_a_stderr_log() {
        let background = b"2026-11-26 17:41:53.656 UTC [4384] LOG:  starting PostgreSQL 15.18";
        let session = b"2026-11-26 17:41:53.748 UTC [4394] [unknown]@[unknown] 127.0.0.1(59426) [unknown] 6b086f61.112a LOG:  connection received";
        assert_eq!(sniff_log_line_prefix(&[background, session]), Some("%m [%p] %q%u@%d %r %a %c "));
        assert_eq!(sniff_log_line_prefix(&[background]), Some("%m [%p] %q%u@%d %r %a %c %e "));
        assert_eq!(
            sniff_log_line_prefix(&[b"2020-11-13 08:07:36 UTC::@:[32064]:LOG:  x"]),
            Some("%t:%r:%u@%d:[%p]:")
        );
        assert_eq!(sniff_log_line_prefix(&[b"nothing"]), None);
    }
}
