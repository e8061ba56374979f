//! A fast path for the one shape of JSON that `jsonlog.c` writes: a flat object on one line,
//! string values escaped by `escape_json`, numbers, no nesting.
//!
//! serde_json spends most of its time on keys rolewatch never reads (`ps`, `vxid`,
//! `backend_type`, ...). This scanner validates UTF-8 once for the line, skips unknown values with
//! `memchr`, and unescapes only the strings it keeps. Anything it is not sure of (nested values,
//! a duplicate key, a number that does not fit, invalid escapes, a missing brace) makes it give
//! up with `None`, and the caller parses the line with serde_json, which then decides and words
//! the error. A property test checks that both agree wherever the scanner answers.

use std::borrow::Cow;

use crate::jsonlog::JsonlogLine;

struct Scanner<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Scanner<'a> {
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
        let mut end = quote_or_backslash(bytes, start)?;
        if bytes.get(end) == Some(&b'"') {
            self.position = end + 1;
            return run(start, end).map(Cow::Borrowed);
        }
        let mut unescaped = String::new();
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
            end = quote_or_backslash(bytes, run_start)?;
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
        let length = self
            .text
            .as_bytes()
            .get(start..)?
            .iter()
            .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.'))
            .count();
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

/// Whether `bytes` holds a byte below 0x20, 64 bytes at a time without early exits inside a
/// chunk, which the compiler turns into vector instructions.
fn has_control_character(bytes: &[u8]) -> bool {
    bytes.chunks(64).any(|chunk| chunk.iter().fold(false, |found, byte| found | (*byte < 0x20)))
}

/// Reads a jsonlog line, or `None` when serde_json should decide.
pub(crate) fn scan_jsonlog(line: &[u8]) -> Option<JsonlogLine<'_>> {
    // jsonlog.c writes no raw control characters, not even between tokens: a line with one is
    // left to serde_json.
    if has_control_character(line) {
        return None;
    }
    let text = crate::bytes::utf8(line).ok()?;
    let mut scanner = Scanner { text, position: 0 };
    scanner.expect(b'{')?;
    let mut parsed = JsonlogLine::default();
    let mut seen = 0u16;
    scanner.skip_whitespace();
    if scanner.peek() == Some(b'}') {
        scanner.position += 1;
    } else {
        loop {
            scanner.expect(b'"')?;
            let key = scanner.string()?;
            scanner.expect(b':')?;
            scanner.skip_whitespace();
            let value = match scanner.peek()? {
                b'"' => {
                    scanner.position += 1;
                    Value::Text(scanner.string()?)
                }
                b'{' | b'[' => return None,
                _ => Value::Scalar(scanner.scalar()?),
            };
            let index = match key.as_ref() {
                "timestamp" => text_field(&mut parsed.timestamp, value).map(|()| 0),
                "user" => text_field(&mut parsed.user, value).map(|()| 1),
                "dbname" => text_field(&mut parsed.dbname, value).map(|()| 2),
                "pid" => number_field(&mut parsed.pid, value).map(|()| 3),
                "remote_host" => text_field(&mut parsed.remote_host, value).map(|()| 4),
                "remote_port" => number_field(&mut parsed.remote_port, value).map(|()| 5),
                "session_id" => text_field(&mut parsed.session_id, value).map(|()| 6),
                "error_severity" => text_field(&mut parsed.error_severity, value).map(|()| 7),
                "state_code" => text_field(&mut parsed.state_code, value).map(|()| 8),
                "message" => text_field(&mut parsed.message, value).map(|()| 9),
                "statement" => text_field(&mut parsed.statement, value).map(|()| 10),
                "application_name" => text_field(&mut parsed.application_name, value).map(|()| 11),
                _ => Some(12),
            }?;
            if index < 12 {
                if seen & (1 << index) != 0 {
                    return None;
                }
                seen |= 1 << index;
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
    (scanner.position == text.len()).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn serde(line: &str) -> Option<JsonlogLine<'_>> {
        serde_json::from_str(line).ok()
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
        for gives_up in [
            r#"{"pid":"7"}"#,
            r#"{"pid":7,"pid":8}"#,
            r#"{"remote_port":70000}"#,
            r#"{"x":{"nested":1}}"#,
            r#"{"message":"bad \q escape"}"#,
            r#"{"message":"open"#,
            r#"{"message":"x"} trailing"#,
            r#"{"pid":01}"#,
            r#"{"ps":1.}"#,
            "{\"message\":\"raw\ncontrol\"}",
        ] {
            assert!(scan_jsonlog(gives_up.as_bytes()).is_none(), "{gives_up}");
        }
    }

    /// Strings with escapes at every offset from a 64-byte block's edge (and from the scanner's
    /// eight-byte words), escaped backslashes before quotes included: the scanner reads what
    /// serde_json reads.
    #[test]
    fn escapes_at_every_offset() {
        for shift in 0..70 {
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
