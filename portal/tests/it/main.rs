//! The portal's integration tests, one module per area, built as one test binary.

// A test may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod access;
mod alerts;
mod audit;
mod beside_a_writer;
mod browser;
mod dashboard;
mod domains;
mod employees;
mod exports;
mod helpers;
mod invites;
mod lines;
mod members;
mod optimise;
mod password_reset;
mod policies;
mod requests;
mod routing;
mod scim;
mod sso;
mod whatif;
