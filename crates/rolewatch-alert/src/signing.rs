//! Standard Webhooks signatures: signing what we send, and a reference verifier for receivers.
//!
//! A message is signed over the exact bytes `"{webhook-id}.{webhook-timestamp}.{body}"` with
//! HMAC-SHA256, keyed by the base64-decoded part of a `whsec_...` secret. The
//! `webhook-signature` header holds one `v1,<base64 MAC>` per configured key, space-separated,
//! so that a receiver can rotate its key without losing messages.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header holding the message id, stable across retries (an idempotency key).
pub const HEADER_ID: &str = "webhook-id";
/// The header holding the send time, unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header holding the space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// One HMAC key, kept as the keyed MAC state. `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct SigningKey(HmacSha256);

impl fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SigningKey([redacted])")
    }
}

/// Parses `whsec_<base64>[,whsec_<base64>...]`. The `whsec_` prefix is optional, as in the
/// reference libraries. The error never contains the value.
pub(crate) fn parse_secrets(text: &str) -> Result<Vec<SigningKey>, &'static str> {
    let mut keys = Vec::new();
    for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        let encoded = part.strip_prefix("whsec_").unwrap_or(part);
        let key = BASE64.decode(encoded).map_err(|_| "not whsec_ followed by base64")?;
        if key.is_empty() {
            return Err("empty key");
        }
        keys.push(SigningKey(HmacSha256::new_from_slice(&key).map_err(|_| "unusable key")?));
    }
    if keys.is_empty() {
        return Err("no key");
    }
    Ok(keys)
}

fn mac(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = key.0.clone();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value: one `v1,<base64>` per key, space-separated.
pub(crate) fn signature_header(keys: &[SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| format!("v1,{}", BASE64.encode(mac(key, msg_id, timestamp, body).finalize().into_bytes())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why [`verify`] rejected a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent or not text.
    #[error("missing or unreadable header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    #[error("webhook-timestamp is not unix seconds")]
    InvalidTimestamp,
    /// The timestamp is further from `now` than the tolerance: a replay or a skewed clock.
    #[error("webhook-timestamp is outside the tolerance (replay or clock skew)")]
    TimestampOutOfTolerance,
    /// A configured secret is not `whsec_<base64>`.
    #[error("a verification secret is not whsec_ followed by base64")]
    InvalidSecret,
    /// No `v1` signature matches any secret: wrong key or tampered body.
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// Verifies a Standard Webhooks message the way a receiver should, and returns its
/// `webhook-id` (use it to drop duplicates: retries carry the same id).
///
/// `body` must be the exact bytes received. `secrets` are `whsec_...` strings (several during
/// rotation; any one matching is enough). The timestamp must be within `tolerance` of `now`
/// (the spec suggests 5 minutes). Signatures are compared in constant time.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use rolewatch_alert::verify;
/// let headers = reqwest::header::HeaderMap::new();
/// let verdict = verify(&headers, b"{}", &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], Duration::from_secs(300), SystemTime::now());
/// assert!(verdict.is_err());
/// ```
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
    tolerance: Duration,
    now: SystemTime,
) -> Result<String, VerifyError> {
    let header = |name: &'static str| {
        headers.get(name).and_then(|value| value.to_str().ok()).ok_or(VerifyError::MissingHeader(name))
    };
    let msg_id = header(HEADER_ID)?;
    let timestamp: i64 =
        header(HEADER_TIMESTAMP)?.trim().parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    let signatures = header(HEADER_SIGNATURE)?;

    let now_secs = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let tolerance_secs = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now_secs.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }

    let mut keys = Vec::new();
    for secret in secrets {
        keys.extend(parse_secrets(secret).map_err(|_| VerifyError::InvalidSecret)?);
    }
    for signature in signatures.split_whitespace() {
        let Some(encoded) = signature.strip_prefix("v1,") else { continue };
        let Ok(expected) = BASE64.decode(encoded) else { continue };
        if keys.iter().any(|key| mac(key, msg_id, timestamp, body).verify_slice(&expected).is_ok()) {
            return Ok(msg_id.to_owned());
        }
    }
    Err(VerifyError::NoMatchingSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    // The example from the Standard Webhooks specification's reference test vectors.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(signature: &str, timestamp: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_ID, HeaderValue::from_static(SPEC_ID));
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from_str(&timestamp.to_string()).unwrap());
        headers.insert(HEADER_SIGNATURE, HeaderValue::from_str(signature).unwrap());
        headers
    }

    fn at(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    }

    #[test]
    fn signs_the_specification_test_vector() {
        let keys = parse_secrets(SPEC_SECRET).unwrap();
        assert_eq!(signature_header(&keys, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
    }

    #[test]
    fn verifies_the_specification_test_vector() {
        let verdict = verify(
            &headers(SPEC_SIGNATURE, SPEC_TIMESTAMP),
            SPEC_BODY,
            &[SPEC_SECRET],
            Duration::from_secs(300),
            at(SPEC_TIMESTAMP + 10),
        );
        assert_eq!(verdict, Ok(SPEC_ID.to_owned()));
    }

    #[test]
    fn rejects_tampering_replay_and_wrong_keys() {
        let tolerance = Duration::from_secs(300);
        let genuine = headers(SPEC_SIGNATURE, SPEC_TIMESTAMP);
        assert_eq!(
            verify(&genuine, br#"{"test": 2432232315}"#, &[SPEC_SECRET], tolerance, at(SPEC_TIMESTAMP)),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify(&genuine, SPEC_BODY, &[SPEC_SECRET], tolerance, at(SPEC_TIMESTAMP + 301)),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify(&genuine, SPEC_BODY, &[SPEC_SECRET], tolerance, at(SPEC_TIMESTAMP - 301)),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify(&genuine, SPEC_BODY, &["whsec_AAAAAAAAAAAAAAAAAAAAAA=="], tolerance, at(SPEC_TIMESTAMP)),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify(&HeaderMap::new(), SPEC_BODY, &[SPEC_SECRET], tolerance, at(SPEC_TIMESTAMP)),
            Err(VerifyError::MissingHeader(HEADER_ID))
        );
    }

    #[test]
    fn rotation_signs_with_every_key_and_either_verifies() {
        let new_secret = "whsec_bmV3LWtleS1mb3Itcm90YXRpb24=";
        let keys = parse_secrets(&format!("{SPEC_SECRET}, {new_secret}")).unwrap();
        let signature = signature_header(&keys, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
        assert_eq!(signature.split(' ').filter(|entry| entry.starts_with("v1,")).count(), 2);
        for secret in [SPEC_SECRET, new_secret] {
            let verdict = verify(
                &headers(&signature, SPEC_TIMESTAMP),
                SPEC_BODY,
                &[secret],
                Duration::from_secs(300),
                at(SPEC_TIMESTAMP),
            );
            assert!(verdict.is_ok(), "{secret} should verify");
        }
    }

    #[test]
    fn malformed_secrets_are_rejected_without_echoing_them() {
        let error = parse_secrets("whsec_CANARY!!not-base64").unwrap_err();
        assert!(!error.contains("CANARY"));
        assert!(parse_secrets(" , ").is_err());
    }
}
