//! The review as Markdown (for a ticket), JSON (for tooling) or a self-contained HTML page.

mod html;
mod markdown;

pub use html::html;
pub use markdown::markdown;

use crate::{Proposal, Review};

/// The review as pretty JSON: the keys are [`Review`]'s fields (`unused_roles`,
/// `unused_privileges`, `broader_than_use`, `unexpected_origins`, `unused_memberships`, ...).
pub fn json(review: &Review) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(review)
}

/// One section of findings: an anchor id (the JSON key), a title, and each finding's heading
/// with its proposal. Markdown and HTML show the same sections in the same order.
pub(crate) struct Section<'a> {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) findings: Vec<(String, &'a Proposal)>,
}

/// The finding sections of a review.
pub(crate) fn sections(review: &Review) -> Vec<Section<'_>> {
    let account = |name: &str, host: Option<&str>| match host {
        Some(host) => format!("{name}@{host}"),
        None => name.to_owned(),
    };
    vec![
        Section {
            id: "unused_roles",
            title: "Unused roles",
            findings: review
                .unused_roles
                .iter()
                .map(|found| {
                    (
                        format!("{} ({})", account(&found.role, found.host.as_deref()), found.kind),
                        &found.proposal,
                    )
                })
                .collect(),
        },
        Section {
            id: "unused_privileges",
            title: "Unused privileges",
            findings: review
                .unused_privileges
                .iter()
                .map(|found| {
                    let holder = account(&found.role, found.host.as_deref());
                    (format!("{} on {} held by {holder}", found.privilege, found.object), &found.proposal)
                })
                .collect(),
        },
        Section {
            id: "broader_than_use",
            title: "Roles broader than their use",
            findings: review
                .broader_than_use
                .iter()
                .map(|found| {
                    (
                        format!("{} ({})", account(&found.role, found.host.as_deref()), found.kind),
                        &found.proposal,
                    )
                })
                .collect(),
        },
        Section {
            id: "unexpected_origins",
            title: "Unexpected origins",
            findings: review
                .unexpected_origins
                .iter()
                .map(|found| {
                    let application = found.application.as_deref().unwrap_or("(no application)");
                    let address = found.client_addr.as_deref().unwrap_or("local socket");
                    (
                        format!("{} from {application} at {address} ({})", found.role, found.kind),
                        &found.proposal,
                    )
                })
                .collect(),
        },
        Section {
            id: "unused_memberships",
            title: "Memberships never used",
            findings: review
                .unused_memberships
                .iter()
                .map(|found| {
                    (
                        format!("{} in {}", account(&found.member, found.member_host.as_deref()), found.role),
                        &found.proposal,
                    )
                })
                .collect(),
        },
    ]
}
