//! EID: the eUICC identifier (GSMA SGP.29), 32 digits whose value mod 97 equals 1.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Eid(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EidError {
    #[error("EID must contain only digits, found {0:?}")]
    NotDigits(char),
    #[error("EID must be 32 digits long, got {0}")]
    Length(usize),
    #[error("EID check digits are wrong (mod 97 is {0}, must be 1)")]
    CheckDigits(u32),
}

impl Eid {
    pub fn parse(input: &str) -> Result<Self, EidError> {
        let digits = input.trim();
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(EidError::NotDigits(bad));
        }
        if digits.len() != 32 {
            return Err(EidError::Length(digits.len()));
        }
        match mod97(digits) {
            1 => Ok(Self(digits.to_owned())),
            rest => Err(EidError::CheckDigits(rest)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn mod97(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97)
}

impl TryFrom<String> for Eid {
    type Error = EidError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Eid> for String {
    fn from(e: Eid) -> String {
        e.0
    }
}

impl fmt::Display for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_gsma_example() {
        assert!(Eid::parse("89001012012341234012345678901224").is_ok());
    }

    #[test]
    fn rejects_with_the_reason() {
        assert_eq!(
            Eid::parse("89049032004008882600019002596666"),
            Err(EidError::CheckDigits(62))
        );
        assert_eq!(
            Eid::parse("8900101201234123401234567890122"),
            Err(EidError::Length(31))
        );
        assert_eq!(
            Eid::parse("8900101201234123401234567890122a"),
            Err(EidError::NotDigits('a'))
        );
    }
}
