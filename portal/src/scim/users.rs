//! `/Users`: employees as SCIM users. The work email is the employee's email (and userName
//! too, unless the provider sends a login name of its own),
//! `name` their given and family names, `active` whether they are not offboarded, and the
//! enterprise extension's department, costCenter and manager their team, cost centre and
//! manager.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use lineup_core::email_address::Email;
use lineup_core::organisation::employee::EmployeeStatus;
use lineup_core::organisation::joiner::START_DATE_SCHEMA;
use lineup_core::organisation::scim::filter::parse_user_filter;
use lineup_core::organisation::scim::{ScimUser, Update, UserRecord};
use lineup_core::person_name::PersonName;
use serde_json::{Value, json};

use super::*;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub fn render(user: &ScimUser, base_url: &str) -> Value {
    let e = &user.employee;
    let location = format!("{base_url}/Users/{}", e.id);
    let formatted = e.full_name();
    let mut enterprise = serde_json::Map::new();
    if let Some(number) = &user.employee_number {
        enterprise.insert("employeeNumber".into(), json!(number));
    }
    if let Some(centre) = &user.cost_centre {
        enterprise.insert("costCenter".into(), json!(centre));
    }
    if let Some(department) = &user.department {
        enterprise.insert("department".into(), json!(department));
    }
    if let Some(manager) = e.manager_id {
        enterprise.insert(
            "manager".into(),
            json!({ "value": manager.to_string(), "$ref": format!("{base_url}/Users/{manager}") }),
        );
    }
    let mut body = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": e.id.to_string(),
        "userName": user.user_name(),
        "name": {
            "givenName": e.given_name,
            "familyName": e.family_name,
            "formatted": formatted,
        },
        "displayName": formatted,
        "emails": [{ "value": e.email.as_str(), "type": "work", "primary": true }],
        "active": e.status == EmployeeStatus::Active,
        "groups": match (e.team_id, &user.department) {
            (Some(team), Some(name)) => json!([{
                "value": team.to_string(),
                "display": name,
                "$ref": format!("{base_url}/Groups/{team}"),
            }]),
            _ => json!([]),
        },
        "meta": {
            "resourceType": "User",
            "created": rfc3339(e.created_at),
            "lastModified": rfc3339(e.updated_at),
            "version": etag(&user.version),
            "location": location,
        },
    });
    if let Some(external_id) = &user.external_id {
        body["externalId"] = json!(external_id);
    }
    if !enterprise.is_empty() {
        body[ENTERPRISE_SCHEMA] = Value::Object(enterprise);
    }
    if let Some(start) = user.start_date {
        body[START_DATE_SCHEMA] = json!({ "startDate": start.to_string() });
        if let Some(schemas) = body["schemas"].as_array_mut() {
            schemas.push(json!(START_DATE_SCHEMA));
        }
    }
    body
}

pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What a POST or PUT body (or a patched resource) says, read against the stored user
/// (`before`) when there is one.
pub fn parse(body: &Value, before: Option<&ScimUser>) -> Result<UserRecord, ScimError> {
    let (email, user_name) = identity_of(body, before)?;
    let (given, family) = names_of(body)?;
    let enterprise = field(body, ENTERPRISE_SCHEMA);
    let in_enterprise = |name: &str| enterprise.and_then(|ext| field(ext, name));
    let manager = match in_enterprise("manager") {
        None => Update::Keep,
        Some(Value::Null) => Update::Clear,
        Some(Value::String(id)) => Update::Set(id.clone()),
        Some(object @ Value::Object(_)) => match field(object, "value") {
            None | Some(Value::Null) => Update::Clear,
            Some(Value::String(id)) => Update::Set(id.clone()),
            Some(other) => return Err(not_text("manager.value", other)),
        },
        Some(other) => return Err(not_text("manager", other)),
    };
    Ok(UserRecord {
        email,
        user_name,
        given_name: given,
        family_name: family,
        active: match field(body, "active") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(active)) => Some(*active),
            Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Some(true),
            Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Some(false),
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "active must be true or false, not {other}"
                )));
            }
        },
        external_id: text_update("externalId", field(body, "externalId"))?,
        employee_number: text_update("employeeNumber", in_enterprise("employeeNumber"))?,
        department: text_update("department", in_enterprise("department"))?,
        cost_centre: text_update("costCenter", in_enterprise("costCenter"))?,
        manager,
        start_date: start_date_of(
            field(body, START_DATE_SCHEMA).and_then(|ext| field(ext, "startDate")),
        )?,
    })
}

/// The Lineup extension's `startDate`: a date (`2026-12-01`), or a dateTime whose date is
/// taken as written.
fn start_date_of(value: Option<&Value>) -> Result<Update<time::Date>, ScimError> {
    let text = match value {
        None => return Ok(Update::Keep),
        Some(Value::Null) => return Ok(Update::Clear),
        Some(Value::String(text)) => text.trim(),
        Some(other) => return Err(not_text("startDate", other)),
    };
    let day = text.get(..10).unwrap_or(text);
    time::Date::parse(day, &time::format_description::well_known::Iso8601::DATE)
        .map(Update::Set)
        .map_err(|_| {
            ScimError::invalid_value(format!(
                "startDate must be a date such as 2026-12-01, not {text:?}"
            ))
        })
}

fn not_text(name: &str, value: &Value) -> ScimError {
    ScimError::invalid_value(format!("{name} must be a string, not {value}"))
}

fn text_update(name: &str, value: Option<&Value>) -> Result<Update<String>, ScimError> {
    match value {
        None => Ok(Update::Keep),
        Some(Value::Null) => Ok(Update::Clear),
        Some(Value::String(text)) => Ok(Update::Set(text.clone())),
        Some(other) => Err(not_text(name, other)),
    }
}

/// The employee's email and the userName when it is not that email. The work email (else the
/// primary or first one) is the email; without one, userName must be an email address. A user
/// whose userName has been their email keeps the two together: changing either changes both,
/// unless the provider changes both to different values.
fn identity_of(
    body: &Value,
    stored: Option<&ScimUser>,
) -> Result<(Email, Option<String>), ScimError> {
    let user_name = match field(body, "userName") {
        Some(Value::String(text)) if !text.trim().is_empty() => text.trim(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(ScimError::invalid_value(
                "userName is required: the person's work email address or login name",
            ));
        }
        Some(other) => return Err(not_text("userName", other)),
    };
    let work_email = match field(body, "emails") {
        Some(Value::Array(emails)) => {
            let chosen = emails
                .iter()
                .find(|e| field(e, "type").and_then(Value::as_str) == Some("work"))
                .or_else(|| {
                    emails
                        .iter()
                        .find(|e| field(e, "primary") == Some(&Value::Bool(true)))
                })
                .or(emails.first());
            match chosen.and_then(|e| field(e, "value")) {
                Some(Value::String(text)) => Some(Email::parse(text).map_err(|e| {
                    ScimError::invalid_value(format!(
                        "emails[type eq \"work\"].value must be the person's email address \
                         ({text:?}: {e})"
                    ))
                })?),
                _ => None,
            }
        }
        _ => None,
    };
    let as_email = Email::parse(user_name).ok();
    if let Some(stored) = stored.filter(|s| s.user_name.is_none()) {
        let stored_email = &stored.employee.email;
        let name_unchanged = user_name.eq_ignore_ascii_case(stored_email.as_str());
        let work_unchanged = work_email.as_ref().is_none_or(|w| w == stored_email);
        match (name_unchanged, work_unchanged, &as_email) {
            (true, _, _) => return Ok((work_email.unwrap_or_else(|| stored_email.clone()), None)),
            (false, true, Some(email)) => return Ok((email.clone(), None)),
            _ => {}
        }
    }
    let email = match (work_email, as_email) {
        (Some(work), _) => work,
        (None, Some(email)) => email,
        (None, None) => {
            return Err(ScimError::invalid_value(format!(
                "userName {user_name:?} must be the person's email address, or a work email \
                 (emails[type eq \"work\"].value) must be given"
            )));
        }
    };
    let separate = !user_name.eq_ignore_ascii_case(email.as_str());
    Ok((email, separate.then(|| user_name.to_owned())))
}

/// Given and family names from `name`, else split from `name.formatted` or `displayName`
/// at the last space.
fn names_of(body: &Value) -> Result<(PersonName, PersonName), ScimError> {
    let name = field(body, "name");
    let part = |key: &str| {
        name.and_then(|n| field(n, key))
            .and_then(Value::as_str)
            .and_then(|s| PersonName::parse(s).ok())
    };
    if let (Some(given), Some(family)) = (part("givenName"), part("familyName")) {
        return Ok((given, family));
    }
    let whole = name
        .and_then(|n| field(n, "formatted"))
        .or_else(|| field(body, "displayName"))
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    let split = whole
        .rsplit_once(' ')
        .and_then(|(g, f)| Some((PersonName::parse(g).ok()?, PersonName::parse(f).ok()?)));
    match (part("givenName"), part("familyName"), split) {
        (Some(given), None, Some((_, family))) => Ok((given, family)),
        (None, Some(family), Some((given, _))) => Ok((given, family)),
        (_, _, Some(both)) => Ok(both),
        _ => Err(ScimError::invalid_value(
            "name.givenName and name.familyName are required (or name.formatted as \"Given Family\")",
        )),
    }
}

pub async fn list(
    State(portal): State<Portal>,
    caller: ScimCaller,
    Query(query): ListParams,
) -> Result<Response, ScimError> {
    let filter = query.filter.as_deref().map(parse_user_filter).transpose()?;
    let (start, count) = query.paging()?;
    let page = portal
        .lineup
        .scim_users(&caller.client, filter.as_ref(), start, count)
        .await?;
    Ok(list_response(&page, |u| {
        let mut resource = render(u, &caller.base_url);
        query.project(&mut resource);
        resource
    }))
}

pub async fn show(
    State(portal): State<Portal>,
    caller: ScimCaller,
    Path(id): Path<String>,
    Query(query): ListParams,
) -> Result<Response, ScimError> {
    let user = portal.lineup.scim_user(&caller.client, &id).await?;
    let mut resource = render(&user, &caller.base_url);
    query.project(&mut resource);
    Ok(resource_response(StatusCode::OK, resource, &user.version))
}

fn answer(status: StatusCode, user: &ScimUser, caller: &ScimCaller) -> Response {
    resource_response(status, render(user, &caller.base_url), &user.version)
}

pub async fn create(
    State(portal): State<Portal>,
    caller: ScimCaller,
    body: Bytes,
) -> Result<Response, ScimError> {
    let record = parse(&json_body(&body)?, None)?;
    let user = portal
        .lineup
        .scim_create_user(&caller.client, record)
        .await?;
    let mut response = answer(StatusCode::CREATED, &user, &caller);
    if let Ok(location) = format!("{}/Users/{}", caller.base_url, user.employee.id).parse() {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    Ok(response)
}

pub async fn replace(
    State(portal): State<Portal>,
    caller: ScimCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let body = json_body(&body)?;
    let before = portal.lineup.scim_user(&caller.client, &id).await?;
    let record = parse(&body, Some(&before))?;
    let user = portal
        .lineup
        .scim_replace_user(&caller.client, &id, record, if_match(&headers).as_deref())
        .await?;
    Ok(answer(StatusCode::OK, &user, &caller))
}

/// Applies the operations to the user as served now and writes the result; when the user
/// changed meanwhile (and the client named no version) it starts again from the new one.
pub async fn patch(
    State(portal): State<Portal>,
    caller: ScimCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let operations = patch::operations(&json_body(&body)?)?;
    let wanted = if_match(&headers);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before = portal.lineup.scim_user(&caller.client, &id).await?;
        let mut document = render(&before, &caller.base_url);
        patch::apply(&mut document, &operations)?;
        let record = parse(&document, Some(&before))?;
        let version = wanted.clone().unwrap_or_else(|| before.version.clone());
        match portal
            .lineup
            .scim_replace_user(&caller.client, &id, record, Some(&version))
            .await
            .map_err(ScimError::from)
        {
            Err(e) if e.is_stale() && wanted.is_none() && attempt < PATCH_ATTEMPTS => continue,
            Err(e) => return Err(e),
            Ok(user) => return Ok(answer(StatusCode::OK, &user, &caller)),
        }
    }
}

pub async fn delete(
    State(portal): State<Portal>,
    caller: ScimCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    portal
        .lineup
        .scim_delete_user(&caller.client, &id, if_match(&headers).as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
