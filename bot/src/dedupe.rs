//! Memory of the inbound ids already handled (Slack `event_id`s, Teams activity ids), so a
//! platform's redelivery is acknowledged without being handled twice. [`SeenIds`] is the seam;
//! [`TtlDedupe`] keeps the ids in this process, which is enough for one replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// Where handled ids are remembered.
#[async_trait]
pub trait SeenIds: Send + Sync + 'static {
    /// True the first time `id` is offered within the store's time-to-live, false after.
    async fn first_time(&self, id: &str) -> bool;
}

/// Ids remembered in memory for `ttl`, at most `max` of them: past that the expired ones go,
/// then the oldest.
pub struct TtlDedupe {
    ttl: Duration,
    max: usize,
    seen: Mutex<HashMap<String, Instant>>,
}

impl TtlDedupe {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The synchronous check behind [`SeenIds::first_time`].
    pub fn first_time_now(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().expect("dedupe lock");
        if let Some(at) = seen.get(id)
            && now.duration_since(*at) < self.ttl
        {
            return false;
        }
        if seen.len() >= self.max {
            seen.retain(|_, at| now.duration_since(*at) < self.ttl);
            while seen.len() >= self.max {
                let Some(oldest) = seen
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                seen.remove(&oldest);
            }
        }
        seen.insert(id.to_string(), now);
        true
    }

    pub fn len(&self) -> usize {
        self.seen.lock().expect("dedupe lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SeenIds for TtlDedupe {
    async fn first_time(&self, id: &str) -> bool {
        self.first_time_now(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_new_once_until_its_time_to_live_passes() {
        let d = TtlDedupe::new(Duration::from_millis(30), 10);
        assert!(d.first_time_now("Ev1"));
        assert!(!d.first_time_now("Ev1"));
        assert!(d.first_time_now("Ev2"));
        std::thread::sleep(Duration::from_millis(40));
        assert!(d.first_time_now("Ev1"));
    }

    #[test]
    fn the_memory_stays_bounded_by_forgetting_the_oldest() {
        let d = TtlDedupe::new(Duration::from_secs(60), 2);
        assert!(d.first_time_now("a"));
        std::thread::sleep(Duration::from_millis(2));
        assert!(d.first_time_now("b"));
        std::thread::sleep(Duration::from_millis(2));
        assert!(d.first_time_now("c"));
        assert_eq!(d.len(), 2);
        assert!(!d.first_time_now("c"));
        assert!(!d.first_time_now("b"));
        assert!(d.first_time_now("a"), "the oldest was forgotten");
    }

    #[tokio::test]
    async fn the_store_seam_answers_like_the_memory() {
        let store: Box<dyn SeenIds> = Box::new(TtlDedupe::new(Duration::from_secs(60), 10));
        assert!(store.first_time("activity-1").await);
        assert!(!store.first_time("activity-1").await);
    }
}
