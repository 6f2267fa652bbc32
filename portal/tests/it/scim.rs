//! The SCIM service provider over a real socket, as Okta and Microsoft Entra ID call it
//! (their documented provisioning sequences), with its errors, paging, groups, token
//! revocation and the wall between tenants.

use lineup_core::audit::Actor;
use lineup_core::organisation::employee::EmployeeStatus;
use lineup_testkit::both_backends;
use lineup_testkit::portal::{BASE_DOMAIN, PortalWorld};
use lineup_testkit::world::ADMIN;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// An identity provider calling one tenant's SCIM endpoint with one token.
struct Idp {
    http: reqwest::Client,
    base: String,
    token: String,
}

struct Answer {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    body: Value,
}

impl Idp {
    fn new(w: &PortalWorld, slug: &str, token: &str) -> Self {
        let host = format!("{slug}.{BASE_DOMAIN}");
        Self {
            http: reqwest::Client::builder()
                .resolve(&host, w.addr)
                .build()
                .unwrap(),
            base: format!("http://{host}:{}/scim/v2", w.addr.port()),
            token: token.to_owned(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let etag = header(reqwest::header::ETAG);
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        Answer {
            status,
            content_type,
            etag,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }
}

impl Answer {
    fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        if !self.body.is_null() {
            assert_eq!(self.content_type, "application/scim+json");
        }
        self.body
    }

    /// A SCIM error with this status and scimType, whose detail contains `says`.
    fn expect_error(self, status: StatusCode, scim_type: Option<&str>, says: &str) {
        let body = self.expect(status);
        assert_eq!(
            body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(body["status"], json!(status.as_u16().to_string()));
        assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{detail:?} should say {says:?}");
    }
}

/// A token for acme named `name`, made by its owner.
async fn token(w: &PortalWorld, name: &str) -> String {
    let owner = w.user_id(w.olivia.email.as_str()).await;
    w.lineup
        .create_scim_token(w.tenant, &ADMIN, owner, name)
        .await
        .unwrap()
        .secret
}

fn new_user(email: &str, given: &str, family: &str, external_id: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "externalId": external_id,
        "name": { "givenName": given, "familyName": family },
        "emails": [{ "primary": true, "value": email, "type": "work" }],
        "active": true,
    })
}

/// The actors recorded on an employee's audit trail.
async fn actors_on(w: &PortalWorld, employee: &str) -> Vec<String> {
    let mut tx = w.store.tenant(w.tenant).await.unwrap();
    lineup_core::store::audit::list_for_subject(&mut tx, w.tenant, "employee", employee)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.actor, e.action))
        .collect()
}

both_backends!(
    okta_provisioning_sequence_creates_reads_deactivates_and_replaces_a_user,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let okta = Idp::new(&w, "acme", &token(&w, "okta").await);

        let found = okta
            .get("/Users?filter=userName%20eq%20%22grace%40example.com%22&startIndex=1&count=100")
            .await
            .expect(StatusCode::OK);
        assert_eq!(found["totalResults"], json!(0));
        assert_eq!(found["Resources"], json!([]));
        assert_eq!(
            found["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );

        let created = okta
            .call(
                Method::POST,
                "/Users",
                Some(new_user("grace@example.com", "Grace", "Hopper", "00u1okta")),
            )
            .await;
        assert!(created.etag.is_some());
        let created = created.expect(StatusCode::CREATED);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["userName"], json!("grace@example.com"));
        assert_eq!(created["active"], json!(true));
        assert_eq!(created["meta"]["resourceType"], json!("User"));
        assert!(
            created["meta"]["location"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/scim/v2/Users/{id}"))
        );

        let read = okta
            .get(&format!("/Users/{id}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(read["externalId"], json!("00u1okta"));
        assert_eq!(read["name"]["formatted"], json!("Grace Hopper"));
        let by_filter = okta
            .get("/Users?filter=userName%20eq%20%22Grace%40Example.com%22")
            .await
            .expect(StatusCode::OK);
        assert_eq!(by_filter["totalResults"], json!(1));
        assert_eq!(by_filter["Resources"][0]["id"], json!(id));

        let deactivated = okta
            .call(
                Method::PATCH,
                &format!("/Users/{id}"),
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{ "op": "replace", "value": { "active": false } }],
                })),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(deactivated["active"], json!(false));
        let employee = w
            .lineup
            .employee(w.tenant, id.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(employee.status, EmployeeStatus::Offboarded);

        let mut full = new_user("grace@example.com", "Grace", "Brewster Hopper", "00u1okta");
        full["id"] = json!(id);
        full["active"] = json!(false);
        let replaced = okta
            .call(Method::PUT, &format!("/Users/{id}"), Some(full))
            .await
            .expect(StatusCode::OK);
        assert_eq!(replaced["name"]["familyName"], json!("Brewster Hopper"));
        assert_eq!(replaced["active"], json!(false));

        let trail = actors_on(&w, &id).await;
        assert_eq!(
            trail,
            [
                "scim:okta employee.created",
                "scim:okta employee.offboarded",
                "scim:okta employee.updated",
            ],
            "every change is audited with the token's name"
        );
    }
);

both_backends!(
    entra_provisioning_sequence_patches_manager_email_and_active_then_deletes,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let entra = Idp::new(&w, "acme", &token(&w, "entra").await);
        let empty = entra
            .get("/Users?filter=userName+eq+%22katherine%40example.com%22")
            .await
            .expect(StatusCode::OK);
        assert_eq!(empty["totalResults"], json!(0));

        let mut user = new_user("katherine@example.com", "Katherine", "Johnson", "e-42");
        user["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]);
        user[ENTERPRISE] = json!({ "employeeNumber": "1042", "department": "Flight Research", "costCenter": "NASA-7" });
        let created = entra
            .call(Method::POST, "/Users", Some(user))
            .await
            .expect(StatusCode::CREATED);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created[ENTERPRISE]["employeeNumber"], json!("1042"));
        assert_eq!(created[ENTERPRISE]["department"], json!("Flight Research"));
        assert_eq!(created[ENTERPRISE]["costCenter"], json!("NASA-7"));
        let teams = w.lineup.teams(w.tenant).await.unwrap();
        assert!(
            teams.iter().any(|t| t.name == "Flight Research"),
            "department creates the team"
        );
        assert!(
            w.lineup
                .cost_centres(w.tenant)
                .await
                .unwrap()
                .iter()
                .any(|c| c.code == "NASA-7")
        );

        let maria = w.maria.id.to_string();
        let patched = entra
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    { "op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": maria },
                    { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "kjohnson@example.com" },
                    { "op": "Replace", "path": "name.familyName", "value": "Goble Johnson" },
                    { "op": "Add", "path": "externalId", "value": "e-43" },
                ],
            })),
        )
        .await
        .expect(StatusCode::OK);
        assert_eq!(patched[ENTERPRISE]["manager"]["value"], json!(maria));
        assert_eq!(patched["userName"], json!("kjohnson@example.com"));
        assert_eq!(patched["emails"][0]["value"], json!("kjohnson@example.com"));
        assert_eq!(patched["name"]["familyName"], json!("Goble Johnson"));
        assert_eq!(patched["externalId"], json!("e-43"));
        let by_email = entra
        .get("/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22kjohnson%40example.com%22")
        .await
        .expect(StatusCode::OK);
        assert_eq!(by_email["totalResults"], json!(1));
        let by_external = entra
            .get("/Users?filter=externalId%20eq%20%22e-43%22")
            .await
            .expect(StatusCode::OK);
        assert_eq!(by_external["Resources"][0]["id"], json!(id));

        let removed_manager = entra
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({ "Operations": [{ "op": "Remove", "path": format!("{ENTERPRISE}:manager") }] })),
        )
        .await
        .expect(StatusCode::OK);
        assert!(removed_manager[ENTERPRISE].get("manager").is_none());

        let inactive = entra
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({ "Operations": [{ "op": "Replace", "path": "active", "value": "False" }] })),
        )
        .await
        .expect(StatusCode::OK);
        assert_eq!(inactive["active"], json!(false));

        let deleted = entra
            .call(Method::DELETE, &format!("/Users/{id}"), None)
            .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        entra.get(&format!("/Users/{id}")).await.expect_error(
            StatusCode::NOT_FOUND,
            None,
            "was not found",
        );
        let gone = entra
            .get("/Users?filter=externalId%20eq%20%22e-43%22")
            .await
            .expect(StatusCode::OK);
        assert_eq!(gone["totalResults"], json!(0));
        let employee = w
            .lineup
            .employee(w.tenant, id.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(
            employee.status,
            EmployeeStatus::Offboarded,
            "kept for history, offboarded"
        );
        assert!(
            actors_on(&w, &id)
                .await
                .contains(&"scim:entra employee.scim_deleted".to_owned())
        );
    }
);

both_backends!(
    deactivating_a_user_runs_the_existing_offboarding,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let line = w.active_line(&w.ada, "scim-ada").await;
        let okta = Idp::new(&w, "acme", &token(&w, "okta").await);
        okta.call(
            Method::PATCH,
            &format!("/Users/{}", w.ada.id),
            Some(json!({ "Operations": [{ "op": "replace", "value": { "active": false } }] })),
        )
        .await
        .expect(StatusCode::OK);
        let line = w.lineup.line(w.tenant, line.id).await.unwrap();
        assert_ne!(
            line.state,
            lineup_core::lines::line::LineState::Active,
            "the line follows the tenant's offboarding action"
        );
        let trail = actors_on(&w, &w.ada.id.to_string()).await;
        assert!(
            trail.contains(&"scim:okta employee.offboarded".to_owned()),
            "{trail:?}"
        );
        assert!(
            trail.contains(&"scim:okta employee.offboarding_lines".to_owned()),
            "{trail:?}"
        );
    }
);

both_backends!(
    users_are_paged_from_a_one_based_start_index,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let idp = Idp::new(&w, "acme", &token(&w, "okta").await);
        let all = idp.get("/Users").await.expect(StatusCode::OK);
        let total = all["totalResults"].as_i64().unwrap();
        assert_eq!(total, 5, "acme's five employees");
        let ids: Vec<Value> = all["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].clone())
            .collect();
        let page = idp
            .get("/Users?startIndex=2&count=2")
            .await
            .expect(StatusCode::OK);
        assert_eq!(page["totalResults"], json!(total));
        assert_eq!(page["startIndex"], json!(2));
        assert_eq!(page["itemsPerPage"], json!(2));
        let paged: Vec<Value> = page["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].clone())
            .collect();
        assert_eq!(paged, ids[1..3]);
        let last = idp
            .get("/Users?startIndex=5&count=10")
            .await
            .expect(StatusCode::OK);
        assert_eq!(last["itemsPerPage"], json!(1));
        let none = idp.get("/Users?count=0").await.expect(StatusCode::OK);
        assert_eq!(none["totalResults"], json!(total));
        assert_eq!(none["Resources"], json!([]));
    }
);

both_backends!(
    every_refusal_is_a_scim_error_with_its_scim_type,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let idp = Idp::new(&w, "acme", &token(&w, "okta").await);
        idp.get("/Users?filter=title%20eq%20%22x%22")
            .await
            .expect_error(
                StatusCode::BAD_REQUEST,
                Some("invalidFilter"),
                "filtering on \"title\" is not supported",
            );
        idp.get("/Users?filter=userName%20sw%20%22a%22")
            .await
            .expect_error(
                StatusCode::BAD_REQUEST,
                Some("invalidFilter"),
                "operator \"sw\"",
            );
        idp.get("/Users?startIndex=first").await.expect_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "startIndex",
        );
        idp.call(
            Method::POST,
            "/Users",
            Some(new_user("ada@example.com", "Ada", "Again", "x")),
        )
        .await
        .expect_error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "ada@example.com is already an employee",
        );
        idp.call(
            Method::POST,
            "/Users",
            Some(new_user("not-an-email", "No", "Email", "x")),
        )
        .await
        .expect_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "value must be the person's email address",
        );
        let mut nameless = new_user("nameless@example.com", "", "", "x");
        nameless["name"] = json!({});
        idp.call(Method::POST, "/Users", Some(nameless))
            .await
            .expect_error(
                StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                "name.givenName",
            );
        let broken = idp
            .send(
                idp.http
                    .post(format!("{}/Users", idp.base))
                    .bearer_auth(&idp.token)
                    .body("{not json"),
            )
            .await;
        broken.expect_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"), "not JSON");
        idp.call(
            Method::PATCH,
            &format!("/Users/{}", w.ada.id),
            Some(json!({ "Operations": [{ "op": "move", "path": "x", "value": 1 }] })),
        )
        .await
        .expect_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "op must be add, replace or remove",
        );
        idp.call(Method::PATCH, &format!("/Users/{}", w.ada.id), Some(json!({ "Operations": [{ "op": "replace", "path": "emails[type co \"w\"].value", "value": "a@b.c" }] })))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("invalidPath"), "only filters of the form");
        idp.call(
            Method::PATCH,
            &format!("/Users/{}", w.ada.id),
            Some(json!({ "Operations": [{ "op": "remove" }] })),
        )
        .await
        .expect_error(
            StatusCode::BAD_REQUEST,
            Some("noTarget"),
            "remove needs a path",
        );
        idp.get("/Users/not-an-id")
            .await
            .expect_error(StatusCode::NOT_FOUND, None, "not-an-id");
        idp.get("/Nothing").await.expect_error(
            StatusCode::NOT_FOUND,
            None,
            "no such SCIM endpoint",
        );
        idp.call(
            Method::POST,
            "/.search",
            Some(json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "nonsense" })),
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("invalidFilter"), "");

        let stale = idp
            .send(
                idp.http
                    .put(format!("{}/Users/{}", idp.base, w.ada.id))
                    .bearer_auth(&idp.token)
                    .header("if-match", "W/\"1-1\"")
                    .body(new_user("ada@example.com", "Ada", "Tester", "x").to_string()),
            )
            .await;
        stale.expect_error(
            StatusCode::PRECONDITION_FAILED,
            None,
            "the resource changed",
        );
        let current = idp.get(&format!("/Users/{}", w.ada.id)).await;
        let etag = current.etag.clone().unwrap();
        let fresh = idp
            .send(
                idp.http
                    .put(format!("{}/Users/{}", idp.base, w.ada.id))
                    .bearer_auth(&idp.token)
                    .header("if-match", etag)
                    .body(new_user("ada@example.com", "Ada", "Tester", "x").to_string()),
            )
            .await;
        assert_eq!(fresh.expect(StatusCode::OK)["externalId"], json!("x"));

        let anonymous = Idp::new(&w, "acme", "");
        anonymous
            .send(anonymous.http.get(format!("{}/Users", anonymous.base)))
            .await
            .expect_error(StatusCode::UNAUTHORIZED, None, "Bearer");
        Idp::new(&w, "acme", "0123456789abcdef")
            .get("/Users")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, None, "not valid");
    }
);

both_backends!(
    a_manager_that_would_make_the_reporting_line_loop_is_refused_naming_the_chain,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let idp = Idp::new(&w, "acme", &token(&w, "entra").await);
        // ada reports to maria, who reports to olivia: olivia cannot report to ada.
        idp.call(
        Method::PATCH,
        &format!("/Users/{}", w.olivia.id),
        Some(json!({ "Operations": [{ "op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": { "value": w.ada.id.to_string() } }] })),
    )
    .await
    .expect_error(
        StatusCode::BAD_REQUEST,
        Some("invalidValue"),
        "ada@example.com → maria@example.com → olivia@example.com",
    );
        let olivia = w.lineup.employee(w.tenant, w.olivia.id).await.unwrap();
        assert_eq!(olivia.manager_id, None, "nothing changed");
        idp.call(
        Method::PATCH,
        &format!("/Users/{}", w.ada.id),
        Some(json!({ "Operations": [{ "op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": "no-such-user" }] })),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, Some("invalidValue"), "no-such-user is not the id of a user");
    }
);

both_backends!(
    a_token_created_in_settings_works_once_shown_and_not_after_it_is_revoked,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let owner = w.signed_in(w.olivia.email.as_str()).await;
        let page = owner.get("/settings/provisioning").await;
        page.assert_ok().assert_contains(&format!(
            "http://acme.{BASE_DOMAIN}:{}/scim/v2",
            w.addr.port()
        ));
        let created = owner
            .post("/settings/provisioning/tokens", &[("name", "okta")])
            .await;
        created.assert_ok().assert_contains("shown only this once");
        let secret = created
            .body
            .split("shown only this once: <code>")
            .nth(1)
            .and_then(|rest| rest.split("</code>").next())
            .unwrap()
            .to_owned();
        assert_eq!(secret.len(), 64, "32 random bytes, hex");
        let again = owner.get("/settings/provisioning").await;
        assert!(
            !again.body.contains(&secret),
            "the secret is never shown again"
        );
        owner
            .post("/settings/provisioning/tokens", &[("name", "okta")])
            .await
            .assert_contains("a token named okta already exists");

        let idp = Idp::new(&w, "acme", &secret);
        idp.get("/Users").await.expect(StatusCode::OK);
        let tokens = w.lineup.scim_tokens(w.tenant).await.unwrap();
        assert!(tokens[0].last_used_at.is_some(), "its last use is recorded");
        owner
            .get("/settings/provisioning")
            .await
            .assert_contains("UTC");

        let revoked = owner
            .post(
                &format!("/settings/provisioning/tokens/{}/revoke", tokens[0].id),
                &[],
            )
            .await;
        assert_eq!(revoked.status, StatusCode::SEE_OTHER);
        idp.get("/Users")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, None, "not valid");
        owner
            .get("/settings/provisioning")
            .await
            .assert_contains("revoked");
        let audit = w
            .audit_in(w.tenant, "scim_token", &tokens[0].id.to_string())
            .await;
        assert_eq!(audit, ["scim_token.created", "scim_token.revoked"]);

        let finance = w.signed_in(w.fiona.email.as_str()).await;
        assert_eq!(
            finance.get("/settings/provisioning").await.status,
            StatusCode::FORBIDDEN
        );
    }
);

both_backends!(a_token_never_reaches_another_tenant, |store| async move {
    let w = PortalWorld::new(store).await;
    let acme = token(&w, "okta").await;
    Idp::new(&w, "globex", &acme)
        .get("/Users")
        .await
        .expect_error(StatusCode::UNAUTHORIZED, None, "not valid");
    let idp = Idp::new(&w, "acme", &acme);
    idp.get(&format!("/Users/{}", w.gina.id))
        .await
        .expect_error(StatusCode::NOT_FOUND, None, "was not found");
    idp.call(Method::DELETE, &format!("/Users/{}", w.gina.id), None)
        .await
        .expect_error(StatusCode::NOT_FOUND, None, "was not found");
    idp.call(
        Method::PATCH,
        &format!("/Users/{}", w.ada.id),
        Some(json!({ "Operations": [{ "op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": w.gina.id.to_string() }] })),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, Some("invalidValue"), "is not the id of a user in this organisation");
    let listed = idp
        .get("/Users?filter=userName%20eq%20%22gina%40example.com%22")
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["totalResults"], json!(0));
    let globex_owner = w.user_id("owner@globex.example").await;
    let globex = w
        .lineup
        .create_scim_token(w.globex, &Actor::System, globex_owner, "okta")
        .await
        .unwrap()
        .secret;
    let theirs = Idp::new(&w, "globex", &globex)
        .get("/Users")
        .await
        .expect(StatusCode::OK);
    assert_eq!(theirs["totalResults"], json!(1));
    assert_eq!(
        theirs["Resources"][0]["userName"],
        json!("gina@example.com")
    );
    let gina = w.lineup.employee(w.globex, w.gina.id).await.unwrap();
    assert_eq!(gina.status, EmployeeStatus::Active);
});

both_backends!(
    groups_are_teams_and_their_members_the_teams_people,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let idp = Idp::new(&w, "acme", &token(&w, "entra").await);
        let created = idp
            .call(
                Method::POST,
                "/Groups",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Field Sales",
                    "externalId": "g-1",
                    "members": [{ "value": w.ada.id.to_string() }],
                })),
            )
            .await
            .expect(StatusCode::CREATED);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["members"][0]["value"], json!(w.ada.id.to_string()));
        let ada = idp
            .get(&format!("/Users/{}", w.ada.id))
            .await
            .expect(StatusCode::OK);
        assert_eq!(ada["groups"][0]["value"], json!(id));
        assert_eq!(ada[ENTERPRISE]["department"], json!("Field Sales"));

        idp.call(
            Method::PATCH,
            &format!("/Groups/{id}"),
            Some(json!({ "Operations": [
            { "op": "Add", "path": "members", "value": [{ "value": w.alan.id.to_string() }] },
            { "op": "Remove", "path": format!("members[value eq \"{}\"]", w.ada.id) },
            { "op": "Replace", "path": "displayName", "value": "Sales" },
        ] })),
        )
        .await
        .expect(StatusCode::OK);
        let group = idp
            .get(&format!("/Groups/{id}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(group["displayName"], json!("Sales"));
        assert_eq!(group["members"].as_array().unwrap().len(), 1);
        assert_eq!(group["members"][0]["value"], json!(w.alan.id.to_string()));
        let ada = w.lineup.employee(w.tenant, w.ada.id).await.unwrap();
        assert_eq!(ada.team_id, None);

        let found = idp
            .get("/Groups?filter=displayName%20eq%20%22sales%22")
            .await
            .expect(StatusCode::OK);
        assert_eq!(found["totalResults"], json!(1));
        idp.call(
            Method::POST,
            "/Groups",
            Some(json!({ "displayName": "SALES" })),
        )
        .await
        .expect_error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "a team named SALES already exists",
        );
        idp.get("/Groups?filter=members%20eq%20%22x%22")
            .await
            .expect_error(
                StatusCode::BAD_REQUEST,
                Some("invalidFilter"),
                "displayName eq",
            );

        assert_eq!(
            idp.call(Method::DELETE, &format!("/Groups/{id}"), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        idp.get(&format!("/Groups/{id}")).await.expect_error(
            StatusCode::NOT_FOUND,
            None,
            "not found",
        );
        let alan = w.lineup.employee(w.tenant, w.alan.id).await.unwrap();
        assert_eq!(
            alan.team_id, None,
            "a deleted group's members leave the team"
        );
    }
);

both_backends!(discovery_describes_what_is_supported, |store| async move {
    let w = PortalWorld::new(store).await;
    let idp = Idp::new(&w, "acme", &token(&w, "okta").await);
    let config = idp
        .get("/ServiceProviderConfig")
        .await
        .expect(StatusCode::OK);
    assert_eq!(config["patch"]["supported"], json!(true));
    assert_eq!(config["bulk"]["supported"], json!(false));
    assert_eq!(config["etag"]["supported"], json!(true));
    let types = idp.get("/ResourceTypes").await.expect(StatusCode::OK);
    assert_eq!(types["totalResults"], json!(2));
    idp.get("/ResourceTypes/User").await.expect(StatusCode::OK);
    let schemas = idp.get("/Schemas").await.expect(StatusCode::OK);
    assert_eq!(schemas["totalResults"], json!(3));
    let enterprise = idp
        .get(&format!("/Schemas/{ENTERPRISE}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(enterprise["attributes"].as_array().unwrap().len(), 4);
});

both_backends!(
    a_login_name_that_is_not_the_email_is_kept_as_the_user_name,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let entra = Idp::new(&w, "acme", &token(&w, "entra").await);
        let mut user = new_user("dorothy@example.com", "Dorothy", "Vaughan", "e-7");
        user["userName"] = json!("dvaughan@corp.example.onmicrosoft.com");
        let created = entra
            .call(Method::POST, "/Users", Some(user))
            .await
            .expect(StatusCode::CREATED);
        assert_eq!(
            created["userName"],
            json!("dvaughan@corp.example.onmicrosoft.com")
        );
        assert_eq!(created["emails"][0]["value"], json!("dorothy@example.com"));
        let found = entra
            .get("/Users?filter=userName%20eq%20%22DVaughan%40corp.example.onmicrosoft.com%22")
            .await
            .expect(StatusCode::OK);
        assert_eq!(found["totalResults"], json!(1));
        let mut clash = new_user("other@example.com", "Other", "Person", "e-8");
        clash["userName"] = json!("dvaughan@corp.example.onmicrosoft.com");
        entra
            .call(Method::POST, "/Users", Some(clash))
            .await
            .expect_error(
                StatusCode::CONFLICT,
                Some("uniqueness"),
                "userName dvaughan@corp.example.onmicrosoft.com is already taken",
            );
        let mut login = new_user("login@example.com", "Log", "In", "e-9");
        login["userName"] = json!("not-an-address");
        login["emails"] = json!([]);
        entra
            .call(Method::POST, "/Users", Some(login))
            .await
            .expect_error(
                StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                "or a work email",
            );
    }
);

both_backends!(
    attributes_narrow_and_excluded_attributes_trim_what_is_returned,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let idp = Idp::new(&w, "acme", &token(&w, "okta").await);
        let ada = format!("/Users/{}", w.ada.id);
        let narrow = idp
            .get(&format!("{ada}?attributes=userName,name.givenName"))
            .await
            .expect(StatusCode::OK);
        let mut keys: Vec<&String> = narrow.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "name", "schemas", "userName"]);
        assert_eq!(narrow["name"], json!({ "givenName": "Ada" }));
        let trimmed = idp
        .get(&format!("/Users?filter=id%20eq%20%22{}%22&excludedAttributes=emails,id,{ENTERPRISE}:manager", w.ada.id))
        .await
        .expect(StatusCode::OK);
        let user = &trimmed["Resources"][0];
        assert!(user.get("emails").is_none());
        assert_eq!(
            user["id"],
            json!(w.ada.id.to_string()),
            "id is always returned"
        );
        assert!(user[ENTERPRISE].get("manager").is_none());
        assert_eq!(user["userName"], json!("ada@example.com"));
    }
);

both_backends!(
    a_search_at_the_root_lists_users_then_groups_with_the_attributes_asked_for,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let idp = Idp::new(&w, "acme", &token(&w, "okta").await);
        idp.call(
            Method::POST,
            "/Groups",
            Some(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Searchers" })),
        )
        .await
        .expect(StatusCode::CREATED);
        let users = idp.get("/Users").await.expect(StatusCode::OK);
        let groups = idp.get("/Groups").await.expect(StatusCode::OK);
        let total =
            users["totalResults"].as_i64().unwrap() + groups["totalResults"].as_i64().unwrap();
        let found = idp
            .call(
                Method::POST,
                "/.search",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "attributes": ["userName", "displayName"],
                    "count": 1000,
                })),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(found["totalResults"].as_i64(), Some(total));
        let resources = found["Resources"].as_array().unwrap();
        assert_eq!(resources.len() as i64, total);
        assert_eq!(resources[0]["userName"], users["Resources"][0]["userName"]);
        assert!(
            resources[0].get("emails").is_none(),
            "only what was asked, with id"
        );
        assert!(resources[0].get("id").is_some());
        let last = resources.last().unwrap();
        assert_eq!(
            last["displayName"],
            groups["Resources"].as_array().unwrap().last().unwrap()["displayName"]
        );

        let by_name = idp
            .call(
                Method::POST,
                "/.search",
                Some(json!({ "filter": "userName eq \"ada@example.com\"" })),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(by_name["totalResults"], json!(1));
        assert_eq!(by_name["Resources"][0]["id"], json!(w.ada.id.to_string()));
    }
);

both_backends!(
    settings_lists_the_newest_scim_calls_of_the_tenant_only_with_their_outcome,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let acme = token(&w, "okta").await;
        let idp = Idp::new(&w, "acme", &acme);
        idp.get("/Users").await.expect(StatusCode::OK);
        idp.get("/Users/not-an-id")
            .await
            .expect(StatusCode::NOT_FOUND);
        Idp::new(&w, "acme", "wrong-token")
            .get("/Groups")
            .await
            .expect(StatusCode::UNAUTHORIZED);
        // A call with acme's token on globex's host lands on globex's log, as a refusal.
        Idp::new(&w, "globex", &acme)
            .get("/Users")
            .await
            .expect(StatusCode::UNAUTHORIZED);

        let calls = w.lineup.scim_calls(w.tenant).await.unwrap();
        let seen: Vec<_> = calls
            .iter()
            .map(|c| {
                (
                    c.token_name.as_deref(),
                    c.method.as_str(),
                    c.path.as_str(),
                    c.status,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (None, "GET", "/Groups", 401),
                (Some("okta"), "GET", "/Users/not-an-id", 404),
                (Some("okta"), "GET", "/Users", 200),
            ]
        );
        assert!(calls[1].error.as_deref().unwrap().contains("was not found"));
        assert_eq!(calls[2].error, None);
        let globex = w.lineup.scim_calls(w.globex).await.unwrap();
        assert_eq!(globex.len(), 1);
        assert_eq!(globex[0].status, 401);

        let owner = w.signed_in(w.olivia.email.as_str()).await;
        owner
            .get("/settings/provisioning")
            .await
            .assert_ok()
            .assert_contains("Recent calls")
            .assert_contains("<code>/Users/not-an-id</code>")
            .assert_contains("no valid token");

        for _ in 0..105 {
            idp.get("/ServiceProviderConfig")
                .await
                .expect(StatusCode::OK);
        }
        let kept = w.lineup.scim_calls(w.tenant).await.unwrap();
        assert_eq!(kept.len(), 100, "only the newest 100 are kept");
        assert!(kept.iter().all(|c| c.path == "/ServiceProviderConfig"));
    }
);

/// A chat platform that keeps what it is asked to send.
#[derive(Default)]
struct KeptChat(std::sync::Mutex<Vec<lineup_core::messaging::employee_notice::EmployeeNotice>>);

#[async_trait::async_trait]
impl lineup_core::messaging::employee_notice::NoticeSender for KeptChat {
    async fn send_notice(
        &self,
        notice: &lineup_core::messaging::employee_notice::EmployeeNotice,
    ) -> Result<(), lineup_core::messaging::employee_notice::NoticeError> {
        self.0.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

both_backends!(
    a_joiner_pushed_with_a_start_date_gets_one_line_ordered_the_day_before_and_sent_that_morning,
    |store| async move {
        use lineup_core::organisation::joiner::{
            JoinerRule, JoinerState, START_DATE_SCHEMA, issue_key, morning_of,
        };
        let w = PortalWorld::new(store).await;
        let policy = w
            .lineup
            .add_joiner_policy(w.tenant, &ADMIN, JoinerRule::Everyone, w.plans[0].id)
            .await
            .unwrap();
        let idp = Idp::new(&w, "acme", &token(&w, "okta").await);
        let start = time::OffsetDateTime::now_utc().date() + time::Duration::days(10);
        let mut june = new_user("june@example.com", "June", "Joiner", "okta-june");
        june[ENTERPRISE] = json!({ "manager": { "value": w.maria.id.to_string() } });
        june[START_DATE_SCHEMA] = json!({ "startDate": start.to_string() });
        let created = idp
            .call(Method::POST, "/Users", Some(june.clone()))
            .await
            .expect(StatusCode::CREATED);
        assert_eq!(
            created[START_DATE_SCHEMA]["startDate"],
            json!(start.to_string())
        );
        let id: lineup_core::ids::EmployeeId = created["id"].as_str().unwrap().parse().unwrap();
        // The identity provider pushes again, as they do: nothing is ordered twice.
        idp.call(Method::POST, "/Users", Some(june.clone()))
            .await
            .expect(StatusCode::CONFLICT);
        idp.call(Method::PUT, &format!("/Users/{id}"), Some(june.clone()))
            .await
            .expect(StatusCode::OK);
        idp.call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({ "Operations": [{ "op": "replace", "path": format!("{START_DATE_SCHEMA}:startDate"), "value": "not a date" }] })),
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("invalidValue"), "startDate must be a date");

        let morning = morning_of(start);
        let day_before = morning - time::Duration::days(1);
        assert_eq!(
            w.lineup
                .order_joiner_lines(day_before - time::Duration::minutes(1))
                .await
                .unwrap(),
            0,
            "too early to order"
        );
        assert_eq!(w.lineup.order_joiner_lines(day_before).await.unwrap(), 1);
        assert_eq!(w.lineup.order_joiner_lines(day_before).await.unwrap(), 0);
        let joiner = w.lineup.joiner(w.tenant, id).await.unwrap().unwrap();
        assert_eq!(joiner.state, JoinerState::Ordered);
        let line = w
            .lineup
            .line_issued_with(w.tenant, &issue_key(id, policy.id))
            .await
            .unwrap()
            .expect("the line is issued with the joiner's key");
        assert_eq!(joiner.line_id, Some(line.id));
        let lines_of_june = w
            .lineup
            .lines(w.tenant)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.employee_id == id)
            .count();
        assert_eq!(lines_of_june, 1);

        let chat = KeptChat::default();
        let early = morning - time::Duration::minutes(1);
        assert_eq!(
            w.lineup.deliver_joiner_lines(&chat, early).await.unwrap(),
            0
        );
        // The line settles at the provider in the background; the step waits for it.
        let mut sent = 0;
        for _ in 0..200 {
            sent = w.lineup.deliver_joiner_lines(&chat, morning).await.unwrap();
            if sent > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(sent, 1);
        assert_eq!(
            w.lineup.deliver_joiner_lines(&chat, morning).await.unwrap(),
            0
        );
        let kept = chat.0.lock().unwrap().clone();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].employee_id, id);
        assert!(kept[0].message.image.is_some(), "the QR code");
        let notices = w.lineup.employee_notices(w.tenant).await.unwrap();
        let told = notices
            .iter()
            .find(|(key, _, _)| key == &format!("joiner:{id}:manager"))
            .expect("the manager is told");
        assert!(
            told.2.text.contains("June Joiner starts today"),
            "{}",
            told.2.text
        );

        let trail = actors_on(&w, &id.to_string()).await;
        for action in [
            "joiner.enrolled",
            "joiner.line_ordered",
            "joiner.line_delivered",
        ] {
            assert_eq!(
                trail.iter().filter(|a| a.ends_with(action)).count(),
                1,
                "{action} once in {trail:?}"
            );
        }
    }
);

both_backends!(
    an_owner_sets_joiner_policies_on_settings_and_finance_may_not,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let owner = w.signed_in(w.olivia.email.as_str()).await;
        owner
            .get("/settings/joiners")
            .await
            .assert_ok()
            .assert_contains("No joiner policy");
        let plan = w.plans[0].id.to_string();
        owner
            .post(
                "/settings/joiners",
                &[("rule", "team:nonsense"), ("plan", &plan)],
            )
            .await
            .assert_contains("is not everyone, a team or a cost centre");
        let added = owner
            .post(
                "/settings/joiners",
                &[("rule", "everyone"), ("plan", &plan)],
            )
            .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER);
        let policies = w.lineup.joiner_policies(w.tenant).await.unwrap();
        assert_eq!(policies.len(), 1);
        owner
            .get("/settings/joiners")
            .await
            .assert_ok()
            .assert_contains("Everyone")
            .assert_contains(&w.plans[0].name);
        let audit = w
            .audit_in(w.tenant, "joiner_policy", &policies[0].id.to_string())
            .await;
        assert_eq!(audit, ["joiner_policy.created"]);

        let finance = w.signed_in(w.fiona.email.as_str()).await;
        assert_eq!(
            finance.get("/settings/joiners").await.status,
            StatusCode::FORBIDDEN
        );
        let removed = owner
            .post(&format!("/settings/joiners/{}/remove", policies[0].id), &[])
            .await;
        assert_eq!(removed.status, StatusCode::SEE_OTHER);
        assert!(w.lineup.joiner_policies(w.tenant).await.unwrap().is_empty());
    }
);

both_backends!(
    users_pushed_at_once_into_a_new_department_and_cost_centre_share_one_of_each,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let idp = Idp::new(&w, "acme", &token(&w, "okta").await);
        let pushes = (0..6).map(|i| {
            let mut user = new_user(
                &format!("crowd{i}@example.com"),
                "Crowd",
                "Member",
                &format!("c{i}"),
            );
            user[ENTERPRISE] = json!({ "department": "Night Shift", "costCenter": "CC-NIGHT" });
            idp.call(Method::POST, "/Users", Some(user))
        });
        for answer in futures_util::future::join_all(pushes).await {
            answer.expect(StatusCode::CREATED);
        }
        let teams = w.lineup.teams(w.tenant).await.unwrap();
        assert_eq!(teams.iter().filter(|t| t.name == "Night Shift").count(), 1);
        let centres = w.lineup.cost_centres(w.tenant).await.unwrap();
        assert_eq!(centres.iter().filter(|c| c.code == "CC-NIGHT").count(), 1);
    }
);
