//! The review as Markdown, for a ticket: a summary, then one section per kind of finding with
//! its evidence, risk and proposed SQL.

use std::fmt::Write;

use crate::Review;

/// Renders `review` as Markdown.
pub fn markdown(review: &Review) -> String {
    let mut out = String::new();
    let catalog = &review.catalog;
    let _ = writeln!(
        out,
        "# Access review: {} {}{}\n",
        catalog.source,
        catalog.server_version,
        catalog.database.as_deref().map(|database| format!(", database {database}")).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "Period: {} to {}. Lake: {} files, {} events of this server family. Catalog: {} roles ({} can log in), \
         {} memberships, {} grants ({} of privileges a log cannot show being used), {} default privileges.\n",
        review.period.since.format("%Y-%m-%d %H:%M UTC"),
        review.period.until.format("%Y-%m-%d %H:%M UTC"),
        review.lake.files,
        review.lake.events,
        catalog.roles,
        catalog.login_roles,
        catalog.memberships,
        catalog.grants,
        catalog.grants_not_judged,
        catalog.default_privileges
    );
    let _ = writeln!(out, "rolewatch never runs the proposed SQL: review it, then apply it yourself.\n");
    let _ = writeln!(out, "| finding | count |\n|---|---|");
    for section in super::sections(review) {
        let (name, count) = (section.id, section.findings.len());
        let _ = writeln!(out, "| {name} | {count} |");
    }

    for section in super::sections(review) {
        write_section(&mut out, section);
    }
    let _ = writeln!(out, "\n## Activity per role\n");
    let _ = writeln!(
        out,
        "| role | can log in | privileged | successes | failures | logins (failed) | last success | origins |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for summary in &review.activity {
        let activity = &summary.activity;
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {} | {} | {} ({}) | {} | {} |",
            cell(&summary.role),
            if summary.in_catalog { "" } else { " (not in catalog)" },
            yes_no(summary.can_login),
            yes_no(summary.privileged),
            activity.successes,
            activity.failures,
            activity.logins,
            activity.failed_logins,
            activity.last_success.map(|ts| ts.to_rfc3339()).unwrap_or_else(|| "never".to_owned()),
            cell(&activity.origins.keys().cloned().collect::<Vec<_>>().join(", "))
        );
    }
    out
}

fn write_section(out: &mut String, section: super::Section<'_>) {
    let title = section.title;
    let _ = writeln!(out, "\n## {title}\n");
    let mut any = false;
    for (heading, proposal) in section.findings {
        any = true;
        let _ = writeln!(out, "### {heading}\n");
        let _ = writeln!(out, "Risk: **{}**: {}\n", proposal.risk.level.as_str(), proposal.risk.reason);
        for line in &proposal.evidence {
            let _ = writeln!(out, "- {line}");
        }
        let _ = writeln!(out, "\n```sql");
        for statement in &proposal.proposed_sql {
            let _ = writeln!(out, "{}", statement.replace("```", "` ` `"));
        }
        let _ = writeln!(out, "```\n");
    }
    if !any {
        let _ = writeln!(out, "None.");
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}
