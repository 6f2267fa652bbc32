//! "Forgot your password?": ask for a link (the answer never tells whether the address has
//! an account), then choose a new password through it.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lineup_core::CoreError;
use lineup_core::email_address::Email;
use lineup_core::identity::sign_in_limit::Attempt;
use serde::Deserialize;

use super::invites::link_problem;
use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::session::{ClientAddress, with_session_cookie};
use crate::view::{Visitor, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/password/forgot", get(forgot_form).post(forgot))
        .route("/password/reset/{token}", get(reset_form).post(reset))
}

#[derive(Template)]
#[template(path = "password_forgot.html")]
struct ForgotPage {
    tenant_name: String,
    csrf: String,
    email: String,
    sent: bool,
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage {
    tenant_name: String,
    csrf: String,
    token: String,
    error: Option<String>,
}

const RESET_HEADING: &str = "This reset link cannot be used";
const RESET_ADVICE: &str = "Ask for a new link from the sign-in page (Forgot your password?).";

async fn forgot_form(Visitor { tenant, csrf }: Visitor) -> Result<Html<String>, PortalError> {
    let page = ForgotPage {
        tenant_name: tenant.name.clone(),
        csrf,
        email: String::new(),
        sent: false,
    };
    Ok(Html(page.render()?))
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    email: String,
}

async fn forgot(
    State(portal): State<Portal>,
    Visitor { tenant, csrf }: Visitor,
    ClientAddress(client): ClientAddress,
    Form(form): Form<ForgotForm>,
) -> Result<Html<String>, PortalError> {
    let typed = form.email.trim();
    if typed.is_empty() {
        return Err(PortalError::invalid("email", "is required"));
    }
    // Not an address: nothing to send, nothing counted or kept; the answer is the same.
    if let Ok(email) = Email::parse(typed) {
        let attempt = Attempt::PasswordReset {
            tenant: tenant.id,
            email: &email,
        };
        portal.lineup.reserve_attempt(attempt, client).await??;
        let link = |token: &str| portal.tenant_link(&tenant, &format!("/password/reset/{token}"));
        portal
            .lineup
            .request_password_reset(tenant.id, email.as_str(), &link)
            .await?;
        portal.deliver_mail_soon();
    }
    let page = ForgotPage {
        tenant_name: tenant.name.clone(),
        csrf,
        email: typed.chars().take(254).collect(),
        sent: true,
    };
    Ok(Html(page.render()?))
}

async fn reset_form(
    State(portal): State<Portal>,
    Visitor { tenant, csrf }: Visitor,
    Path(token): Path<String>,
) -> Result<Response, PortalError> {
    match portal
        .lineup
        .check_password_reset(tenant.id, &token)
        .await?
    {
        Ok(()) => {
            let page = ResetPage {
                tenant_name: tenant.name.clone(),
                csrf,
                token,
                error: None,
            };
            Ok(Html(page.render()?).into_response())
        }
        Err(problem) => link_problem(&tenant.name, RESET_HEADING, problem, RESET_ADVICE),
    }
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn reset(
    State(portal): State<Portal>,
    Visitor { tenant, csrf }: Visitor,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> Result<Response, PortalError> {
    let outcome = if form.password != form.confirm {
        Err(CoreError::invalid("confirm", "the two passwords differ"))
    } else {
        portal
            .lineup
            .reset_password(tenant.id, &token, &form.password)
            .await
    };
    match outcome {
        Ok(Ok(new)) => {
            let response = redirect_with_notice("/", "Password changed; you are signed in");
            Ok(with_session_cookie(&portal, &new.token, response))
        }
        Ok(Err(problem)) => link_problem(&tenant.name, RESET_HEADING, problem, RESET_ADVICE),
        Err(CoreError::Invalid { field, reason }) => {
            let page = ResetPage {
                tenant_name: tenant.name.clone(),
                csrf,
                token,
                error: Some(format!("{field}: {reason}")),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
