//! A person's name as given (an employee's given or family name, the name a new portal
//! account goes by): trimmed, and never empty.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonNameError {
    #[error("must not be empty")]
    Empty,
}

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, PersonNameError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(PersonNameError::Empty);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<PersonName> for String {
    fn from(name: PersonName) -> Self {
        name.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_kept_trimmed() {
        assert_eq!(
            PersonName::parse("  Ada Lovelace\t").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert_eq!(String::from(PersonName::parse("Grace").unwrap()), "Grace");
    }

    #[test]
    fn an_empty_or_blank_name_is_refused() {
        for blank in ["", "   ", "\t\n"] {
            let refused = PersonName::parse(blank).unwrap_err();
            assert_eq!(refused, PersonNameError::Empty, "{blank:?}");
            assert_eq!(refused.to_string(), "must not be empty");
        }
    }
}
