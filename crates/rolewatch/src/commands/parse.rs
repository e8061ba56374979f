//! `rolewatch parse`: log files to normalized events as NDJSON, or a summary of them.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use clap::Args;

use super::{InputArgs, RejectReporter, input_summary, say};
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
    by_class: BTreeMap<String, u64>,
    by_role: BTreeMap<String, u64>,
    failed: u64,
}

/// Adds one to `key`'s count, copying the key only the first time it is seen.
fn count(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_owned(), 1);
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
        let mut reader = args.input.open(&input, 8192)?;
        while let Some(chunk) = reader.next_chunk()? {
            rejects.report(&chunk.rejected)?;
            for event in &chunk.events {
                if args.summary {
                    count(&mut summary.by_class, event.class.as_str());
                    count(&mut summary.by_role, event.role.as_deref().unwrap_or("(none)"));
                    summary.failed += u64::from(!event.success);
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
    let sections: [(&str, Vec<(String, u64)>); 4] = [
        ("class", summary.by_class.iter().map(|(key, count)| (key.clone(), *count)).collect()),
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
