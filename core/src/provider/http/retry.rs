//! When and how long to wait before retrying a call.

use std::time::Duration;

use rand::Rng;

/// Bounds for retrying one call. The same `Idempotency-Key` is sent on every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first; 1 disables retries.
    pub max_attempts: u32,
    /// Back-off cap for the first retry; doubles per attempt (full jitter: uniform in 0..=cap).
    pub base_delay: Duration,
    /// Upper bound for one back-off wait.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not slept through: the call returns
    /// `RateLimited { retry_after }` at once so the caller can reschedule.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter exponential back-off before retry number `attempt` (1-based: the wait
    /// after the first failed attempt is `backoff(1)`).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=cap_ms))
    }

    fn backoff_cap(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before the next attempt: at least the server's `Retry-After` when it gave one.
    pub(crate) fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(attempt);
        retry_after.map_or(backoff, |server| server.max(backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps_and_stays_within_bounds() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
        };
        assert_eq!(policy.backoff_cap(1), Duration::from_millis(100));
        assert_eq!(policy.backoff_cap(3), Duration::from_millis(400));
        assert_eq!(policy.backoff_cap(4), Duration::from_millis(500));
        assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_millis(500));
        for attempt in 1..12 {
            assert!(policy.backoff(attempt) <= policy.backoff_cap(attempt));
        }
        let server = Some(Duration::from_secs(2));
        assert!(policy.wait(1, server) >= Duration::from_secs(2));
    }
}
