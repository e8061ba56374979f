//! `rolewatch query`: SQL over the lake with DataFusion, tables `events` and `dead_letters`.

use std::io::Write;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rolewatch_lake::Lake;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An aligned table for people.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row (NDJSON).
    Json,
}

/// Arguments of `rolewatch query`.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The lake: a directory, or `s3://bucket/prefix`.
    #[arg(long)]
    pub lake: String,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The SQL, e.g. `SELECT role, count(*) FROM events GROUP BY role`. Filters on `ts` prune
    /// the date/hour partitions.
    pub sql: String,
}

/// Runs the command.
pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let lake = Lake::open(&args.lake).with_context(|| format!("cannot open the lake at {}", args.lake))?;
    let batches = rolewatch_lake::query(&lake, &args.sql).await.context("query failed")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Table => {
            let table =
                arrow::util::pretty::pretty_format_batches(&batches).context("cannot format the result")?;
            writeln!(out, "{table}").context("cannot write to stdout")?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::Writer::new(&mut out);
            for batch in &batches {
                writer.write(batch).context("cannot write CSV")?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
            writer.write_batches(&batches.iter().collect::<Vec<_>>()).context("cannot write JSON")?;
            writer.finish().context("cannot write JSON")?;
        }
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
}
