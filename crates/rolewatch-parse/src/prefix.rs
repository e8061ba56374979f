//! PostgreSQL's `log_line_prefix`, compiled into a matcher for stderr log lines.
//!
//! A stderr line is `<prefix><SEVERITY>:  <message>`, where the prefix is whatever the server's
//! `log_line_prefix` printed. The prefix is compiled once into literals and escapes; each escape
//! knows the shape of its value (`%m` is a millisecond timestamp and a zone abbreviation, `%p`
//! digits, `%c` `hex.hex`) or is free text (`%u`, `%d`, `%a`, `%r`, ...) that ends where the
//! next literal matches. Free text may contain that literal too (an application name with a
//! space), so the matcher backtracks, within a fixed budget so that no line costs more than a
//! bounded amount of work.
//!
//! `%q` ends the prefix for processes that are not sessions (the checkpointer, the postmaster):
//! such lines stop there, and the escapes after it are absent.

use std::fmt;

/// PostgreSQL's default `log_line_prefix` since version 10.
pub(crate) const POSTGRES_DEFAULT_PREFIX: &str = "%m [%p] ";

/// Named `log_line_prefix` presets accepted by `--log-line-prefix`: PostgreSQL's default,
/// Debian's packaged configuration, and the fixed prefix of RDS and Aurora PostgreSQL.
pub const LOG_LINE_PREFIX_PRESETS: [(&str, &str); 3] =
    [("postgres", POSTGRES_DEFAULT_PREFIX), ("debian", "%m [%p] %q%u@%d "), ("rds", "%t:%r:%u@%d:[%p]:")];

/// Why a `log_line_prefix` cannot be used to read a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Without `%m`, `%t` or `%n` no line says when it was written.
    #[error("it has no time escape (%m, %t or %n), so events would have no time")]
    NoTime,
}

/// The escapes rolewatch reads. Others (`%P`, `%v`, `%x`, ...) are matched and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    Application,
    User,
    Database,
    RemoteHostPort,
    RemoteHost,
    BackendType,
    Pid,
    LeaderPid,
    TimeSeconds,
    TimeMillis,
    EpochMillis,
    CommandTag,
    SqlState,
    SessionId,
    LineNumber,
    SessionStart,
    VirtualXid,
    Xid,
    QueryId,
}

const ESCAPE_COUNT: usize = 19;

impl Escape {
    fn from_letter(letter: u8) -> Option<Self> {
        Some(match letter {
            b'a' => Self::Application,
            b'u' => Self::User,
            b'd' => Self::Database,
            b'r' => Self::RemoteHostPort,
            b'h' => Self::RemoteHost,
            b'b' => Self::BackendType,
            b'p' => Self::Pid,
            b'P' => Self::LeaderPid,
            b't' => Self::TimeSeconds,
            b'm' => Self::TimeMillis,
            b'n' => Self::EpochMillis,
            b'i' => Self::CommandTag,
            b'e' => Self::SqlState,
            b'c' => Self::SessionId,
            b'l' => Self::LineNumber,
            b's' => Self::SessionStart,
            b'v' => Self::VirtualXid,
            b'x' => Self::Xid,
            b'Q' => Self::QueryId,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    /// A padded escape (`%-10u`) is read as free text and trimmed.
    Field {
        escape: Escape,
        padded: bool,
    },
    /// `%q`: non-session processes stop printing the prefix here.
    SessionOnly,
}

/// A compiled `log_line_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLinePrefix {
    text: String,
    items: Vec<Item>,
    /// The time escape, when only literals come before it: then a line whose prefix has the
    /// bytes of a recently matched one, but for the time's digits, matches the same way
    /// ([`PrefixMemo`]).
    leading_time: Option<Escape>,
}

impl fmt::Display for LogLinePrefix {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// An escape's value as a byte range of the line; `(0, 0)` when it is absent (an empty value
/// reads as absent anyway). 32-bit offsets keep a match small enough to copy cheaply: lines
/// are at most [`crate::MAX_LINE_BYTES`] long.
type Span = (u32, u32);

/// Where the values of one matched line are, as byte ranges of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrefixMatch {
    fields: [Span; ESCAPE_COUNT],
    /// The severity word, e.g. `LOG`, `STATEMENT`.
    pub(crate) severity: &'static str,
    /// Where the message starts (after `SEVERITY:  `).
    pub(crate) message_start: usize,
}

impl PrefixMatch {
    /// The value of `escape` in `line` (the line this match was made on); `None` when the
    /// prefix has no such escape, the value is empty, or it is PostgreSQL's `[unknown]`.
    pub(crate) fn get<'l>(&self, line: &'l str, escape: Escape) -> Option<&'l str> {
        let (start, end) = self.fields.get(escape.index()).copied()?;
        line.get(start as usize..end as usize).filter(|value| !value.is_empty())
    }

    /// Trims the values' padding and drops `[unknown]` once, so that [`PrefixMatch::get`] is
    /// a slice.
    fn normalize(&mut self, line: &str) {
        for span in &mut self.fields {
            let Some(value) = line.get(span.0 as usize..span.1 as usize) else { continue };
            let trimmed = value.trim_matches(' ');
            let start = span.0 as usize + (value.len() - value.trim_start_matches(' ').len());
            *span = match (u32::try_from(start), u32::try_from(start + trimmed.len())) {
                (Ok(start), Ok(end)) if !trimmed.is_empty() && trimmed != "[unknown]" => (start, end),
                _ => (0, 0),
            };
        }
    }
}

/// The most recent prefixes [`LogLinePrefix::match_line_memo`] remembers.
const MEMO_ENTRIES: usize = 4;

/// A matched prefix kept for the next lines: its bytes up to the message, where its time is,
/// and the match.
#[derive(Debug)]
struct MemoEntry {
    head: Vec<u8>,
    time: (usize, usize),
    found: PrefixMatch,
}

/// The last few lines' prefixes, so that the next line of the same process, which differs
/// only in its time (and its message), is not matched again item by item. A line matches
/// as a remembered one did when every byte before its message is the remembered one's, but
/// the time's digits: the match was made without backtracking, so it read nothing but
/// those bytes, and the time escape (first after literals only) reads its digits as digits.
#[derive(Debug, Default)]
pub(crate) struct PrefixMemo {
    entries: Vec<MemoEntry>,
    /// The entry the next new prefix replaces.
    next: usize,
}

impl PrefixMemo {
    fn recall(&self, line: &[u8]) -> Option<&PrefixMatch> {
        self.entries.iter().find_map(|entry| {
            let head = line.get(..entry.head.len())?;
            let (start, end) = entry.time;
            let same = head.get(end..)? == entry.head.get(end..)?
                && head.get(..start)? == entry.head.get(..start)?
                && head
                    .get(start..end)?
                    .iter()
                    .zip(entry.head.get(start..end)?)
                    .all(|(new, old)| new == old || (new.is_ascii_digit() && old.is_ascii_digit()));
            same.then_some(&entry.found)
        })
    }

    fn remember(&mut self, line: &str, time: (usize, usize), found: &PrefixMatch) {
        let Some(head) = line.as_bytes().get(..found.message_start) else { return };
        if self.entries.len() < MEMO_ENTRIES {
            self.entries.push(MemoEntry { head: head.to_vec(), time, found: found.clone() });
            return;
        }
        if let Some(entry) = self.entries.get_mut(self.next) {
            entry.head.clear();
            entry.head.extend_from_slice(head);
            entry.time = time;
            entry.found.clone_from(found);
        }
        self.next = (self.next + 1) % MEMO_ENTRIES;
    }
}

/// Severities PostgreSQL writes (untranslated), and whether each one continues the record
/// before it (`STATEMENT`, `DETAIL`, ...) rather than starting a new one.
const SEVERITIES: [(&str, bool); 18] = [
    ("LOG", false),
    ("STATEMENT", true),
    ("ERROR", false),
    ("DETAIL", true),
    ("FATAL", false),
    ("HINT", true),
    ("CONTEXT", true),
    ("WARNING", false),
    ("NOTICE", false),
    ("INFO", false),
    ("QUERY", true),
    ("LOCATION", true),
    ("PANIC", false),
    ("DEBUG1", false),
    ("DEBUG2", false),
    ("DEBUG3", false),
    ("DEBUG4", false),
    ("DEBUG5", false),
];

/// Whether `severity` continues the record before it.
pub(crate) fn is_follow_up(severity: &str) -> bool {
    SEVERITIES.iter().any(|(name, follow_up)| *name == severity && *follow_up)
}

/// `SEVERITY:  ` at the start of `text`: the severity and the length including the separator.
fn severity_at(text: &str) -> Option<(&'static str, usize)> {
    let colon = text.as_bytes().iter().take(10).position(|byte| *byte == b':')?;
    let word = text.get(..colon)?;
    let (name, _) = SEVERITIES.iter().find(|(name, _)| *name == word)?;
    text.get(colon..colon + 3).filter(|separator| *separator == ":  ")?;
    Some((name, colon + 3))
}

/// The longest free-text value tried when the next item is not a literal.
const MAX_FREE_TEXT: usize = 256;
/// The most matching steps spent on one line.
const STEP_BUDGET: u32 = 512;

fn shape_matches(text: &[u8], shape: &[u8]) -> bool {
    text.len() >= shape.len()
        && text.iter().zip(shape).all(|(byte, expected)| match expected {
            b'9' => byte.is_ascii_digit(),
            other => byte == other,
        })
}

fn run_length(text: &[u8], accept: impl Fn(u8) -> bool) -> usize {
    text.iter().take_while(|byte| accept(**byte)).count()
}

/// A timestamp of `shape` followed by a space and a zone abbreviation or offset.
fn timestamp_length(text: &[u8], shape: &[u8]) -> Option<usize> {
    if !shape_matches(text, shape) || text.get(shape.len()) != Some(&b' ') {
        return None;
    }
    let zone = run_length(text.get(shape.len() + 1..)?, |byte| {
        byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'-'
    });
    (zone > 0).then_some(shape.len() + 1 + zone)
}

/// The length of a value of `escape` at the start of `text`, for escapes with a fixed shape;
/// `None` inside means "free text".
fn shaped_length(escape: Escape, text: &[u8]) -> Option<Option<usize>> {
    let digits = |text: &[u8]| run_length(text, |byte| byte.is_ascii_digit());
    let length = match escape {
        Escape::TimeMillis => timestamp_length(text, b"9999-99-99 99:99:99.999"),
        Escape::TimeSeconds | Escape::SessionStart => timestamp_length(text, b"9999-99-99 99:99:99"),
        Escape::EpochMillis => {
            let seconds = digits(text);
            (seconds > 0 && text.get(seconds) == Some(&b'.'))
                .then(|| seconds + 1 + digits(text.get(seconds + 1..).unwrap_or_default()))
        }
        Escape::Pid | Escape::LineNumber | Escape::Xid => Some(digits(text)).filter(|length| *length > 0),
        Escape::LeaderPid => Some(digits(text)),
        Escape::QueryId => {
            let sign = usize::from(text.first() == Some(&b'-'));
            Some(sign + digits(text.get(sign..).unwrap_or_default())).filter(|length| *length > sign)
        }
        Escape::SessionId => {
            let start = run_length(text, |byte| byte.is_ascii_hexdigit());
            let end = run_length(text.get(start + 1..).unwrap_or_default(), |byte| byte.is_ascii_hexdigit());
            (start > 0 && text.get(start) == Some(&b'.') && end > 0).then_some(start + 1 + end)
        }
        Escape::VirtualXid => Some(run_length(text, |byte| byte.is_ascii_digit() || byte == b'/')),
        Escape::SqlState => Some(5).filter(|_| {
            text.get(..5).is_some_and(|code| {
                code.iter().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
            })
        }),
        Escape::Application
        | Escape::User
        | Escape::Database
        | Escape::RemoteHostPort
        | Escape::RemoteHost
        | Escape::BackendType
        | Escape::CommandTag => return None,
    };
    Some(length)
}

struct Matcher<'p, 'l> {
    items: &'p [Item],
    line: &'l str,
    fields: [Span; ESCAPE_COUNT],
    budget: u32,
    /// An attempt failed and another was tried: the match may depend on bytes past the
    /// message start, so it is not remembered.
    backtracked: bool,
}

impl Matcher<'_, '_> {
    /// Matches items from `index` on at byte `position`; returns where the severity starts.
    fn match_from(&mut self, index: usize, position: usize) -> Option<usize> {
        self.budget = self.budget.checked_sub(1)?;
        let rest = self.line.get(position..)?;
        let Some(item) = self.items.get(index) else {
            return severity_at(rest).map(|_| position);
        };
        match item {
            Item::Literal(literal) => {
                rest.starts_with(literal.as_str()).then_some(())?;
                self.match_from(index + 1, position + literal.len())
            }
            Item::SessionOnly => {
                if severity_at(rest).is_some() {
                    for later in self.items.get(index + 1..).unwrap_or_default() {
                        if let Item::Field { escape, .. } = later
                            && let Some(slot) = self.fields.get_mut(escape.index())
                        {
                            *slot = (0, 0);
                        }
                    }
                    return Some(position);
                }
                self.match_from(index + 1, position)
            }
            Item::Field { escape, padded } => {
                let shaped = if *padded { None } else { shaped_length(*escape, rest.as_bytes()) };
                match shaped {
                    Some(length) => {
                        let length = length?;
                        self.set(*escape, position, position + length);
                        self.match_from(index + 1, position + length)
                    }
                    None => self.match_free_text(index, *escape, position),
                }
            }
        }
    }

    fn match_free_text(&mut self, index: usize, escape: Escape, position: usize) -> Option<usize> {
        let rest = self.line.get(position..)?;
        if let Some(Item::Literal(literal)) = self.items.get(index + 1) {
            // Every place the literal starts, overlapping ones included, found by its first
            // byte (`memchr`; `match_indices` set up a two-way searcher per call).
            let first = literal.as_bytes().first().copied().unwrap_or_default();
            let starts = memchr::memchr_iter(first, rest.as_bytes())
                .filter(|offset| rest.get(*offset..).is_some_and(|tail| tail.starts_with(literal.as_str())));
            for offset in starts {
                self.set(escape, position, position + offset);
                if let Some(found) = self.match_from(index + 1, position + offset) {
                    return Some(found);
                }
                self.backtracked = true;
                if self.budget == 0 {
                    return None;
                }
            }
            return None;
        }
        for length in 0..=rest.len().min(MAX_FREE_TEXT) {
            if !rest.is_char_boundary(length) {
                continue;
            }
            self.set(escape, position, position + length);
            if let Some(found) = self.match_from(index + 1, position + length) {
                return Some(found);
            }
            self.backtracked = true;
            if self.budget == 0 {
                return None;
            }
        }
        None
    }

    fn set(&mut self, escape: Escape, start: usize, end: usize) {
        // Lines are cut at MAX_LINE_BYTES; a value past 4 GiB would read as absent, never as
        // what an earlier backtracking attempt left in the slot.
        if let Some(slot) = self.fields.get_mut(escape.index()) {
            *slot = match (u32::try_from(start), u32::try_from(end)) {
                (Ok(start), Ok(end)) => (start, end),
                _ => (0, 0),
            };
        }
    }
}

impl LogLinePrefix {
    /// Compiles a `log_line_prefix` as PostgreSQL prints it, or a preset name
    /// ([`LOG_LINE_PREFIX_PRESETS`]). Unknown escapes print nothing in PostgreSQL and are
    /// ignored here too.
    pub fn compile(text: &str) -> Result<Self, PrefixError> {
        let resolved = LOG_LINE_PREFIX_PRESETS
            .iter()
            .find(|(name, _)| *name == text)
            .map_or(text, |(_, prefix)| *prefix);
        let mut items: Vec<Item> = Vec::new();
        let mut literal = String::new();
        let mut characters = resolved.chars().peekable();
        while let Some(character) = characters.next() {
            if character != '%' {
                literal.push(character);
                continue;
            }
            let mut padded = false;
            while characters.peek().is_some_and(|next| *next == '-' || next.is_ascii_digit()) {
                characters.next();
                padded = true;
            }
            let Some(letter) = characters.next() else { break };
            let item = match letter {
                '%' => {
                    literal.push('%');
                    continue;
                }
                'q' => Item::SessionOnly,
                _ => match u8::try_from(letter).ok().and_then(Escape::from_letter) {
                    Some(escape) => Item::Field { escape, padded },
                    None => continue,
                },
            };
            if !literal.is_empty() {
                items.push(Item::Literal(std::mem::take(&mut literal)));
            }
            items.push(item);
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        let has_time = items.iter().any(|item| {
            matches!(
                item,
                Item::Field { escape: Escape::TimeMillis | Escape::TimeSeconds | Escape::EpochMillis, .. }
            )
        });
        if !has_time {
            return Err(PrefixError::NoTime);
        }
        let leading_time = items.iter().find_map(|item| match item {
            Item::Literal(_) => None,
            Item::Field { escape, padded: false }
                if matches!(escape, Escape::TimeMillis | Escape::TimeSeconds | Escape::EpochMillis) =>
            {
                Some(Some(*escape))
            }
            _ => Some(None),
        });
        Ok(Self { text: resolved.to_owned(), items, leading_time: leading_time.flatten() })
    }

    /// The prefix as PostgreSQL spells it (presets resolved).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Matches the prefix and severity at the start of `line`.
    pub(crate) fn match_line(&self, line: &str) -> Option<PrefixMatch> {
        self.match_fully(line).map(|(found, _)| found)
    }

    /// Matches item by item; also says whether the match backtracked.
    fn match_fully(&self, line: &str) -> Option<(PrefixMatch, bool)> {
        let mut matcher = Matcher {
            items: &self.items,
            line,
            fields: [(0, 0); ESCAPE_COUNT],
            budget: STEP_BUDGET,
            backtracked: false,
        };
        let severity_start = matcher.match_from(0, 0)?;
        let (severity, length) = severity_at(line.get(severity_start..)?)?;
        let mut found =
            PrefixMatch { fields: matcher.fields, severity, message_start: severity_start + length };
        found.normalize(line);
        Some((found, matcher.backtracked))
    }

    /// [`LogLinePrefix::match_line`], answered from `memo` when the line's prefix is a recent
    /// one's but for the time.
    pub(crate) fn match_line_memo(&self, line: &str, memo: &mut PrefixMemo) -> Option<PrefixMatch> {
        if let Some(found) = memo.recall(line.as_bytes()) {
            return Some(found.clone());
        }
        let (found, backtracked) = self.match_fully(line)?;
        if let Some(escape) = self.leading_time
            && !backtracked
            && let Some((start, end)) = found.fields.get(escape.index()).copied()
            && end > start
        {
            memo.remember(line, (start as usize, end as usize), &found);
        }
        Some(found)
    }

    /// Whether `line` starts with this prefix and a severity.
    pub fn matches(&self, line: &str) -> bool {
        self.match_line(line).is_some()
    }

    /// The time of a matched line, as written (`%m`, else `%t`, else `%n`).
    pub(crate) fn time<'l>(&self, found: &PrefixMatch, line: &'l str) -> Option<&'l str> {
        [Escape::TimeMillis, Escape::TimeSeconds, Escape::EpochMillis]
            .into_iter()
            .find_map(|escape| found.get(line, escape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(prefix: &str, line: &str) -> Vec<(Escape, String)> {
        let prefix = LogLinePrefix::compile(prefix).unwrap();
        let found = prefix.match_line(line).unwrap_or_else(|| panic!("no match: {line}"));
        let all = [
            Escape::TimeMillis,
            Escape::TimeSeconds,
            Escape::EpochMillis,
            Escape::Pid,
            Escape::User,
            Escape::Database,
            Escape::RemoteHostPort,
            Escape::RemoteHost,
            Escape::Application,
            Escape::SessionId,
            Escape::SqlState,
            Escape::LineNumber,
            Escape::VirtualXid,
            Escape::QueryId,
        ];
        let mut values: Vec<(Escape, String)> = all
            .into_iter()
            .filter_map(|escape| found.get(line, escape).map(|value| (escape, value.to_owned())))
            .collect();
        values.push((Escape::CommandTag, format!("{}|{}", found.severity, &line[found.message_start..])));
        values
    }

    #[test]
    fn reads_the_presets() {
        assert_eq!(
            fields("postgres", "2025-05-29 07:18:28.309 GMT [183] ERROR:  permission denied"),
            vec![
                (Escape::TimeMillis, "2025-05-29 07:18:28.309 GMT".into()),
                (Escape::Pid, "183".into()),
                (Escape::CommandTag, "ERROR|permission denied".into())
            ]
        );
        assert_eq!(
            fields("debian", "2024-01-01 10:00:00.000 CET [77] app@shop LOG:  AUDIT: x"),
            vec![
                (Escape::TimeMillis, "2024-01-01 10:00:00.000 CET".into()),
                (Escape::Pid, "77".into()),
                (Escape::User, "app".into()),
                (Escape::Database, "shop".into()),
                (Escape::CommandTag, "LOG|AUDIT: x".into())
            ]
        );
        // %q: the checkpointer prints no user or database.
        assert_eq!(fields("debian", "2024-01-01 10:00:00.000 CET [70] LOG:  checkpoint starting").len(), 3);
        let rds = fields(
            "rds",
            "2020-11-13 08:07:36 UTC:10.0.1.123(50322):audit_user1@auditdb:[24298]:LOG:  AUDIT: SESSION",
        );
        assert_eq!(rds[1], (Escape::Pid, "24298".into()));
        assert_eq!(rds[2], (Escape::User, "audit_user1".into()));
        assert_eq!(rds[4], (Escape::RemoteHostPort, "10.0.1.123(50322)".into()));
        // Background processes on RDS: empty host, user and database.
        assert_eq!(fields("rds", "2020-11-13 08:07:36 UTC::@:[32064]:LOG:  AUDIT: x").len(), 3);
    }

    #[test]
    fn backtracks_over_free_text_containing_the_next_literal() {
        let values = fields(
            "%m [%p] %q%u@%d %r %a %c %e ",
            "2026-11-26 17:41:54.118 UTC [4423] odd@name@shop 127.0.0.1(59514) my app v2 6b086f62.1147 42501 ERROR:  denied",
        );
        let get = |escape| values.iter().find(|(found, _)| *found == escape).map(|(_, value)| value.as_str());
        assert_eq!(get(Escape::User), Some("odd"));
        assert_eq!(get(Escape::Database), Some("name@shop"));
        assert_eq!(get(Escape::Application), Some("my app v2"));
        assert_eq!(get(Escape::SessionId), Some("6b086f62.1147"));
        assert_eq!(get(Escape::SqlState), Some("42501"));
    }

    /// The next literal is tried at every place it starts, overlapping ones included: `::`
    /// after `bob` first fails (`:7` is no pid), one byte later it fits.
    #[test]
    fn tries_overlapping_starts_of_the_next_literal() {
        let values = fields("%m %u::%p ", "2026-11-26 17:41:54.118 UTC bob:::7 LOG:  x");
        let get = |escape| values.iter().find(|(found, _)| *found == escape).map(|(_, value)| value.as_str());
        assert_eq!(get(Escape::User), Some("bob:"));
        assert_eq!(get(Escape::Pid), Some("7"));
    }

    #[test]
    fn reads_every_escape() {
        let prefix = "%t|%s|%n|%p|%P|%l|%v|%x|%e|%Q|%i|%b|%h|%-8u|%%|%z";
        let line = "2024-01-01 10:00:00 UTC|2024-01-01 09:00:00 UTC|1704103200.123|42||7|3/2|0|00000|-123|SELECT|client backend|10.0.0.1|bob     |%|LOG:  hi";
        let values = fields(prefix, line);
        let get = |escape| values.iter().find(|(found, _)| *found == escape).map(|(_, value)| value.as_str());
        assert_eq!(get(Escape::User), Some("bob"));
        assert_eq!(get(Escape::RemoteHost), Some("10.0.0.1"));
        assert_eq!(get(Escape::QueryId), Some("-123"));
        assert_eq!(get(Escape::EpochMillis), Some("1704103200.123"));
        assert_eq!(get(Escape::CommandTag), Some("LOG|hi"));
    }

    #[test]
    fn refuses_prefixes_without_time_and_lines_that_do_not_match() {
        assert_eq!(LogLinePrefix::compile(""), Err(PrefixError::NoTime));
        assert_eq!(LogLinePrefix::compile("[%p] %u"), Err(PrefixError::NoTime));
        let prefix = LogLinePrefix::compile("%m [%p] ").unwrap();
        for line in [
            "",
            "LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT 1;,<not logged>",
            "2025-05-29 07:18:28.309 GMT [x] LOG:  hi",
            "2025-05-29 07:18:28.309 GMT [1] LOG: one space",
            "2025-05-29 07:18:28.309 GMT [1] BOGUS:  hi",
        ] {
            assert!(!prefix.matches(line), "{line}");
        }
    }

    /// A remembered prefix answers exactly as a full match would, for lines that differ from
    /// it in the time, the message, the values, or only past the message start.
    #[test]
    fn the_memo_answers_as_a_full_match_would() {
        let prefix = LogLinePrefix::compile("%m [%p] %q%u@%d %r %a %c ").unwrap();
        let lines = [
            "2026-11-28 13:11:58.351 UTC [21814] bench@bench 127.0.0.1(56808) pgbench 6b0ad31e.5536 LOG:  AUDIT: one",
            "2026-11-28 13:11:59.999 UTC [21814] bench@bench 127.0.0.1(56808) pgbench 6b0ad31e.5536 LOG:  AUDIT: two",
            "2026-11-28 13:11:59.999 UTC [21814] bench@bench 127.0.0.1(56808) pgbench 6b0ad31e.5536 STATEMENT:  x",
            "2026-11-28 13:12:00.000 UTC [21815] bench@bench 127.0.0.1(56808) pgbench 6b0ad31e.5537 LOG:  other pid",
            "2026-11-28 13:12:00.000 CET [21814] bench@bench 127.0.0.1(56808) pgbench 6b0ad31e.5536 LOG:  zone",
            "2026-11-28 13:12:00.000 UTC [21814] LOG:  checkpoint starting",
            "2026-11-28 13:12:00.001 UTC [21814] LOG:  checkpoint complete",
            "2026-11-28 13:12:00.0x1 UTC [21814] LOG:  not a time",
            "2026-11-28 13:12:00.001 UTC [21814] bench@bench 127.0.0.1(56808) my app v2 6b0ad31e.5536 LOG:  spaces",
            "2026-11-28 13:12:00.002 UTC [21814] bench@bench 127.0.0.1(56808) my app v2 6b0ad31e.5536 LOG:  again",
            "2026-11-28 13:12:00.002 UTC [21814] bench@bench 127.0.0.1(56808) pgbench 6b0ad31e.5536 LOG:",
            "2026-11-28 13:12:00.002 UTC [21814] bench@bench 127.0.0.1(56808) pgbench 6b0ad31e.5536 LOG",
            "2026-11-28 13:12:00.003 UTC [21814] bench@bench 127.0.0.1(56808) pgbench 6b0ad31e.5536 LOG:  last",
        ];
        let mut memo = PrefixMemo::default();
        let mut recalled = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            if memo.recall(line.as_bytes()).is_some() {
                recalled.push(index);
            }
            assert_eq!(prefix.match_line_memo(line, &mut memo), prefix.match_line(line), "{line}");
        }
        // The fifth new prefix (the checkpointer's) took the place of the first.
        assert_eq!(recalled, [1, 6]);

        // A match that backtracked is not remembered: the application name's spaces.
        let mut memo = PrefixMemo::default();
        prefix.match_line_memo(lines[8], &mut memo);
        assert!(memo.recall(lines[9].as_bytes()).is_none());
        // Nor one whose time is not the first escape.
        let late = LogLinePrefix::compile("[%p] %m ").unwrap();
        let mut memo = PrefixMemo::default();
        late.match_line_memo("[7] 2026-11-28 13:12:00.003 UTC LOG:  x", &mut memo);
        assert!(memo.recall(b"[7] 2026-11-28 13:12:00.003 UTC LOG:  x").is_none());
    }

    proptest::proptest! {
        /// Over any run of lines of similar shape, the memo changes nothing.
        #[test]
        fn the_memo_never_changes_a_match(lines in proptest::collection::vec(
            "20[0-9]{2}-11-28 1[0-9]:[0-9x]{2}:5[0-9]\\.[0-9x]{3} (UTC|CET|\\+02) \\[(7|77)\\] ((a|a b|\\[unknown\\])@(d|d@e|) (127\\.0\\.0\\.1\\(5\\)|\\[local\\]) (app|my app|) (6b\\.7|6b\\.8|x) )?(LOG|STATEMENT|ERROR|BOGUS):(  x| |  a@b c LOG:  )?",
            1..40,
        )) {
            for prefix in ["%m [%p] %q%u@%d %r %a %c ", "%t [%p] %q%u@%d %r %a %c ", "%m [%p] %q%u@%d %r %a %-5c "] {
                let prefix = LogLinePrefix::compile(prefix).unwrap();
                let mut memo = PrefixMemo::default();
                for line in &lines {
                    proptest::prop_assert_eq!(prefix.match_line_memo(line, &mut memo), prefix.match_line(line));
                }
            }
        }
    }

    #[test]
    fn pathological_free_text_stays_within_budget() {
        let prefix = LogLinePrefix::compile("%m %u%d%a%h%b%i ").unwrap();
        let line = format!("2025-05-29 07:18:28.309 GMT {}", " a".repeat(5000));
        assert!(!prefix.matches(&line));
    }
}
