//! Memory of the inbound requests already handled (Slack `event_id`s and request signatures,
//! Discord signatures, Teams activity ids), so a platform's redelivery or a replay is
//! acknowledged without being handled twice. [`SeenIds`] is the seam: the server uses
//! [`lineup_core::Lineup`], which keeps the ids in the database every replica shares;
//! [`TtlDedupe`] keeps them in this process, for route tests and benchmarks without a store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// Remembering failed (the database is unreachable): the request must be neither handled
/// (it may be a replay) nor dropped (it may be new), so the route answers 5xx and the
/// platform retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checking whether the request was already handled failed: {0}")]
pub struct SeenIdsError(pub String);

/// Where handled ids are remembered.
#[async_trait]
pub trait SeenIds: Send + Sync + 'static {
    /// True the first time `key` (scope and id, e.g. `slack_event:Ev123`) is offered within
    /// `remember_for`, false while it is remembered.
    async fn first_time(&self, key: &str, remember_for: Duration) -> Result<bool, SeenIdsError>;
}

#[async_trait]
impl SeenIds for lineup_core::Lineup {
    async fn first_time(&self, key: &str, remember_for: Duration) -> Result<bool, SeenIdsError> {
        let remember_for = time::Duration::try_from(remember_for)
            .map_err(|e| SeenIdsError(format!("{remember_for:?}: {e}")))?;
        self.first_time_inbound(key, remember_for)
            .await
            .map_err(|e| SeenIdsError(e.to_string()))
    }
}

/// Ids remembered in this process, at most `max` of them: past that the expired ones go,
/// then the oldest. Enough for one process; replicas share [`lineup_core::Lineup`]'s.
pub struct TtlDedupe {
    max: usize,
    /// Each id with when it is forgotten.
    seen: Mutex<HashMap<String, Instant>>,
}

impl TtlDedupe {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The synchronous check behind [`SeenIds::first_time`].
    pub fn first_time_now(&self, id: &str, remember_for: Duration) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().expect("dedupe lock");
        if seen.get(id).is_some_and(|until| now < *until) {
            return false;
        }
        if seen.len() >= self.max {
            seen.retain(|_, until| now < *until);
            while seen.len() >= self.max {
                let Some(soonest) = seen
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                seen.remove(&soonest);
            }
        }
        seen.insert(id.to_string(), now + remember_for);
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
    async fn first_time(&self, key: &str, remember_for: Duration) -> Result<bool, SeenIdsError> {
        Ok(self.first_time_now(key, remember_for))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_new_once_until_its_time_to_live_passes() {
        let d = TtlDedupe::new(10);
        let ttl = Duration::from_millis(30);
        assert!(d.first_time_now("Ev1", ttl));
        assert!(!d.first_time_now("Ev1", ttl));
        assert!(d.first_time_now("Ev2", ttl));
        std::thread::sleep(Duration::from_millis(40));
        assert!(d.first_time_now("Ev1", ttl));
    }

    #[test]
    fn the_memory_stays_bounded_by_forgetting_the_oldest() {
        let d = TtlDedupe::new(2);
        let ttl = Duration::from_secs(60);
        assert!(d.first_time_now("a", ttl));
        std::thread::sleep(Duration::from_millis(2));
        assert!(d.first_time_now("b", ttl));
        std::thread::sleep(Duration::from_millis(2));
        assert!(d.first_time_now("c", ttl));
        assert_eq!(d.len(), 2);
        assert!(!d.first_time_now("c", ttl));
        assert!(!d.first_time_now("b", ttl));
        assert!(d.first_time_now("a", ttl), "the oldest was forgotten");
    }

    #[tokio::test]
    async fn the_store_seam_answers_like_the_memory() {
        let store: Box<dyn SeenIds> = Box::new(TtlDedupe::new(10));
        let ttl = Duration::from_secs(60);
        assert_eq!(store.first_time("activity-1", ttl).await, Ok(true));
        assert_eq!(store.first_time("activity-1", ttl).await, Ok(false));
    }
}
