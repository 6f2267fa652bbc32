//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON: `add`, `replace` and `remove`
//! in any case (Entra sends "Replace"), with a path or without one (Okta sends
//! `{"op":"replace","value":{"active":false}}`), with value filters in paths such as
//! `emails[type eq "work"].value` or `members[value eq "…"]`, and extension attributes named
//! by their schema URN. Removing an attribute sets it to null, which a write reads as
//! "clear it".

use serde_json::{Map, Value};

use super::ScimError;
use super::field;

const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Schemas whose URN may prefix a path to a core attribute.
const CORE_SCHEMAS: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:Group",
];
const EXTENSION_SCHEMAS: [&str; 2] = [
    super::users::ENTERPRISE_SCHEMA,
    lineup_core::organisation::joiner::START_DATE_SCHEMA,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone)]
pub struct Operation {
    op: Op,
    path: Option<String>,
    value: Option<Value>,
}

/// The operations of a PATCH body.
pub fn operations(body: &Value) -> Result<Vec<Operation>, ScimError> {
    if let Some(Value::Array(schemas)) = field(body, "schemas")
        && !schemas.iter().any(|s| s.as_str() == Some(PATCH_SCHEMA))
    {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH body's schemas must include {PATCH_SCHEMA}"
        )));
    }
    let Some(Value::Array(list)) = field(body, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "a PATCH body needs an Operations list",
        ));
    };
    list.iter()
        .map(|item| {
            let op = match field(item, "op").and_then(Value::as_str) {
                Some(op) if op.eq_ignore_ascii_case("add") => Op::Add,
                Some(op) if op.eq_ignore_ascii_case("replace") => Op::Replace,
                Some(op) if op.eq_ignore_ascii_case("remove") => Op::Remove,
                other => {
                    return Err(ScimError::invalid_syntax(format!(
                        "op must be add, replace or remove, not {}",
                        other.unwrap_or("missing")
                    )));
                }
            };
            let path = match field(item, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(path)) if path.trim().is_empty() => None,
                Some(Value::String(path)) => Some(path.trim().to_owned()),
                Some(other) => {
                    return Err(ScimError::invalid_path(format!(
                        "path must be a string, not {other}"
                    )));
                }
            };
            let value = field(item, "value").cloned();
            if op != Op::Remove && value.is_none() {
                return Err(ScimError::invalid_value(format!("{op:?} needs a value")));
            }
            Ok(Operation { op, path, value })
        })
        .collect()
}

/// Apply `operations` in order to `document`.
pub fn apply(document: &mut Value, operations: &[Operation]) -> Result<(), ScimError> {
    for operation in operations {
        match &operation.path {
            Some(path) => apply_at(document, operation.op, path, operation.value.as_ref())?,
            None => {
                if operation.op == Op::Remove {
                    return Err(ScimError::no_target("remove needs a path"));
                }
                let Some(Value::Object(values)) = &operation.value else {
                    return Err(ScimError::invalid_value(
                        "without a path, the value must be an object of attributes",
                    ));
                };
                for (name, value) in values {
                    let is_extension = EXTENSION_SCHEMAS
                        .iter()
                        .any(|urn| urn.eq_ignore_ascii_case(name));
                    match value {
                        Value::Object(inner) if is_extension => {
                            for (sub, value) in inner {
                                let path = format!("{name}:{sub}");
                                apply_at(document, operation.op, &path, Some(value))?;
                            }
                        }
                        _ => apply_at(document, operation.op, name, Some(value))?,
                    }
                }
            }
        }
    }
    Ok(())
}

/// A parsed path: `[URN:]attribute[[sub eq "value"]][.sub]`.
#[derive(Debug, PartialEq, Eq)]
struct Path {
    extension: Option<&'static str>,
    attribute: String,
    filter: Option<(String, String)>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Result<Path, ScimError> {
    let bad = |why: &str| ScimError::invalid_path(format!("{path:?}: {why}"));
    let mut rest = path;
    let mut extension = None;
    for urn in CORE_SCHEMAS {
        if let Some(tail) = strip_prefix_ignoring_case(rest, &format!("{urn}:")) {
            rest = tail;
        }
    }
    for urn in EXTENSION_SCHEMAS {
        if let Some(tail) = strip_prefix_ignoring_case(rest, &format!("{urn}:")) {
            rest = tail;
            extension = Some(urn);
        }
    }
    let (attribute, filter, after) = match rest.find('[') {
        Some(open) => {
            let close = rest[open..]
                .find(']')
                .map(|at| open + at)
                .ok_or_else(|| bad("a [ is not closed"))?;
            let filter = value_filter(&rest[open + 1..close]).ok_or_else(|| {
                bad("only filters of the form [attribute eq \"value\"] are supported")
            })?;
            (&rest[..open], Some(filter), &rest[close + 1..])
        }
        None => match rest.split_once('.') {
            Some((attribute, _)) => (attribute, None, &rest[attribute.len()..]),
            None => (rest, None, ""),
        },
    };
    let sub = match after {
        "" => None,
        sub => Some(
            sub.strip_prefix('.')
                .filter(|s| is_name(s))
                .ok_or_else(|| bad("expected .subAttribute after the attribute"))?
                .to_owned(),
        ),
    };
    if !is_name(attribute) {
        return Err(bad("not an attribute name"));
    }
    Ok(Path {
        extension,
        attribute: attribute.to_owned(),
        filter,
        sub,
    })
}

fn strip_prefix_ignoring_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '$' || c == '_' || c == '-')
}

/// `type eq "work"` → ("type", "work").
fn value_filter(text: &str) -> Option<(String, String)> {
    let text = text.trim();
    let (attribute, rest) = text.split_once(char::is_whitespace)?;
    let (operator, literal) = rest.trim_start().split_once(char::is_whitespace)?;
    if !operator.eq_ignore_ascii_case("eq") || !is_name(attribute) {
        return None;
    }
    let value: String = serde_json::from_str(literal.trim()).ok()?;
    Some((attribute.to_owned(), value))
}

/// The key in `object` naming `name` in any case, or `name` itself.
fn key_for(object: &Map<String, Value>, name: &str) -> String {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

fn object_at<'a>(value: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    let map = match value {
        Value::Object(map) => map,
        other => {
            *other = Value::Object(Map::new());
            match other {
                Value::Object(map) => map,
                _ => unreachable!("just made an object"),
            }
        }
    };
    let key = key_for(map, name);
    let slot = map.entry(key).or_insert(Value::Null);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

fn apply_at(
    document: &mut Value,
    op: Op,
    path: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if let Some(urn) = EXTENSION_SCHEMAS
        .iter()
        .find(|urn| urn.eq_ignore_ascii_case(path))
    {
        // The whole extension: each of its attributes in turn.
        return match value {
            Some(Value::Object(values)) => {
                for (name, value) in values {
                    apply_at(document, op, &format!("{urn}:{name}"), Some(value))?;
                }
                Ok(())
            }
            None if op == Op::Remove => {
                for value in object_at(document, urn).values_mut() {
                    *value = Value::Null;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "{urn} takes an object of its attributes"
            ))),
        };
    }
    let path = parse_path(path)?;
    let container = match path.extension {
        Some(urn) => object_at(document, urn),
        None => document
            .as_object_mut()
            .ok_or_else(|| ScimError::internal("a resource is always an object"))?,
    };
    let key = key_for(container, &path.attribute);
    match (&path.filter, &path.sub) {
        (None, None) => set(container, key, op, value),
        (None, Some(sub)) => {
            let parent = container.entry(key).or_insert(Value::Null);
            if !parent.is_object() {
                *parent = Value::Object(Map::new());
            }
            if let Value::Object(parent) = parent {
                let sub_key = key_for(parent, sub);
                set(parent, sub_key, op, value);
            }
        }
        (Some((on, wanted)), sub) => {
            let slot = container.entry(key).or_insert(Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                unreachable!("just made a list")
            };
            let matches = |item: &Value| {
                field(item, on)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
            };
            if op == Op::Remove {
                items.retain(|item| !matches(item));
                return Ok(());
            }
            let value = value.cloned().unwrap_or(Value::Null);
            let mut found = false;
            for item in items.iter_mut().filter(|item| matches(item)) {
                found = true;
                merge_into(item, sub.as_deref(), value.clone());
            }
            if !found {
                let mut item = Value::Object(Map::from_iter([(
                    on.clone(),
                    Value::String(wanted.clone()),
                )]));
                merge_into(&mut item, sub.as_deref(), value);
                items.push(item);
            }
        }
    }
    Ok(())
}

/// Set `sub` of `item` to `value`, or (no `sub`) merge `value`'s attributes into `item`.
fn merge_into(item: &mut Value, sub: Option<&str>, value: Value) {
    let Value::Object(map) = item else { return };
    match (sub, value) {
        (Some(sub), value) => {
            let key = key_for(map, sub);
            map.insert(key, value);
        }
        (None, Value::Object(values)) => {
            for (name, value) in values {
                let key = key_for(map, &name);
                map.insert(key, value);
            }
        }
        (None, _) => {}
    }
}

/// One attribute of an object: add appends to a list (and merges into an object), replace
/// sets it, remove clears it (or, given values, takes those out of a list).
fn set(container: &mut Map<String, Value>, key: String, op: Op, value: Option<&Value>) {
    let current = container.entry(key).or_insert(Value::Null);
    match (op, current, value) {
        (Op::Remove, Value::Array(items), Some(Value::Array(gone))) => {
            let ids: Vec<&Value> = gone.iter().filter_map(|g| field(g, "value")).collect();
            items.retain(|item| !field(item, "value").is_some_and(|v| ids.contains(&v)));
        }
        (Op::Remove, current, _) => *current = Value::Null,
        (Op::Add, Value::Array(items), Some(Value::Array(more))) => {
            for item in more {
                let known = items.iter().any(|i| {
                    field(i, "value").is_some() && field(i, "value") == field(item, "value")
                });
                if !known {
                    items.push(item.clone());
                }
            }
        }
        (Op::Add | Op::Replace, current @ Value::Object(_), Some(Value::Object(_))) => {
            if let Some(value) = value {
                merge_into(current, None, value.clone());
            }
        }
        (_, current, value) => *current = value.cloned().unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(mut document: Value, body: Value) -> Value {
        apply(&mut document, &operations(&body).unwrap()).unwrap();
        document
    }

    #[test]
    fn paths_name_attributes_sub_attributes_filters_and_extensions() {
        assert_eq!(
            parse_path(r#"emails[type eq "work"].value"#).unwrap(),
            Path {
                extension: None,
                attribute: "emails".into(),
                filter: Some(("type".into(), "work".into())),
                sub: Some("value".into()),
            }
        );
        assert_eq!(
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
                .unwrap()
                .extension,
            Some(super::super::users::ENTERPRISE_SCHEMA)
        );
        assert_eq!(
            parse_path("name.givenName").unwrap().sub.as_deref(),
            Some("givenName")
        );
        for bad in [
            "emails[type co \"w\"].value",
            "emails[type eq \"w\"",
            "a b",
            "name.",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn okta_and_entra_operations_change_the_document() {
        let user = json!({
            "userName": "ada@example.com",
            "active": true,
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": "ada@example.com", "type": "work" }],
        });
        let okta = patched(
            user.clone(),
            json!({ "Operations": [{ "op": "replace", "value": { "active": false } }] }),
        );
        assert_eq!(okta["active"], json!(false));
        let entra = patched(
            user.clone(),
            json!({ "Operations": [
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada@new.example" },
                { "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-1" },
                { "op": "Replace", "path": "name.familyName", "value": "King" },
                { "op": "Remove", "path": "userName" },
            ]}),
        );
        assert_eq!(entra["emails"][0]["value"], json!("ada@new.example"));
        assert_eq!(
            entra["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"],
            json!("m-1")
        );
        assert_eq!(entra["name"]["familyName"], json!("King"));
        assert_eq!(entra["userName"], Value::Null);
    }

    #[test]
    fn members_are_added_and_removed_by_value() {
        let group = json!({ "displayName": "Sales", "members": [{ "value": "a" }] });
        let added = patched(
            group,
            json!({ "Operations": [{ "op": "add", "path": "members", "value": [{ "value": "b" }, { "value": "a" }] }] }),
        );
        assert_eq!(added["members"].as_array().unwrap().len(), 2);
        let removed = patched(
            added.clone(),
            json!({ "Operations": [{ "op": "remove", "path": "members[value eq \"a\"]" }] }),
        );
        assert_eq!(removed["members"], json!([{ "value": "b" }]));
        let removed = patched(
            added,
            json!({ "Operations": [{ "op": "Remove", "path": "members", "value": [{ "value": "b" }] }] }),
        );
        assert_eq!(removed["members"], json!([{ "value": "a" }]));
    }

    #[test]
    fn malformed_operations_are_refused() {
        for body in [
            json!({}),
            json!({ "Operations": [{ "op": "move", "path": "x", "value": 1 }] }),
            json!({ "Operations": [{ "op": "replace", "path": "x" }] }),
        ] {
            assert!(operations(&body).is_err(), "{body}");
        }
        let ops = operations(&json!({ "Operations": [{ "op": "remove" }] })).unwrap();
        assert!(apply(&mut json!({}), &ops).is_err());
    }
}
