//! ICCID: the SIM profile's serial number (ITU-T E.118), 19–20 digits with a Luhn check digit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iccid(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IccidError {
    #[error("ICCID must contain only digits, found {0:?}")]
    NotDigits(char),
    #[error("ICCID must be 19 or 20 digits long, got {0}")]
    Length(usize),
    #[error("ICCID check digit is wrong (Luhn check failed)")]
    CheckDigit,
}

impl Iccid {
    pub fn parse(input: &str) -> Result<Self, IccidError> {
        let digits = input.trim();
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(IccidError::NotDigits(bad));
        }
        if !(19..=20).contains(&digits.len()) {
            return Err(IccidError::Length(digits.len()));
        }
        if !luhn_valid(digits) {
            return Err(IccidError::CheckDigit);
        }
        Ok(Self(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Luhn over ASCII digits; the last digit is the check digit.
pub fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl FromStr for Iccid {
    type Err = IccidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Iccid {
    type Error = IccidError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Iccid> for String {
    fn from(i: Iccid) -> String {
        i.0
    }
}

impl fmt::Display for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_vendor_iccids() {
        for good in [
            "8944474600000109251",
            "8944478600000205337",
            "89883070000007537119",
        ] {
            assert_eq!(Iccid::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn rejects_with_the_reason() {
        assert_eq!(
            Iccid::parse("8944474600000109252"),
            Err(IccidError::CheckDigit)
        );
        assert_eq!(
            Iccid::parse("893000000000034143"),
            Err(IccidError::Length(18))
        );
        assert_eq!(
            Iccid::parse("89444746000001092x1"),
            Err(IccidError::NotDigits('x'))
        );
        assert_eq!(Iccid::parse(""), Err(IccidError::Length(0)));
    }
}
