//! The review as one self-contained HTML page: no external style sheet, script, font or image.
//! Charts are inline SVG: statements per role (successful and failed), and each role's
//! activity per day over the period.
//!
//! A short inline script runs after layout and writes on `<body>` how many chart bars the
//! browser laid out with a non-zero size (`data-rendered-bars`), so a headless browser test
//! can tell that the charts rendered.

use std::fmt::Write;

use chrono::NaiveDate;

use crate::{Review, RoleSummary};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1d1d1f;max-width:70rem}\
h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}\
pre{background:#f5f5f7;padding:.5rem;overflow-x:auto}.risk-low{color:#1a7f37}.risk-medium{color:#9a6700}.risk-high{color:#cf222e}\
.finding{border-left:4px solid #ddd;padding-left:1rem;margin:1rem 0}svg text{font-size:12px}";

/// Renders `review` as a self-contained HTML page.
pub fn html(review: &Review) -> String {
    let mut out = String::new();
    let catalog = &review.catalog;
    let title = format!(
        "Access review: {} {}{}",
        catalog.source,
        catalog.server_version,
        catalog.database.as_deref().map(|database| format!(", database {database}")).unwrap_or_default()
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        out,
        "<p>Period {} to {}. Lake: {} files, {} events. Catalog: {} roles ({} can log in), {} memberships, {} grants.</p>",
        review.period.since.format("%Y-%m-%d %H:%M UTC"),
        review.period.until.format("%Y-%m-%d %H:%M UTC"),
        review.lake.files,
        review.lake.events,
        catalog.roles,
        catalog.login_roles,
        catalog.memberships,
        catalog.grants
    );
    let _ = writeln!(
        out,
        "<p><strong>rolewatch never runs the proposed SQL</strong>: review it, then apply it yourself.</p>"
    );
    let _ = writeln!(out, "<table id=\"summary\"><tr><th>finding</th><th>count</th></tr>");
    for section in super::sections(review) {
        let (name, count) = (section.id, section.findings.len());
        let _ = writeln!(out, "<tr><td><a href=\"#{name}\">{name}</a></td><td>{count}</td></tr>");
    }
    let _ = writeln!(out, "</table>");

    let _ = writeln!(out, "<h2 id=\"activity\">Statements per role</h2>");
    out.push_str(&per_role_chart(&review.activity));
    let _ = writeln!(out, "<h2 id=\"daily\">Activity per day</h2>");
    out.push_str(&daily_charts(review));

    for section in super::sections(review) {
        write_section(&mut out, section);
    }

    // Layout self-check for headless browser tests; changes nothing visible.
    out.push_str(
        "<script>(function(){var n=0;document.querySelectorAll('svg rect.bar').forEach(function(r){\
         var b=r.getBoundingClientRect();if(b.width>0&&b.height>0){n++;}});\
         document.body.setAttribute('data-rendered-bars',String(n));})();</script>\n",
    );
    out.push_str("</body></html>\n");
    out
}

const CHART_WIDTH: u64 = 720;
const LABEL_WIDTH: u64 = 180;
const ROW_HEIGHT: u64 = 22;

fn per_role_chart(roles: &[RoleSummary]) -> String {
    let mut out = String::new();
    let max =
        roles.iter().map(|role| role.activity.successes + role.activity.failures).max().unwrap_or(0).max(1);
    let rows = u64::try_from(roles.len()).unwrap_or(u64::MAX);
    let height = rows.saturating_mul(ROW_HEIGHT).saturating_add(30);
    let bar_space = CHART_WIDTH - LABEL_WIDTH - 60;
    let _ = writeln!(
        out,
        "<svg id=\"chart-per-role\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{CHART_WIDTH}\" height=\"{height}\" \
         role=\"img\" aria-label=\"statements per role\">"
    );
    let _ = writeln!(
        out,
        "<rect x=\"{LABEL_WIDTH}\" y=\"2\" width=\"10\" height=\"10\" fill=\"#2da44e\"/><text x=\"{}\" y=\"11\">succeeded</text>\
         <rect x=\"{}\" y=\"2\" width=\"10\" height=\"10\" fill=\"#cf222e\"/><text x=\"{}\" y=\"11\">failed</text>",
        LABEL_WIDTH + 14,
        LABEL_WIDTH + 90,
        LABEL_WIDTH + 104
    );
    for (index, role) in roles.iter().enumerate() {
        let y = u64::try_from(index).unwrap_or(0) * ROW_HEIGHT + 20;
        let ok = role.activity.successes;
        let failed = role.activity.failures;
        let ok_width = scale(ok, max, bar_space);
        let failed_width = scale(failed, max, bar_space);
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LABEL_WIDTH - 6,
            y + 14,
            escape(&role.role)
        );
        if ok_width > 0 {
            let _ = write!(
                out,
                "<rect class=\"bar\" x=\"{LABEL_WIDTH}\" y=\"{}\" width=\"{ok_width}\" height=\"16\" fill=\"#2da44e\"><title>{}: {ok} succeeded</title></rect>",
                y + 2,
                escape(&role.role)
            );
        }
        if failed_width > 0 {
            let _ = write!(
                out,
                "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{failed_width}\" height=\"16\" fill=\"#cf222e\"><title>{}: {failed} failed</title></rect>",
                LABEL_WIDTH + ok_width,
                y + 2,
                escape(&role.role)
            );
        }
        let assumed: u64 = role.activity.assumed_by.values().sum();
        let label = match (ok + failed, assumed) {
            (0, 0) => "never seen".to_owned(),
            (0, assumed) => format!("{assumed} statements through SET ROLE"),
            _ => format!("{ok} / {failed}"),
        };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\">{label}</text>",
            LABEL_WIDTH + ok_width + failed_width + 6,
            y + 14
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Bars of at least one pixel for any non-zero count.
fn scale(count: u64, max: u64, width: u64) -> u64 {
    if count == 0 {
        return 0;
    }
    (count.saturating_mul(width) / max.max(1)).max(1)
}

fn daily_charts(review: &Review) -> String {
    let first = review.period.since.date_naive();
    let last = review.period.until.date_naive().max(first);
    let days = u64::try_from((last - first).num_days()).unwrap_or(0).saturating_add(1).min(400);
    let width = CHART_WIDTH - LABEL_WIDTH;
    let day_width = (width / days.max(1)).max(1);
    let mut out = String::from("<table id=\"daily\"><tr><th>role</th><th>events per day, ");
    let _ = writeln!(out, "{first} to {last}</th></tr>");
    for role in review.activity.iter().filter(|role| !role.activity.daily.is_empty()) {
        let max = role.activity.daily.values().map(|day| day.ok + day.failed).max().unwrap_or(0).max(1);
        let _ = write!(
            out,
            "<tr><td>{}</td><td><svg class=\"daily\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"32\" role=\"img\" aria-label=\"{} per day\">",
            escape(&role.role),
            escape(&role.role)
        );
        let _ = write!(out, "<line x1=\"0\" y1=\"31\" x2=\"{width}\" y2=\"31\" stroke=\"#ccc\"/>");
        for (date, count) in &role.activity.daily {
            let Some(offset) = day_offset(first, *date, days) else { continue };
            let total = count.ok + count.failed;
            let height = scale(total, max, 30);
            let color = if count.ok == 0 { "#cf222e" } else { "#0969da" };
            let _ = write!(
                out,
                "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{height}\" fill=\"{color}\"><title>{date}: {} ok, {} failed</title></rect>",
                offset * day_width,
                31 - height.min(31),
                day_width.saturating_sub(1).max(1),
                count.ok,
                count.failed
            );
        }
        out.push_str("</svg></td></tr>\n");
    }
    out.push_str("</table>\n");
    out
}

fn day_offset(first: NaiveDate, date: NaiveDate, days: u64) -> Option<u64> {
    let offset = u64::try_from((date - first).num_days()).ok()?;
    (offset < days).then_some(offset)
}

fn write_section(out: &mut String, section: super::Section<'_>) {
    let (id, title) = (section.id, section.title);
    let _ = writeln!(out, "<h2 id=\"{id}\">{}</h2>", escape(title));
    let mut any = false;
    for (heading, proposal) in section.findings {
        any = true;
        let level = proposal.risk.level.as_str();
        let _ = writeln!(
            out,
            "<div class=\"finding\" data-kind=\"{id}\"><h3>{}</h3><p>Risk: <strong class=\"risk-{level}\">{level}</strong>: {}</p><ul>",
            escape(&heading),
            escape(&proposal.risk.reason)
        );
        for line in &proposal.evidence {
            let _ = writeln!(out, "<li>{}</li>", escape(line));
        }
        let _ =
            writeln!(out, "</ul><pre><code>{}</code></pre></div>", escape(&proposal.proposed_sql.join("\n")));
    }
    if !any {
        let _ = writeln!(out, "<p>None.</p>");
    }
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(escape("<script>\"x\" & 'y'"), "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;");
    }

    #[test]
    fn bars_are_never_thinner_than_a_pixel() {
        assert_eq!(scale(0, 10, 100), 0);
        assert_eq!(scale(1, 1_000_000, 100), 1);
        assert_eq!(scale(10, 10, 100), 100);
    }
}
