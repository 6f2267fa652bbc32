//! Provider webhooks: verified by the adapter, then acted on. Delivery is at-least-once, so
//! everything here is safe to repeat: a settled order is finished once (compare-and-set on the
//! line), a usage hint queues at most one sync per tenant and minute, an installed profile
//! activates a ready line once.
//!
//! A tenant's own connection has its own webhook URL and secret: what arrives there is
//! verified with that secret and touches only that tenant's lines. The server-wide URL
//! touches only tenants that use the server-wide account.

pub mod commands;

use crate::ids::TenantId;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookOutcome {
    pub events: usize,
    pub operations_finished: usize,
    pub syncs_queued: usize,
    pub lines_activated: usize,
}

/// Whose lines one delivery may touch.
#[derive(Debug, Clone, Copy)]
enum WebhookScope {
    /// Tenants on the server-wide account.
    ServerDefault,
    Tenant(TenantId),
}

impl WebhookScope {
    /// The one tenant whose rows to look in, if the scope is one tenant.
    fn tenant(self) -> Option<TenantId> {
        match self {
            Self::ServerDefault => None,
            Self::Tenant(tenant) => Some(tenant),
        }
    }
}
