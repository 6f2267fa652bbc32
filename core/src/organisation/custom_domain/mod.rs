//! Custom domains: a tenant's portal on a host name of its own, once it proves it controls
//! the name with a DNS TXT record (`_lineup-challenge.<domain>` = `lineup-verify=<token>`).
//! One domain, one tenant; a claim left unverified for [`CLAIM_LIFETIME`] expires, so a tenant
//! cannot hold a name it does not control and block its real owner.

pub mod commands;
mod dns;

use time::OffsetDateTime;

use crate::error::{CoreError, CoreResult};
use crate::store::domains::DomainRow;

pub use dns::DnsTxtResolver;

/// Looks up the TXT records of a name; the portal holds one (a fake in tests).
#[async_trait::async_trait]
pub trait TxtResolver: Send + Sync {
    /// The TXT strings at `name` (each record's strings joined); empty when there are none.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDomain {
    pub domain: String,
    /// The TXT record to create, and the value it must hold.
    pub record_name: String,
    pub record_value: String,
    pub verified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl From<DomainRow> for CustomDomain {
    fn from(row: DomainRow) -> Self {
        Self {
            record_name: challenge_name(&row.domain),
            record_value: format!("lineup-verify={}", row.verification_token),
            domain: row.domain,
            verified_at: row.verified_at,
            created_at: row.created_at,
        }
    }
}

/// How long an unverified claim holds its domain.
pub const CLAIM_LIFETIME: time::Duration = time::Duration::days(7);

pub fn challenge_name(domain: &str) -> String {
    format!("_lineup-challenge.{domain}")
}

/// A host name as DNS spells it: lower case, no trailing dot, two or more labels of
/// letters, digits and inner dashes.
pub fn parse_domain(input: &str) -> CoreResult<String> {
    let domain = input.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |reason: &str| CoreError::invalid("domain", format!("{domain:?} {reason}"));
    if domain.len() > 253 {
        return Err(bad("is longer than 253 characters"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("needs at least two parts, like portal.example.com"));
    }
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !labels.iter().all(label_ok) {
        return Err(bad(
            "is not a host name (letters, digits, dashes and dots only)",
        ));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_host_names() {
        assert_eq!(
            parse_domain(" Portal.Acme.COM. ").unwrap(),
            "portal.acme.com"
        );
        assert!(parse_domain("localhost").is_err());
        assert!(parse_domain("-bad.example.com").is_err());
        assert!(parse_domain("spa ce.example.com").is_err());
        assert!(parse_domain("a..b").is_err());
        assert!(parse_domain("https://portal.acme.com").is_err());
    }
}
