//! Evidence statements as they leave rolewatch: literals redacted, whitespace collapsed,
//! truncated.
//!
//! A statement can carry what it operates on: passwords (`ALTER ROLE x PASSWORD 'secret'`),
//! personal data in `WHERE` clauses, card numbers. A message needs its shape, not its values, so
//! string literals become `'?'` and numbers become `?`, the way `pg_stat_statements` normalizes
//! queries. Identifiers are kept: quoted identifiers (`"Name"` in PostgreSQL, `` `name` `` in
//! MySQL) stay readable, except that MySQL and MariaDB also accept `"..."` as a string, so for
//! those sources double-quoted text is redacted too.

use rolewatch_event::Source;

/// How many characters of a statement a message shows.
pub(crate) const EVIDENCE_MAX_CHARS: usize = 300;

/// Redacts literals, collapses whitespace and truncates to `max_chars` characters (plus `…`).
pub(crate) fn redact_statement(statement: &str, source: Source, max_chars: usize) -> String {
    let double_quote_is_string = matches!(source, Source::Mariadb | Source::Mysql);
    let mut output = String::with_capacity(statement.len().min(max_chars + 8));
    let mut chars = statement.chars().peekable();
    let mut previous: Option<char> = None;
    let mut output_chars = 0_usize;

    while let Some(current) = chars.next() {
        if output_chars > max_chars {
            break;
        }
        match current {
            '\'' => {
                skip_quoted(&mut chars, '\'');
                push(&mut output, &mut output_chars, "'?'");
            }
            '"' if double_quote_is_string => {
                skip_quoted(&mut chars, '"');
                push(&mut output, &mut output_chars, "'?'");
            }
            '"' | '`' => {
                // A quoted identifier: copied as is, so digits inside it are not redacted.
                let mut identifier = String::from(current);
                for inner in chars.by_ref() {
                    identifier.push(inner);
                    if inner == current {
                        break;
                    }
                }
                push(&mut output, &mut output_chars, &identifier);
            }
            '$' if starts_dollar_quote(&chars) => {
                let mut tag = String::from('$');
                for inner in chars.by_ref() {
                    tag.push(inner);
                    if inner == '$' {
                        break;
                    }
                }
                skip_until(&mut chars, &tag);
                push(&mut output, &mut output_chars, "'?'");
            }
            digit if digit.is_ascii_digit() && !previous.is_some_and(is_identifier_char) => {
                let mut last = digit;
                while let Some(&next) = chars.peek() {
                    let exponent_sign = (next == '+' || next == '-') && (last == 'e' || last == 'E');
                    if next.is_ascii_alphanumeric() || next == '.' || next == '_' || exponent_sign {
                        last = next;
                        chars.next();
                    } else {
                        break;
                    }
                }
                push(&mut output, &mut output_chars, "?");
            }
            space if space.is_whitespace() => {
                if previous.is_some_and(|previous| !previous.is_whitespace()) {
                    push(&mut output, &mut output_chars, " ");
                }
            }
            other => {
                let mut buffer = [0_u8; 4];
                push(&mut output, &mut output_chars, other.encode_utf8(&mut buffer));
            }
        }
        previous = Some(current);
    }

    truncate_chars(output.trim_end(), max_chars)
}

fn push(output: &mut String, output_chars: &mut usize, text: &str) {
    output.push_str(text);
    *output_chars += text.chars().count();
}

fn is_identifier_char(character: char) -> bool {
    character.is_alphanumeric() || character == '_' || character == '$'
}

/// Skips a quoted literal whose opening quote was consumed: doubled quotes and backslash
/// escapes stay inside it; an unterminated literal runs to the end.
fn skip_quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, quote: char) {
    while let Some(current) = chars.next() {
        if current == '\\' {
            chars.next();
        } else if current == quote {
            if chars.peek() == Some(&quote) {
                chars.next();
            } else {
                return;
            }
        }
    }
}

/// `$tag$` or `$$` starts a PostgreSQL dollar-quoted string; `$1` is a parameter.
fn starts_dollar_quote(chars: &std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    let mut lookahead = chars.clone();
    match lookahead.next() {
        Some('$') => true,
        Some(first) if first.is_alphabetic() || first == '_' => {
            lookahead.find(|next| !(next.is_alphanumeric() || *next == '_')) == Some('$')
        }
        _ => false,
    }
}

fn skip_until(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, delimiter: &str) {
    let mut window = String::new();
    for current in chars.by_ref() {
        window.push(current);
        if window.ends_with(delimiter) {
            return;
        }
    }
}

/// At most `max_chars` characters, with `…` appended when something was cut.
pub(crate) fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or(text)),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(statement: &str) -> String {
        redact_statement(statement, Source::Postgres, EVIDENCE_MAX_CHARS)
    }

    #[test]
    fn string_and_numeric_literals_are_redacted() {
        assert_eq!(
            redact("SELECT * FROM users WHERE email = 'a@b.c' AND id > 42 LIMIT 1e3"),
            "SELECT * FROM users WHERE email = '?' AND id > ? LIMIT ?"
        );
        assert_eq!(redact("ALTER ROLE x PASSWORD 'it''s \\' secret'"), "ALTER ROLE x PASSWORD '?'");
        assert_eq!(redact("SELECT $$body$$, $f$x$f$, $1"), "SELECT '?', '?', $1");
        assert_eq!(redact("SELECT -3.5e-2, 0xFF, x'00'"), "SELECT -?, ?, x'?'");
    }

    #[test]
    fn identifiers_survive() {
        assert_eq!(
            redact("SELECT col1 FROM \"Table2\" t3 WHERE t3.a = 1"),
            "SELECT col1 FROM \"Table2\" t3 WHERE t3.a = ?"
        );
        assert_eq!(
            redact_statement("SELECT `c1` FROM t WHERE n = \"secret\"", Source::Mysql, 300),
            "SELECT `c1` FROM t WHERE n = '?'"
        );
    }

    #[test]
    fn whitespace_collapses_and_long_statements_are_truncated() {
        assert_eq!(redact("SELECT\n  a,\n\tb\nFROM t  "), "SELECT a, b FROM t");
        let long = format!("SELECT {} FROM t", "column_name, ".repeat(100));
        let redacted = redact(&long);
        assert_eq!(redacted.chars().count(), EVIDENCE_MAX_CHARS + 1);
        assert!(redacted.ends_with('…'));
    }

    #[test]
    fn an_unterminated_literal_is_redacted_to_the_end() {
        assert_eq!(redact("SELECT 'never closed CANARY"), "SELECT '?'");
    }
}
