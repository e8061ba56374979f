//! Access review: which roles and privileges nobody uses, and the SQL to strip them.
//!
//! Least privilege decays: old roles stay, projects end, grants pile up. A review crosses what
//! the database says exists with what the lake shows was done:
//!
//! * [`Catalog::read`] connects to PostgreSQL (`pg_roles`, `pg_auth_members`,
//!   `information_schema.role_table_grants`, `pg_default_acl`) or MariaDB/MySQL (`mysql.user`,
//!   `mysql.db`, `mysql.tables_priv`, `mysql.roles_mapping`) in a **read-only** session and
//!   transaction, checked to be read-only before the first catalog query.
//! * [`read_activity`] folds the lake's events of the period (Parquet, read directly, date
//!   partitions before the period skipped) into an [`Activity`] per role: seen succeeding or
//!   only failing, privileges exercised per object, origins, `SET ROLE` switches.
//! * [`review`] crosses them into findings: `unused_roles`, `unused_privileges`,
//!   `broader_than_use`, `unexpected_origins`, `unused_memberships`. Each carries proposed SQL
//!   (`REVOKE ...`, `ALTER ROLE ... NOLOGIN`, `DROP ROLE ...`), its evidence and the risk of
//!   applying it. **rolewatch never runs the SQL.**
//! * [`render`] writes the review as Markdown (a ticket), JSON (tooling) or a self-contained
//!   HTML page with inline SVG charts.
//!
//! The cross is pure: the same catalog, activity, policy and period give the same review.
//!
//! ```no_run
//! # async fn example() -> Result<(), rolewatch_review::ReviewError> {
//! use rolewatch_review::{Catalog, CatalogTarget, Period, Policy, PolicyConfig};
//!
//! let target = CatalogTarget::parse("postgres://auditor@127.0.0.1:5432/shop", Some("pw".into()))?;
//! let catalog = Catalog::read(&target).await?;
//! let until = chrono::Utc::now();
//! let period = Period { since: until - chrono::Duration::days(90), until };
//! let activity = rolewatch_review::read_activity("./rolewatch-data".as_ref(), period.since, &catalog)?;
//! let policy = Policy::new(&PolicyConfig::default())?;
//! let review = rolewatch_review::review(&catalog, &activity, &policy, period);
//! println!("{}", rolewatch_review::render::markdown(&review));
//! # Ok(()) }
//! ```

mod activity;
mod catalog;
mod error;
mod findings;
mod lake;
mod policy;
pub mod render;
mod sql;

use std::path::Path;

use chrono::{DateTime, Utc};

pub use activity::{Activity, ActivityBuilder, DayCount, OriginUse, RoleActivity, Use, privileges_exercised};
pub use catalog::{
    Catalog, CatalogRole, CatalogTarget, DefaultPrivilege, Dialect, Grant, GrantObject, Membership,
};
pub use error::ReviewError;
pub use findings::{
    BroaderThanUse, CatalogSummary, JUDGED_PRIVILEGES, LakeSummary, Period, Proposal, Review, Risk,
    RiskLevel, RoleSummary, UnexpectedOrigin, UnusedMembership, UnusedPrivilege, UnusedRole, review,
};
pub use lake::{ActivityEvent, event_files, read_event_file};
pub use policy::{Policy, PolicyConfig};
pub use sql::SqlWriter;

/// Reads the lake's events from `since` on and folds those of `catalog`'s server family into
/// an [`Activity`]. Blocking (file reads and Parquet decoding): call it from a blocking thread.
pub fn read_activity(lake: &Path, since: DateTime<Utc>, catalog: &Catalog) -> Result<Activity, ReviewError> {
    let sources: &[&str] = match catalog.dialect {
        Dialect::Postgres => &["postgres"],
        Dialect::Mysql => &["mariadb", "mysql"],
    };
    let mut builder =
        ActivityBuilder::new(sources, catalog.database.as_deref(), catalog.dialect == Dialect::Mysql);
    for file in event_files(lake, since)? {
        let rows = read_event_file(&file, since, &mut |event| builder.observe(event))?;
        builder.file_read(rows);
    }
    Ok(builder.finish())
}
