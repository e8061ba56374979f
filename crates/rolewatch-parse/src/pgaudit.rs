//! The pgAudit record nested in a PostgreSQL log message:
//! `AUDIT: <type>,<statement id>,<substatement id>,<class>,<command>,<object type>,<object name>,<statement>,<parameters>[,<rows>]`.
//!
//! Fields are CSV: quoted (with `""` for a quote) only when they hold a comma, a quote or a
//! newline. The parameter field is a CSV list inside a CSV field. Sentinels: `<not logged>` and
//! `<previously logged>` mean "not here" (null), `<none>` means "no parameters" (empty list).

use std::borrow::Cow;

use rolewatch_event::StatementClass;

/// The prefix pgAudit puts before its record in the log message.
pub(crate) const AUDIT_PREFIX: &str = "AUDIT: ";

/// One decoded pgAudit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgAuditRecord<'a> {
    pub(crate) statement_id: u64,
    pub(crate) substatement_id: u64,
    pub(crate) class: StatementClass,
    pub(crate) command: Cow<'a, str>,
    pub(crate) object_name: Option<Cow<'a, str>>,
    /// `None` when pgAudit did not log it here (`<not logged>`, `<previously logged>`).
    pub(crate) statement: Option<Cow<'a, str>>,
    /// `None` when not logged, empty when there were none.
    pub(crate) parameters: Option<Vec<String>>,
    pub(crate) rows: Option<u64>,
}

/// Reads one CSV field starting at `text`; returns the field and the rest after it (which
/// starts with the separating comma, or is empty at the end). csvlog rows use it too.
pub(crate) fn csv_field(text: &str) -> Result<(Cow<'_, str>, &str), String> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = crate::bytes::find_byte(text.as_bytes(), b',').unwrap_or(text.len());
        let (field, rest) = text.split_at(end);
        return Ok((Cow::Borrowed(field), rest));
    };
    let bytes = quoted.as_bytes();
    let mut search_from = 0;
    let mut has_escaped_quote = false;
    loop {
        let Some(relative) = memchr::memchr(b'"', bytes.get(search_from..).unwrap_or_default()) else {
            return Err("unterminated quoted field".to_owned());
        };
        let quote = search_from + relative;
        if bytes.get(quote + 1) == Some(&b'"') {
            has_escaped_quote = true;
            search_from = quote + 2;
            continue;
        }
        let (inner, rest) = quoted.split_at(quote);
        let rest = rest.get(1..).unwrap_or_default();
        if !rest.is_empty() && !rest.starts_with(',') {
            return Err("text after the closing quote of a field".to_owned());
        }
        let field =
            if has_escaped_quote { Cow::Owned(collapse_doubled_quotes(inner)) } else { Cow::Borrowed(inner) };
        return Ok((field, rest));
    }
}

/// `a""b` -> `a"b`: what `str::replace("\"\"", "\"")` does, by `memchr` instead of a substring
/// searcher set up per field (that searcher was 3% of a csvlog parse, whose message fields
/// double the quotes of pgAudit's nested CSV).
fn collapse_doubled_quotes(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(quote) = memchr::memchr(b'"', rest.as_bytes()) {
        let (through_quote, after) = rest.split_at(quote + 1);
        collapsed.push_str(through_quote);
        rest = after.strip_prefix('"').unwrap_or(after);
    }
    collapsed.push_str(rest);
    collapsed
}

/// Reads the next field and steps over the comma after it; `Err` names the missing field.
/// For the short fields before the statement (type, ids, class, command, object) when
/// [`plain_short_fields`] cannot cut them: an unquoted one is found by a byte loop, which beats
/// `memchr`'s setup on a few bytes.
fn next_field<'a>(rest: &mut &'a str, name: &str) -> Result<Cow<'a, str>, String> {
    let bytes = rest.as_bytes();
    match bytes.first() {
        None => Err(format!("missing field {name}")),
        Some(b'"') => next_long_field(rest, name),
        Some(_) => {
            let end = bytes.iter().position(|byte| *byte == b',').unwrap_or(bytes.len());
            let (field, after) = rest.split_at_checked(end).unwrap_or((rest, ""));
            *rest = after.get(1..).unwrap_or_default();
            Ok(Cow::Borrowed(field))
        }
    }
}

/// [`next_field`] for a field that may be long (the statement): `memchr` finds its end.
fn next_long_field<'a>(rest: &mut &'a str, name: &str) -> Result<Cow<'a, str>, String> {
    if rest.is_empty() {
        return Err(format!("missing field {name}"));
    }
    let (field, after) = csv_field(rest)?;
    *rest = after.strip_prefix(',').unwrap_or(after);
    Ok(field)
}

/// A number field as `u64::from_str` reads it; up to 19 plain digits (which always fit) are
/// summed in place.
#[inline]
fn number(field: &str, name: &str) -> Result<u64, String> {
    plain_number(field)
        .map_or_else(|| field.parse::<u64>().map_err(|_| format!("{name} is not a number")), Ok)
}

/// `field` as a number when it is 1 to 19 plain digits (which always fit a `u64`): what
/// `str::parse` gives for those, without its generic setup, in one pass. `None` for anything
/// else, which the caller parses the general way.
#[inline]
pub(crate) fn plain_number(field: &str) -> Option<u64> {
    if !(1..=19).contains(&field.len()) {
        return None;
    }
    field.bytes().try_fold(0u64, |value, byte| {
        let digit = byte.wrapping_sub(b'0');
        (digit <= 9).then(|| value * 10 + u64::from(digit))
    })
}

/// `field` as `str::parse::<T>` reads it, plain digits by [`plain_number`]'s loop.
pub(crate) fn parse_number<T: std::str::FromStr + TryFrom<u64>>(field: &str) -> Option<T> {
    plain_number(field).map_or_else(|| field.parse().ok(), |value| value.try_into().ok())
}

#[inline]
fn logged(field: Cow<'_, str>) -> Option<Cow<'_, str>> {
    match field.as_ref() {
        "<not logged>" | "<previously logged>" => None,
        _ => Some(field),
    }
}

fn parameters(field: &str) -> Result<Option<Vec<String>>, String> {
    match field {
        "<not logged>" | "<previously logged>" => return Ok(None),
        "<none>" => return Ok(Some(Vec::new())),
        _ => {}
    }
    let mut values = Vec::new();
    let mut rest = field;
    loop {
        let (value, after) = csv_field(rest)?;
        values.push(value.into_owned());
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None => return Ok(Some(values)),
        }
    }
}

/// The fields before the statement, in order.
const SHORT_FIELDS: [&str; 7] =
    ["AUDIT_TYPE", "STATEMENT_ID", "SUBSTATEMENT_ID", "CLASS", "COMMAND", "OBJECT_TYPE", "OBJECT_NAME"];

/// The seven fields before the statement when none is quoted and all end in the record's first
/// 64 bytes (most records): cut at the first seven commas of one comma mask, instead of a
/// search per field. Returns them and the rest after the seventh comma.
fn plain_short_fields(record: &str) -> Option<([Cow<'_, str>; 7], &str)> {
    let head = record.as_bytes().get(..64).unwrap_or(record.as_bytes());
    let [mut commas, quotes] = crate::bytes::byte_masks(head, [b',', b'"']);
    let mut start = 0;
    let mut fields: [Cow<'_, str>; 7] = Default::default();
    for field in &mut fields {
        if commas == 0 {
            return None;
        }
        let end = commas.trailing_zeros() as usize;
        commas &= commas - 1;
        *field = Cow::Borrowed(record.get(start..end)?);
        start = end + 1;
    }
    // A quote before the seventh comma: a quoted field, read the general way.
    if quotes & ((1 << (start - 1)) - 1) != 0 {
        return None;
    }
    Some((fields, record.get(start..)?))
}

/// The seven fields before the statement, and the rest after them.
fn short_fields(record: &str) -> Result<([Cow<'_, str>; 7], &str), String> {
    if let Some(found) = plain_short_fields(record) {
        return Ok(found);
    }
    let mut rest = record;
    let mut fields: [Cow<'_, str>; 7] = Default::default();
    for (field, name) in fields.iter_mut().zip(SHORT_FIELDS) {
        *field = next_field(&mut rest, name)?;
    }
    Ok((fields, rest))
}

/// Decodes the record after the `AUDIT: ` prefix.
pub(crate) fn parse_audit_record(record: &str) -> Result<PgAuditRecord<'_>, String> {
    let (
        [audit_type, statement_id, substatement_id, class_text, command, _object_type, object_name],
        mut rest,
    ) = short_fields(record)?;
    if audit_type != "SESSION" && audit_type != "OBJECT" {
        return Err(format!("unknown audit type {:?}", audit_type.chars().take(32).collect::<String>()));
    }
    let statement_id = number(&statement_id, "STATEMENT_ID")?;
    let substatement_id = number(&substatement_id, "SUBSTATEMENT_ID")?;
    let class = class_text.parse::<StatementClass>().map_err(|error| error.to_string())?;
    let statement = next_long_field(&mut rest, "STATEMENT")?;
    // The parameter field may be the last one, and may be empty only if malformed.
    let (parameter_field, after) = csv_field(rest)?;
    let rows = match after.strip_prefix(',') {
        None => None,
        Some(rows) => Some(number(rows.trim_end(), "ROWS")?),
    };
    Ok(PgAuditRecord {
        statement_id,
        substatement_id,
        class,
        command,
        object_name: (!object_name.is_empty()).then_some(object_name),
        statement: logged(statement),
        parameters: parameters(&parameter_field)?,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_typical_record_takes_the_comma_mask_split() {
        let (fields, rest) =
            plain_short_fields("SESSION,12,1,READ,SELECT,TABLE,public.pgbench_accounts,select 1,<none>,1")
                .unwrap();
        assert_eq!(fields, ["SESSION", "12", "1", "READ", "SELECT", "TABLE", "public.pgbench_accounts"]);
        assert_eq!(rest, "select 1,<none>,1");
        assert!(plain_short_fields("SESSION,1,1,DDL,CREATE TABLE,,\"a,b\",select 1,<none>").is_none());
    }

    proptest! {
        /// Collapsing doubled quotes gives what `str::replace` gives, for any run of quotes.
        #[test]
        fn doubled_quotes_collapse_as_replace_does(text in "[a\"é,]{0,24}") {
            prop_assert_eq!(collapse_doubled_quotes(&text), text.replace("\"\"", "\""));
        }

        /// The one-pass digit loop reads what `str::parse` reads, and takes every string of 1 to
        /// 19 plain digits (the largest, 19 nines, still fits a `u64`).
        #[test]
        fn plain_number_agrees_with_parse(field in "[0-9+/:a-]{0,21}") {
            match plain_number(&field) {
                Some(value) => prop_assert_eq!(field.parse::<u64>(), Ok(value)),
                None => prop_assert!(
                    !((1..=19).contains(&field.len()) && field.bytes().all(|byte| byte.is_ascii_digit()))
                ),
            }
        }

        /// The comma-mask split of the short fields gives what the field-by-field reading gives.
        #[test]
        fn plain_short_fields_agree_with_reading_field_by_field(
            fields in prop::collection::vec(
                prop::sample::select(vec!["SESSION", "1", "", "\"", "a\"b", "public.t", "x,y", "é", "xxxxxxxxxxxxxxxxxxxx"]),
                0..10,
            ),
        ) {
            let record = fields.join(",");
            if let Some((fields, rest)) = plain_short_fields(&record) {
                let mut slow_rest = record.as_str();
                for (field, name) in fields.iter().zip(SHORT_FIELDS) {
                    prop_assert_eq!(&next_field(&mut slow_rest, name).unwrap(), field);
                }
                prop_assert_eq!(slow_rest, rest);
            }
        }
    }

    #[test]
    fn reads_unquoted_and_quoted_statements_with_rows() {
        let record =
            parse_audit_record("SESSION,2,1,READ,SELECT,TABLE,public.t1,select count(*) from t1;,<none>,1")
                .unwrap();
        assert_eq!(record.statement_id, 2);
        assert_eq!(record.class, StatementClass::Read);
        assert_eq!(record.object_name.as_deref(), Some("public.t1"));
        assert_eq!(record.statement.as_deref(), Some("select count(*) from t1;"));
        assert_eq!(record.parameters, Some(vec![]));
        assert_eq!(record.rows, Some(1));

        let record = parse_audit_record(
            "SESSION,1,1,DDL,CREATE TABLE,,,\"create table t (a int, b text default \"\"x\"\")\",<not logged>",
        )
        .unwrap();
        assert_eq!(record.statement.as_deref(), Some("create table t (a int, b text default \"x\")"));
        assert_eq!(record.object_name, None);
        assert_eq!(record.parameters, None);
        assert_eq!(record.rows, None);
    }

    #[test]
    fn reads_multi_line_statements_and_parameter_lists() {
        let record = parse_audit_record(
            "OBJECT,1,1,WRITE,INSERT,TABLE,public.test4,\"PREPARE testinsert(int, text) AS\n    INSERT INTO test4 VALUES($1, $2)\",\"1,<long param suppressed>\"",
        )
        .unwrap();
        assert_eq!(
            record.statement.as_deref(),
            Some("PREPARE testinsert(int, text) AS\n    INSERT INTO test4 VALUES($1, $2)")
        );
        assert_eq!(record.parameters, Some(vec!["1".to_owned(), "<long param suppressed>".to_owned()]));

        let record = parse_audit_record("SESSION,3,1,READ,SELECT,,,\"select $1\",\"\"\"a,b\"\",c\"").unwrap();
        assert_eq!(record.parameters, Some(vec!["a,b".to_owned(), "c".to_owned()]));
    }

    #[test]
    fn previously_logged_is_null() {
        let record = parse_audit_record(
            "OBJECT,2,1,READ,SELECT,VIEW,public.vw_test3,<previously logged>,<previously logged>",
        )
        .unwrap();
        assert_eq!(record.statement, None);
        assert_eq!(record.parameters, None);
    }

    /// The audit records of pgAudit's regression transcript (`NOTICE:  AUDIT: ...` or
    /// `WARNING:  AUDIT: ...`, quoted statements continuing on the next lines).
    fn regression_records() -> Vec<String> {
        let transcript = include_str!("../tests/data/pgaudit_regress_expected_excerpt.out");
        let mut records = Vec::new();
        let mut lines = transcript.lines();
        while let Some(line) = lines.next() {
            let Some(record) = line.split_once(":  AUDIT: ").map(|(_, record)| record) else { continue };
            let mut record = record.to_owned();
            while record.matches('"').count() % 2 == 1 {
                let Some(next) = lines.next() else { break };
                record.push('\n');
                record.push_str(next);
            }
            records.push(record);
        }
        records
    }

    #[test]
    fn reads_every_record_of_the_regression_transcript() {
        let records = regression_records();
        assert!(records.len() > 40, "{}", records.len());
        let parsed: Vec<PgAuditRecord<'_>> = records
            .iter()
            .map(|record| parse_audit_record(record).unwrap_or_else(|error| panic!("{record}: {error}")))
            .collect();
        let redacted = parsed
            .iter()
            .find(|record| record.statement.as_deref().is_some_and(|text| text.contains("<REDACTED>")));
        assert_eq!(
            redacted.and_then(|record| record.statement.as_deref()),
            Some("CREATE USER regress_user1 password <REDACTED>")
        );
        let suppressed: Vec<&Vec<String>> = parsed
            .iter()
            .filter_map(|record| record.parameters.as_ref())
            .filter(|parameters| parameters.iter().any(|value| value == "<long param suppressed>"))
            .collect();
        assert!(!suppressed.is_empty());
        let copy = parsed.iter().find(|record| record.command == "COPY").unwrap();
        assert_eq!(copy.rows, Some(0), "utility COPY logs 0 rows");
        // `",,,,,,,,,,,,,1"`: thirteen empty parameters and a 1, then the rows field.
        let trigger =
            parsed.iter().find(|record| record.command == "UPDATE" && record.rows == Some(1)).unwrap();
        let mut expected = vec![String::new(); 13];
        expected.push("1".to_owned());
        assert_eq!(trigger.parameters.as_ref(), Some(&expected));
        assert_eq!(
            trigger.statement.as_deref(),
            Some("UPDATE test2\n\t   SET id = id + 90\n\t WHERE id = new.id")
        );
        assert!(parsed.iter().any(|record| record.statement.is_none()), "<previously logged>");
    }

    #[test]
    fn malformed_records_are_errors() {
        for bad in [
            "",
            "SESSION",
            "SESSION,x,1,READ,SELECT,,,s,<none>",
            "NOPE,1,1,READ,SELECT,,,s,<none>",
            "SESSION,1,1,BOGUS,SELECT,,,s,<none>",
            "SESSION,1,1,READ,SELECT,,,\"unterminated,<none>",
            "SESSION,1,1,READ,SELECT,,,s,<none>,many",
        ] {
            assert!(parse_audit_record(bad).is_err(), "{bad:?}");
        }
    }
}
