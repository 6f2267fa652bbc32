use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::clock::rfc3339;

const MAX_ENTRIES: usize = 10_000;

/// Every non-`/_sim` request, for tests that assert on what a client actually sent.
#[derive(Default)]
pub struct RequestLog {
    entries: Vec<RequestEntry>,
    next_sequence: u64,
}

pub struct RequestEntry {
    sequence: u64,
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub correlation_id: String,
    pub status: Option<u16>,
    pub fault: Option<String>,
    pub at: OffsetDateTime,
}

impl RequestLog {
    /// Records a request and returns its sequence number for [`RequestLog::set_status`].
    pub fn record(&mut self, mut entry: RequestEntry) -> u64 {
        self.next_sequence += 1;
        entry.sequence = self.next_sequence;
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push(entry);
        self.next_sequence
    }

    pub fn set_status(&mut self, sequence: u64, status: u16) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.sequence == sequence)
        {
            entry.status = Some(status);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn to_json(&self) -> Value {
        self.entries
            .iter()
            .map(|entry| {
                json!({
                    "method": entry.method,
                    "path": entry.path,
                    "idempotency_key": entry.idempotency_key,
                    "correlation_id": entry.correlation_id,
                    "status": entry.status,
                    "fault": entry.fault,
                    "at": rfc3339(entry.at),
                })
            })
            .collect()
    }
}

impl RequestEntry {
    pub fn new(
        method: String,
        path: String,
        idempotency_key: Option<String>,
        correlation_id: String,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            sequence: 0,
            method,
            path,
            idempotency_key,
            correlation_id,
            status: None,
            fault: None,
            at,
        }
    }
}
