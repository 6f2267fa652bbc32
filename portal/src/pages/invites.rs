//! Accepting an invite (a public page: the link is the credential): a new account chooses a
//! name and password, an existing one confirms its password; then they are signed in.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lineup_core::CoreError;
use lineup_core::email_address::Email;
use lineup_core::identity::link::LinkProblem;
use lineup_core::identity::member::{Acceptance, Invitation};
use lineup_core::identity::sign_in_limit::Attempt;
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::session::{ClientAddress, with_session_cookie};
use crate::view::{Visitor, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new().route("/invite/{token}", get(show).post(accept))
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    tenant_name: String,
    csrf: String,
    token: String,
    invitation: Invitation,
    name: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "link_problem.html")]
struct LinkProblemPage {
    tenant_name: String,
    heading: &'static str,
    problem: String,
    advice: &'static str,
}

/// A dead link gets a page saying why and what to do: 410 once it was real, 404 otherwise.
pub(super) fn link_problem(
    tenant_name: &str,
    heading: &'static str,
    problem: LinkProblem,
    advice: &'static str,
) -> Result<Response, PortalError> {
    let status = match problem {
        LinkProblem::Unknown => StatusCode::NOT_FOUND,
        LinkProblem::Expired | LinkProblem::Used => StatusCode::GONE,
    };
    let page = LinkProblemPage {
        tenant_name: tenant_name.to_owned(),
        heading,
        problem: problem.to_string(),
        advice,
    };
    Ok((status, Html(page.render()?)).into_response())
}

const INVITE_ADVICE: &str = "Ask an admin of the organisation to invite you again.";

async fn show(
    State(portal): State<Portal>,
    Visitor { tenant, csrf }: Visitor,
    Path(token): Path<String>,
) -> Result<Response, PortalError> {
    match portal.lineup.invitation(tenant.id, &token).await? {
        Ok(invitation) => {
            let page = InvitePage {
                tenant_name: tenant.name.clone(),
                csrf,
                token,
                invitation,
                name: String::new(),
                error: None,
            };
            Ok(Html(page.render()?).into_response())
        }
        Err(problem) => link_problem(
            &tenant.name,
            "This invite cannot be used",
            problem,
            INVITE_ADVICE,
        ),
    }
}

#[derive(Deserialize)]
struct AcceptForm {
    name: Option<String>,
    #[serde(default)]
    password: String,
}

async fn accept(
    State(portal): State<Portal>,
    Visitor { tenant, csrf }: Visitor,
    Path(token): Path<String>,
    ClientAddress(client): ClientAddress,
    Form(form): Form<AcceptForm>,
) -> Result<Response, PortalError> {
    let invitation = match portal.lineup.invitation(tenant.id, &token).await? {
        Ok(invitation) => invitation,
        Err(problem) => {
            return link_problem(
                &tenant.name,
                "This invite cannot be used",
                problem,
                INVITE_ADVICE,
            );
        }
    };
    // An invite for an existing account is a password check: the sign-in limits apply.
    let email = Email::parse(&invitation.email)
        .map_err(|e| PortalError::invalid("email", e.to_string()))?;
    let attempt = Attempt::SignIn {
        tenant: tenant.id,
        email: &email,
    };
    portal.lineup.reserve_attempt(attempt, client).await??;
    let acceptance = match &form.name {
        Some(name) => Acceptance::NewAccount {
            name: name.clone(),
            password: form.password.clone(),
        },
        None => Acceptance::ExistingAccount {
            password: form.password.clone(),
        },
    };
    let refused = |status: StatusCode, error: String, invitation: Invitation| {
        let page = InvitePage {
            tenant_name: tenant.name.clone(),
            csrf: csrf.clone(),
            token: token.clone(),
            invitation,
            name: form.name.clone().unwrap_or_default(),
            error: Some(error),
        };
        Ok((status, Html(page.render()?)).into_response())
    };
    match portal
        .lineup
        .accept_invite(tenant.id, &token, acceptance)
        .await
    {
        Ok(Ok(new)) => {
            portal.lineup.attempt_succeeded(attempt).await?;
            let welcome = format!("Welcome to {}", tenant.name);
            let response = redirect_with_notice("/", &welcome);
            Ok(with_session_cookie(&portal, &new.token, response))
        }
        Ok(Err(problem)) => link_problem(
            &tenant.name,
            "This invite cannot be used",
            problem,
            INVITE_ADVICE,
        ),
        Err(CoreError::NotAuthorised(reason)) => {
            refused(StatusCode::UNAUTHORIZED, reason, invitation)
        }
        Err(CoreError::Invalid { field, reason }) => refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {reason}"),
            invitation,
        ),
        Err(e) => Err(e.into()),
    }
}
