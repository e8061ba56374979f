//! What every fuzz target does: feed the input to one format's parser line by line, as the
//! binary does, and finish. A panic is the finding.

use rolewatch_event::{LogFormat, SourcePosition};
use rolewatch_parse::{ParseOutput, ParserOptions, parser_for};

/// Parses `data` as `format`, with options that exercise every path (a prefix with `%q` and
/// free-text escapes, a time zone for abbreviations).
pub fn parse_input(format: LogFormat, data: &[u8]) {
    let options = ParserOptions {
        log_line_prefix: Some("%m [%p] %q%u@%d %r %a %c ".to_owned()),
        timezone: Some("Europe/Berlin".to_owned()),
        ..ParserOptions::default()
    };
    let mut parser = parser_for(format, &options);
    let mut output = ParseOutput::default();
    let mut position = SourcePosition::File { file: "fuzz".to_owned(), line: 0, offset: 0 };
    let mut next_offset = 0u64;
    for (index, line) in data.split(|byte| *byte == b'\n').enumerate() {
        if let SourcePosition::File { line: line_number, offset, .. } = &mut position {
            *line_number = index as u64 + 1;
            *offset = next_offset;
        }
        next_offset += line.len() as u64 + 1;
        parser.parse_line(line, &position, &mut output);
    }
    parser.finish(&mut output);
}
