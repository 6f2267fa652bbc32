//! The simulator's integration tests, one binary: a module per concern over one harness.

mod harness;

mod auth;
mod control;
mod faults;
mod orders;
mod paging;
mod persistence;
mod usage;
mod webhooks;
