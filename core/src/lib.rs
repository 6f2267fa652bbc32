//! Lineup core: the domain, its commands and queries, storage and provider adapters.
//! Knows nothing of HTTP servers or chat formats.

pub mod activation_code;
pub mod app;
pub mod audit;
pub mod eid;
pub mod email;
pub mod employee;
pub mod error;
pub mod iccid;
pub mod ids;
pub mod import;
pub mod line;
pub mod money;
pub mod org;
pub mod plan;
pub mod provider;
pub mod store;
pub mod tenant;

pub use app::Lineup;
pub use error::{CoreError, CoreResult};
pub mod alert;
pub mod chat;
pub mod jobs;
pub mod notify;
pub mod offboarding;
pub mod policy;
pub mod qr;
pub mod request;
pub mod secret;
pub mod session;
pub mod usage;
pub mod user;
pub mod webhook;
