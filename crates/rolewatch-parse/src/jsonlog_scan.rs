//! A fast path for the one shape of JSON that `jsonlog.c` writes: a flat object on one line,
//! string values escaped by `escape_json`, numbers, no nesting.
//!
//! serde_json spends most of its time on keys rolewatch never reads (`ps`, `vxid`,
//! `backend_type`, ...). This scanner first finds the line's quotes and backslashes 16 bytes at
//! a time ([`QuoteIndex`], which also rules out raw control characters) and validates UTF-8 once.
//! [`scan_plain`] then reads the line as `jsonlog.c` writes it: each key recognized by comparing
//! a few words against the keys it writes, in its order ([`KEY_ORDER`]), each string's end the
//! next quote in the index, only strings with escapes unescaped. A line written any other way
//! (whitespace, keys out of order or unknown, `null`, fractions) is read again by
//! [`scan_general`]. Anything that one is not sure of (nested values, a duplicate key, a number
//! that does not fit, invalid escapes, a missing brace) makes it give up with `None`, and the
//! caller parses the line with serde_json, which then decides and words the error. Property
//! tests check that both agree wherever the scanner answers.

use std::borrow::Cow;

use crate::jsonlog::JsonlogLine;

struct Scanner<'a, 'q> {
    text: &'a str,
    position: usize,
    quotes: &'q QuoteIndex,
}

/// How many 64-byte blocks of a line the [`QuoteIndex`] covers. Past them (a long statement),
/// strings are searched for their end as before.
const INDEXED_BLOCKS: usize = 16;

/// Where the quotes and backslashes of a line's first `INDEXED_BLOCKS` blocks are, a bit per
/// byte, found 16 bytes at a time ([`crate::bytes::json_masks`]): a string's end is then the
/// next bit, not a search. The same pass rules out raw control characters for the whole line.
struct QuoteIndex {
    quotes: [u64; INDEXED_BLOCKS],
    backslashes: [u64; INDEXED_BLOCKS],
}

impl QuoteIndex {
    /// The index of `line`, or `None` when it holds a raw control character: `jsonlog.c` writes
    /// none, not even between tokens, so serde_json decides such a line.
    fn new(line: &[u8]) -> Option<Self> {
        let mut index = Self { quotes: [0; INDEXED_BLOCKS], backslashes: [0; INDEXED_BLOCKS] };
        let mut blocks = line.chunks_exact(64);
        let mut add = |block: usize, bytes: &[u8; 64]| {
            let (quotes, special) = crate::bytes::quote_mask(bytes);
            let (mut backslashes, mut controls) = (0, 0);
            if special {
                let masks = crate::bytes::json_masks(bytes);
                (backslashes, controls) = (masks.backslashes, masks.controls);
            }
            if let (Some(quote_slot), Some(backslash_slot)) =
                (index.quotes.get_mut(block), index.backslashes.get_mut(block))
            {
                (*quote_slot, *backslash_slot) = (quotes, backslashes);
            }
            controls == 0
        };
        let mut count = 0;
        for block in &mut blocks {
            if !add(count, block.try_into().ok()?) {
                return None;
            }
            count += 1;
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            // Padded with spaces: neither quotes, backslashes nor control characters.
            let mut block = [b' '; 64];
            block.iter_mut().zip(rest).for_each(|(slot, byte)| *slot = *byte);
            if !add(count, &block) {
                return None;
            }
        }
        Some(index)
    }

    /// The position of the first `"` or `\\` of `bytes` (the indexed line) at or after `start`:
    /// from the index in the indexed blocks, searched for past them.
    fn quote_or_backslash(&self, bytes: &[u8], start: usize) -> Option<usize> {
        let mut block = start / 64;
        let below_start = (1u64 << (start % 64)) - 1;
        let (Some(quotes), Some(backslashes)) = (self.quotes.get(block), self.backslashes.get(block)) else {
            return quote_or_backslash(bytes, start);
        };
        let mut found = (quotes | backslashes) & !below_start;
        while found == 0 {
            block += 1;
            let (Some(quotes), Some(backslashes)) = (self.quotes.get(block), self.backslashes.get(block))
            else {
                return quote_or_backslash(bytes, (block * 64).max(start));
            };
            found = quotes | backslashes;
        }
        Some(block * 64 + found.trailing_zeros() as usize)
    }

    /// The position of the first quote at or after `start` when no backslash comes before it:
    /// the end of a string without escapes. `None` when a backslash comes first, or when the
    /// quote is not in the indexed blocks.
    fn plain_string_end(&self, start: usize) -> Option<usize> {
        let mut block = start / 64;
        let below_start = (1u64 << (start % 64)) - 1;
        let mut quotes = self.quotes.get(block)? & !below_start;
        let mut backslashes = self.backslashes.get(block)? & !below_start;
        loop {
            if quotes != 0 {
                let quote = quotes.trailing_zeros();
                let before_quote = (1u64 << quote) - 1;
                return (backslashes & before_quote == 0).then_some(block * 64 + quote as usize);
            }
            if backslashes != 0 {
                return None;
            }
            block += 1;
            quotes = *self.quotes.get(block)?;
            backslashes = *self.backslashes.get(block)?;
        }
    }
}

impl<'a> Scanner<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.position += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek() == Some(byte)).then(|| self.position += 1)
    }

    /// A string value, the opening quote already seen. Raw control characters are invalid JSON.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let bytes = self.text.as_bytes();
        // Raw control characters, invalid in JSON strings, were ruled out for the whole line.
        let run = |from: usize, to: usize| self.text.get(from..to);
        let start = self.position;
        if let Some(end) = self.quotes.plain_string_end(start) {
            self.position = end + 1;
            return run(start, end).map(Cow::Borrowed);
        }
        let mut end = self.quotes.quote_or_backslash(bytes, start)?;
        if bytes.get(end) == Some(&b'"') {
            self.position = end + 1;
            return run(start, end).map(Cow::Borrowed);
        }
        // Unescaped, the string is shorter than the rest of the line: one allocation.
        let mut unescaped = String::with_capacity(bytes.len().saturating_sub(start));
        let mut run_start = start;
        loop {
            unescaped.push_str(run(run_start, end)?);
            if bytes.get(end) == Some(&b'"') {
                self.position = end + 1;
                return Some(Cow::Owned(unescaped));
            }
            self.position = end + 2;
            match *bytes.get(end + 1)? {
                b'"' => unescaped.push('"'),
                b'\\' => unescaped.push('\\'),
                b'/' => unescaped.push('/'),
                b'b' => unescaped.push('\u{8}'),
                b'f' => unescaped.push('\u{c}'),
                b'n' => unescaped.push('\n'),
                b'r' => unescaped.push('\r'),
                b't' => unescaped.push('\t'),
                b'u' => unescaped.push(self.unicode_escape()?),
                _ => return None,
            }
            run_start = self.position;
            end = self.quotes.quote_or_backslash(bytes, run_start)?;
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.position..self.position + 4)?;
        self.position += 4;
        if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    }

    /// `\uXXXX`, with a surrogate pair when it takes two.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) {
            if self.text.get(self.position..self.position + 2)? != "\\u" {
                return None;
            }
            self.position += 2;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return None;
            }
            return char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00));
        }
        char::from_u32(first)
    }

    /// A number, `true`, `false` or `null`: the raw text.
    fn scalar(&mut self) -> Option<&'a str> {
        let start = self.position;
        let rest = self.text.as_bytes().get(start..)?;
        let scalar_byte = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.');
        // The usual value: digits, no leading zero, then a delimiter. Valid as it is.
        let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
        if (digits == 1 || (digits > 1 && rest.first() != Some(&b'0')))
            && !rest.get(digits).is_some_and(scalar_byte)
        {
            self.position += digits;
            return self.text.get(start..start + digits);
        }
        let length = rest.iter().take_while(|byte| scalar_byte(byte)).count();
        self.position += length;
        let raw = self.text.get(start..start + length)?;
        let valid = matches!(raw, "true" | "false" | "null") || is_json_number(raw);
        valid.then_some(raw)
    }
}

/// How many bytes a string is looked through eight at a time before `memchr2` takes over: keys
/// and most values of a jsonlog line are shorter, and `memchr2`'s setup cost more than the
/// search on them (30-odd strings a line).
const SHORT_STRING: usize = 32;

/// The position of the first `"` or `\\` at or after `start`.
fn quote_or_backslash(bytes: &[u8], start: usize) -> Option<usize> {
    let rest = bytes.get(start..)?;
    let head = rest.get(..SHORT_STRING).unwrap_or(rest);
    if let Some(found) = crate::bytes::find_either(head, b'"', b'\\') {
        return Some(start + found);
    }
    let tail = rest.get(head.len()..)?;
    Some(start + head.len() + memchr::memchr2(b'"', b'\\', tail)?)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, JSON's number grammar.
fn is_json_number(raw: &str) -> bool {
    let digits = |text: &str| text.bytes().take_while(u8::is_ascii_digit).count();
    let rest = raw.strip_prefix('-').unwrap_or(raw);
    let integer = digits(rest);
    if integer == 0 || (integer > 1 && rest.starts_with('0')) {
        return false;
    }
    let mut rest = rest.get(integer..).unwrap_or_default();
    if let Some(fraction) = rest.strip_prefix('.') {
        let length = digits(fraction);
        if length == 0 {
            return false;
        }
        rest = fraction.get(length..).unwrap_or_default();
    }
    if let Some(exponent) = rest.strip_prefix(['e', 'E']) {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        let length = digits(exponent);
        if length == 0 {
            return false;
        }
        rest = exponent.get(length..).unwrap_or_default();
    }
    rest.is_empty()
}

/// The [`JsonlogLine`] field a key fills (`Other` for the keys rolewatch does not read); the
/// discriminant is the field's bit in the scanner's mask of keys seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Timestamp,
    User,
    Dbname,
    Pid,
    RemoteHost,
    RemotePort,
    SessionId,
    ErrorSeverity,
    StateCode,
    Message,
    Statement,
    ApplicationName,
    Other,
}

impl Field {
    /// The field of a key read the general way (out of order, or written another way).
    fn of(key: &str) -> Self {
        KEY_ORDER.iter().find(|known| known.name == key).map_or(Self::Other, |known| known.field)
    }
}

/// A key `jsonlog.c` writes, and the same key as it appears in a line, quoted and followed by
/// its colon, as three little-endian words (zero-padded) with the masks of the bytes that are
/// the key's: a line's next key is compared in at most three word compares, most candidates
/// ruled out by the first.
struct KnownKey {
    name: &'static str,
    words: [u64; 3],
    masks: [u64; 3],
    length: usize,
    field: Field,
}

/// Builds a [`KnownKey`]; `"name":` is at most 24 bytes (a longer one fails to compile).
const fn known(name: &'static str, field: Field) -> KnownKey {
    let length = name.len() + 3;
    assert!(length <= 24, "a known key is at most three words");
    let (mut words, mut masks) = ((0u64, 0u64, 0u64), (0u64, 0u64, 0u64));
    let mut index = 0;
    let mut rest = name.as_bytes();
    while index < length {
        let byte = if index == 0 || index == length - 2 {
            b'"'
        } else if index == length - 1 {
            b':'
        } else if let Some((byte, tail)) = rest.split_first() {
            rest = tail;
            *byte
        } else {
            0
        };
        let shift = (index % 8) * 8;
        let (word, mask) = match index / 8 {
            0 => (&mut words.0, &mut masks.0),
            1 => (&mut words.1, &mut masks.1),
            _ => (&mut words.2, &mut masks.2),
        };
        *word |= (byte as u64) << shift;
        *mask |= 0xff << shift;
        index += 1;
    }
    KnownKey { name, words: [words.0, words.1, words.2], masks: [masks.0, masks.1, masks.2], length, field }
}

impl KnownKey {
    /// Whether `rest` starts with the key, given its first three words.
    fn starts(&self, words: &[u64; 3]) -> bool {
        words.iter().zip(&self.words).zip(&self.masks).all(|((word, key), mask)| word & mask == *key)
    }
}

/// Every key `jsonlog.c` writes (PostgreSQL 15 to 18), in the order it writes them. It leaves
/// out keys whose value is null, and later versions may add keys, so a line's keys are looked
/// for from the last one found onwards; one that is not there is read the general way.
const KEY_ORDER: [KnownKey; 29] = [
    known("timestamp", Field::Timestamp),
    known("user", Field::User),
    known("dbname", Field::Dbname),
    known("pid", Field::Pid),
    known("remote_host", Field::RemoteHost),
    known("remote_port", Field::RemotePort),
    known("session_id", Field::SessionId),
    known("line_num", Field::Other),
    known("ps", Field::Other),
    known("session_start", Field::Other),
    known("vxid", Field::Other),
    known("txid", Field::Other),
    known("error_severity", Field::ErrorSeverity),
    known("state_code", Field::StateCode),
    known("message", Field::Message),
    known("detail", Field::Other),
    known("hint", Field::Other),
    known("internal_query", Field::Other),
    known("internal_position", Field::Other),
    known("context", Field::Other),
    known("statement", Field::Statement),
    known("cursor_position", Field::Other),
    known("func_name", Field::Other),
    known("file_name", Field::Other),
    known("file_line_num", Field::Other),
    known("application_name", Field::ApplicationName),
    known("backend_type", Field::Other),
    known("leader_pid", Field::Other),
    known("query_id", Field::Other),
];

/// The key `rest` starts with, looked for in [`KEY_ORDER`] from `*next` on, and its length with
/// quotes and colon; `*next` moves past it. `None` when it is none of those (a key out of order,
/// a new one, whitespace before the colon, an escape in the key): read it the general way.
fn known_key(rest: &[u8], next: &mut usize) -> Option<(Field, usize)> {
    let word = |at: usize| crate::bytes::load_prefix(rest.get(at..).unwrap_or_default());
    let words = [word(0), word(8), word(16)];
    let (found, key) = KEY_ORDER.iter().enumerate().skip(*next).find(|(_, key)| key.starts(&words))?;
    *next = found + 1;
    Some((key.field, key.length))
}

enum Value<'a> {
    Text(Cow<'a, str>),
    Scalar(&'a str),
}

fn text_field<'a>(slot: &mut Option<Cow<'a, str>>, value: Value<'a>) -> Option<()> {
    match value {
        Value::Text(text) => *slot = Some(text),
        Value::Scalar("null") => *slot = None,
        Value::Scalar(_) => return None,
    }
    Some(())
}

fn number_field<T: std::str::FromStr>(slot: &mut Option<T>, value: Value<'_>) -> Option<()> {
    match value {
        Value::Scalar("null") => *slot = None,
        Value::Scalar(raw) => *slot = Some(raw.parse().ok()?),
        Value::Text(_) => return None,
    }
    Some(())
}

/// Reads a jsonlog line, or `None` when serde_json should decide.
///
/// The line is read into `parsed` (which starts as the default), not returned: it is about 300
/// bytes, and moving it out through the fallbacks was a copy each time. `None` leaves `parsed`
/// at the default.
pub(crate) fn scan_jsonlog<'a>(line: &'a [u8], parsed: &mut JsonlogLine<'a>) -> Option<()> {
    let quotes = QuoteIndex::new(line)?;
    let text = crate::bytes::utf8(line).ok()?;
    scan_plain(text, &quotes, parsed).or_else(|| {
        *parsed = JsonlogLine::default();
        let general = scan_general(text, &quotes, parsed);
        if general.is_none() {
            *parsed = JsonlogLine::default();
        }
        general
    })
}

/// The first three words of `bytes` from `at` (zero-padded past its end), as [`KnownKey`]
/// compares them.
fn key_words(bytes: &[u8], at: usize) -> [u64; 3] {
    match bytes.get(at..at + 24) {
        Some(window) => {
            let word = |from: usize| {
                window.get(from..from + 8).and_then(|word| word.try_into().ok()).map_or(0, u64::from_le_bytes)
            };
            [word(0), word(8), word(16)]
        }
        None => {
            let rest = bytes.get(at..).unwrap_or_default();
            let word = |from: usize| crate::bytes::load_prefix(rest.get(from..).unwrap_or_default());
            [word(0), word(8), word(16)]
        }
    }
}

/// A plain integer at the start of `bytes` (`-?(0|[1-9][0-9]*)`, at most 18 digits, so that it
/// fits an `i64`) and its length; `None` for anything else (a fraction, an exponent, `null`).
fn plain_integer(bytes: &[u8]) -> Option<(i64, usize)> {
    let negative = bytes.first() == Some(&b'-');
    let digits = bytes.get(usize::from(negative)..)?;
    let mut value = 0i64;
    let mut length = 0;
    for byte in digits.iter().take(19) {
        if !byte.is_ascii_digit() {
            break;
        }
        // Wraps only past 18 digits, which are refused below.
        value = value.wrapping_mul(10).wrapping_add(i64::from(byte - b'0'));
        length += 1;
    }
    if length == 0 || length > 18 || (length > 1 && digits.first() == Some(&b'0')) {
        return None;
    }
    Some((if negative { -value } else { value }, length + usize::from(negative)))
}

/// Reads a line as `jsonlog.c` writes it, and nothing else: no whitespace, the keys of
/// [`KEY_ORDER`] in order, values that are strings or plain integers. A string's end is taken
/// from the [`QuoteIndex`]; one with escapes is unescaped as [`Scanner::string`] does. Anything
/// else gives `None` at the first byte that is not so, and [`scan_general`] reads the line
/// again from the start.
fn scan_plain<'a>(text: &'a str, quotes: &QuoteIndex, parsed: &mut JsonlogLine<'a>) -> Option<()> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let mut position = 1;
    let mut next = 0;
    loop {
        let words = key_words(bytes, position);
        let (found, key) = KEY_ORDER.iter().enumerate().skip(next).find(|(_, key)| key.starts(&words))?;
        next = found + 1;
        position += key.length;
        if bytes.get(position) == Some(&b'"') {
            let value = if let Some(end) = quotes.plain_string_end(position + 1) {
                let value = text.get(position + 1..end)?;
                position = end + 1;
                Some(Cow::Borrowed(value))
            } else {
                let mut scanner = Scanner { text, position: position + 1, quotes };
                let value = scanner.string()?;
                position = scanner.position;
                Some(value)
            };
            match key.field {
                Field::Timestamp => parsed.timestamp = value,
                Field::User => parsed.user = value,
                Field::Dbname => parsed.dbname = value,
                Field::RemoteHost => parsed.remote_host = value,
                Field::SessionId => parsed.session_id = value,
                Field::ErrorSeverity => parsed.error_severity = value,
                Field::StateCode => parsed.state_code = value,
                Field::Message => parsed.message = value,
                Field::Statement => parsed.statement = value,
                Field::ApplicationName => parsed.application_name = value,
                Field::Other => {}
                Field::Pid | Field::RemotePort => return None,
            }
        } else {
            let (value, length) = plain_integer(bytes.get(position..)?)?;
            position += length;
            match key.field {
                Field::Pid => parsed.pid = Some(value),
                Field::RemotePort => parsed.remote_port = Some(u16::try_from(value).ok()?),
                Field::Other => {}
                _ => return None,
            }
        }
        match bytes.get(position) {
            Some(b',') => position += 1,
            Some(b'}') if position + 1 == bytes.len() => return Some(()),
            _ => return None,
        }
    }
}

/// Reads any flat object the way [`scan_plain`] cannot: whitespace between tokens, keys out of
/// order or unknown, escapes, `null` and other scalars. `None` when serde_json should decide.
fn scan_general<'a>(text: &'a str, quotes: &QuoteIndex, parsed: &mut JsonlogLine<'a>) -> Option<()> {
    let mut scanner = Scanner { text, position: 0, quotes };
    scanner.expect(b'{')?;
    let mut seen = 0u16;
    scanner.skip_whitespace();
    if scanner.peek() == Some(b'}') {
        scanner.position += 1;
    } else {
        let mut next_key = 0;
        loop {
            scanner.skip_whitespace();
            let rest = text.as_bytes().get(scanner.position..).unwrap_or_default();
            let field = match known_key(rest, &mut next_key) {
                Some((field, length)) => {
                    scanner.position += length;
                    field
                }
                None => {
                    scanner.expect(b'"')?;
                    let key = scanner.string()?;
                    scanner.expect(b':')?;
                    Field::of(&key)
                }
            };
            scanner.skip_whitespace();
            let value = match scanner.peek()? {
                b'"' => {
                    scanner.position += 1;
                    Value::Text(scanner.string()?)
                }
                b'{' | b'[' => return None,
                _ => Value::Scalar(scanner.scalar()?),
            };
            match field {
                Field::Timestamp => text_field(&mut parsed.timestamp, value),
                Field::User => text_field(&mut parsed.user, value),
                Field::Dbname => text_field(&mut parsed.dbname, value),
                Field::Pid => number_field(&mut parsed.pid, value),
                Field::RemoteHost => text_field(&mut parsed.remote_host, value),
                Field::RemotePort => number_field(&mut parsed.remote_port, value),
                Field::SessionId => text_field(&mut parsed.session_id, value),
                Field::ErrorSeverity => text_field(&mut parsed.error_severity, value),
                Field::StateCode => text_field(&mut parsed.state_code, value),
                Field::Message => text_field(&mut parsed.message, value),
                Field::Statement => text_field(&mut parsed.statement, value),
                Field::ApplicationName => text_field(&mut parsed.application_name, value),
                Field::Other => Some(()),
            }?;
            // A key read twice: serde_json refuses the line, so the scanner leaves it to it.
            if !matches!(field, Field::Other) {
                let bit = 1u16 << field as u16;
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
            }
            scanner.skip_whitespace();
            match scanner.peek()? {
                b',' => scanner.position += 1,
                b'}' => {
                    scanner.position += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    scanner.skip_whitespace();
    (scanner.position == text.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn serde(line: &str) -> Option<JsonlogLine<'_>> {
        serde_json::from_str(line).ok()
    }

    /// [`scan_jsonlog`] as a value; `parsed` must be left at the default when it gives up.
    fn scan_jsonlog(line: &[u8]) -> Option<JsonlogLine<'_>> {
        let mut parsed = JsonlogLine::default();
        let scanned = super::scan_jsonlog(line, &mut parsed);
        if scanned.is_none() {
            assert_eq!(parsed, JsonlogLine::default(), "{}", String::from_utf8_lossy(line));
        }
        scanned.map(|()| parsed)
    }

    fn scan_plain<'a>(text: &'a str, quotes: &QuoteIndex) -> Option<JsonlogLine<'a>> {
        let mut parsed = JsonlogLine::default();
        super::scan_plain(text, quotes, &mut parsed).map(|()| parsed)
    }

    #[test]
    fn reads_what_jsonlog_writes_and_gives_up_on_the_rest() {
        let line = r#"{"timestamp":"2026-11-27 02:59:03.300 UTC","user":"bench","pid":7256,"remote_port":5432,"ps":"idle","message":"AUDIT: SESSION,1,1,WRITE,INSERT,,,\"INSERT INTO t (a, b) VALUES (1, 'x\ty')\",<none>,1 \u00e9\ud83d\ude00","query_id":-42}"#;
        let scanned = scan_jsonlog(line.as_bytes()).unwrap();
        assert_eq!(scanned, serde(line).unwrap());
        assert_eq!(
            scanned.message.as_deref(),
            Some(
                "AUDIT: SESSION,1,1,WRITE,INSERT,,,\"INSERT INTO t (a, b) VALUES (1, 'x\ty')\",<none>,1 é😀"
            )
        );
        for numbers in [
            r#"{"pid":0,"remote_port":5432,"line_num":1e3,"txid":-0,"query_id":10.5}"#,
            r#"{"pid":-7,"remote_port":9,"query_id":1E+2}"#,
        ] {
            assert_eq!(scan_jsonlog(numbers.as_bytes()), serde(numbers), "{numbers}");
            assert!(scan_jsonlog(numbers.as_bytes()).is_some(), "{numbers}");
        }
        for gives_up in [
            r#"{"pid":"7"}"#,
            r#"{"pid":7,"pid":8}"#,
            r#"{"remote_port":70000}"#,
            r#"{"x":{"nested":1}}"#,
            r#"{"message":"bad \q escape"}"#,
            r#"{"message":"open"#,
            r#"{"message":"x"} trailing"#,
            r#"{"pid":01}"#,
            r#"{"pid":00}"#,
            r#"{"pid":12x}"#,
            r#"{"pid":7-}"#,
            r#"{"ps":1.}"#,
            "{\"message\":\"raw\ncontrol\"}",
        ] {
            assert!(scan_jsonlog(gives_up.as_bytes()).is_none(), "{gives_up}");
        }
    }

    /// The keys of a real pgAudit line (PostgreSQL 15 under pgbench) are all found in the table,
    /// in order; a key out of order, an unknown one, one with an escape or with whitespace
    /// before its colon is not (the general path reads those).
    #[test]
    fn the_keys_jsonlog_writes_are_found_in_order() {
        use Field::{
            ApplicationName, Dbname, ErrorSeverity, Message, Other, Pid, RemoteHost, RemotePort, SessionId,
            Timestamp, User,
        };
        let keys = [
            ("timestamp", Timestamp),
            ("user", User),
            ("dbname", Dbname),
            ("pid", Pid),
            ("remote_host", RemoteHost),
            ("remote_port", RemotePort),
            ("session_id", SessionId),
            ("line_num", Other),
            ("ps", Other),
            ("session_start", Other),
            ("vxid", Other),
            ("txid", Other),
            ("error_severity", ErrorSeverity),
            ("message", Message),
            ("application_name", ApplicationName),
            ("backend_type", Other),
            ("query_id", Other),
        ];
        let mut next = 0;
        for (key, expected) in keys {
            let text = format!("\"{key}\":\"value\"");
            let (field, length) = known_key(text.as_bytes(), &mut next).unwrap_or_else(|| panic!("{key}"));
            assert_eq!(length, key.len() + 3, "{key}");
            assert_eq!(field, expected, "{key}");
            assert_eq!(Field::of(key), expected, "{key}: the general path");
        }
        assert_eq!(Field::of("statement"), Field::Statement);
        assert_eq!(Field::of("state_code"), Field::StateCode);
        assert_eq!(Field::of("no_such_key"), Other);
        assert_eq!(next, KEY_ORDER.len(), "query_id is the last key");
        let mut next = KEY_ORDER.iter().position(|key| matches!(key.field, Message)).unwrap_or(0);
        for not_found in [r#""user":"#, r#""usr":"#, r#""user" :"#, r#""us\u0065r":"#, r#""pi"#, ""] {
            assert!(known_key(not_found.as_bytes(), &mut next).is_none(), "{not_found}");
        }
        assert!(known_key(br#""statement":"x""#, &mut next).is_some(), "a key after a few left out");
    }

    /// Strings with escapes at every offset from a 64-byte block's edge (and from the scanner's
    /// eight-byte words), escaped backslashes before quotes included: the scanner reads what
    /// serde_json reads.
    #[test]
    fn escapes_at_every_offset() {
        for shift in (0..70).chain(INDEXED_BLOCKS * 64 - 70..INDEXED_BLOCKS * 64 + 10) {
            for message in [r#"a\\\"b"#, r#"\\"#, r#"x\"y\\\\"#, r#"\u00e9\n\"\\"#, r#"no escape"#] {
                let line = format!(
                    r#"{{"ps":"{}","message":"{message}","user":"u\"{message}","pid":7}}"#,
                    "p".repeat(shift)
                );
                let scanned = scan_jsonlog(line.as_bytes());
                assert!(scanned.is_some(), "{line}");
                assert_eq!(scanned, serde(&line), "{line}");
            }
        }
    }

    /// The lines `jsonlog.c` writes are read by the plain path, escaped statements included;
    /// anything else it leaves to the general one, which still reads it.
    #[test]
    fn the_plain_path_reads_what_jsonlog_writes() {
        let sample = include_str!("../tests/data/pg15_jsonlog_pgaudit.json");
        let escaped = r#"{"timestamp":"2026-11-29 04:55:17.266 UTC","user":"bench","dbname":"bench","pid":22737,"remote_host":"127.0.0.1","remote_port":34694,"session_id":"6b0bb035.58d1","line_num":5,"ps":"CREATE TABLE","session_start":"2026-11-29 04:55:17 UTC","vxid":"3/7","txid":726,"error_severity":"LOG","message":"AUDIT: SESSION,2,1,DDL,CREATE TABLE,,,\"create table h(tid int,bid int)\",<none>,0","application_name":"pgbench","backend_type":"client backend","query_id":-42}"#;
        let long = format!(
            r#"{{"timestamp":"2026-11-29 04:55:17.266 UTC","error_severity":"LOG","message":"AUDIT: SESSION,2,1,READ,SELECT,,,\"select '{}', 1\",<none>","query_id":0}}"#,
            "x".repeat(INDEXED_BLOCKS * 64)
        );
        for line in sample.lines().chain([escaped, long.as_str()]) {
            let quotes = QuoteIndex::new(line.as_bytes()).unwrap();
            let plain = scan_plain(line, &quotes);
            assert!(plain.is_some(), "{line}");
            assert_eq!(plain, serde(line), "{line}");
        }
        for general in [
            r#"{ "timestamp":"2026-01-01 00:00:00 UTC","message":"x"}"#,
            r#"{"message":"x","timestamp":"2026-01-01 00:00:00 UTC"}"#,
            r#"{"timestamp":"2026-01-01 00:00:00 UTC","pid":null,"message":"x"}"#,
            r#"{"timestamp":"2026-01-01 00:00:00 UTC","new_key":1.5,"message":"x"}"#,
            r#"{"timestamp":"2026-01-01 00:00:00 UTC","pid":1234567890123456789,"message":"x"}"#,
            r#"{"timestamp":"2026-01-01 00:00:00 UTC","message":"x"} "#,
        ] {
            let quotes = QuoteIndex::new(general.as_bytes()).unwrap();
            assert_eq!(scan_plain(general, &quotes), None, "{general}");
            assert!(scan_jsonlog(general.as_bytes()).is_some(), "{general}");
            assert_eq!(scan_jsonlog(general.as_bytes()), serde(general), "{general}");
        }
    }

    fn json_string() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![any::<char>().prop_map(String::from), Just("\\\"".to_owned())],
            0..24,
        )
        .prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// Wherever the scanner answers, serde_json answers the same.
        #[test]
        fn agrees_with_serde(
            fields in prop::collection::vec(
                (prop::sample::select(vec!["timestamp", "user", "pid", "remote_port", "message", "ps", "txid", "statement"]),
                 prop_oneof![
                     json_string().prop_map(serde_json::Value::String),
                     any::<i64>().prop_map(serde_json::Value::from),
                     any::<f64>().prop_map(serde_json::Value::from),
                     Just(serde_json::Value::Null),
                 ]),
                0..8,
            ),
            spacing in prop::sample::select(vec!["", " ", "\t"]),
        ) {
            let body: Vec<String> = fields
                .iter()
                .map(|(key, value)| format!("\"{key}\"{spacing}:{spacing}{value}"))
                .collect();
            let line = format!("{{{}}}", body.join(&format!(",{spacing}")));
            if let Some(scanned) = scan_jsonlog(line.as_bytes()) {
                prop_assert_eq!(Some(scanned), serde(&line), "{}", line);
            }
        }

        /// Arbitrary bytes: never a different answer from serde_json.
        #[test]
        fn never_accepts_what_serde_refuses(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Some(scanned) = scan_jsonlog(&bytes) {
                prop_assert_eq!(Some(scanned), serde_json::from_slice::<JsonlogLine<'_>>(&bytes).ok());
            }
        }
    }
}
