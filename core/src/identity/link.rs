//! Single-use links sent by email (invites, password resets): a random token in the link,
//! only its hash stored, valid for a while, usable once, and only on the tenant it was made
//! for.

use time::{Duration, OffsetDateTime};

use crate::error::CoreResult;
use crate::identity::session::{random_token, token_hash};
use crate::ids::{EmployeeId, TenantId};
use crate::secret::SecretBox;
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

/// A link to make: for whom, granting what, by whom, for how long.
pub(crate) struct NewLink<'a> {
    pub purpose: Purpose,
    pub email: &'a str,
    /// For invites: the role and the employee record to link.
    pub grant: (Option<&'a str>, Option<EmployeeId>),
    pub created_by: String,
    pub lifetime: Duration,
}

/// Make a link (replacing any unused one of the same purpose for the address) and queue the
/// email that carries it, in the caller's transaction. `url` turns the token into the
/// link's URL and `body` the URL into the message; the token itself is never stored.
pub(crate) async fn send(
    tx: &mut Tx,
    secrets: &SecretBox,
    tenant: TenantId,
    link: NewLink<'_>,
    url: &(dyn Fn(&str) -> String + Sync),
    subject: &str,
    body: impl FnOnce(&str) -> String,
) -> CoreResult<()> {
    let purpose = link.purpose.as_str();
    store::user_tokens::withdraw_pending(tx, tenant, link.email, purpose).await?;
    let token = random_token();
    let created_at = store::now();
    let row = UserTokenRow {
        token_hash: token_hash(&token),
        purpose: purpose.to_owned(),
        email: link.email.to_owned(),
        role: link.grant.0.map(str::to_owned),
        employee_id: link.grant.1,
        created_by: link.created_by,
        created_at,
        expires_at: created_at + link.lifetime,
        used_at: None,
    };
    store::user_tokens::insert(tx, tenant, &row).await?;
    let text = body(&url(&token));
    crate::messaging::outgoing_email::queue(tx, secrets, tenant, link.email, subject, &text)
        .await?;
    Ok(())
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
