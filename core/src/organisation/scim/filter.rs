//! The SCIM filters identity providers look resources up by, and nothing more:
//! `userName eq "…"`, `externalId eq "…"`, `emails[type eq "work"].value eq "…"` and
//! `id eq "…"` for users; `displayName eq "…"`, `externalId eq "…"` and `id eq "…"` for
//! groups. Anything else is refused with a message saying what is supported.

/// A filter on users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    UserName(String),
    ExternalId(String),
    WorkEmail(String),
    Id(String),
}

/// A filter on groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupFilter {
    DisplayName(String),
    ExternalId(String),
    Id(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:user:";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:group:";
const USER_FORMS: &str =
    r#"userName eq "…", externalId eq "…", emails[type eq "work"].value eq "…" or id eq "…""#;
const GROUP_FORMS: &str = r#"displayName eq "…", externalId eq "…" or id eq "…""#;

pub fn parse_user_filter(text: &str) -> Result<UserFilter, FilterError> {
    let (attribute, value) = comparison(text, USER_FORMS)?;
    let attribute = attribute.strip_prefix(USER_URN).unwrap_or(&attribute);
    match attribute {
        "username" => Ok(UserFilter::UserName(value)),
        "externalid" => Ok(UserFilter::ExternalId(value)),
        r#"emails[type eq "work"].value"# => Ok(UserFilter::WorkEmail(value)),
        "id" => Ok(UserFilter::Id(value)),
        other => Err(unsupported(other, USER_FORMS)),
    }
}

pub fn parse_group_filter(text: &str) -> Result<GroupFilter, FilterError> {
    let (attribute, value) = comparison(text, GROUP_FORMS)?;
    let attribute = attribute.strip_prefix(GROUP_URN).unwrap_or(&attribute);
    match attribute {
        "displayname" => Ok(GroupFilter::DisplayName(value)),
        "externalid" => Ok(GroupFilter::ExternalId(value)),
        "id" => Ok(GroupFilter::Id(value)),
        other => Err(unsupported(other, GROUP_FORMS)),
    }
}

fn unsupported(attribute: &str, forms: &str) -> FilterError {
    FilterError(format!(
        "filtering on {attribute:?} is not supported; use {forms}"
    ))
}

/// `attribute eq "value"`: the attribute path lower-cased with single spaces (brackets may
/// hold a value filter), and the value unquoted.
fn comparison(text: &str, forms: &str) -> Result<(String, String), FilterError> {
    let text = text.trim();
    let mut depth = 0usize;
    let split = text.char_indices().find(|&(_, c)| {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        c.is_whitespace() && depth == 0
    });
    let Some((at, _)) = split else {
        return Err(FilterError(format!(
            "{text:?} is not a comparison; use {forms}"
        )));
    };
    let attribute = text[..at]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let rest = text[at..].trim_start();
    let (operator, literal) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !operator.eq_ignore_ascii_case("eq") {
        return Err(FilterError(format!(
            "the operator {operator:?} is not supported; only eq is, as in {forms}"
        )));
    }
    let literal = literal.trim();
    let mut values = serde_json::Deserializer::from_str(literal).into_iter::<String>();
    let value = match values.next() {
        Some(Ok(value)) => value,
        _ => {
            return Err(FilterError(format!(
                "{literal:?} is not a quoted string; use {forms}"
            )));
        }
    };
    let rest = literal[values.byte_offset()..].trim();
    if !rest.is_empty() {
        return Err(FilterError(format!(
            "only one comparison is supported, not {rest:?} after it; use {forms}"
        )));
    }
    Ok((attribute, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookups_identity_providers_send_are_understood() {
        assert_eq!(
            parse_user_filter(r#"userName eq "ada@example.com""#),
            Ok(UserFilter::UserName("ada@example.com".to_owned()))
        );
        assert_eq!(
            parse_user_filter(r#"USERNAME EQ "a \"quoted\" name""#),
            Ok(UserFilter::UserName(r#"a "quoted" name"#.to_owned()))
        );
        assert_eq!(
            parse_user_filter(r#"externalId eq "00u1""#),
            Ok(UserFilter::ExternalId("00u1".to_owned()))
        );
        assert_eq!(
            parse_user_filter(r#"emails[type eq "work"].value eq "ada@example.com""#),
            Ok(UserFilter::WorkEmail("ada@example.com".to_owned()))
        );
        assert_eq!(
            parse_user_filter(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#),
            Ok(UserFilter::UserName("x".to_owned()))
        );
        assert_eq!(
            parse_user_filter(r#"id eq "1""#),
            Ok(UserFilter::Id("1".to_owned()))
        );
        assert_eq!(
            parse_group_filter(r#"displayName eq "Sales""#),
            Ok(GroupFilter::DisplayName("Sales".to_owned()))
        );
    }

    #[test]
    fn other_filters_are_refused_saying_what_is_supported() {
        for (filter, says) in [
            (
                r#"title eq "x""#,
                r#"filtering on "title" is not supported"#,
            ),
            (
                r#"userName co "ada""#,
                r#"the operator "co" is not supported"#,
            ),
            (r#"userName eq ada"#, "is not a quoted string"),
            (
                r#"userName eq "a" and active eq true"#,
                "only one comparison",
            ),
            ("userName", "is not a comparison"),
            (
                r#"emails[type eq "home"].value eq "a@b.c""#,
                "is not supported",
            ),
        ] {
            let refused = parse_user_filter(filter).unwrap_err().to_string();
            assert!(refused.contains(says), "{filter}: {refused}");
            assert!(refused.contains("userName eq"), "{refused}");
        }
        assert!(parse_group_filter(r#"members eq "x""#).is_err());
    }
}
