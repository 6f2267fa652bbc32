//! Portal users: sign-in identities with a role per tenant. Passwords are argon2 hashes.

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash, PasswordVerifier};

use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::email::Email;
use crate::error::{CoreError, CoreResult};
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::link::LinkProblem;
use crate::secret::SecretBox;
use crate::session::{random_token, token_hash};
use crate::store::{self, Tx, email_verifications::EmailVerificationRow, now, users::UserRow};

/// How long a new account's confirmation link works.
pub const VERIFICATION_LIFETIME: time::Duration = time::Duration::days(2);

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
}

/// The shortest password accepted.
const MIN_PASSWORD_CHARS: usize = 10;

/// Refuse a password too short to keep, before any hashing is spent on it.
pub fn check_new_password(password: &str) -> CoreResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CoreError::invalid(
            "password",
            "must be at least 10 characters",
        ));
    }
    Ok(())
}

fn hash_now(password: &str) -> CoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::invalid("password", e))
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of nothing anyone knows, checked when an address has no password, so a sign-in
/// for an unknown address takes as long as one for a real account.
fn stand_in_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        hash_now(&crate::session::random_token()).expect("hashing a random token succeeds")
    })
}

/// Queue the email that confirms `user`'s address, with a single-use link made by `url`.
pub(crate) async fn send_verification(
    tx: &mut Tx,
    secrets: &SecretBox,
    tenant: TenantId,
    user: &UserRow,
    tenant_name: &str,
    url: &(dyn Fn(&str) -> String + Sync),
) -> CoreResult<()> {
    let token = random_token();
    let created_at = now();
    let row = EmailVerificationRow {
        token_hash: token_hash(&token),
        user_id: user.id,
        created_at,
        expires_at: created_at + VERIFICATION_LIFETIME,
        used_at: None,
    };
    store::email_verifications::insert(tx, &row).await?;
    let body = format!(
        "Someone (we hope you) signed up {tenant_name} on Lineup with this address.\n\n\
         Confirm it here to finish signing up (the link works once, for two days):\n\n{}\n\n\
         If it was not you, ignore this email: the account stays locked.\n",
        url(&token)
    );
    crate::mail::queue(
        tx,
        secrets,
        tenant,
        &user.email,
        "Confirm your email for Lineup",
        &body,
    )
    .await?;
    Ok(())
}

/// Someone tried to sign up with the address of an existing account: nothing is created,
/// and the account's owner hears of it (through the first organisation they belong to,
/// whose outbox carries the email; an account in none is told nothing).
pub(crate) async fn tell_of_sign_up_attempt(
    tx: &mut Tx,
    secrets: &SecretBox,
    existing: &UserRow,
    organisation: &str,
) -> CoreResult<()> {
    let Some(&tenant) = store::users::tenants_of(tx, existing.id).await?.first() else {
        return Ok(());
    };
    let organisation = organisation.trim();
    let body = format!(
        "Someone tried to sign up a new organisation ({organisation:?}) on Lineup with your \
         address. Your account already exists, so nothing was created and nothing changed.\n\n\
         If it was you: sign in to your organisation instead, or use \"Forgot your password?\" \
         on its sign-in page. If it was not, you need do nothing.\n"
    );
    crate::mail::queue(
        tx,
        secrets,
        tenant,
        &existing.email,
        "Someone tried to sign up with your address",
        &body,
    )
    .await?;
    let event = AuditEvent::new(
        tenant,
        &Actor::System,
        "user.sign_up_refused",
        ("user", existing.id.to_string()),
        None,
        Some(serde_json::json!({ "organisation": organisation })),
    );
    record(tx, &event).await?;
    Ok(())
}

impl Lineup {
    /// Confirm an account's email through the link sent at sign-up, opened on `tenant`'s
    /// portal (where the account is a member).
    pub async fn verify_email(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> CoreResult<Result<(), LinkProblem>> {
        let hash = token_hash(token);
        // Accounts are global; the link is checked against its member tenant below.
        let mut tx = self.store().system().await?;
        let row = store::email_verifications::find(&mut tx, &hash).await?;
        let at = now();
        let row = match row {
            None => return Ok(Err(LinkProblem::Unknown)),
            Some(r) if r.used_at.is_some() => return Ok(Err(LinkProblem::Used)),
            Some(r) if r.expires_at <= at => return Ok(Err(LinkProblem::Expired)),
            Some(r) => r,
        };
        if store::users::role_in(&mut tx, tenant, row.user_id)
            .await?
            .is_none()
        {
            return Ok(Err(LinkProblem::Unknown));
        }
        if !store::email_verifications::mark_used(&mut tx, &hash, at).await? {
            return Ok(Err(LinkProblem::Used));
        }
        store::users::mark_email_verified(&mut tx, row.user_id, at).await?;
        let event = AuditEvent::new(
            tenant,
            &Actor::User(row.user_id),
            "user.email_verified",
            ("user", row.user_id.to_string()),
            None,
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Hash a new password (after checking it is long enough) off the async threads.
    pub async fn hash_password(&self, password: &str) -> CoreResult<String> {
        check_new_password(password)?;
        let password = password.to_owned();
        self.run_hashing(move || hash_now(&password)).await
    }

    /// Whether `password` matches `hash`, checked off the async threads. Without a hash the
    /// same work is done against a stand-in and the answer is no.
    pub async fn verify_password(&self, password: &str, hash: Option<&str>) -> bool {
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        self.run_hashing(move || match hash {
            Some(hash) => verify_now(&password, &hash),
            None => {
                verify_now(&password, stand_in_hash());
                false
            }
        })
        .await
    }
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
        let password_hash = self.hash_password(password).await?;
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
                    // Accounts an admin adds (and seeded demo users) are trusted as given.
                    email_verified_at: Some(now()),
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
        let hash = hash_now("correct horse battery").unwrap();
        assert!(verify_now("correct horse battery", &hash));
        assert!(!verify_now("wrong horse battery", &hash));
        assert!(check_new_password("short").is_err());
        assert!(!verify_now("anything", stand_in_hash()));
    }
}
