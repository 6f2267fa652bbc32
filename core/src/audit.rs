//! The append-only audit log: who did what to which subject, with before and after.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::ids::{AuditEventId, EmployeeId, TenantId, UserId};

/// Who caused a change. Stored as text: `user:<id>`, `employee:<id>`, `system`, `provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Actor {
    User(UserId),
    Employee(EmployeeId),
    System,
    Provider,
}

impl Actor {
    pub fn to_text(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Employee(id) => format!("employee:{id}"),
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

pub mod queries {
    use crate::app::Lineup;
    use crate::error::CoreResult;
    use crate::ids::TenantId;
    use crate::store;

    impl Lineup {
        /// A person's name for a stored actor (`employee:<id>`, `user:<id>`); other actors
        /// (`system`, `provider`, `policy`) as they are.
        pub async fn actor_name(&self, tenant: TenantId, actor: &str) -> CoreResult<String> {
            let mut tx = self.tenant_tx(tenant).await?;
            if let Some(id) = actor.strip_prefix("employee:").and_then(|i| i.parse().ok()) {
                let person = store::employees::get(&mut tx, tenant, id).await?;
                return Ok(person.map_or_else(|| "a former employee".into(), |p| p.full_name()));
            }
            if let Some(id) = actor.strip_prefix("user:").and_then(|i| i.parse().ok()) {
                let name = store::users::member_name(&mut tx, tenant, id).await?;
                return Ok(name.unwrap_or_else(|| "a former portal member".into()));
            }
            Ok(actor.to_owned())
        }
    }
}
