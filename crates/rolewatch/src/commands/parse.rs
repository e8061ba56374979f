//! `rolewatch parse`: log files to normalized events as NDJSON, or a summary of them.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use clap::Args;
use rolewatch_event::{AuditEvent, StatementClass};

use super::{InputArgs, RejectReporter, count, input_summary, say};
use crate::input::InputCounts;

/// Arguments of `rolewatch parse`.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// Print counts per class, role, rejection and skip reason instead of the events.
    #[arg(long)]
    pub summary: bool,
    #[command(flatten)]
    pub input: InputArgs,
}

/// Counts for `--summary`.
#[derive(Debug, Default)]
struct Summary {
    counts: InputCounts,
    /// By the class's place in [`StatementClass::ALL`]: an array index per event, not a map
    /// lookup.
    by_class: [u64; StatementClass::ALL.len()],
    by_role: BTreeMap<String, u64>,
    /// The role of the last events and how many in a row had it, not yet in `by_role`: a
    /// session's events come in runs, and a run costs one map lookup.
    run: Option<(String, u64)>,
    failed: u64,
}

impl Summary {
    /// Counts one event.
    fn add(&mut self, event: &AuditEvent) {
        if let Some(count) = self.by_class.get_mut(event.class as usize) {
            *count += 1;
        }
        let role = event.role.as_deref().unwrap_or("(none)");
        match &mut self.run {
            Some((last, events)) if last == role => *events += 1,
            Some((last, events)) => {
                count(&mut self.by_role, last, *events);
                last.clear();
                last.push_str(role);
                *events = 1;
            }
            None => self.run = Some((role.to_owned(), 1)),
        }
        self.failed += u64::from(!event.success);
    }

    /// Counts the last run of a role.
    fn end_run(&mut self) {
        if let Some((role, events)) = self.run.take() {
            count(&mut self.by_role, &role, events);
        }
    }
}

/// Runs the command.
pub fn run(args: ParseArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut rejects = RejectReporter::new(args.input.read.strict);
    let mut summary = Summary::default();
    for input in args.input.inputs() {
        // 1,024 events (about 440 KB) stay in the core's cache between being written by the
        // parser, read here and dropped; 8,192 (3.5 MB) did not, and cost 7% of a stderr parse.
        let mut reader = args.input.open(&input, 1024)?;
        while let Some(chunk) = reader.next_chunk()? {
            rejects.report(&chunk.rejected)?;
            for event in &chunk.events {
                if args.summary {
                    summary.add(event);
                } else {
                    serde_json::to_writer(&mut out, event).context("cannot encode an event")?;
                    out.write_all(b"\n").context("cannot write to stdout")?;
                }
            }
            reader.recycle(chunk);
        }
        say(&input_summary(reader.name(), reader.format(), reader.counts()));
        summary.counts.add(reader.counts());
    }
    if args.summary {
        summary.end_run();
        write_summary(&mut out, &summary).context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

fn write_summary(out: &mut impl Write, summary: &Summary) -> std::io::Result<()> {
    let counts = &summary.counts;
    writeln!(out, "lines     {}", counts.lines)?;
    writeln!(out, "bytes     {}", counts.bytes)?;
    writeln!(out, "events    {}", counts.events)?;
    writeln!(out, "failed    {}", summary.failed)?;
    writeln!(out, "rejected  {}", counts.rejected_total())?;
    writeln!(out, "skipped   {}", counts.skipped_total())?;
    let mut classes: Vec<(String, u64)> = StatementClass::ALL
        .iter()
        .zip(summary.by_class)
        .filter(|(_, count)| *count > 0)
        .map(|(class, count)| (class.as_str().to_owned(), count))
        .collect();
    classes.sort();
    let sections: [(&str, Vec<(String, u64)>); 4] = [
        ("class", classes),
        ("role", summary.by_role.iter().map(|(key, count)| (key.clone(), *count)).collect()),
        ("rejected", counts.rejected.iter().map(|(reason, count)| (reason.to_string(), *count)).collect()),
        (
            "skipped",
            counts.skipped.iter().map(|(reason, count)| (reason.as_str().to_owned(), *count)).collect(),
        ),
    ];
    for (title, rows) in sections {
        if rows.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}")?;
        for (key, count) in rows {
            writeln!(out, "  {key:<24} {count}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rolewatch_event::{LogFormat, Source};

    use super::*;

    #[test]
    fn the_summary_lists_classes_and_roles_by_name() {
        let mut summary = Summary::default();
        let ts = chrono::DateTime::UNIX_EPOCH;
        for (class, role, success) in [
            (StatementClass::Write, Some("app"), true),
            (StatementClass::Read, Some("app"), true),
            (StatementClass::Ddl, None, false),
            (StatementClass::Read, Some("admin"), true),
        ] {
            let mut event = AuditEvent::new(ts, Source::Postgres, LogFormat::PgauditJsonlog);
            event.class = class;
            event.role = role.map(Into::into);
            event.success = success;
            summary.add(&event);
        }
        summary.end_run();
        let mut out = Vec::new();
        write_summary(&mut out, &summary).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows = |title: &str| -> Vec<String> {
            text.split(&format!("\n{title}\n"))
                .nth(1)
                .unwrap_or_default()
                .lines()
                .take_while(|line| !line.is_empty())
                .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        assert!(text.contains("failed    1\n"), "{text}");
        assert_eq!(rows("class"), ["DDL 1", "READ 2", "WRITE 1"]);
        assert_eq!(rows("role"), ["(none) 1", "admin 1", "app 2"]);
    }
}
