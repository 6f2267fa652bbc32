//! Sign-in limit commands: reserve an attempt before checking credentials, and clear the
//! account's counter once it succeeds.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::app::Lineup;
use crate::error::CoreResult;
use crate::store::{self, now};

impl Lineup {
    /// Reserve one attempt, or say how long to wait. Each counter is checked and charged in
    /// its own short transaction: a request refused by the address limit writes nothing for
    /// the account it named. Attempts older than every window are pruned in the first of them,
    /// so the table holds at most the last hour's traffic and a refused request costs one
    /// write.
    pub async fn reserve_attempt(
        &self,
        attempt: Attempt<'_>,
        client: Option<IpAddr>,
    ) -> CoreResult<Result<(), TooManyAttempts>> {
        let at = now();
        let cutoff = at - time::Duration::try_from(LONGEST_WINDOW).expect("an hour");
        for (n, (key, limit)) in attempt.keys(client).into_iter().enumerate() {
            let window = time::Duration::try_from(limit.window).expect("windows are short");
            let mut tx = self.store().system().await?;
            if n == 0 {
                store::auth_attempts::prune(&mut tx, cutoff).await?;
            }
            let oldest =
                store::auth_attempts::reserve(&mut tx, &key, limit.max, at - window, at).await?;
            tx.commit().await?;
            if let Some(oldest) = oldest {
                let free_at = oldest + window;
                let wait = (free_at - at).try_into().unwrap_or(Duration::ZERO);
                return Ok(Err(TooManyAttempts { retry_after: wait }));
            }
        }
        Ok(Ok(()))
    }

    /// A sign-in succeeded: the account's failures are forgiven.
    pub async fn attempt_succeeded(&self, attempt: Attempt<'_>) -> CoreResult<()> {
        if let Attempt::SignIn { tenant, email } = attempt {
            let mut tx = self.store().system().await?;
            store::auth_attempts::clear(&mut tx, &account_key("sign-in", tenant, email)).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}
