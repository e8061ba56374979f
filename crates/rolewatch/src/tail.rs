//! Following log files as the database writes them (`[source.files]` of `rolewatch run`).
//!
//! A [`Tailer`] reads the complete lines a file has gained since the last poll and hands them
//! to the parser; a partial last line waits for its newline. A file is only opened once it has
//! a complete first line, because that line is its identity in the lake (see
//! [`stream_identity`]). Rotation (the path now names another
//! file) and truncation (the file is shorter than what was read) end the current stream: what
//! the parser holds is flushed, and the next poll opens the file anew.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rolewatch_event::LogFormat;
use rolewatch_lake::StreamId;
use rolewatch_parse::ParserOptions;

use crate::input::{
    Chunk, InputCounts, LineFeeder, LineSplitter, PREFIX_BYTES, choose_format, make_parser, stream_identity,
};

/// A chunk read from one stream of a followed file.
pub struct TailChunk {
    /// The stream (file identity) the chunk belongs to.
    pub stream: StreamId,
    /// What the parser made of the lines.
    pub chunk: Chunk,
}

/// Follows one path.
pub struct Tailer {
    path: PathBuf,
    format: Option<LogFormat>,
    options: ParserOptions,
    chunk_events: usize,
    open: Option<OpenFile>,
}

struct OpenFile {
    lines: LineSplitter<File>,
    inode: u64,
    stream: StreamId,
    feeder: LineFeeder,
}

impl Tailer {
    /// A tailer of `path`; nothing is opened until the first poll finds a complete first line.
    pub fn new(
        path: PathBuf,
        format: Option<LogFormat>,
        options: ParserOptions,
        chunk_events: usize,
    ) -> Self {
        Self { path, format, options, chunk_events, open: None }
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file if it is not open and has a complete first line. Returns the stream
    /// when it opened one, before any line is read: the caller may then tell it how a chunk
    /// declared before the last stop was cut ([`Tailer::cut_as_declared`]).
    pub fn open(&mut self) -> anyhow::Result<Option<StreamId>> {
        if self.open.is_some() {
            return Ok(None);
        }
        self.open = self.try_open()?;
        Ok(self.open.as_ref().map(|open| open.stream.clone()))
    }

    /// Cuts the open stream's chunk of bytes `declared` exactly there (see
    /// [`LineFeeder::cut_as_declared`]).
    pub fn cut_as_declared(&mut self, declared: Range<u64>) {
        if let Some(open) = self.open.as_mut() {
            open.feeder.cut_as_declared(declared);
        }
    }

    /// Reads what the file gained since the last poll ([`Tailer::open`] opens it). Returns a
    /// chunk when one is full, when the stream ended (rotation, truncation), or, with `flush`,
    /// whatever the parser has (held-back events included) once the file's end is reached,
    /// unless the chunk is a declared one whose end is still to come. Call again until it
    /// returns `None`; after a rotation, call [`Tailer::open`] again.
    pub fn poll(&mut self, flush: bool) -> anyhow::Result<Option<TailChunk>> {
        let Some(open) = self.open.as_mut() else { return Ok(None) };
        loop {
            // A line still being written waits in the splitter until its newline arrives.
            let line = open.lines.next_complete_line().with_context(|| {
                format!("cannot read {} at byte {}", self.path.display(), open.feeder.offset())
            })?;
            let Some(line) = line else { break };
            if open.feeder.feed(line) {
                return Ok(Some(TailChunk {
                    stream: open.stream.clone(),
                    chunk: open.feeder.cut_full_chunk(),
                }));
            }
        }
        if self.stream_ended()? {
            let Some(mut open) = self.open.take() else { return Ok(None) };
            tracing::info!(path = %self.path.display(), "file rotated or truncated: its stream ends here");
            let chunk = open.feeder.cut_chunk();
            if chunk.span.is_empty() {
                // Nothing left of the old file: the next `open` finds the new one.
                return Ok(None);
            }
            return Ok(Some(TailChunk { stream: open.stream, chunk }));
        }
        let Some(open) = self.open.as_mut() else { return Ok(None) };
        if flush && open.feeder.has_uncut_input() && !open.feeder.waits_for_declared_end() {
            return Ok(Some(TailChunk { stream: open.stream.clone(), chunk: open.feeder.cut_chunk() }));
        }
        Ok(None)
    }

    /// Takes the read counts accumulated since the last call (for metrics).
    pub fn take_counts(&mut self) -> InputCounts {
        self.open.as_mut().map(|open| open.feeder.take_counts()).unwrap_or_default()
    }

    /// Ends the stream at shutdown: what was read since the last cut, as a last chunk.
    /// A declared chunk whose end is not read yet is left for the next run, which cuts it there.
    pub fn finish(&mut self) -> Option<TailChunk> {
        let open = self.open.as_mut()?;
        (open.feeder.has_uncut_input() && !open.feeder.waits_for_declared_end())
            .then(|| TailChunk { stream: open.stream.clone(), chunk: open.feeder.cut_chunk() })
    }

    fn try_open(&self) -> anyhow::Result<Option<OpenFile>> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("cannot open {}", self.path.display())),
        };
        let name = self.path.display().to_string();
        let mut prefix = Vec::new();
        (&mut file)
            .take(PREFIX_BYTES)
            .read_to_end(&mut prefix)
            .with_context(|| format!("cannot read {name}"))?;
        if !prefix.contains(&b'\n') && (prefix.len() as u64) < PREFIX_BYTES {
            return Ok(None); // no complete first line yet: no identity yet
        }
        let format = choose_format(&name, self.format, &prefix)?;
        let stream = StreamId::for_file_prefix(stream_identity(&prefix));
        let inode = file.metadata().with_context(|| format!("cannot stat {name}"))?.ino();
        let parser = make_parser(&name, format, &self.options, &prefix)?;
        let feeder = LineFeeder::new(name, parser, self.chunk_events);
        tracing::info!(path = %self.path.display(), %format, stream = %stream.as_str(), "following");
        // The prefix read for the identity is where the lines begin: no second read of it.
        Ok(Some(OpenFile { lines: LineSplitter::new(file, prefix), inode, stream, feeder }))
    }

    /// Whether the path now names another file, or the file shrank below what was read.
    fn stream_ended(&self) -> anyhow::Result<bool> {
        let Some(open) = &self.open else { return Ok(false) };
        match std::fs::metadata(&self.path) {
            Ok(metadata) => {
                let read = open.feeder.offset() + open.lines.pending() as u64;
                Ok(metadata.ino() != open.inode || metadata.len() < read)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(error) => Err(error).with_context(|| format!("cannot stat {}", self.path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn audit_line(statement_id: u32) -> String {
        format!(
            r#"{{"timestamp":"2026-11-26 10:00:00.123 UTC","user":"app_reader","dbname":"shop","pid":7,"session_id":"6565.7","error_severity":"LOG","message":"AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,public.orders,SELECT * FROM orders,<none>,20000"}}"#
        ) + "\n"
    }

    /// Opens and reads until nothing is left, as `rolewatch run` polls; twice, so that a
    /// rotation's new file is opened too.
    fn drain(tailer: &mut Tailer, flush: bool) -> Vec<TailChunk> {
        let mut chunks = Vec::new();
        for _ in 0..2 {
            tailer.open().unwrap();
            chunks.extend(std::iter::from_fn(|| tailer.poll(flush).unwrap()));
        }
        chunks
    }

    fn events(chunks: &[TailChunk]) -> usize {
        chunks.iter().map(|chunk| chunk.chunk.events.len()).sum()
    }

    #[test]
    fn follows_growth_waits_for_whole_lines_and_keeps_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postgresql.json");
        let mut tailer = Tailer::new(path.clone(), None, ParserOptions::default(), 1000);
        assert!(drain(&mut tailer, true).is_empty(), "no file yet");

        let mut file = File::create(&path).unwrap();
        let first = audit_line(1);
        file.write_all(&first.as_bytes()[..40]).unwrap();
        assert!(drain(&mut tailer, true).is_empty(), "no complete first line yet");
        file.write_all(&first.as_bytes()[40..]).unwrap();
        let line_two = audit_line(2);
        file.write_all(&line_two.as_bytes()[..50]).unwrap();
        let chunks = drain(&mut tailer, true);
        assert_eq!(events(&chunks), 1);
        let stream = chunks[0].stream.clone();

        file.write_all(&line_two.as_bytes()[50..]).unwrap();
        file.write_all(audit_line(3).as_bytes()).unwrap();
        let chunks = drain(&mut tailer, true);
        assert_eq!(events(&chunks), 2);
        assert!(chunks.iter().all(|chunk| chunk.stream == stream));
        let offsets: Vec<i64> = chunks
            .iter()
            .flat_map(|chunk| chunk.chunk.events.iter().filter_map(|event| event.source_offset))
            .collect();
        assert_eq!(offsets, [first.len() as i64, (first.len() + line_two.len()) as i64]);
        assert_eq!(StreamId::for_file_prefix(first.trim_end().as_bytes()), stream);
    }

    #[test]
    fn rotation_ends_the_stream_and_the_new_file_is_a_new_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postgresql.json");
        std::fs::write(&path, audit_line(1) + &audit_line(2)).unwrap();
        let mut tailer = Tailer::new(path.clone(), None, ParserOptions::default(), 1000);
        let before = drain(&mut tailer, true);
        assert_eq!(events(&before), 2);

        std::fs::rename(&path, dir.path().join("postgresql.json.1")).unwrap();
        let rotated = audit_line(7).replace("10:00:00.123", "11:00:00.000");
        std::fs::write(&path, &rotated).unwrap();
        let after = drain(&mut tailer, true);
        assert_eq!(events(&after), 1, "the new file's line");
        assert_ne!(after.last().unwrap().stream, before[0].stream);
    }

    #[test]
    fn held_back_events_wait_for_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postgresql.json");
        std::fs::write(&path, audit_line(1)).unwrap();
        let mut tailer = Tailer::new(path, None, ParserOptions::default(), 1000);
        // The parser holds a pgAudit statement until it sees the session move on, or a flush.
        assert_eq!(events(&drain(&mut tailer, false)), 0);
        assert_eq!(events(&drain(&mut tailer, true)), 1);
    }
}
