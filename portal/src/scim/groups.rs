//! `/Groups`: teams as SCIM groups, their members the employees in the team. A person is in
//! one team, so adding them to a group moves them out of their previous one.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use lineup_core::organisation::scim::filter::parse_group_filter;
use lineup_core::organisation::scim::{GroupRecord, ScimGroup, Update};
use serde_json::{Value, json};

use super::*;

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

pub fn render(group: &ScimGroup, base_url: &str) -> Value {
    let team = &group.team;
    let members: Vec<Value> = group
        .members
        .iter()
        .map(|(id, name)| {
            json!({
                "value": id.to_string(),
                "display": name,
                "type": "User",
                "$ref": format!("{base_url}/Users/{id}"),
            })
        })
        .collect();
    let mut body = json!({
        "schemas": [GROUP_SCHEMA],
        "id": team.id.to_string(),
        "displayName": team.name,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "created": super::users::rfc3339(team.created_at),
            "version": etag(&group.version),
            "location": format!("{base_url}/Groups/{}", team.id),
        },
    });
    if let Some(external_id) = &group.external_id {
        body["externalId"] = json!(external_id);
    }
    body
}

pub fn parse(body: &Value) -> Result<GroupRecord, ScimError> {
    let display_name = match field(body, "displayName") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err(ScimError::invalid_value("displayName is required")),
    };
    let external_id = match field(body, "externalId") {
        None => Update::Keep,
        Some(Value::Null) => Update::Clear,
        Some(Value::String(id)) => Update::Set(id.clone()),
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "externalId must be a string, not {other}"
            )));
        }
    };
    let members = match field(body, "members") {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(members)) => Some(
            members
                .iter()
                .map(|m| match field(m, "value") {
                    Some(Value::String(id)) => Ok(id.clone()),
                    _ => Err(ScimError::invalid_value(format!(
                        "each member needs a value (the user's id), not {m}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "members must be a list, not {other}"
            )));
        }
    };
    Ok(GroupRecord {
        display_name,
        external_id,
        members,
    })
}

fn answer(status: StatusCode, group: &ScimGroup, caller: &ScimCaller) -> Response {
    resource_response(status, render(group, &caller.base_url), &group.version)
}

pub async fn list(
    State(portal): State<Portal>,
    caller: ScimCaller,
    Query(query): ListParams,
) -> Result<Response, ScimError> {
    let filter = query
        .filter
        .as_deref()
        .map(parse_group_filter)
        .transpose()?;
    let (start, count) = query.paging()?;
    let page = portal
        .lineup
        .scim_groups(&caller.client, filter.as_ref(), start, count)
        .await?;
    Ok(list_response(&page, |g| {
        let mut resource = render(g, &caller.base_url);
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
    let group = portal.lineup.scim_group(&caller.client, &id).await?;
    let mut resource = render(&group, &caller.base_url);
    query.project(&mut resource);
    Ok(resource_response(StatusCode::OK, resource, &group.version))
}

pub async fn create(
    State(portal): State<Portal>,
    caller: ScimCaller,
    body: Bytes,
) -> Result<Response, ScimError> {
    let record = parse(&json_body(&body)?)?;
    let group = portal
        .lineup
        .scim_create_group(&caller.client, record)
        .await?;
    let mut response = answer(StatusCode::CREATED, &group, &caller);
    if let Ok(location) = format!("{}/Groups/{}", caller.base_url, group.team.id).parse() {
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
    let record = parse(&json_body(&body)?)?;
    let group = portal
        .lineup
        .scim_replace_group(&caller.client, &id, record, if_match(&headers).as_deref())
        .await?;
    Ok(answer(StatusCode::OK, &group, &caller))
}

/// As for users: the operations are applied to the group as served now, then written.
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
        let before = portal.lineup.scim_group(&caller.client, &id).await?;
        let mut document = render(&before, &caller.base_url);
        patch::apply(&mut document, &operations)?;
        let record = parse(&document)?;
        let version = wanted.clone().unwrap_or_else(|| before.version.clone());
        match portal
            .lineup
            .scim_replace_group(&caller.client, &id, record, Some(&version))
            .await
            .map_err(ScimError::from)
        {
            Err(e) if e.is_stale() && wanted.is_none() && attempt < PATCH_ATTEMPTS => continue,
            Err(e) => return Err(e),
            Ok(group) => return Ok(answer(StatusCode::OK, &group, &caller)),
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
        .scim_delete_group(&caller.client, &id, if_match(&headers).as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
