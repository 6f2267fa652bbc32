//! Lineup core: the domain, its commands and queries, storage and provider adapters.
//! Knows nothing of HTTP servers or chat formats.
//!
//! The tree, and which way its dependencies point:
//!
//! - Values that hold only good data: [`ids`], [`money`], [`period`] (calendar months and
//!   spans of them), [`email_address`], [`person_name`], [`secret`], and [`error`].
//! - Nouns, grouped into folders by concern: [`identity`] (users, members, sessions, password
//!   reset, sign-in limits, SSO, single-use links), [`organisation`] (tenant, employees, teams
//!   and cost centres as `org_unit`, custom domains, onboarding, offboarding), [`lines`]
//!   (line, plan, request, activation code, ICCID, EID, QR, provider webhooks), [`spend`]
//!   (usage, pricing, policy, guardrails, alerts, reports, optimisation, what-if),
//!   [`messaging`] (chat workspaces, the platform-neutral chat message, employee notices,
//!   outgoing email), and [`audit`]. A noun with commands is a folder: `noun/mod.rs` holds its
//!   types, invariants and the in-transaction helpers other commands share;
//!   `noun/commands.rs` holds its `impl` block of [`Lineup`] ([`app`]), the commands and
//!   queries adapters call.
//! - [`store`]: all SQL, a file per table group. It reads and writes the values and the
//!   nouns' types and filters, and never calls a command.
//! - [`provider`]: the connectivity provider trait and its adapters.
//! - [`jobs`] schedules commands on the durable queue; [`import`] is the employee CSV
//!   import (one file until it is split like the nouns).

pub mod app;
pub mod audit;
pub mod email_address;
pub mod error;
pub mod identity;
pub mod ids;
pub mod import;
pub mod jobs;
pub mod lines;
pub mod messaging;
pub mod money;
pub mod organisation;
pub mod period;
pub mod person_name;
pub mod provider;
pub mod secret;
pub mod spend;
pub mod store;

pub use app::Lineup;
pub use error::{CoreError, CoreResult};
