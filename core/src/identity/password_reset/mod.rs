//! Forgotten passwords: an emailed single-use link, valid an hour, that sets a new password
//! and ends every session the person had (and, having reached the mailbox, confirms the address).

pub mod commands;

use time::Duration;

pub const RESET_LIFETIME: Duration = Duration::hours(1);
