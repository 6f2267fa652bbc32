//! SGP.22 activation code: `LPA:1$<SM-DP+>$<MatchingID>[$<OID>[$1]]`.
//!
//! The confirmation code is a separate secret typed on the device; it is never part of the
//! string, only the "confirmation code required" flag is.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationCode {
    pub smdp_address: String,
    pub matching_id: String,
    pub smdp_oid: Option<String>,
    pub confirmation_code_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationCodeError {
    #[error("activation code must start with format \"1$\" (optionally prefixed by \"LPA:\")")]
    Format,
    #[error("activation code format 2 (advanced activation code) is not supported")]
    AdvancedFormat,
    #[error("activation code is missing the SM-DP+ address")]
    MissingSmdp,
    #[error("SM-DP+ address {0:?} is not a host name")]
    BadSmdp(String),
    #[error("activation code is missing the matching id")]
    MissingMatchingId,
    #[error("matching id {0:?} has characters outside A-Z, 0-9 and '-'")]
    BadMatchingId(String),
    #[error("SM-DP+ OID {0:?} is not a dotted number")]
    BadOid(String),
    #[error("confirmation code flag must be empty or \"1\", got {0:?}")]
    BadConfirmationFlag(String),
}

impl ActivationCodeError {
    /// What is wrong, without the offending text: a near-miss code may still install an
    /// eSIM, so it must not reach failure reasons, pages or logs.
    pub fn without_values(&self) -> &'static str {
        match self {
            Self::Format => "does not start with format \"1$\" (optionally prefixed by \"LPA:\")",
            Self::AdvancedFormat => "uses format 2 (advanced activation code), not supported",
            Self::MissingSmdp => "is missing the SM-DP+ address",
            Self::BadSmdp(_) => "has an SM-DP+ address that is not a host name",
            Self::MissingMatchingId => "is missing the matching id",
            Self::BadMatchingId(_) => "has a matching id with characters outside A-Z, 0-9 and '-'",
            Self::BadOid(_) => "has an SM-DP+ OID that is not a dotted number",
            Self::BadConfirmationFlag(_) => {
                "has a confirmation code flag other than empty or \"1\""
            }
        }
    }
}

impl ActivationCode {
    pub fn new(smdp_address: &str, matching_id: &str) -> Result<Self, ActivationCodeError> {
        Self::parse(&format!("1${smdp_address}${matching_id}"))
    }

    pub fn parse(input: &str) -> Result<Self, ActivationCodeError> {
        let body = input.trim();
        let body = body.strip_prefix("LPA:").unwrap_or(body);
        let mut fields = body.split('$');
        match fields.next() {
            Some("1") => {}
            Some("2") => return Err(ActivationCodeError::AdvancedFormat),
            _ => return Err(ActivationCodeError::Format),
        }
        let smdp = fields.next().filter(|s| !s.is_empty());
        let smdp = smdp.ok_or(ActivationCodeError::MissingSmdp)?;
        if !is_host_name(smdp) {
            return Err(ActivationCodeError::BadSmdp(smdp.to_owned()));
        }
        let matching_id = fields.next().filter(|s| !s.is_empty());
        let matching_id = matching_id.ok_or(ActivationCodeError::MissingMatchingId)?;
        if !matching_id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ActivationCodeError::BadMatchingId(matching_id.to_owned()));
        }
        let smdp_oid = match fields.next() {
            None | Some("") => None,
            Some(oid) if is_dotted_number(oid) => Some(oid.to_owned()),
            Some(oid) => return Err(ActivationCodeError::BadOid(oid.to_owned())),
        };
        let confirmation_code_required = match fields.next() {
            None | Some("") => false,
            Some("1") => true,
            Some(other) => return Err(ActivationCodeError::BadConfirmationFlag(other.to_owned())),
        };
        Ok(Self {
            smdp_address: smdp.to_owned(),
            matching_id: matching_id.to_owned(),
            smdp_oid,
            confirmation_code_required,
        })
    }

    /// The text a QR code carries (`LPA:` prefixed).
    pub fn lpa_string(&self) -> String {
        format!("LPA:{self}")
    }
}

/// The activation code without the `LPA:` prefix, as the spec writes it.
impl fmt::Display for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1${}${}", self.smdp_address, self.matching_id)?;
        match (&self.smdp_oid, self.confirmation_code_required) {
            (None, false) => Ok(()),
            (Some(oid), false) => write!(f, "${oid}"),
            (oid, true) => write!(f, "${}$1", oid.as_deref().unwrap_or("")),
        }
    }
}

fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_dotted_number(s: &str) -> bool {
    s.split('.')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_the_plain_form() {
        let code = ActivationCode::parse("LPA:1$rsp.truphone.com$O-17QF0-MJVBIN").unwrap();
        assert_eq!(code.smdp_address, "rsp.truphone.com");
        assert_eq!(code.matching_id, "O-17QF0-MJVBIN");
        assert_eq!(code.lpa_string(), "LPA:1$rsp.truphone.com$O-17QF0-MJVBIN");
    }

    #[test]
    fn round_trips_oid_and_confirmation_flag() {
        for text in [
            "1$SMDP.EXAMPLE.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1",
            "1$SMDP.EXAMPLE.COM$04386-AGYFT-A74Y8-3F815$$1",
            "1$SMDP.EXAMPLE.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746",
        ] {
            assert_eq!(ActivationCode::parse(text).unwrap().to_string(), text);
        }
        let cc = ActivationCode::parse("1$SMDP.EXAMPLE.COM$04386-AGYFT$$1").unwrap();
        assert!(cc.confirmation_code_required && cc.smdp_oid.is_none());
    }

    #[test]
    fn rejects_with_the_reason() {
        use ActivationCodeError::*;
        let cases = [
            ("LPA:2$x.com$ABC", AdvancedFormat),
            ("hello", Format),
            ("LPA:1$$ABC", MissingSmdp),
            ("LPA:1$https://x.com$ABC", BadSmdp("https://x.com".into())),
            ("LPA:1$x.com", MissingMatchingId),
            ("LPA:1$x.com$abc def", BadMatchingId("abc def".into())),
            ("LPA:1$x.com$ABC$not-an-oid", BadOid("not-an-oid".into())),
            // A confirmation code must never be carried inside the string.
            (
                "LPA:1$x.com$ABC$$123456",
                BadConfirmationFlag("123456".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ActivationCode::parse(text), Err(expected), "{text}");
        }
    }
}
