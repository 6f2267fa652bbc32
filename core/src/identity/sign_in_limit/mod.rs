//! How many sign-in, sign-up and password-reset attempts are allowed, per account and per
//! client address, before the next one is refused. The counters live in the database
//! (store::auth_attempts), so every replica shares them and a flood of made-up addresses
//! costs rows that age out, not memory.

pub mod commands;

use std::net::IpAddr;
use std::time::Duration;

use crate::email_address::Email;
use crate::ids::TenantId;

/// What is being attempted, and by which account when there is one.
#[derive(Debug, Clone, Copy)]
pub enum Attempt<'a> {
    /// A password sign-in (or confirming a password on an invite) to `tenant` as `email`.
    SignIn { tenant: TenantId, email: &'a Email },
    /// Asking for a password-reset link for `email` at `tenant`.
    PasswordReset { tenant: TenantId, email: &'a Email },
    /// Signing up a new organisation.
    SignUp,
}

/// At most `max` attempts in any `window`.
#[derive(Debug, Clone, Copy)]
struct Limit {
    max: i64,
    window: Duration,
}

const MINUTE: Duration = Duration::from_secs(60);

/// Failed sign-ins per account: a guess every three minutes is useless against a real password.
const PER_ACCOUNT: Limit = Limit {
    max: 5,
    window: Duration::from_secs(15 * 60),
};
/// Sign-ins per client address, whatever the account: enough for an office behind one NAT.
const SIGN_IN_PER_ADDRESS: Limit = Limit {
    max: 30,
    window: Duration::from_secs(5 * 60),
};
/// Reset links per account, so nobody can flood an inbox.
const RESETS_PER_ACCOUNT: Limit = Limit {
    max: 3,
    window: Duration::from_secs(15 * 60),
};
const RESETS_PER_ADDRESS: Limit = Limit {
    max: 10,
    window: Duration::from_secs(15 * 60),
};
/// New organisations per client address, and from everyone together.
const SIGN_UPS_PER_ADDRESS: Limit = Limit {
    max: 5,
    window: Duration::from_secs(60 * MINUTE.as_secs()),
};
const SIGN_UPS_IN_ALL: Limit = Limit {
    max: 100,
    window: Duration::from_secs(60 * MINUTE.as_secs()),
};
/// Older attempts than this count in no window and are pruned.
const LONGEST_WINDOW: Duration = Duration::from_secs(60 * MINUTE.as_secs());

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyAttempts {
    pub retry_after: Duration,
}

impl TooManyAttempts {
    /// Whole minutes to wait, at least one.
    pub fn minutes(&self) -> u64 {
        self.retry_after.as_secs().div_ceil(60).max(1)
    }
}

fn account_key(kind: &str, tenant: TenantId, email: &Email) -> String {
    format!("{kind}:{tenant}:{}", email.as_str())
}

impl Attempt<'_> {
    /// The counters this attempt is charged to, most general first (the client address is
    /// checked before an account key is ever written).
    fn keys(&self, client: Option<IpAddr>) -> Vec<(String, Limit)> {
        let address = |kind: &str| format!("{kind}-ip:{}", client_text(client));
        match *self {
            Self::SignIn { tenant, email } => vec![
                (address("sign-in"), SIGN_IN_PER_ADDRESS),
                (account_key("sign-in", tenant, email), PER_ACCOUNT),
            ],
            Self::PasswordReset { tenant, email } => vec![
                (address("reset"), RESETS_PER_ADDRESS),
                (account_key("reset", tenant, email), RESETS_PER_ACCOUNT),
            ],
            Self::SignUp => vec![
                ("sign-up".to_owned(), SIGN_UPS_IN_ALL),
                (address("sign-up"), SIGN_UPS_PER_ADDRESS),
            ],
        }
    }
}

/// Clients whose address is unknown share one counter: stricter, never unlimited.
fn client_text(client: Option<IpAddr>) -> String {
    client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}
