use std::collections::HashMap;
use std::time::Instant;

/// Token buckets keyed by (client, route template), refilled continuously.
#[derive(Default)]
pub struct RateLimiter {
    buckets: HashMap<(String, String), Bucket>,
}

struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_s: u64,
    /// Seconds until one more request is allowed.
    pub retry_after_s: u64,
}

impl RateLimiter {
    pub fn check(&mut self, client: &str, route: &str, per_minute: u32) -> RateDecision {
        let capacity = f64::from(per_minute.max(1));
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let bucket = self
            .buckets
            .entry((client.to_string(), route.to_string()))
            .or_insert(Bucket {
                tokens: capacity,
                refilled_at: now,
            });
        let elapsed = now.duration_since(bucket.refilled_at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.refilled_at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        RateDecision {
            allowed,
            limit: per_minute,
            remaining: bucket.tokens.floor() as u32,
            reset_s: ((capacity - bucket.tokens) / per_second).ceil() as u64,
            retry_after_s: ((1.0 - bucket.tokens).max(0.0) / per_second)
                .ceil()
                .max(1.0) as u64,
        }
    }
}
