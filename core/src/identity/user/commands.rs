//! User commands: hash and verify passwords off the async threads, confirm an email
//! address, and add a user to a tenant.

use super::*;
use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::email_address::Email;
use crate::error::CoreResult;
use crate::identity::link::LinkProblem;
use crate::identity::session::token_hash;
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::store::{self, now, users::UserRow};

impl Lineup {
    /// Hash a new password (after checking it is long enough) off the async threads.
    pub async fn hash_password(&self, password: &str) -> CoreResult<String> {
        check_new_password(password)?;
        let password = password.to_owned();
        self.password_hashing()
            .run(move |memory| hash_now(&password, memory))
            .await
    }

    /// Whether `password` matches `hash`, checked off the async threads. Without a hash the
    /// same work is done against a stand-in and the answer is no.
    pub async fn verify_password(&self, password: &str, hash: Option<&str>) -> bool {
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        self.password_hashing()
            .run(move |memory| match hash {
                Some(hash) => verify_now(&password, &hash, memory),
                None => {
                    let stand_in = stand_in_hash(memory);
                    verify_now(&password, stand_in, memory);
                    false
                }
            })
            .await
    }
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
