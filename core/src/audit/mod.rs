//! The append-only audit log: who did what to which subject, with before and after.

pub mod commands;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::ids::{AuditEventId, EmployeeId, TenantId, UserId};

/// Who caused a change. Stored as text: `user:<id>`, `employee:<id>`, `scim:<token name>`,
/// `system`, `provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Actor {
    User(UserId),
    Employee(EmployeeId),
    /// An identity provider pushing people over SCIM, named by its token's name.
    Scim(String),
    System,
    Provider,
}

impl Actor {
    pub fn to_text(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Employee(id) => format!("employee:{id}"),
            Self::Scim(token) => format!("scim:{token}"),
            Self::System => "system".to_owned(),
            Self::Provider => "provider".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub tenant_id: TenantId,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub at: OffsetDateTime,
}

impl AuditEvent {
    pub fn new(
        tenant_id: TenantId,
        actor: &Actor,
        action: &str,
        subject: (&str, String),
        before: Option<Value>,
        after: Option<Value>,
    ) -> Self {
        Self {
            id: AuditEventId::new(),
            tenant_id,
            actor: actor.to_text(),
            action: action.to_owned(),
            subject_type: subject.0.to_owned(),
            subject_id: subject.1,
            before,
            after,
            at: crate::store::now(),
        }
    }
}

/// One field that differs between an event's before and after, as short text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Longest value shown for a changed field; the CSV export carries the whole JSON.
const CHANGE_TEXT_LIMIT: usize = 80;

/// The top-level fields that differ between `before` and `after` (a creation lists every
/// field of `after`); values that are not objects compare as one field named `value`.
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<Change> {
    let fields = |v: Option<&Value>| -> Vec<(String, Value)> {
        match v {
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => vec![("value".to_owned(), other.clone())],
        }
    };
    let (before, after) = (fields(before), fields(after));
    let find = |list: &[(String, Value)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut keys: Vec<&String> = before.iter().chain(after.iter()).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (old, new) = (find(&before, key), find(&after, key));
            (old != new).then(|| Change {
                field: key.clone(),
                before: old.map(|v| short_text(&v)),
                after: new.map(|v| short_text(&v)),
            })
        })
        .collect()
}

fn short_text(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(CHANGE_TEXT_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Events per audit log page.
pub const AUDIT_PAGE_SIZE: i64 = 50;

/// One page of the audit log, and where the next (older) one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub older: Option<AuditEventId>,
}

/// What the audit log page filters on; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly, e.g. `user:<id>` or `system`.
    pub actor: Option<String>,
    /// `line.` matches `line.suspended`, `line.terminated`, …
    pub action_prefix: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// Days, both included (UTC).
    pub from: Option<time::Date>,
    pub until: Option<time::Date>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_list_only_the_fields_that_differ() {
        let before = json!({"state": "active", "plan": "US 5GB", "iccid": "8901"});
        let after = json!({"state": "suspended", "plan": "US 5GB", "reason": "lost"});
        let listed = changes(Some(&before), Some(&after));
        let fields: Vec<_> = listed.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["iccid", "reason", "state"]);
        assert_eq!(listed[0].after, None);
        assert_eq!(listed[2].before.as_deref(), Some("active"));
        assert_eq!(listed[2].after.as_deref(), Some("suspended"));

        let created = changes(None, Some(&json!("monthly")));
        assert_eq!(created[0].field, "value");
        let long = "x".repeat(200);
        let cut = changes(None, Some(&json!({ "note": long })));
        assert_eq!(cut[0].after.as_ref().unwrap().chars().count(), 81);
    }
}
