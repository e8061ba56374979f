//! Helpers shared by the integration tests: reading a file line by line the way the binary
//! does, and comparing events whatever carried them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rolewatch_event::{AuditEvent, LogFormat, SourcePosition};
use rolewatch_parse::{ParseOutput, ParserOptions, RejectReason, try_parser_for};

/// The repository root.
pub fn repo_root() -> PathBuf {
    manifest_dir().join("../..").canonicalize().unwrap()
}

/// Parses `bytes` as `format`, one physical line at a time, with byte offsets.
pub fn parse_bytes(format: LogFormat, options: &ParserOptions, name: &str, bytes: &[u8]) -> ParseOutput {
    let mut parser = try_parser_for(format, options).unwrap();
    let mut output = ParseOutput::default();
    let mut offset = 0u64;
    let mut lines: Vec<&[u8]> = bytes.split(|byte| *byte == b'\n').collect();
    if lines.last() == Some(&&b""[..]) {
        lines.pop();
    }
    for (index, line) in lines.into_iter().enumerate() {
        let position = SourcePosition::File { file: name.into(), line: index as u64 + 1, offset };
        offset += line.len() as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        parser.parse_line(line, &position, &mut output);
    }
    parser.finish(&mut output);
    output
}

/// Parses the file at `path`.
pub fn parse_file(format: LogFormat, options: &ParserOptions, path: &Path) -> ParseOutput {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    parse_bytes(format, options, &path.display().to_string(), &bytes)
}

/// The event without what differs between carriers of the same record: the format and where
/// the record was read.
pub fn carrier_neutral(event: &AuditEvent) -> AuditEvent {
    let mut event = event.clone();
    event.format = LogFormat::PgauditJsonlog;
    event.source_file = None;
    event.source_line = None;
    event.source_offset = None;
    event
}

/// Asserts two carriers of the same log gave the same events, in the same order within each
/// session, showing the first difference. The order between sessions may differ: a backend
/// hands the logging collector one copy of a message per carrier, each its own write to the
/// collector's pipe, so two backends logging at the same moment can interleave differently in
/// each file.
pub fn assert_same_events(left_name: &str, left: &[AuditEvent], right_name: &str, right: &[AuditEvent]) {
    let by_session = |events: &[AuditEvent]| {
        let mut events = events.to_vec();
        // Stable: each session's events keep their order.
        events.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        events
    };
    let (left, right) = (by_session(left), by_session(right));
    for (index, (a, b)) in left.iter().zip(&right).enumerate() {
        assert_eq!(a, b, "event {index} (by session) differs between {left_name} and {right_name}");
    }
    assert_eq!(left.len(), right.len(), "{left_name} and {right_name} have different event counts");
}

/// `KEY='value'` lines of a capture.env.
pub fn capture_setting(env_file: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(env_file).ok()?;
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix('=')?;
        Some(value.trim_matches('\'').to_owned())
    })
}

/// Every line is accounted for somewhere, and rejected records keep their raw bytes.
pub fn check_output(input: &[u8], output: &ParseOutput) {
    let has_content = input.split(|byte| *byte == b'\n').any(|line| !line.is_empty());
    let accounted = (output.events.len() + output.rejected.len()) as u64 + output.skipped_total();
    if has_content {
        assert!(accounted > 0, "input produced nothing at all");
    }
    // Dead letters keep the exact bytes they were read as (lines without their `\r\n`).
    let lines: Vec<&[u8]> =
        input.split(|byte| *byte == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line)).collect();
    let read_as = lines.join(&b'\n');
    for rejected in &output.rejected {
        let found = memchr::memmem::find(&read_as, &rejected.raw).is_some();
        assert!(found || rejected.reason == RejectReason::TooLarge, "{rejected} is not in the input");
    }
}

/// The package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for test
/// processes): a binary compiled in another checkout that shares the target directory must
/// not read that checkout's files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}
