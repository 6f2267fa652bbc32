//! Lineup core: the domain, its commands and queries, storage and provider adapters.
//! Knows nothing of HTTP servers or chat formats.

pub mod activation_code;
pub mod app;
pub mod audit;
pub mod domain;
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
pub mod guardrail;
pub mod jobs;
pub mod link;
pub mod mail;
pub mod member;
pub mod notice;
pub mod notify;
pub mod offboarding;
pub mod optimise;
pub mod password;
pub mod policy;
pub mod pricing;
pub mod qr;
pub mod reports;
pub mod request;
pub mod secret;
pub mod session;
pub mod sign_in_limit;
pub mod sso;
pub mod usage;
pub mod user;
pub mod webhook;
pub mod whatif;
