//! The simulator's integration tests, one binary: a module per concern over one harness.

// A test may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod harness;

mod auth;
mod control;
mod faults;
mod orders;
mod paging;
mod persistence;
mod usage;
mod webhooks;
