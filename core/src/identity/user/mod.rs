//! Portal users: sign-in identities with a role per tenant. Passwords are argon2 hashes.

pub mod commands;

use argon2::password_hash::{self, Output, ParamsString, Salt, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

use crate::app::record;
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::identity::session::{random_token, token_hash};
use crate::ids::TenantId;
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
