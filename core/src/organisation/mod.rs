//! The customer company and its people: the tenant and its settings and custom domains,
//! employees, teams and cost centres, and the first day (onboarding) and last day
//! (offboarding).

pub mod custom_domain;
pub mod employee;
pub mod offboarding;
pub mod onboarding;
pub mod org_unit;
pub mod tenant;
