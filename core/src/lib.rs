//! Lineup core: the domain, its commands and queries, storage and provider adapters.
//! Knows nothing of HTTP servers or chat formats.

pub mod app;
pub mod audit;
pub mod email_address;
pub mod error;
pub mod identity;
pub mod ids;
pub mod import;
pub mod lines;
pub mod messaging;
pub mod money;
pub mod organisation;
pub mod provider;
pub mod store;

pub use app::Lineup;
pub use error::{CoreError, CoreResult};
pub mod jobs;
pub mod period;
pub mod secret;
pub mod spend;
