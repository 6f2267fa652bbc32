//! The customer company and its people: the tenant and its settings and custom domains,
//! employees, teams and cost centres, the first day (onboarding) and last day
//! (offboarding), joiners' first lines, and provisioning them from an identity provider
//! (SCIM).

pub mod custom_domain;
pub mod employee;
pub mod joiner;
pub mod mover;
pub mod offboarding;
pub mod onboarding;
pub mod org_unit;
pub mod scim;
pub mod tenant;
