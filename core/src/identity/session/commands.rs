//! Session commands: sign in with a password, open, look up and end sessions, and delete
//! expired ones.

use time::OffsetDateTime;

use super::*;
use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::email_address::Email;
use crate::error::{CoreError, CoreResult};
use crate::ids::{TenantId, UserId};
use crate::store::{self, now, sessions::SessionRow};

impl Lineup {
    /// Check a password sign-in for `tenant` and open a session. An unknown address costs
    /// the same Argon2 work as a known one and gets the same answer as a wrong password; an
    /// account whose address is not confirmed yet is told so only once its password was right.
    pub async fn sign_in_with_password(
        &self,
        tenant: TenantId,
        email: &str,
        password: &str,
    ) -> CoreResult<NewSession> {
        let email = Email::parse(email).map_err(|e| CoreError::invalid("email", e))?;
        let user = {
            let mut tx = self.store().system_read().await?;
            store::users::find_by_email(&mut tx, email.as_str()).await?
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        if !self.verify_password(password, hash).await {
            return Err(CoreError::NotAuthorised(BAD_CREDENTIALS.into()));
        }
        let Some(user) = user else {
            return Err(CoreError::NotAuthorised(BAD_CREDENTIALS.into()));
        };
        if user.email_verified_at.is_none() {
            return Err(CoreError::NotAuthorised(UNVERIFIED.into()));
        }
        self.open_session(tenant, user.id, "password").await
    }

    /// Open a session for a user already authenticated some way (password, single sign-on,
    /// an accepted invite). Refused when they are not a member of `tenant`.
    pub async fn open_session(
        &self,
        tenant: TenantId,
        user: UserId,
        method: &str,
    ) -> CoreResult<NewSession> {
        let token = random_token();
        let created_at = now();
        let row = SessionRow {
            token_hash: token_hash(&token),
            user_id: user,
            csrf_token: random_token(),
            created_at,
            expires_at: created_at + SESSION_LIFETIME,
        };
        let mut tx = self.tenant_tx(tenant).await?;
        if store::users::role_in(&mut tx, tenant, user)
            .await?
            .is_none()
        {
            return Err(CoreError::NotAuthorised(BAD_CREDENTIALS.into()));
        }
        store::sessions::delete_expired(&mut tx, tenant, created_at).await?;
        store::sessions::insert(&mut tx, tenant, &row).await?;
        let event = AuditEvent::new(
            tenant,
            &Actor::User(user),
            "session.signed_in",
            ("user", user.to_string()),
            None,
            Some(serde_json::json!({ "method": method, "expires_at": row.expires_at })),
        );
        record(&mut tx, &event).await?;
        let session = store::sessions::holder(&mut tx, tenant, &row.token_hash, created_at)
            .await?
            .ok_or_else(|| CoreError::not_found("session", "just created"))?;
        tx.commit().await?;
        Ok(NewSession {
            token,
            session: into_session(tenant, session)?,
        })
    }

    /// The live session behind a cookie token, if any.
    pub async fn session(&self, tenant: TenantId, token: &str) -> CoreResult<Option<Session>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let holder = store::sessions::holder(&mut tx, tenant, &token_hash(token), now()).await?;
        holder.map(|h| into_session(tenant, h)).transpose()
    }

    /// Delete every tenant's expired sessions (the worker's sweep; signing in also clears the
    /// tenant's). They already sign nobody in, so this is housekeeping, not a change anyone
    /// made: no audit event. Returns how many were deleted.
    pub async fn delete_expired_sessions(&self, now: OffsetDateTime) -> CoreResult<u64> {
        let tenants = {
            let mut tx = self.store().system_read().await?;
            store::jobs::list_tenants(&mut tx).await?
        };
        let mut deleted = 0;
        for tenant in tenants {
            let mut tx = self.tenant_tx(tenant).await?;
            deleted += store::sessions::delete_expired(&mut tx, tenant, now).await?;
            tx.commit().await?;
        }
        Ok(deleted)
    }

    pub async fn sign_out(&self, tenant: TenantId, token: &str) -> CoreResult<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        let hash = token_hash(token);
        if let Some(holder) = store::sessions::holder(&mut tx, tenant, &hash, now()).await? {
            store::sessions::delete(&mut tx, tenant, &hash).await?;
            let event = AuditEvent::new(
                tenant,
                &Actor::User(holder.user_id),
                "session.signed_out",
                ("user", holder.user_id.to_string()),
                None,
                None,
            );
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
