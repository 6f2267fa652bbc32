//! Member commands and queries: list members and pending invites, change or remove a member
//! (guarding the last owner), invite by email and accept an invite.

use super::*;
use crate::app::{Lineup, record, required};
use crate::audit::{Actor, AuditEvent};
use crate::email_address::Email;
use crate::error::{CoreError, CoreResult};
use crate::identity::link::{self, LinkProblem, NewLink, Purpose};
use crate::identity::session::NewSession;
use crate::identity::user::Role;
use crate::ids::{TenantId, UserId};
use crate::person_name::PersonName;
use crate::store::{self, now, users::UserRow};

impl Lineup {
    pub async fn members(&self, tenant: TenantId) -> CoreResult<Vec<Member>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let rows = store::users::members(&mut tx, tenant).await?;
        rows.into_iter().map(into_member).collect()
    }

    pub async fn pending_invites(&self, tenant: TenantId) -> CoreResult<Vec<PendingInvite>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let rows = store::user_tokens::pending_invites(&mut tx, tenant, now()).await?;
        rows.into_iter()
            .map(|r| {
                Ok(PendingInvite {
                    role: parse_role(r.role.as_deref().unwrap_or_default())?,
                    email: r.email,
                    expires_at: r.expires_at,
                })
            })
            .collect()
    }

    /// Change a member's role and linked employee record.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
    pub async fn update_member(
        &self,
        tenant: TenantId,
        actor: UserId,
        user: UserId,
        role: Role,
        employee: Option<&Email>,
    ) -> CoreResult<Member> {
        let mut tx = self.tenant_tx(tenant).await?;
        let before = required(
            store::users::member(&mut tx, tenant, user).await?,
            "member",
            user,
        )?;
        let before = into_member(before)?;
        let acting = role_of(&mut tx, tenant, actor).await?;
        let touches_owner = role == Role::Owner || before.role == Role::Owner;
        if touches_owner && role != before.role && acting != Role::Owner {
            return Err(CoreError::NotAuthorised(ONLY_OWNERS.into()));
        }
        if before.role == Role::Owner && role != Role::Owner {
            ensure_not_last_owner(&mut tx, tenant, &before, "demoted").await?;
        }
        let employee = employee_by_email(&mut tx, tenant, employee).await?;
        store::users::update_membership(&mut tx, tenant, user, role.as_str(), employee).await?;
        let event = AuditEvent::new(
            tenant,
            &Actor::User(actor),
            "membership.updated",
            ("user", user.to_string()),
            Some(serde_json::json!({ "role": before.role, "employee_id": before.employee_id })),
            Some(serde_json::json!({ "role": role, "employee_id": employee })),
        );
        record(&mut tx, &event).await?;
        let after = store::users::member(&mut tx, tenant, user).await?;
        tx.commit().await?;
        into_member(required(after, "member", user)?)
    }

    /// Take away a member's access to this tenant and end their sessions here.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
    pub async fn remove_member(
        &self,
        tenant: TenantId,
        actor: UserId,
        user: UserId,
    ) -> CoreResult<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        let member = required(
            store::users::member(&mut tx, tenant, user).await?,
            "member",
            user,
        )?;
        let member = into_member(member)?;
        if member.role == Role::Owner {
            if role_of(&mut tx, tenant, actor).await? != Role::Owner {
                return Err(CoreError::NotAuthorised(ONLY_OWNERS.into()));
            }
            ensure_not_last_owner(&mut tx, tenant, &member, "removed").await?;
        }
        let sessions = store::sessions::delete_for_user(&mut tx, tenant, user).await?;
        store::users::remove_membership(&mut tx, tenant, user).await?;
        let event = AuditEvent::new(
            tenant,
            &Actor::User(actor),
            "membership.removed",
            ("user", user.to_string()),
            Some(serde_json::json!({ "email": member.email, "role": member.role })),
            Some(serde_json::json!({ "sessions_ended": sessions })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Invite `invite.email` with a role: an emailed single-use link, valid for
    /// [`INVITE_LIFETIME`], replacing any earlier pending invite of the address. `link` turns
    /// the token into the URL the email carries.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn invite_member(
        &self,
        tenant: TenantId,
        actor: UserId,
        invite: NewInvite,
        link: &(dyn Fn(&str) -> String + Sync),
    ) -> CoreResult<()> {
        let secrets = self.secrets()?.clone();
        let mut tx = self.tenant_tx(tenant).await?;
        if invite.role == Role::Owner && role_of(&mut tx, tenant, actor).await? != Role::Owner {
            return Err(CoreError::NotAuthorised(ONLY_OWNERS.into()));
        }
        let email = invite.email.as_str();
        if store::users::member_by_email(&mut tx, tenant, email)
            .await?
            .is_some()
        {
            return Err(CoreError::invalid(
                "email",
                format!("{email} is already a member"),
            ));
        }
        let employee = employee_by_email(&mut tx, tenant, invite.employee.as_ref()).await?;
        let tenant_name = required(
            store::tenants::get(&mut tx, tenant).await?,
            "tenant",
            tenant,
        )?
        .name;
        let role = invite.role.as_str();
        let new_link = NewLink {
            purpose: Purpose::Invite,
            email,
            grant: (Some(role), employee),
            created_by: Actor::User(actor).to_text(),
            lifetime: INVITE_LIFETIME,
        };
        let subject = format!("Join {tenant_name} on Lineup");
        link::send(&mut tx, &secrets, tenant, new_link, link, &subject, |url| {
            format!(
                "You have been invited to {tenant_name} on Lineup as {role}.\n\n\
                 Accept the invite here (the link works once, for 7 days):\n\n{url}\n\n\
                 If you were not expecting this, ignore this email.\n"
            )
        })
        .await?;
        let event = AuditEvent::new(
            tenant,
            &Actor::User(actor),
            "invite.sent",
            ("invite", email.to_owned()),
            None,
            Some(serde_json::json!({ "role": invite.role, "employee_id": employee })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// What an invite link offers, or why it cannot be used.
    pub async fn invitation(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> CoreResult<Result<Invitation, LinkProblem>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let grant = match link::inspect(&mut tx, tenant, Purpose::Invite, token).await? {
            Ok(grant) => grant,
            Err(problem) => return Ok(Err(problem)),
        };
        // An unconfirmed account is not theirs to confirm with a password: whoever made it
        // may not own the address. Accepting (which proves they read it) replaces it.
        let has_account = store::users::find_by_email(&mut tx, &grant.email)
            .await?
            .is_some_and(|u| u.email_verified_at.is_some());
        Ok(Ok(Invitation {
            role: parse_role(grant.role.as_deref().unwrap_or_default())?,
            email: grant.email,
            has_account,
        }))
    }

    /// Accept an invite: create the account (or check the existing one's password), add the
    /// membership, use up the link, and sign the person in. An account made with this
    /// address but never confirmed (perhaps by someone else) is taken over: the invited
    /// person's name and password replace its own, and the address counts as confirmed.
    pub async fn accept_invite(
        &self,
        tenant: TenantId,
        token: &str,
        acceptance: Acceptance,
    ) -> CoreResult<Result<NewSession, LinkProblem>> {
        // The link first (no Argon2 work for a made-up token), then the password checks,
        // outside the transaction that uses the link up.
        let email = {
            let mut tx = self.tenant_tx(tenant).await?;
            match link::inspect(&mut tx, tenant, Purpose::Invite, token).await? {
                Ok(grant) => grant.email,
                Err(problem) => return Ok(Err(problem)),
            }
        };
        let existing = {
            let mut tx = self.store().system_read().await?;
            store::users::find_by_email(&mut tx, &email).await?
        };
        let confirmed = existing.as_ref().filter(|u| u.email_verified_at.is_some());
        let new_account = match (confirmed, acceptance) {
            (Some(user), Acceptance::ExistingAccount { password }) => {
                let hash = user.password_hash.as_deref();
                if !self.verify_password(&password, hash).await {
                    return Err(CoreError::NotAuthorised(
                        "that is not the password of this Lineup account".into(),
                    ));
                }
                None
            }
            (None, Acceptance::NewAccount { name, password }) => {
                let name = PersonName::parse(&name).map_err(|e| CoreError::invalid("name", e))?;
                Some((String::from(name), self.hash_password(&password).await?))
            }
            (Some(_), Acceptance::NewAccount { .. }) => {
                return Err(CoreError::invalid(
                    "password",
                    "this address already has a Lineup account: sign in with its password",
                ));
            }
            (None, Acceptance::ExistingAccount { .. }) => {
                return Err(CoreError::invalid(
                    "name",
                    "choose a name and password for your new account",
                ));
            }
        };
        let mut tx = self.tenant_tx(tenant).await?;
        let grant = match link::redeem(&mut tx, tenant, Purpose::Invite, token).await? {
            Ok(grant) => grant,
            Err(problem) => return Ok(Err(problem)),
        };
        let at = now();
        let mut replaced_unconfirmed = false;
        let user = match (existing, new_account) {
            (Some(user), None) => user.id,
            (Some(unconfirmed), Some((name, hash))) => {
                if !store::users::claim_unverified(&mut tx, unconfirmed.id, &name, &hash, at)
                    .await?
                {
                    return Err(CoreError::Conflict(
                        "this account was confirmed meanwhile: sign in with its password".into(),
                    ));
                }
                replaced_unconfirmed = true;
                unconfirmed.id
            }
            (None, Some((name, hash))) => {
                let user = UserRow {
                    id: UserId::new(),
                    email: grant.email.clone(),
                    name,
                    password_hash: Some(hash),
                    created_at: at,
                    // The invite reached the mailbox.
                    email_verified_at: Some(at),
                };
                store::users::insert(&mut tx, &user).await?;
                user.id
            }
            (None, None) => {
                return Err(CoreError::Conflict(
                    "this account disappeared meanwhile; open the invite again".into(),
                ));
            }
        };
        let role = parse_role(grant.role.as_deref().unwrap_or_default())?;
        if store::users::role_in(&mut tx, tenant, user)
            .await?
            .is_none()
        {
            store::users::add_membership(&mut tx, tenant, user, role.as_str()).await?;
            if let Some(employee) = grant.employee_id {
                store::users::link_employee(&mut tx, tenant, user, employee).await?;
            }
        }
        let event = AuditEvent::new(
            tenant,
            &Actor::User(user),
            "invite.accepted",
            ("user", user.to_string()),
            None,
            Some(serde_json::json!({
                "email": grant.email,
                "role": role,
                "employee_id": grant.employee_id,
                "replaced_unconfirmed_account": replaced_unconfirmed,
            })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        self.open_session(tenant, user, "invite").await.map(Ok)
    }
}
