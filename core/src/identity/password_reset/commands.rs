//! Password reset commands: request the emailed link, check it, and set the new password.

use super::*;
use crate::app::{Lineup, record, required};
use crate::audit::{Actor, AuditEvent};
use crate::email_address::Email;
use crate::error::CoreResult;
use crate::identity::link::{self, LinkProblem, NewLink, Purpose};
use crate::identity::session::NewSession;
use crate::ids::TenantId;
use crate::store;

impl Lineup {
    /// Email a reset link when `email` belongs to a member of `tenant`; otherwise do nothing,
    /// so the caller can answer the same either way.
    pub async fn request_password_reset(
        &self,
        tenant: TenantId,
        email: &str,
        link: &(dyn Fn(&str) -> String + Sync),
    ) -> CoreResult<()> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let secrets = self.secrets()?.clone();
        let mut tx = self.tenant_tx(tenant).await?;
        let Some(member) = store::users::member_by_email(&mut tx, tenant, email.as_str()).await?
        else {
            return Ok(());
        };
        let tenant_name = required(
            store::tenants::get(&mut tx, tenant).await?,
            "tenant",
            tenant,
        )?
        .name;
        let new_link = NewLink {
            purpose: Purpose::PasswordReset,
            email: email.as_str(),
            grant: (None, None),
            created_by: Actor::User(member.user_id).to_text(),
            lifetime: RESET_LIFETIME,
        };
        let subject = "Reset your Lineup password";
        link::send(&mut tx, &secrets, tenant, new_link, link, subject, |url| {
            format!(
                "Someone asked to reset the Lineup password for {email} at {tenant_name}.\n\n\
                 Choose a new password here (the link works once, for one hour):\n\n{url}\n\n\
                 If it was not you, ignore this email: your password stays as it is.\n"
            )
        })
        .await?;
        let event = AuditEvent::new(
            tenant,
            &Actor::User(member.user_id),
            "password.reset_requested",
            ("user", member.user_id.to_string()),
            None,
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a reset link can still be used.
    pub async fn check_password_reset(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> CoreResult<Result<(), LinkProblem>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(
            link::inspect(&mut tx, tenant, Purpose::PasswordReset, token)
                .await?
                .map(|_| ()),
        )
    }

    /// Set a new password through a reset link, end every session the person has (in every
    /// organisation: the password is theirs, not the tenant's), and sign them in here.
    pub async fn reset_password(
        &self,
        tenant: TenantId,
        token: &str,
        new_password: &str,
    ) -> CoreResult<Result<NewSession, LinkProblem>> {
        // The link first: a made-up token costs no Argon2 work.
        if let Err(problem) = self.check_password_reset(tenant, token).await? {
            return Ok(Err(problem));
        }
        let hash = self.hash_password(new_password).await?;
        // A person's sessions live under each of their tenants: this spans tenants.
        let mut tx = self.store().system().await?;
        let grant = match link::redeem(&mut tx, tenant, Purpose::PasswordReset, token).await? {
            Ok(grant) => grant,
            Err(problem) => return Ok(Err(problem)),
        };
        let member = store::users::member_by_email(&mut tx, tenant, &grant.email).await?;
        let Some(member) = member else {
            return Ok(Err(LinkProblem::Unknown));
        };
        store::users::set_password(&mut tx, member.user_id, &hash).await?;
        // The link reached the mailbox: that confirms the address too.
        store::users::mark_email_verified(&mut tx, member.user_id, store::now()).await?;
        let mut sessions_ended = 0;
        for each in store::users::tenants_of(&mut tx, member.user_id).await? {
            sessions_ended +=
                store::sessions::delete_for_user(&mut tx, each, member.user_id).await?;
        }
        let event = AuditEvent::new(
            tenant,
            &Actor::User(member.user_id),
            "password.reset",
            ("user", member.user_id.to_string()),
            None,
            Some(serde_json::json!({ "sessions_ended": sessions_ended })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        self.open_session(tenant, member.user_id, "password_reset")
            .await
            .map(Ok)
    }
}
