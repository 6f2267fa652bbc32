//! Portal users: sign-in identities with a role per tenant. Passwords are argon2 hashes.

use argon2::password_hash::{self, Output, ParamsString, Salt, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::email_address::Email;
use crate::error::{CoreError, CoreResult};
use crate::identity::link::LinkProblem;
use crate::identity::session::{random_token, token_hash};
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::secret::SecretBox;
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

    /// Whether this role may see a line's activation code (the roles that manage lines).
    /// The portal's permission table and the reveal command both ask this.
    pub fn reveals_activation_codes(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
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

/// Argon2 (the default parameters: ~19 MiB, two passes) off the async threads: at most
/// [`PasswordHashing::permits`] at once, each in a buffer kept for the life of the process.
/// A fresh 19 MiB buffer per check would make glibc raise its mmap threshold and keep every
/// freed buffer in some thread's arena: hundreds of MB after a flood of sign-ins.
pub struct PasswordHashing {
    permits: tokio::sync::Semaphore,
    buffers: std::sync::Mutex<Vec<Vec<Block>>>,
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self {
            permits: tokio::sync::Semaphore::new(Self::permits()),
            buffers: std::sync::Mutex::default(),
        }
    }
}

impl PasswordHashing {
    /// Checks running at once: each takes a whole core for tens of milliseconds, so half
    /// the cores at most — the other half stays free for chat endpoints that must answer
    /// within 3 s (with two hashes on a 2-core machine, `/slack/commands` p99 was 133 ms
    /// during a sign-in flood; with one, see the README's auth_flood figures).
    pub fn permits() -> usize {
        std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
    }

    /// Run `work` on a blocking thread with a working buffer, once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the hashing semaphore is never closed");
        let mut buffer = self
            .buffers
            .lock()
            .expect("hashing buffers lock")
            .pop()
            .unwrap_or_else(|| vec![Block::default(); Params::default().block_count()]);
        let (buffer, answer) = tokio::task::spawn_blocking(move || {
            let answer = work(&mut buffer);
            (buffer, answer)
        })
        .await
        .expect("password hashing does not panic");
        self.buffers
            .lock()
            .expect("hashing buffers lock")
            .push(buffer);
        answer
    }
}

/// The raw Argon2 output for `password` and `salt` under `argon`, computed in `memory`.
fn argon2_output(
    argon: &Argon2,
    password: &str,
    salt: Salt,
    memory: &mut Vec<Block>,
) -> password_hash::Result<Output> {
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let blocks = argon.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let length = argon
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    Output::init_with(length, |out| {
        Ok(argon.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut **memory)?)
    })
}

fn hash_now(password: &str, memory: &mut Vec<Block>) -> CoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    let argon = Argon2::default();
    let failed = |e: password_hash::Error| CoreError::invalid("password", e);
    let hash = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon.params()).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2_output(&argon, password, salt.as_salt(), memory).map_err(failed)?),
    };
    Ok(hash.to_string())
}

fn verify_now(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let version = parsed.version.map(Version::try_from).transpose();
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        version,
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    // Output's equality is constant-time.
    argon2_output(&argon, password, salt, memory).is_ok_and(|out| out == expected)
}

/// A hash of nothing anyone knows, checked when an address has no password, so a sign-in
/// for an unknown address takes as long as one for a real account.
fn stand_in_hash(memory: &mut Vec<Block>) -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        hash_now(&crate::identity::session::random_token(), memory)
            .expect("hashing a random token succeeds")
    })
}

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
    crate::messaging::outgoing_email::queue(
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
    crate::messaging::outgoing_email::queue(
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
        let mut memory = Vec::new();
        let hash = hash_now("correct horse battery", &mut memory).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_now("correct horse battery", &hash, &mut memory));
        assert!(!verify_now("wrong horse battery", &hash, &mut memory));
        assert!(check_new_password("short").is_err());
        let stand_in = stand_in_hash(&mut memory);
        assert!(!verify_now("anything", stand_in, &mut memory));
        // Hashes made by the argon2 crate's own hasher (every stored one) still verify.
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(verify_now("correct horse battery", &theirs, &mut memory));
    }
}
