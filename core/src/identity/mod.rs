//! Who someone is and how they get in: portal users and their roles, tenant membership and
//! invites, sessions, passwords and their reset, sign-in attempt limits, single sign-on, and
//! the single-use links sent by email.

pub mod link;
pub mod member;
pub mod password_reset;
pub mod session;
pub mod sign_in_limit;
pub mod sso;
pub mod user;
