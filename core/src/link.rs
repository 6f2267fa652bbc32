//! Single-use links sent by email (invites, password resets): a random token in the link,
//! only its hash stored, valid for a while, usable once, and only on the tenant it was made
//! for.

use time::{Duration, OffsetDateTime};

use crate::error::CoreResult;
use crate::ids::{EmployeeId, TenantId};
use crate::session::{random_token, token_hash};
use crate::store::{self, Tx, user_tokens::UserTokenRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Invite,
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// Why a link cannot be used, in words for the person who clicked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkProblem {
    #[error("this link is not valid here; check that you opened the whole link from the email")]
    Unknown,
    #[error("this link has expired; ask for a new one")]
    Expired,
    #[error("this link has already been used; ask for a new one if you still need it")]
    Used,
}

/// What a live link stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkGrant {
    pub email: String,
    pub role: Option<String>,
    pub employee_id: Option<EmployeeId>,
    pub expires_at: OffsetDateTime,
}

/// Make a link for `email`, replacing any unused one of the same purpose; returns the token
/// for the URL (it is never stored).
pub(crate) async fn issue(
    tx: &mut Tx,
    tenant: TenantId,
    purpose: Purpose,
    email: &str,
    grant: (Option<&str>, Option<EmployeeId>),
    created_by: &str,
    lifetime: Duration,
) -> CoreResult<String> {
    store::user_tokens::withdraw_pending(tx, tenant, email, purpose.as_str()).await?;
    let token = random_token();
    let created_at = store::now();
    let row = UserTokenRow {
        token_hash: token_hash(&token),
        purpose: purpose.as_str().to_owned(),
        email: email.to_owned(),
        role: grant.0.map(str::to_owned),
        employee_id: grant.1,
        created_by: created_by.to_owned(),
        created_at,
        expires_at: created_at + lifetime,
        used_at: None,
    };
    store::user_tokens::insert(tx, tenant, &row).await?;
    Ok(token)
}

/// What `token` grants, if it is live; nothing is changed.
pub(crate) async fn inspect(
    tx: &mut Tx,
    tenant: TenantId,
    purpose: Purpose,
    token: &str,
) -> CoreResult<Result<LinkGrant, LinkProblem>> {
    let row = store::user_tokens::find(tx, tenant, &token_hash(token), purpose.as_str()).await?;
    Ok(match row {
        None => Err(LinkProblem::Unknown),
        Some(r) if r.used_at.is_some() => Err(LinkProblem::Used),
        Some(r) if r.expires_at <= store::now() => Err(LinkProblem::Expired),
        Some(r) => Ok(LinkGrant {
            email: r.email,
            role: r.role,
            employee_id: r.employee_id,
            expires_at: r.expires_at,
        }),
    })
}

/// Use the link: only one caller ever succeeds, and only while it is live.
pub(crate) async fn redeem(
    tx: &mut Tx,
    tenant: TenantId,
    purpose: Purpose,
    token: &str,
) -> CoreResult<Result<LinkGrant, LinkProblem>> {
    let grant = match inspect(tx, tenant, purpose, token).await? {
        Ok(grant) => grant,
        problem => return Ok(problem),
    };
    if store::user_tokens::mark_used(tx, tenant, &token_hash(token), store::now()).await? {
        Ok(Ok(grant))
    } else {
        Ok(Err(LinkProblem::Used))
    }
}
