//! Reading log files (or stdin) into parsed chunks.
//!
//! A [`SourceReader`] reads one input line by line, feeds each line with its position (file,
//! 1-based line, byte offset of the line's start) to the format's parser, and hands out the
//! result in [`Chunk`]s of bounded size, so memory stays flat however large the input. Chunk
//! boundaries depend only on the input and the chunk size, so a replay of the same file yields
//! the same chunks, hence the same lake file names.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rolewatch_event::{AuditEvent, LogFormat, SourcePosition};
use rolewatch_parse::{ParseOutput, ParserOptions, RecordParser, RejectReason, Rejected, SkipReason};

/// How many leading bytes are kept: they identify the input's stream in the lake (see
/// `rolewatch_lake::StreamId`) and tell its format.
pub const PREFIX_BYTES: u64 = rolewatch_lake::FINGERPRINT_BYTES as u64;

/// What the command line names as an input: a path, or `-` for stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPath {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl InputPath {
    /// `-` is stdin, anything else a file.
    pub fn from_arg(argument: &Path) -> Self {
        if argument == Path::new("-") { Self::Stdin } else { Self::File(argument.to_owned()) }
    }

    /// The name positions and messages use.
    pub fn display_name(&self) -> String {
        match self {
            Self::Stdin => "<stdin>".to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }
}

/// One bounded piece of a parsed input.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    /// Events, in the order the parser completed them.
    pub events: Vec<AuditEvent>,
    /// Records the parser could not read.
    pub rejected: Vec<Rejected>,
    /// The part of the input the chunk accounts for: every record in it is one of the events,
    /// one of the rejected records, or skipped chatter. This is what becomes durable once the
    /// chunk is stored.
    pub span: Span,
}

/// A contiguous part of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// Bytes `start..end` of a file (end exclusive).
    Bytes {
        /// The file's name as read.
        path: String,
        /// The first byte.
        start: u64,
        /// One past the last byte: where reading resumes.
        end: u64,
    },
    /// Offsets `first..=last` of a Kafka topic partition.
    Offsets {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The first offset.
        first: i64,
        /// The last offset (inclusive).
        last: i64,
    },
}

impl Default for Span {
    fn default() -> Self {
        Self::Bytes { path: String::new(), start: 0, end: 0 }
    }
}

impl Span {
    /// Whether the span covers nothing.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Bytes { start, end, .. } => start >= end,
            Self::Offsets { first, last, .. } => first > last,
        }
    }
}

/// Counts for one input, for the summary a command prints.
#[derive(Debug, Clone, Default)]
pub struct InputCounts {
    /// Physical lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Events made.
    pub events: u64,
    /// Rejected records, per reason.
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Skipped lines (server chatter that is not an audit record), per reason.
    pub skipped: BTreeMap<SkipReason, u64>,
}

impl InputCounts {
    /// Rejected records of every reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Skipped lines of every reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Adds another input's counts to these.
    pub fn add(&mut self, other: &InputCounts) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.events += other.events;
        for (reason, count) in &other.rejected {
            *self.rejected.entry(*reason).or_default() += count;
        }
        for (reason, count) in &other.skipped {
            *self.skipped.entry(*reason).or_default() += count;
        }
    }
}

/// The room a full chunk's event vector gets: `chunk_events`, a sixteenth more and what a
/// parser may hold back, because the parser's flush at the cut (up to
/// [`rolewatch_parse::MAX_HELD_BACK_EVENTS`] MariaDB or MySQL records) and a multi-line record
/// add events past the size that cut the chunk. Without the headroom those events made the vector double: 26 MB
/// copied into fresh pages at every cut, a fifth of a Kafka run's page faults.
pub fn chunk_room(chunk_events: usize) -> usize {
    chunk_events.saturating_add(chunk_events / 16).saturating_add(rolewatch_parse::MAX_HELD_BACK_EVENTS)
}

/// The parse output for a source's first chunk, its event vector with a full chunk's room
/// ([`chunk_room`]) from the start: grown by doubling it was copied over and over, and could
/// end with room for exactly `chunk_events`, too little for [`SpareEvents`] to reuse for a later
/// full chunk. Its pages are only touched as events fill it.
pub fn first_chunk_output(chunk_events: usize) -> ParseOutput {
    ParseOutput { events: Vec::with_capacity(chunk_room(chunk_events)), ..ParseOutput::default() }
}

/// A stored chunk's event vector, emptied and kept for a later chunk: filling it again costs no
/// fresh pages, where a new vector of 65,536 events was faulted in for every chunk.
#[derive(Debug, Default)]
pub struct SpareEvents(Vec<AuditEvent>);

impl SpareEvents {
    /// Keeps `events`' memory if it is more than the vector kept already.
    pub fn keep(&mut self, mut events: Vec<AuditEvent>) {
        if events.capacity() > self.0.capacity() {
            events.clear();
            self.0 = events;
        }
    }

    /// The vector for the chunk after one of `filled` events: the kept one if it is large
    /// enough, else a new one as large as that chunk, with [`chunk_room`] if it was full
    /// (`chunk_events`), so that a busy source's vector is not grown (and copied) step by step.
    pub fn take(&mut self, filled: usize, chunk_events: usize) -> Vec<AuditEvent> {
        let room = if filled >= chunk_events { chunk_room(chunk_events) } else { filled };
        if self.0.capacity() >= room { std::mem::take(&mut self.0) } else { Vec::with_capacity(room) }
    }
}

/// Feeds physical lines to a parser with their positions, and cuts its output into chunks.
/// Shared by the one-shot [`SourceReader`] and the file tailer of `rolewatch run`.
pub struct LineFeeder {
    /// Shared by the position of every line.
    name: Arc<str>,
    parser: Box<dyn RecordParser>,
    output: ParseOutput,
    chunk_events: usize,
    line_number: u64,
    offset: u64,
    chunk_start: u64,
    counts: InputCounts,
    /// A taken chunk's event vector, handed back by [`LineFeeder::recycle`].
    spare: SpareEvents,
    /// The bytes of a chunk declared in the lake by a run that did not commit it (see
    /// [`LineFeeder::cut_as_declared`]).
    declared: Option<Range<u64>>,
    /// The position of the line being parsed, updated in place: a new one per line cloned the
    /// shared name, two atomic operations a line.
    position: SourcePosition,
}

impl LineFeeder {
    /// A feeder for the input called `name` (in positions), starting at its first byte.
    pub fn new(name: String, parser: Box<dyn RecordParser>, chunk_events: usize) -> Self {
        let name: Arc<str> = Arc::from(name);
        Self {
            position: SourcePosition::File { file: Arc::clone(&name), line: 0, offset: 0 },
            name,
            parser,
            output: first_chunk_output(chunk_events.max(1)),
            chunk_events: chunk_events.max(1),
            line_number: 0,
            offset: 0,
            chunk_start: 0,
            counts: InputCounts::default(),
            spare: SpareEvents::default(),
            declared: None,
        }
    }

    /// Cuts the chunk `declared` exactly as a run that did not commit it did (its files may be
    /// in the lake, unlisted): a chunk ends where it starts, and the next one at its end, full
    /// or not, and no flush cuts inside it ([`LineFeeder::waits_for_declared_end`]). The input
    /// is read from its start again, so what comes before the declared chunk is cut as usual
    /// (it is durable: skipped).
    pub fn cut_as_declared(&mut self, declared: Range<u64>) {
        self.declared =
            (declared.start >= self.chunk_start && declared.start < declared.end).then_some(declared);
    }

    /// Whether the current chunk is a declared one whose end is not read yet: a flush (by age,
    /// at shutdown) must not cut it elsewhere.
    pub fn waits_for_declared_end(&self) -> bool {
        self.declared
            .as_ref()
            .is_some_and(|declared| self.chunk_start == declared.start && self.offset < declared.end)
    }

    /// Whether the current position is where a declared chunk starts or ends.
    fn at_declared_cut(&self) -> bool {
        self.declared.as_ref().is_some_and(|declared| {
            (self.chunk_start < declared.start && self.offset == declared.start)
                || (self.chunk_start == declared.start && self.offset == declared.end)
        })
    }

    /// Checks the position against the declared chunk after a line: `Some(cut)` when it
    /// decides whether to cut now, `None` to cut by size as usual. A declaration whose bounds
    /// are not line ends of this input (the file changed) is dropped. Out of line: only a
    /// restart after a crash has a declared chunk, and `feed` runs for every line.
    #[cold]
    #[inline(never)]
    fn declared_cut(&mut self) -> Option<bool> {
        let declared = self.declared.as_ref()?;
        if self.at_declared_cut() {
            return Some(true);
        }
        if self.chunk_start < declared.start && self.offset < declared.start {
            return None;
        }
        if self.chunk_start == declared.start && self.offset < declared.end {
            return Some(false);
        }
        tracing::warn!(input = %self.name, ?declared, offset = self.offset,
            "the chunk declared before the last stop does not end at a line of this input; cutting as usual");
        self.declared = None;
        None
    }

    /// Hands back a chunk this feeder cut, once it is stored: its event vector is reused.
    pub fn recycle(&mut self, chunk: Chunk) {
        self.spare.keep(chunk.events);
    }

    /// Parses one physical line, terminator included (a final line may lack it). Returns true
    /// when a chunk is full and should be taken (with [`LineFeeder::cut_full_chunk`]), or a
    /// declared chunk starts or ends here.
    pub fn feed(&mut self, raw_line: &[u8]) -> bool {
        self.line_number += 1;
        if let SourcePosition::File { line, offset, .. } = &mut self.position {
            (*line, *offset) = (self.line_number, self.offset);
        }
        self.offset += raw_line.len() as u64;
        self.counts.lines += 1;
        self.counts.bytes += raw_line.len() as u64;
        let content = trim_line_end(raw_line);
        if !content.is_empty() {
            self.parser.parse_line(content, &self.position, &mut self.output);
        }
        if self.declared.is_some()
            && let Some(cut) = self.declared_cut()
        {
            return cut;
        }
        self.output.events.len() >= self.chunk_events
    }

    /// Whether anything was read since the last cut.
    pub fn has_uncut_input(&self) -> bool {
        self.offset > self.chunk_start
    }

    /// Cuts a chunk at the current position: the parser emits what it holds back (so that the
    /// chunk accounts for every byte of its span), and everything it made since the last cut
    /// is taken and counted.
    pub fn cut_chunk(&mut self) -> Chunk {
        self.parser.finish(&mut self.output);
        self.take_chunk(self.offset)
    }

    /// Cuts a full chunk while more input follows ([`LineFeeder::feed`] said so): like
    /// [`LineFeeder::cut_chunk`], except that a record the parser still has open (a stderr
    /// `ERROR` whose `STATEMENT` line is next, a statement with continuation lines to come)
    /// goes with the next chunk, which starts at that record's first line.
    pub fn cut_full_chunk(&mut self) -> Chunk {
        if self.at_declared_cut() {
            // Cut as the declaring run did: the parser completes what it holds.
            return self.cut_chunk();
        }
        let kept = self.parser.cut(&mut self.output);
        let end = match kept {
            None => self.offset,
            Some(SourcePosition::File { offset, .. })
                if offset > self.chunk_start && offset <= self.offset =>
            {
                offset
            }
            // Nothing to cut before the open record: it is completed as at the end.
            Some(_) => {
                self.parser.finish(&mut self.output);
                self.offset
            }
        };
        self.take_chunk(end)
    }

    /// Takes everything made since the last cut as the chunk of bytes up to `end`.
    fn take_chunk(&mut self, end: u64) -> Chunk {
        let span = Span::Bytes { path: self.name.to_string(), start: self.chunk_start, end };
        self.chunk_start = end;
        if self.declared.as_ref().is_some_and(|declared| end >= declared.end) {
            self.declared = None;
        }
        // The next chunk's events get their room now: growing a vector of 65,536 events by
        // doubling copied it over and over into fresh pages (page faults were a fifth of an
        // ingest's time).
        let next = self.spare.take(self.output.events.len(), self.chunk_events);
        let chunk = Chunk {
            events: std::mem::replace(&mut self.output.events, next),
            rejected: std::mem::take(&mut self.output.rejected),
            span,
        };
        self.counts.events += chunk.events.len() as u64;
        for rejected in &chunk.rejected {
            *self.counts.rejected.entry(rejected.reason).or_default() += 1;
        }
        for (reason, count) in std::mem::take(&mut self.output.skipped) {
            *self.counts.skipped.entry(reason).or_default() += count;
        }
        chunk
    }

    /// The input's name in messages and positions.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The byte offset of the next line.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The counts so far.
    pub fn counts(&self) -> &InputCounts {
        &self.counts
    }

    /// Takes the counts so far, leaving zeros (for metrics counted per poll).
    pub fn take_counts(&mut self) -> InputCounts {
        std::mem::take(&mut self.counts)
    }
}

/// The bytes that identify an input's stream in the lake: its first line (without the
/// terminator), at most [`PREFIX_BYTES`]. A log file's first line carries a timestamp and a
/// process id, and stays the same as the file grows or is renamed by rotation, so a file keeps
/// its identity whether it is ingested whole, tailed, or ingested again after rotation.
pub fn stream_identity(prefix: &[u8]) -> &[u8] {
    let first_line = prefix.split(|byte| *byte == b'\n').next().unwrap_or(prefix);
    trim_line_end(first_line)
}

/// Chooses the format: the given one, or the one sniffed from the input's first bytes.
pub fn choose_format(name: &str, format: Option<LogFormat>, prefix: &[u8]) -> anyhow::Result<LogFormat> {
    let format = match format {
        Some(format) => format,
        None => match sniff_format(prefix) {
            Some(format) => {
                tracing::info!(input = %name, %format, "format sniffed from the first lines");
                format
            }
            None => bail!("cannot tell the log format of {name} from its first lines; pass --format"),
        },
    };
    if !rolewatch_parse::is_supported(format) {
        bail!("format {format} is not supported by this build (input {name})");
    }
    Ok(format)
}

/// The parser for an input: bad options (an unknown zone, a prefix without a time) are an
/// error now, naming the input. A stderr log without a given `log_line_prefix` gets the one
/// its first lines match, if any.
pub fn make_parser(
    name: &str,
    format: LogFormat,
    options: &ParserOptions,
    prefix: &[u8],
) -> anyhow::Result<Box<dyn RecordParser>> {
    let mut options = options.clone();
    if format == LogFormat::PgauditStderr && options.log_line_prefix.is_none() {
        let lines: Vec<&[u8]> = prefix.split(|byte| *byte == b'\n').collect();
        if let Some(sniffed) = rolewatch_parse::sniff_log_line_prefix(&lines) {
            tracing::info!(input = %name, log_line_prefix = %sniffed, "log_line_prefix sniffed from the first lines");
            options.log_line_prefix = Some(sniffed.to_owned());
        }
    }
    rolewatch_parse::try_parser_for(format, &options)
        .with_context(|| format!("cannot read {name} as {format}"))
}

/// How many bytes one read asks for: large enough that a read costs little per line.
const READ_BLOCK: usize = 1 << 20;

/// Splits an input into physical lines without copying them: a block is read into one reused
/// buffer and lines are handed out as slices of it. A line longer than the buffer grows it.
/// Shared by the one-shot [`SourceReader`] (the end of the input ends its last line) and the
/// file tailer (a last line without its newline waits for it).
pub struct LineSplitter<R> {
    reader: R,
    buffer: Vec<u8>,
    /// The unconsumed bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> LineSplitter<R> {
    /// Splits `first` (bytes already read) and then what `reader` gives.
    pub fn new(reader: R, first: Vec<u8>) -> Self {
        let end = first.len();
        let mut buffer = first;
        buffer.resize(end.max(READ_BLOCK), 0);
        Self { reader, buffer, start: 0, end, eof: false }
    }

    /// The next line, terminator included; at the end of the input, what is left is the last
    /// line even without a terminator. `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.next(true)
    }

    /// The next complete line, terminator included; `None` when the input has no further
    /// newline for now. The bytes after the last newline stay (see [`Self::pending`]) and the
    /// next call reads on from there: for a file that is still being written.
    pub fn next_complete_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.next(false)
    }

    /// Bytes read but not handed out yet (a line still waiting for its newline).
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    fn next(&mut self, end_ends_line: bool) -> io::Result<Option<&[u8]>> {
        let mut searched = self.start;
        loop {
            let unread = self.buffer.get(searched..self.end).unwrap_or_default();
            if let Some(at) = memchr::memchr(b'\n', unread) {
                let line_end = searched + at + 1;
                let line = self.buffer.get(self.start..line_end).unwrap_or_default();
                self.start = line_end;
                return Ok(Some(line));
            }
            searched = self.end;
            if self.eof {
                if !end_ends_line {
                    // The input may grow: read again on the next call.
                    self.eof = false;
                    return Ok(None);
                }
                if self.start == self.end {
                    return Ok(None);
                }
                let line = self.buffer.get(self.start..self.end).unwrap_or_default();
                self.start = self.end;
                return Ok(Some(line));
            }
            // Keep the partial line at the front and read more behind it.
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                searched -= self.start;
                self.end -= self.start;
                self.start = 0;
            }
            if self.buffer.len() - self.end < READ_BLOCK / 2 {
                let grown = self.buffer.len() + READ_BLOCK;
                self.buffer.resize(grown, 0);
            }
            let free = self.buffer.get_mut(self.end..).unwrap_or_default();
            match self.reader.read(free) {
                Ok(0) => self.eof = true,
                Ok(read) => self.end += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}

/// Reads and parses one input to its end.
pub struct SourceReader {
    lines: LineSplitter<Box<dyn Read>>,
    prefix: Vec<u8>,
    format: LogFormat,
    feeder: LineFeeder,
    finished: bool,
}

impl SourceReader {
    /// Opens `input`. Without a `format`, the format is sniffed from the first lines; an input
    /// whose format cannot be told is an error that says to pass `--format`.
    pub fn open(
        input: &InputPath,
        format: Option<LogFormat>,
        options: &ParserOptions,
        chunk_events: usize,
    ) -> anyhow::Result<SourceReader> {
        let name = input.display_name();
        let mut raw: Box<dyn Read> = match input {
            InputPath::Stdin => Box::new(io::stdin().lock()),
            InputPath::File(path) => {
                Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
            }
        };
        let mut prefix = Vec::new();
        raw.by_ref()
            .take(PREFIX_BYTES)
            .read_to_end(&mut prefix)
            .with_context(|| format!("cannot read {name}"))?;
        let format = choose_format(&name, format, &prefix)?;
        let parser = make_parser(&name, format, options, &prefix)?;
        let lines = LineSplitter::new(raw, prefix.clone());
        let feeder = LineFeeder::new(name, parser, chunk_events);
        Ok(SourceReader { lines, prefix, format, feeder, finished: false })
    }

    /// The input's name in messages and positions.
    pub fn name(&self) -> &str {
        self.feeder.name()
    }

    /// What identifies the input's stream in the lake (see [`stream_identity`]).
    pub fn identity(&self) -> &[u8] {
        stream_identity(&self.prefix)
    }

    /// The format being parsed.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// The counts so far (complete once [`SourceReader::next_chunk`] returned `None`).
    pub fn counts(&self) -> &InputCounts {
        self.feeder.counts()
    }

    /// Cuts the chunk of bytes `declared` exactly there (see [`LineFeeder::cut_as_declared`]).
    pub fn cut_as_declared(&mut self, declared: Range<u64>) {
        self.feeder.cut_as_declared(declared);
    }

    /// Hands back a chunk from [`SourceReader::next_chunk`] once it is stored, so that its
    /// memory is reused for the next one.
    pub fn recycle(&mut self, chunk: Chunk) {
        self.feeder.recycle(chunk);
    }

    /// The next chunk: up to the chunk size of events, with the rejections met on the way.
    /// `None` once the input is exhausted and the parser flushed.
    pub fn next_chunk(&mut self) -> anyhow::Result<Option<Chunk>> {
        if self.finished {
            return Ok(None);
        }
        loop {
            let line = self.lines.next_line().with_context(|| {
                format!("cannot read {} at byte {}", self.feeder.name(), self.feeder.offset())
            })?;
            let Some(line) = line else {
                self.finished = true;
                return Ok(Some(self.feeder.cut_chunk()));
            };
            if self.feeder.feed(line) {
                return Ok(Some(self.feeder.cut_full_chunk()));
            }
        }
    }
}

/// A line without its terminator (`\n` or `\r\n`); file and Kafka sources read lines alike.
pub(crate) fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Tells the format from the first bytes of an input, or `None` when no format fits.
fn sniff_format(prefix: &[u8]) -> Option<LogFormat> {
    let lines: Vec<&[u8]> = prefix.split(|byte| *byte == b'\n').map(trim_line_end).collect();
    // The last piece may be a line cut at the prefix's end: only whole lines count.
    let whole = if prefix.ends_with(b"\n") { lines.len() } else { lines.len().saturating_sub(1).max(1) };
    rolewatch_parse::sniff_format(lines.get(..whole).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write_temp(content: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content).unwrap();
        file
    }

    /// A pgAudit jsonlog line for statement `statement_id` of one session.
    fn audit_line(statement_id: u32) -> String {
        format!(
            r#"{{"timestamp":"2026-11-26 10:00:00.123 UTC","user":"app_reader","dbname":"shop","pid":7,"session_id":"6565.7","error_severity":"LOG","message":"AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,public.orders,SELECT * FROM orders,<none>,20000"}}"#
        )
    }

    #[test]
    fn positions_are_line_numbers_and_byte_offsets() {
        let content = format!("{}\r\nnot json\n{}\n", audit_line(1), audit_line(2));
        let file = write_temp(content.as_bytes());
        let input = InputPath::File(file.path().to_owned());
        let mut reader = SourceReader::open(&input, None, &ParserOptions::default(), 100).unwrap();
        assert_eq!(reader.format(), LogFormat::PgauditJsonlog);
        let chunk = reader.next_chunk().unwrap().unwrap();
        assert_eq!(chunk.events.len(), 2);
        assert_eq!(chunk.rejected.len(), 1);
        let expected_offset = audit_line(1).len() as u64 + 2;
        assert_eq!(
            chunk.rejected[0].position,
            SourcePosition::File { file: input.display_name().into(), line: 2, offset: expected_offset }
        );
        assert!(reader.next_chunk().unwrap().is_none());
        assert_eq!(reader.counts().lines, 3);
        assert_eq!(reader.counts().bytes, content.len() as u64);
        assert_eq!(reader.counts().rejected_total(), 1);
    }

    #[test]
    fn chunks_are_bounded_and_lose_nothing() {
        let content: String = (1..=10).map(|statement_id| audit_line(statement_id) + "\n").collect();
        let file = write_temp(content.as_bytes());
        let input = InputPath::File(file.path().to_owned());
        let mut reader = SourceReader::open(&input, None, &ParserOptions::default(), 3).unwrap();
        let mut sizes = Vec::new();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            // A cut also flushes the statement the parser was holding back: one more at most.
            assert!(chunk.events.len() <= 3 + 1);
            sizes.push(chunk.events.len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert_eq!(reader.counts().events, 10);
    }

    /// A chunk declared by a run that did not commit it is cut exactly at its bounds, although
    /// it holds more events than a chunk (the declaring run started it elsewhere, or cut it by
    /// age), and the chunks around it are cut as usual.
    #[test]
    fn a_declared_chunk_is_cut_at_its_bounds_and_nowhere_else() {
        let lines: Vec<String> = (1..=10).map(|statement_id| audit_line(statement_id) + "\n").collect();
        let end_of = |count: usize| lines[..count].iter().map(String::len).sum::<usize>() as u64;
        let file = write_temp(lines.concat().as_bytes());
        let input = InputPath::File(file.path().to_owned());
        let mut reader = SourceReader::open(&input, None, &ParserOptions::default(), 3).unwrap();
        reader.cut_as_declared(end_of(2)..end_of(7));
        let mut spans = Vec::new();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            let Span::Bytes { start, end, .. } = chunk.span else { panic!("{:?}", chunk.span) };
            spans.push((start, end, chunk.events.len()));
        }
        assert_eq!(spans[0], (0, end_of(2), 2), "{spans:?}");
        assert_eq!(spans[1], (end_of(2), end_of(7), 5), "five events, over the chunk size: {spans:?}");
        assert_eq!(spans.iter().map(|span| span.2).sum::<usize>(), 10);
        assert_eq!(spans.last().unwrap().1, end_of(10));

        // A flush inside the declared chunk waits for its end.
        let mut feeder = LineFeeder::new(
            "log".to_owned(),
            make_parser("log", LogFormat::PgauditJsonlog, &ParserOptions::default(), b"").unwrap(),
            3,
        );
        feeder.cut_as_declared(0..end_of(2));
        assert!(!feeder.feed(lines[0].as_bytes()));
        assert!(feeder.waits_for_declared_end());
        assert!(feeder.feed(lines[1].as_bytes()), "the declared end");
        assert!(!feeder.waits_for_declared_end());
        assert_eq!(feeder.cut_full_chunk().events.len(), 2);
        assert!(!feeder.waits_for_declared_end(), "declared chunks are cut once");
    }

    /// A stderr log of multi-line records, every third an `ERROR` with its `STATEMENT` on the
    /// next line, cut into chunks of two events: a full chunk ends before the record the parser
    /// still has open, so no statement loses its continuation lines and no `ERROR` its
    /// `STATEMENT` (a failed statement used to be lost at each cut, and the lines after it
    /// rejected). The chunks' spans tile the file and each starts at a record's first line.
    #[test]
    fn full_chunks_end_before_the_record_still_open() {
        let mut content = String::new();
        let mut record_starts = Vec::new();
        for statement_id in 1..=12 {
            let prefix = format!(
                "2026-11-26 10:00:{statement_id:02}.123 UTC [100] app@shop 10.0.0.1(5000) psql 6565.64 "
            );
            record_starts.push(content.len() as u64);
            if statement_id % 3 == 0 {
                content.push_str(&format!("{prefix}ERROR:  permission denied for table secrets\n"));
                content.push_str(&format!(
                    "{prefix}STATEMENT:  SELECT *\n\tFROM secrets\n\tWHERE id = {statement_id};\n"
                ));
            } else {
                content.push_str(&format!(
                    "{prefix}LOG:  AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,public.t,\"SELECT a,\n\tb FROM t\n\tWHERE x = {statement_id}\",<none>\n"
                ));
            }
        }
        let file = write_temp(content.as_bytes());
        let input = InputPath::File(file.path().to_owned());
        let options = ParserOptions {
            log_line_prefix: Some("%m [%p] %q%u@%d %r %a %c ".to_owned()),
            ..ParserOptions::default()
        };
        let mut reader = SourceReader::open(&input, Some(LogFormat::PgauditStderr), &options, 2).unwrap();
        let (mut events, mut spans) = (Vec::new(), Vec::new());
        while let Some(chunk) = reader.next_chunk().unwrap() {
            assert_eq!(chunk.rejected, vec![], "rejected at a cut");
            let Span::Bytes { start, end, .. } = chunk.span else { panic!("{:?}", chunk.span) };
            spans.push((start, end));
            events.extend(chunk.events);
        }
        assert_eq!(reader.counts().skipped_total(), 0);
        assert!(spans.len() >= 6, "{spans:?}");
        assert_eq!(spans.first().map(|span| span.0), Some(0));
        assert_eq!(spans.last().map(|span| span.1), Some(content.len() as u64));
        for pair in spans.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{spans:?}");
            assert!(record_starts.contains(&pair[0].1), "a cut inside a record: {spans:?}");
        }
        let statements: Vec<(bool, String)> =
            events.iter().map(|event| (event.success, event.statement.clone().unwrap_or_default())).collect();
        let expected: Vec<(bool, String)> = (1..=12)
            .map(|statement_id| {
                if statement_id % 3 == 0 {
                    (false, format!("SELECT *\nFROM secrets\nWHERE id = {statement_id};"))
                } else {
                    (true, format!("SELECT a,\nb FROM t\nWHERE x = {statement_id}"))
                }
            })
            .collect();
        assert_eq!(statements, expected);
    }

    /// The committed capture of a real server (`examples/logs`), read in chunks of two to
    /// seven events and whole: each carrier yields the same events whatever the chunk size, and
    /// the chunks' spans tile the file. A statement on several relations (pgAudit writes a line
    /// per relation) that a cut fell between became two events, one per chunk. (A chunk of one
    /// event has nothing to cut before a statement held back: it is closed at the cut.)
    #[test]
    fn the_chunk_size_does_not_change_the_events() {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/logs");
        let options = ParserOptions {
            log_line_prefix: Some("%m [%p] %q%u@%d %r %a %c ".to_owned()),
            ..ParserOptions::default()
        };
        let capture = std::fs::read_to_string(directory.join("capture.env")).unwrap();
        assert!(capture.contains("LOG_LINE_PREFIX='%m [%p] %q%u@%d %r %a %c '"), "{capture}");
        for (format, name) in [
            (LogFormat::PgauditJsonlog, "postgresql.json"),
            (LogFormat::PgauditCsvlog, "postgresql.csv"),
            (LogFormat::PgauditStderr, "postgresql.log"),
        ] {
            let path = directory.join(name);
            let size = std::fs::metadata(&path).unwrap().len();
            let read = |chunk_events: usize| {
                let input = InputPath::File(path.clone());
                let mut reader = SourceReader::open(&input, Some(format), &options, chunk_events).unwrap();
                let (mut events, mut next) = (Vec::new(), 0);
                while let Some(chunk) = reader.next_chunk().unwrap() {
                    assert_eq!(chunk.rejected, vec![], "{name} in chunks of {chunk_events}");
                    let Span::Bytes { start, end, .. } = chunk.span else { panic!("{:?}", chunk.span) };
                    assert_eq!(
                        start, next,
                        "{name} in chunks of {chunk_events}: bytes in two chunks or none"
                    );
                    next = end;
                    events.extend(chunk.events);
                }
                assert_eq!(next, size, "{name} in chunks of {chunk_events}");
                events
            };
            let whole = read(1 << 20);
            let joins = whole.iter().filter(|event| event.objects.len() > 1).count();
            assert!(joins >= 2, "{name}: {joins} statements on several relations");
            for chunk_events in 2..=7 {
                assert!(read(chunk_events) == whole, "{name} in chunks of {chunk_events}");
            }
        }
    }

    /// A recycled chunk's vector holds the next chunk but one: once the first full chunk has
    /// sized them, the reader alternates between two vectors instead of allocating one per
    /// chunk.
    #[test]
    fn recycled_chunks_lend_their_memory_to_later_chunks() {
        let content: String = (1..=40).map(|statement_id| audit_line(statement_id) + "\n").collect();
        let file = write_temp(content.as_bytes());
        let input = InputPath::File(file.path().to_owned());
        let mut reader = SourceReader::open(&input, None, &ParserOptions::default(), 4).unwrap();
        let mut vectors = Vec::new();
        let mut events = 0;
        while let Some(chunk) = reader.next_chunk().unwrap() {
            vectors.push(chunk.events.as_ptr());
            events += chunk.events.len();
            reader.recycle(chunk);
        }
        assert_eq!(events, 40);
        assert!(vectors.len() >= 6, "{}", vectors.len());
        for later in 3..vectors.len() - 1 {
            assert_eq!(vectors[later], vectors[later - 2], "chunk {later}");
            assert_ne!(vectors[later], vectors[later - 1], "chunk {later}");
        }
    }

    /// Hands out its bytes a few at a time, like a pipe.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
            let take = self.step.min(into.len()).min(self.bytes.len() - self.at);
            into[..take].copy_from_slice(&self.bytes[self.at..self.at + take]);
            self.at += take;
            self.step = self.step % 7 + 1;
            Ok(take)
        }
    }

    fn split_all(first: &[u8], rest: &[u8]) -> Vec<Vec<u8>> {
        let reader = Trickle { bytes: rest.to_vec(), at: 0, step: 1 };
        let mut splitter = LineSplitter::new(Box::new(reader), first.to_vec());
        let mut lines = Vec::new();
        while let Some(line) = splitter.next_line().unwrap() {
            lines.push(line.to_vec());
        }
        lines
    }

    /// Lines come out whole, terminators kept, however the reads cut them, and a line longer
    /// than the read block grows the buffer instead of being split.
    #[test]
    fn the_splitter_keeps_every_byte_and_every_line_whole() {
        let long = vec![b'x'; READ_BLOCK * 2 + 17];
        let mut content = b"first\r\nsecond\n\nthird".to_vec();
        content.extend_from_slice(b"\n");
        content.extend_from_slice(&long);
        content.extend_from_slice(b"\nlast without terminator");
        for cut in [0, 3, 7, 12, content.len()] {
            let lines = split_all(&content[..cut], &content[cut..]);
            assert_eq!(lines.concat(), content, "cut at {cut}");
            assert_eq!(lines.len(), 6, "cut at {cut}");
            assert_eq!(lines[0], b"first\r\n");
            assert_eq!(lines[2], b"\n");
            assert_eq!(lines[4].len(), long.len() + 1);
            assert_eq!(lines[5], b"last without terminator");
        }
        assert!(split_all(b"", b"").is_empty());
    }

    #[test]
    fn an_unrecognizable_file_asks_for_a_format() {
        let file = write_temp(b"hello\nworld\n");
        let input = InputPath::File(file.path().to_owned());
        let error = SourceReader::open(&input, None, &ParserOptions::default(), 3).err().unwrap();
        let message = format!("{error:#}");
        assert!(message.contains("--format"), "{message}");
        assert!(message.contains(&input.display_name()), "{message}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let input = InputPath::File(PathBuf::from("/nonexistent/pg.json"));
        let error = SourceReader::open(&input, None, &ParserOptions::default(), 3).err().unwrap();
        assert!(format!("{error:#}").contains("/nonexistent/pg.json"));
    }
}
