//! Portal sessions: a signed-in user in one tenant. The cookie carries a random token; only
//! its SHA-256 is stored, so a copy of the database cannot be used to sign in.

pub mod commands;

use rand::RngCore;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{CoreError, CoreResult};
use crate::identity::user::Role;
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::store;

/// How long a sign-in lasts; after that the user signs in again.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// The employee record this user is, when linked (managers see their reports through it).
    pub employee_id: Option<EmployeeId>,
    /// Echoed in every form the session submits.
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

/// A session just created: the token goes into the cookie and is never seen again.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

/// A random 256-bit secret, hex encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The one message for every failed sign-in, so it never reveals which accounts exist.
pub const BAD_CREDENTIALS: &str = "the email or password is not right";
/// Said only after the password was right.
const UNVERIFIED: &str =
    "confirm your email address first: open the link we emailed you when you signed up";

fn into_session(tenant: TenantId, h: store::sessions::SessionHolder) -> CoreResult<Session> {
    Ok(Session {
        tenant_id: tenant,
        user_id: h.user_id,
        email: h.email,
        name: h.name,
        role: Role::parse(&h.role)
            .ok_or_else(|| CoreError::invalid("role", format!("{:?} is not a role", h.role)))?,
        employee_id: h.employee_id,
        csrf_token: h.csrf_token,
        expires_at: h.expires_at,
    })
}
