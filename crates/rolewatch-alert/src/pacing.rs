//! How fast messages go out: a token bucket per destination, retry backoff, `Retry-After`.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::RateLimit;

/// Rounding slack: a bucket refilled for exactly one period holds one token, not 0.9999999.
const TOKEN_EPSILON: f64 = 1e-6;

/// A token bucket: `count` tokens per `per`, holding at most `count`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    capacity: f64,
    tokens: f64,
    seconds_per_token: f64,
    updated: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        let capacity = f64::from(limit.count);
        Self {
            capacity,
            tokens: capacity,
            seconds_per_token: limit.per.as_secs_f64() / capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed / self.seconds_per_token).min(self.capacity);
        self.updated = now;
    }

    /// When a token will be available (`now` if one is). Never less than a millisecond ahead
    /// when none is: the timer's resolution, so that a waiter cannot spin.
    pub(crate) fn ready_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 - TOKEN_EPSILON {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) * self.seconds_per_token)
                .max(Duration::from_millis(1))
        }
    }

    /// Takes a token if one is available.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 - TOKEN_EPSILON {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }
}

/// The delay before retry number `attempt` (1-based): exponential with "equal jitter".
///
/// The window doubles from `initial` up to `max`, and the delay is drawn from its upper half,
/// `[window / 2, window)`. Unlike full jitter (`[0, window)`), this keeps a floor: a retry
/// never fires immediately after a failure, and successive delays grow until the cap, while
/// retries from many processes still spread out.
pub(crate) fn retry_delay(attempt: u32, initial: Duration, max: Duration, random: u64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let window = initial.saturating_mul(1_u32 << exponent).min(max);
    let half = window / 2;
    let half_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(random % half_nanos)
}

/// A random number for jitter, from the standard library's randomly keyed hasher.
pub(crate) fn jitter_random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x5eed);
    hasher.finish()
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_paces() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(RateLimit { count: 2, per: Duration::from_secs(1) }, start);
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        let ready = bucket.ready_at(start);
        assert_eq!(ready.duration_since(start), Duration::from_millis(500));
        assert!(bucket.try_take(ready));
    }

    #[test]
    fn retry_delays_grow_until_the_cap_whatever_the_jitter() {
        let initial = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        for random in [0, 1, u64::MAX / 3, u64::MAX] {
            let delays: Vec<Duration> =
                (1..=12).map(|attempt| retry_delay(attempt, initial, max, random)).collect();
            for pair in delays.windows(2).take(8) {
                assert!(pair[1] > pair[0], "{delays:?}");
            }
            assert!(
                delays.iter().all(|delay| *delay >= Duration::from_millis(500) && *delay < max),
                "{delays:?}"
            );
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Thu, 26 Nov 2026 10:00:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Thu, 26 Nov 2026 09:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
