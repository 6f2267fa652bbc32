//! Portal users: sign-in identities with a role per tenant. Passwords are argon2 hashes.

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash, PasswordVerifier};

use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::email::Email;
use crate::error::{CoreError, CoreResult};
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::store::{self, now, users::UserRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Finance,
    Manager,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Finance => "finance",
            Self::Manager => "manager",
            Self::Viewer => "viewer",
        }
    }

    pub const ALL: [Role; 5] = [
        Self::Owner,
        Self::Admin,
        Self::Finance,
        Self::Manager,
        Self::Viewer,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may see a line's activation code (the roles that manage lines).
    /// The portal's permission table and the reveal command both ask this.
    pub fn reveals_activation_codes(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

pub fn hash_password(password: &str) -> CoreResult<String> {
    if password.chars().count() < 10 {
        return Err(CoreError::invalid(
            "password",
            "must be at least 10 characters",
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::invalid("password", e))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Lineup {
    /// Create a user (or reuse the one with this email) and give them `role` in `tenant`.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_user(
        &self,
        tenant: TenantId,
        actor: &Actor,
        email: &Email,
        name: &str,
        password: &str,
        role: Role,
        employee: Option<EmployeeId>,
    ) -> CoreResult<UserId> {
        let password_hash = hash_password(password)?;
        let mut tx = self.store().system().await?;
        let user = match store::users::find_by_email(&mut tx, email.as_str()).await? {
            Some(existing) => existing,
            None => {
                let user = UserRow {
                    id: UserId::new(),
                    email: email.to_string(),
                    name: name.to_owned(),
                    password_hash: Some(password_hash),
                    created_at: now(),
                };
                store::users::insert(&mut tx, &user).await?;
                user
            }
        };
        store::users::add_membership(&mut tx, tenant, user.id, role.as_str()).await?;
        if let Some(employee) = employee {
            store::users::link_employee(&mut tx, tenant, user.id, employee).await?;
        }
        let event = AuditEvent::new(
            tenant,
            actor,
            "membership.created",
            ("user", user.id.to_string()),
            None,
            Some(serde_json::json!({ "email": email, "role": role })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(user.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(hash_password("short").is_err());
    }
}
