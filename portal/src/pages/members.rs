//! Members: who can use this portal and with which role; invites by email; removing access.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::email_address::Email;
use lineup_core::identity::member::{Member, NewInvite, PendingInvite};
use lineup_core::identity::user::Role;
use lineup_core::ids::UserId;
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::{Form, non_empty};
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/members", get(show))
        .route("/members/invite", post(invite))
        .route("/members/{user_id}", post(update))
        .route("/members/{user_id}/remove", post(remove))
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    members: Vec<Member>,
    invites: Vec<PendingInvite>,
    /// Roles this user may hand out (only owners grant the owner role).
    roles: Vec<&'static str>,
    me: UserId,
    /// Invite and reset emails the mail server has not accepted yet.
    undelivered: i64,
    invite: InviteForm,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    employee_email: Option<String>,
}

#[derive(Deserialize)]
struct MemberForm {
    role: Option<String>,
    employee_email: Option<String>,
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    render(&portal, &page, InviteForm::default(), None).await
}

async fn render(
    portal: &Portal,
    page: &Page,
    invite: InviteForm,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let granting = |r: &Role| *r != Role::Owner || page.signed.session.role == Role::Owner;
    let template = MembersPage {
        chrome: page.chrome(),
        members: portal.lineup.members(tenant).await?,
        invites: portal.lineup.pending_invites(tenant).await?,
        roles: Role::ALL
            .iter()
            .filter(|r| granting(r))
            .map(|r| r.as_str())
            .collect(),
        me: page.signed.session.user_id,
        undelivered: portal.lineup.undelivered_emails(tenant).await?,
        invite,
        error: error.as_ref().map(|(_, e)| e.clone()),
    };
    let mut response = page.render(&template)?;
    if let Some((status, _)) = error {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// Errors a person can fix show on the page itself, above what they typed.
fn on_page(e: PortalError) -> Result<(StatusCode, String), PortalError> {
    match e {
        PortalError::Invalid { field, reason } => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {reason}"),
        )),
        PortalError::Conflict(message) => Ok((StatusCode::CONFLICT, message)),
        PortalError::Forbidden(message) => Ok((StatusCode::FORBIDDEN, message)),
        other => Err(other),
    }
}

fn parse_role(text: &str) -> Result<Role, PortalError> {
    Role::parse(text.trim()).ok_or_else(|| {
        PortalError::invalid("role", "choose owner, admin, finance, manager or viewer")
    })
}

fn parse_employee(text: &Option<String>) -> Result<Option<Email>, PortalError> {
    non_empty(text)
        .map(|e| Email::parse(e).map_err(|e| PortalError::invalid("employee_email", e.to_string())))
        .transpose()
}

async fn invite(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<InviteForm>,
) -> Result<Response, PortalError> {
    let sent = async {
        let invite = NewInvite {
            email: Email::parse(&form.email)
                .map_err(|e| PortalError::invalid("email", e.to_string()))?,
            role: parse_role(&form.role)?,
            employee: parse_employee(&form.employee_email)?,
        };
        let email = invite.email.to_string();
        let link = |token: &str| portal.tenant_link(&page.tenant, &format!("/invite/{token}"));
        portal
            .lineup
            .invite_member(page.tenant_id(), page.signed.session.user_id, invite, &link)
            .await?;
        Ok::<_, PortalError>(email)
    };
    match sent.await {
        Ok(email) => {
            portal.deliver_mail_soon();
            Ok(redirect_with_notice(
                "/members",
                &format!("Invite sent to {email}; the link works for 7 days"),
            ))
        }
        Err(e) => render(&portal, &page, form, Some(on_page(e)?)).await,
    }
}

fn user_id(text: &str) -> Result<UserId, PortalError> {
    text.parse().map_err(|_| PortalError::NotFound)
}

async fn update(
    State(portal): State<Portal>,
    page: Page,
    Path(user): Path<String>,
    Form(form): Form<MemberForm>,
) -> Result<Response, PortalError> {
    let user = user_id(&user)?;
    let saved = async {
        let role = parse_role(form.role.as_deref().unwrap_or_default())?;
        let employee = parse_employee(&form.employee_email)?;
        let me = page.signed.session.user_id;
        let member = portal
            .lineup
            .update_member(page.tenant_id(), me, user, role, employee.as_ref())
            .await?;
        Ok::<_, PortalError>(member)
    };
    match saved.await {
        Ok(member) => Ok(redirect_with_notice(
            "/members",
            &format!("{} is now {}", member.name, member.role.as_str()),
        )),
        Err(PortalError::NotFound) => Err(PortalError::NotFound),
        Err(e) => render(&portal, &page, InviteForm::default(), Some(on_page(e)?)).await,
    }
}

async fn remove(
    State(portal): State<Portal>,
    page: Page,
    Path(user): Path<String>,
) -> Result<Response, PortalError> {
    let user = user_id(&user)?;
    let me = page.signed.session.user_id;
    match portal
        .lineup
        .remove_member(page.tenant_id(), me, user)
        .await
    {
        Ok(()) => Ok(redirect_with_notice(
            "/members",
            "Access removed; their sessions have ended",
        )),
        Err(e) => match on_page(e.into()) {
            Ok(error) => render(&portal, &page, InviteForm::default(), Some(error)).await,
            Err(other) => Err(other),
        },
    }
}
