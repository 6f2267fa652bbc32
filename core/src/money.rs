//! Money in integer minor units of an ISO 4217 currency, and data volumes in bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency must be a three-letter ISO 4217 code such as USD, got {0:?}")]
    Currency(String),
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflows")]
    Overflow,
}

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        match upper.as_bytes() {
            [a, b, c] if upper.bytes().all(|b| b.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(MoneyError::Currency(code.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }

    /// Minor units per major unit; ISO 4217 exponents for the few zero/three-decimal currencies.
    pub fn minor_exponent(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "CLP" | "ISK" | "VND" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
            _ => 2,
        }
    }

    /// An amount typed by a person (`25`, `25.5`, `1,250.00`, `€25`) in minor units; `None`
    /// when it is not a non-negative amount with at most this currency's decimals.
    pub fn parse_amount(&self, text: &str) -> Option<i64> {
        let digits: String = text
            .trim()
            .trim_start_matches(['$', '€', '£'])
            .trim_end_matches(self.as_str())
            .trim()
            .replace(',', "");
        let (whole, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
        let exp = self.minor_exponent() as usize;
        let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > exp {
            return None;
        }
        let fraction: i64 = if exp == 0 {
            0
        } else {
            format!("{fraction:0<exp$}").parse().ok()?
        };
        whole
            .parse::<i64>()
            .ok()?
            .checked_mul(10i64.pow(exp as u32))?
            .checked_add(fraction)
    }

    /// Minor units as a plain decimal for a form field: `2500` → `25.00`.
    pub fn format_amount(&self, minor: i64) -> String {
        let exp = self.minor_exponent();
        if exp == 0 {
            return minor.to_string();
        }
        let scale = 10i64.pow(exp);
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale as u64,
            abs % scale as u64,
            width = exp as usize
        )
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// A change rather than an amount: `+12.34 USD`, `-12.34 USD`, `0.00 USD`.
    pub fn signed(&self) -> String {
        if self.minor > 0 {
            format!("+{self}")
        } else {
            self.to_string()
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }
}

/// `12.34 USD`
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = self.currency.minor_exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let scale = 10u64.pow(exp);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency,
            width = exp as usize
        )
    }
}

/// A data volume in bytes. Displayed in binary units (1 GB here is 1024³ bytes, as carriers bill).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Bytes(pub i64);

impl Bytes {
    pub const MB: i64 = 1024 * 1024;
    pub const GB: i64 = 1024 * 1024 * 1024;

    pub fn gb(n: i64) -> Self {
        Self(n * Self::GB)
    }

    pub fn mb(n: i64) -> Self {
        Self(n * Self::MB)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if self.0.abs() >= Self::GB {
            write!(f, "{:.2} GB", b / Self::GB as f64)
        } else if self.0.abs() >= Self::MB {
            write!(f, "{:.1} MB", b / Self::MB as f64)
        } else {
            write!(f, "{} B", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_typed_by_people() {
        let eur = Currency::EUR;
        assert_eq!(eur.parse_amount("25"), Some(2500));
        assert_eq!(eur.parse_amount("€25.5"), Some(2550));
        assert_eq!(eur.parse_amount("1,250.00 EUR"), Some(125_000));
        assert_eq!(eur.parse_amount("25.555"), None);
        assert_eq!(eur.parse_amount("-5"), None);
        assert_eq!(eur.parse_amount("ten"), None);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.parse_amount("500"), Some(500));
        assert_eq!(jpy.parse_amount("500.5"), None);
        assert_eq!(eur.format_amount(2550), "25.50");
        assert_eq!(jpy.format_amount(500), "500");
    }

    #[test]
    fn formats_minor_units_by_currency_exponent() {
        assert_eq!(
            Money::new(123_456, Currency::USD).to_string(),
            "1234.56 USD"
        );
        assert_eq!(Money::new(-5, Currency::EUR).to_string(), "-0.05 EUR");
        assert_eq!(
            Money::new(1500, Currency::parse("jpy").unwrap()).to_string(),
            "1500 JPY"
        );
    }

    #[test]
    fn refuses_to_add_different_currencies() {
        let err = Money::new(1, Currency::USD).checked_add(Money::new(1, Currency::EUR));
        assert_eq!(
            err,
            Err(MoneyError::CurrencyMismatch(Currency::USD, Currency::EUR))
        );
        assert!(Currency::parse("US").is_err() && Currency::parse("U5D").is_err());
    }

    #[test]
    fn shows_data_in_binary_units() {
        assert_eq!(Bytes::gb(5).to_string(), "5.00 GB");
        assert_eq!(Bytes::mb(512).to_string(), "512.0 MB");
        assert_eq!(Bytes(900).to_string(), "900 B");
    }
}
