//! Delivery of rolewatch alerts to Slack and to signed webhooks: never lost, never a flood.
//!
//! The main type is [`Dispatcher`]. [`Dispatcher::enqueue`] writes each
//! [`Alert`](rolewatch_event::Alert) durably to an on-disk outbox, one entry per (alert,
//! destination) after [silences](SilenceConfig) and routing; delivery then happens either in
//! one-shot mode ([`Dispatcher::drain`], for `ingest` and `detect --deliver`) or in daemon mode
//! ([`Dispatcher::run`]). What it guarantees:
//!
//! * **Never lost.** An alert is on disk (fsynced) before any delivery attempt and removed only
//!   after a 2xx; a restart resumes from the outbox. Transient failures (5xx, 408, timeouts,
//!   connection errors) are retried with exponential backoff and jitter; a 429 waits for its
//!   `Retry-After`. Other 3xx/4xx are permanent: the message moves to `<outbox>/dead/` with every
//!   alert it carried, is counted, and a `delivery_failed` alert goes out through the other
//!   destinations. Delivery is at least once; the `webhook-id` (stable across retries and
//!   restarts) lets a receiver drop duplicates.
//! * **Never a flood.** Alerts are folded into one message per group (by default detector and
//!   role, see [`GroupingConfig`]) and each destination has a token-bucket rate limit. Every
//!   message carries `count`, the number of occurrences it stands for; alerts beyond the listing
//!   limit are counted in `truncated`, never dropped silently.
//! * **Signed.** Webhooks are signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256>`, one signature per key during rotation).
//!   [`verify`] is the reference verifier for receivers.
//! * **No SSRF, no leaks.** Loopback, private, link-local, unique-local, CGNAT and metadata
//!   addresses are refused at connect time (and literal-IP URLs before sending) unless
//!   `allow_private_destinations`; redirects are never followed. Secrets and URLs come from
//!   environment variables or files, and never appear in `Debug`, errors, logs, metrics or
//!   dead letters: destinations are named by their configured `name`.
//!
//! The operator's manual is `docs/alerts.md`.
//!
//! ```no_run
//! # async fn example(alerts: Vec<rolewatch_event::Alert>) -> Result<(), rolewatch_alert::AlertError> {
//! use std::time::Duration;
//! use rolewatch_alert::{AlertsConfig, Dispatcher};
//!
//! let config: AlertsConfig = Default::default(); // usually the `[alerts]` table of the config file
//! let dispatcher = Dispatcher::open(&config, "./rolewatch-data/outbox".as_ref())?;
//! dispatcher.enqueue(&alerts)?;
//! let report = dispatcher.drain(Duration::from_secs(30)).await;
//! println!("{report}"); // delivered 2 messages (40 alerts), 1 retries, 0 messages dead-lettered, ...
//! # Ok(()) }
//! ```

mod config;
mod delivery;
mod destination;
mod dispatcher;
mod error;
mod grouping;
mod metrics;
mod outbox;
mod pacing;
mod redact;
mod render;
mod send;
mod signing;
mod ssrf;

pub use config::{
    AlertsConfig, GroupingConfig, InlineUrl, RateLimit, SilenceConfig, SlackConfig, WebhookConfig,
};
pub use delivery::DELIVERY_FAILED_DETECTOR;
pub use dispatcher::{DeliveryReport, Dispatcher};
pub use error::AlertError;
pub use metrics::{AlertMetrics, DestinationMetrics, FailedCounts};
pub use signing::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, VerifyError, verify};
