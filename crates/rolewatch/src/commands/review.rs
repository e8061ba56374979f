//! `rolewatch review`: the access review. Reads the database's catalogs read-only, crosses
//! them with the lake's events of the period, and prints the findings with proposed SQL.
//! Nothing is ever run against the database but catalog reads.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rolewatch_review::{Catalog, CatalogTarget, Period, Policy, PolicyConfig};

use super::say;
use crate::config::Config;

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewOutput {
    /// Markdown, for a ticket.
    Markdown,
    /// JSON, for tooling.
    Json,
    /// A self-contained HTML page with charts.
    Html,
}

/// Arguments of `rolewatch review`.
#[derive(Clone, Args)]
pub struct ReviewArgs {
    /// The config file (TOML): `[lake] path`, `[roles]` and `[origins]` are used.
    #[arg(long, short = 'c')]
    pub config: PathBuf,
    /// The database to review: `postgres://user@host:port/database` or
    /// `mysql://user@host:port/` (MariaDB too). Put the password in the environment variable
    /// named by --catalog-password-env rather than in the URL; it is never printed either way.
    #[arg(long)]
    pub catalog: String,
    /// The environment variable holding the catalog password, used when the URL has none.
    #[arg(long, default_value = "ROLEWATCH_CATALOG_PASSWORD")]
    pub catalog_password_env: String,
    /// The period reviewed, back from now: `90d`, `2w`, `720h`.
    #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
    pub since: Duration,
    /// The lake directory; default: `[lake] path` of the config.
    #[arg(long)]
    pub lake: Option<PathBuf>,
    /// The report format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub output: ReviewOutput,
}

impl fmt::Debug for ReviewArgs {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let catalog = CatalogTarget::parse(&self.catalog, None)
            .map(|target| target.redacted())
            .unwrap_or_else(|_| "(invalid URL)".to_owned());
        formatter
            .debug_struct("ReviewArgs")
            .field("config", &self.config)
            .field("catalog", &catalog)
            .field("since", &self.since)
            .field("lake", &self.lake)
            .field("output", &self.output)
            .finish()
    }
}

/// Runs the command.
pub async fn run(args: ReviewArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let policy = Policy::new(&PolicyConfig {
        admin: config.roles.admin.clone(),
        reader: config.roles.reader.clone(),
        writer: config.roles.writer.clone(),
        service: config.roles.service.clone(),
        service_applications: config.origins.service_applications.clone(),
        service_networks: config.origins.service_networks.clone(),
    })?;
    let password = std::env::var(&args.catalog_password_env).ok().filter(|password| !password.is_empty());
    let target = CatalogTarget::parse(&args.catalog, password)?;
    let until = chrono::Utc::now();
    let since = until - chrono::Duration::from_std(args.since).context("--since is too long")?;
    let lake = args.lake.clone().unwrap_or_else(|| config.lake.path.clone());

    let catalog = Catalog::read(&target).await?;
    say(&format!(
        "catalog {target}: {} {}, {} roles, {} memberships, {} grants (read-only session)",
        catalog.source,
        catalog.server_version,
        catalog.roles.len(),
        catalog.memberships.len(),
        catalog.grants.len()
    ));
    let (catalog, activity) = tokio::task::spawn_blocking(move || {
        rolewatch_review::read_activity(&lake, since, &catalog).map(|activity| (catalog, activity))
    })
    .await
    .context("lake reading task failed")??;
    let review = rolewatch_review::review(&catalog, &activity, &policy, Period { since, until });
    say(&format!(
        "lake: {} files, {} events in the period; findings: {} unused roles, {} unused privileges, \
         {} broader than use, {} unexpected origins, {} unused memberships",
        review.lake.files,
        review.lake.events,
        review.unused_roles.len(),
        review.unused_privileges.len(),
        review.broader_than_use.len(),
        review.unexpected_origins.len(),
        review.unused_memberships.len()
    ));
    let text = match args.output {
        ReviewOutput::Markdown => rolewatch_review::render::markdown(&review),
        ReviewOutput::Json => rolewatch_review::render::json(&review).context("cannot encode the review")?,
        ReviewOutput::Html => rolewatch_review::render::html(&review),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes()).context("cannot write the review to stdout")?;
    if !text.ends_with('\n') {
        out.write_all(b"\n").context("cannot write the review to stdout")?;
    }
    out.flush().context("cannot write the review to stdout")?;
    Ok(())
}
