//! A normalised (trimmed, lower-case) email address that has passed a structural check.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is empty")]
    Empty,
    #[error("email {0:?} must contain exactly one @ with text on both sides")]
    Shape(String),
    #[error("email {0:?} has a domain without a dot")]
    Domain(String),
    #[error("email {0:?} contains spaces or control characters")]
    Characters(String),
    #[error("email is longer than 254 characters")]
    TooLong,
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let email = input.trim().to_lowercase();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.len() > 254 {
            return Err(EmailError::TooLong);
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Characters(input.to_owned()));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(EmailError::Shape(input.to_owned()));
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(EmailError::Shape(input.to_owned()));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(EmailError::Domain(input.to_owned()));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn rejects_with_the_reason() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert!(matches!(
            Email::parse("ada.example.com"),
            Err(EmailError::Shape(_))
        ));
        assert!(matches!(
            Email::parse("ada@localhost"),
            Err(EmailError::Domain(_))
        ));
        assert!(matches!(
            Email::parse("a da@x.com"),
            Err(EmailError::Characters(_))
        ));
        assert!(matches!(
            Email::parse("a@b@x.com"),
            Err(EmailError::Shape(_))
        ));
    }
}
