//! What this service provider supports (RFC 7644 §4): its configuration, its resource
//! types, and the schemas of exactly the attributes it keeps.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::groups::GROUP_SCHEMA;
use super::users::{ENTERPRISE_SCHEMA, USER_SCHEMA};
use super::*;

const CONFIG_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

pub async fn service_provider_config(caller: ScimCaller) -> Response {
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": [CONFIG_SCHEMA],
            "documentationUri": "https://github.com/lineup/lineup#provisioning-from-okta--entra--rippling-scim",
            "patch": { "supported": true },
            "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
            "filter": { "supported": true, "maxResults": lineup_core::organisation::scim::MAX_PAGE },
            "changePassword": { "supported": false },
            "sort": { "supported": false },
            "etag": { "supported": true },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A token created in Settings → Provisioning, sent as Authorization: Bearer <token>",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{}/ServiceProviderConfig", caller.base_url),
            },
        }),
    )
}

fn resource_types_of(base_url: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "An employee",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{ "schema": ENTERPRISE_SCHEMA, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/User") },
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A team",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/Group") },
        }),
    ]
}

pub async fn resource_types(caller: ScimCaller) -> Response {
    list_of(resource_types_of(&caller.base_url))
}

pub async fn resource_type(
    caller: ScimCaller,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    one_of(resource_types_of(&caller.base_url), &id, "resource type")
}

pub async fn schemas(caller: ScimCaller) -> Response {
    list_of(schemas_of(&caller.base_url))
}

pub async fn schema(caller: ScimCaller, Path(id): Path<String>) -> Result<Response, ScimError> {
    one_of(schemas_of(&caller.base_url), &id, "schema")
}

fn list_of(resources: Vec<Value>) -> Response {
    let page = lineup_core::organisation::scim::ScimPage {
        total: resources.len() as i64,
        resources,
        start_index: 1,
    };
    list_response(&page, Value::clone)
}

fn one_of(resources: Vec<Value>, id: &str, what: &str) -> Result<Response, ScimError> {
    resources
        .into_iter()
        .find(|r| r["id"].as_str() == Some(id))
        .map(|r| scim_json(StatusCode::OK, r))
        .ok_or_else(|| ScimError::not_found(format!("there is no {what} {id}")))
}

/// One attribute's definition.
fn attribute(name: &str, kind: &str, multi: bool, required: bool, mutability: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": name,
        "required": required,
        "caseExact": false,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": if name == "userName" { "server" } else { "none" },
    })
}

fn complex(name: &str, multi: bool, mutability: &str, subs: Vec<Value>) -> Value {
    let mut a = attribute(name, "complex", multi, false, mutability);
    a["subAttributes"] = Value::Array(subs);
    a
}

fn complex_required(name: &str, multi: bool, mutability: &str, subs: Vec<Value>) -> Value {
    let mut a = complex(name, multi, mutability, subs);
    a["required"] = json!(true);
    a
}

fn schema_of(id: &str, name: &str, attributes: Vec<Value>, base_url: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": name,
        "attributes": attributes,
        "meta": { "resourceType": "Schema", "location": format!("{base_url}/Schemas/{id}") },
    })
}

fn schemas_of(base_url: &str) -> Vec<Value> {
    let rw = "readWrite";
    let mut user_name = attribute("userName", "string", false, true, rw);
    user_name["description"] = json!("The person's work email address, or a login name");
    // A manager and a group's members are users (no nested groups); a client may name them
    // by `$ref`, whose last segment is the `value`.
    let mut reference = attribute("$ref", "reference", false, false, rw);
    reference["referenceTypes"] = json!(["User"]);
    let mut member_reference = attribute("$ref", "reference", false, false, rw);
    member_reference["referenceTypes"] = json!(["User"]);
    // Only work emails are kept (RFC 7643 §2.3.1 lets a provider restrict canonical values);
    // members are users, typed as the RFC's Group schema does (§8.7.1).
    let mut email_type = attribute("type", "string", false, false, rw);
    email_type["canonicalValues"] = json!(["work"]);
    let mut member_type = attribute("type", "string", false, false, "immutable");
    member_type["canonicalValues"] = json!(["User"]);
    let mut group_reference = attribute("$ref", "reference", false, false, "readOnly");
    group_reference["referenceTypes"] = json!(["Group"]);
    vec![
        schema_of(
            USER_SCHEMA,
            "User",
            vec![
                user_name,
                complex_required(
                    "name",
                    false,
                    rw,
                    vec![
                        attribute("givenName", "string", false, true, rw),
                        attribute("familyName", "string", false, true, rw),
                        attribute("formatted", "string", false, false, "readOnly"),
                    ],
                ),
                attribute("displayName", "string", false, false, "readOnly"),
                // Required: an employee is known by their email.
                complex_required(
                    "emails",
                    true,
                    rw,
                    vec![
                        attribute("value", "string", false, true, rw),
                        email_type,
                        // The one email kept is the primary one; a client's `primary` only
                        // picks it among several sent.
                        attribute("primary", "boolean", false, false, "readOnly"),
                    ],
                ),
                attribute("active", "boolean", false, false, rw),
                complex(
                    "groups",
                    true,
                    "readOnly",
                    vec![
                        attribute("value", "string", false, false, "readOnly"),
                        attribute("display", "string", false, false, "readOnly"),
                        group_reference,
                    ],
                ),
            ],
            base_url,
        ),
        schema_of(
            ENTERPRISE_SCHEMA,
            "EnterpriseUser",
            vec![
                attribute("employeeNumber", "string", false, false, rw),
                attribute("costCenter", "string", false, false, rw),
                attribute("department", "string", false, false, rw),
                complex(
                    "manager",
                    false,
                    rw,
                    vec![attribute("value", "string", false, false, rw), reference],
                ),
            ],
            base_url,
        ),
        schema_of(
            GROUP_SCHEMA,
            "Group",
            vec![
                attribute("displayName", "string", false, true, rw),
                complex(
                    "members",
                    true,
                    rw,
                    vec![
                        attribute("value", "string", false, false, "immutable"),
                        attribute("display", "string", false, false, "readOnly"),
                        member_type,
                        member_reference,
                    ],
                ),
            ],
            base_url,
        ),
    ]
}
