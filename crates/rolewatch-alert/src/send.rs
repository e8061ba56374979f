//! One HTTP attempt, classified: delivered, retry (and when), or permanent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::destination::{Destination, DestinationKind};
use crate::outbox::StoredMessage;
use crate::pacing::parse_retry_after;
use crate::signing::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, signature_header};
use crate::ssrf::{UrlRefusal, check_url, find_refusal};

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A 2xx: the message can be removed.
    Delivered { status: u16 },
    /// Worth retrying: 5xx, 408, 429, a timeout, a connection error.
    Retry {
        /// `http_5xx`, `http_408`, `http_429`, `timeout`, `connect` or `request`.
        reason: &'static str,
        status: Option<u16>,
        /// What the server asked for with `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Never worth retrying: other 3xx/4xx, or an internal address.
    Permanent {
        /// `permanent` (an HTTP rejection) or `forbidden_destination`.
        reason: &'static str,
        status: Option<u16>,
    },
}

fn unix_seconds(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

/// Sends one message once. Never logs or returns the URL.
pub(crate) async fn send_once(
    destination: &Destination,
    message: &StoredMessage,
    allow_private: bool,
) -> Outcome {
    match check_url(&destination.url, allow_private) {
        Ok(()) => {}
        Err(UrlRefusal::Forbidden(reason)) => {
            tracing::warn!(destination = %destination.name, reason, "refused to send to an internal address");
            return Outcome::Permanent { reason: "forbidden_destination", status: None };
        }
        Err(UrlRefusal::Scheme(_)) => {
            return Outcome::Permanent { reason: "forbidden_destination", status: None };
        }
    }

    let mut request = destination
        .client
        .post(destination.url.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(message.body.clone().into_bytes());
    if let DestinationKind::Webhook { keys } = &destination.kind {
        let timestamp = unix_seconds(SystemTime::now());
        request =
            request.header(HEADER_ID, &message.id).header(HEADER_TIMESTAMP, timestamp.to_string()).header(
                HEADER_SIGNATURE,
                signature_header(keys, &message.id, timestamp, message.body.as_bytes()),
            );
    }

    match request.send().await {
        Ok(response) => classify(response.status(), response.headers().get(RETRY_AFTER)),
        Err(error) => {
            if let Some(reason) = find_refusal(&error) {
                tracing::warn!(destination = %destination.name, reason, "refused to connect to an internal address");
                return Outcome::Permanent { reason: "forbidden_destination", status: None };
            }
            let reason = if error.is_timeout() {
                "timeout"
            } else if error.is_connect() {
                "connect"
            } else {
                "request"
            };
            tracing::debug!(destination = %destination.name, error = %describe(error), "request failed");
            Outcome::Retry { reason, status: None, retry_after: None }
        }
    }
}

fn classify(status: StatusCode, retry_after: Option<&reqwest::header::HeaderValue>) -> Outcome {
    let code = status.as_u16();
    if status.is_success() {
        Outcome::Delivered { status: code }
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = retry_after
            .and_then(|value| value.to_str().ok())
            .and_then(|text| parse_retry_after(text, Utc::now()));
        Outcome::Retry { reason: "http_429", status: Some(code), retry_after }
    } else if status == StatusCode::REQUEST_TIMEOUT {
        Outcome::Retry { reason: "http_408", status: Some(code), retry_after: None }
    } else if status.is_server_error() {
        Outcome::Retry { reason: "http_5xx", status: Some(code), retry_after: None }
    } else {
        // 1xx, 3xx (redirects are never followed) and the other 4xx: sending again will not help.
        Outcome::Permanent { reason: "permanent", status: Some(code) }
    }
}

/// An error and its causes, without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Outcome::Delivered { status: 204 });
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, None), Outcome::Retry { reason: "http_5xx", .. }));
        assert!(matches!(classify(StatusCode::REQUEST_TIMEOUT, None), Outcome::Retry { .. }));
        let retry_after = HeaderValue::from_static("7");
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(&retry_after)),
            Outcome::Retry {
                reason: "http_429",
                status: Some(429),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        for permanent in [302, 400, 401, 403, 404, 410] {
            let status = StatusCode::from_u16(permanent).unwrap();
            assert_eq!(
                classify(status, None),
                Outcome::Permanent { reason: "permanent", status: Some(permanent) }
            );
        }
    }
}
