//! Members of a tenant: who may use its portal, with which role, as which employee; and
//! invites by email. Only an owner grants or revokes the owner role, and the last owner
//! always stays.

pub mod commands;

use time::{Duration, OffsetDateTime};

use crate::app::required;
use crate::email_address::Email;
use crate::error::{CoreError, CoreResult};
use crate::identity::user::Role;
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::store::{self, Tx, users::MemberRow};

/// How long an invite link stays valid.
pub const INVITE_LIFETIME: Duration = Duration::days(7);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub employee_id: Option<EmployeeId>,
    pub employee_name: Option<String>,
    pub employee_email: Option<String>,
    pub since: OffsetDateTime,
}

fn into_member(row: MemberRow) -> CoreResult<Member> {
    Ok(Member {
        role: parse_role(&row.role)?,
        user_id: row.user_id,
        email: row.email,
        name: row.name,
        employee_id: row.employee_id,
        employee_name: row.employee_name,
        employee_email: row.employee_email,
        since: row.created_at,
    })
}

fn parse_role(text: &str) -> CoreResult<Role> {
    Role::parse(text).ok_or_else(|| CoreError::invalid("role", format!("{text:?} is not a role")))
}

/// An invite waiting to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInvite {
    pub email: String,
    pub role: Role,
    pub expires_at: OffsetDateTime,
}

/// What an invite link offers, shown before it is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub email: String,
    pub role: Role,
    /// The address already has a confirmed Lineup account: they confirm with its password.
    pub has_account: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvite {
    pub email: Email,
    pub role: Role,
    /// The work email of the employee record this person is, if any.
    pub employee: Option<Email>,
}

/// How the invited person proves who they are.
#[derive(Debug, Clone)]
pub enum Acceptance {
    NewAccount { name: String, password: String },
    ExistingAccount { password: String },
}

const ONLY_OWNERS: &str = "only an owner can grant or revoke the owner role";

/// The acting user's role here; a non-member acts with no authority at all.
pub(crate) async fn role_of(tx: &mut Tx, tenant: TenantId, user: UserId) -> CoreResult<Role> {
    let role = store::users::role_in(tx, tenant, user).await?;
    parse_role(&required(role, "member", user)?)
}

/// The employee record named by its work email, if one is given.
async fn employee_by_email(
    tx: &mut Tx,
    tenant: TenantId,
    email: Option<&Email>,
) -> CoreResult<Option<EmployeeId>> {
    let Some(email) = email else { return Ok(None) };
    match store::employees::find_by_email(tx, tenant, email).await? {
        Some(employee) => Ok(Some(employee.id)),
        None => Err(CoreError::invalid(
            "employee_email",
            format!("no employee of this organisation has the email {email}"),
        )),
    }
}

async fn ensure_not_last_owner(
    tx: &mut Tx,
    tenant: TenantId,
    member: &Member,
    what: &str,
) -> CoreResult<()> {
    if store::users::count_with_role(tx, tenant, Role::Owner.as_str()).await? <= 1 {
        return Err(CoreError::Conflict(format!(
            "{} is the last owner and cannot be {what}; make someone else an owner first",
            member.name
        )));
    }
    Ok(())
}
