//! Signing in and out, and signing up a new organisation on the bare base domain.

use askama::Template;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use lineup_core::CoreError;
use lineup_core::email_address::Email;
use lineup_core::identity::session::BAD_CREDENTIALS;
use lineup_core::identity::sign_in_limit::Attempt;
use lineup_core::money::Currency;
use lineup_core::organisation::tenant::Slug;
use lineup_core::organisation::tenant::commands::NewTenant;
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::host::Site;
use crate::redirect::safe_next;
use crate::session::{self, ClientAddress, FormToken, Signed};
use crate::view::{Page, Visitor, clear_notice, pending_notice, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/", get(front))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/signup", get(signup_form).post(signup))
        .route("/verify-email/{token}", get(verify_email))
}

/// The bare domain leads to sign-up; a tenant's host to its overview (the guard has
/// already made sure someone is signed in there).
async fn front(
    State(portal): State<Portal>,
    Extension(site): Extension<Site>,
    request: Request,
) -> Result<Response, PortalError> {
    if let Site::Root = site {
        return Ok(Redirect::to("/signup").into_response());
    }
    let (mut parts, _) = request.into_parts();
    let page = Page::from_request_parts(&mut parts, &portal).await?;
    super::home::overview(portal, page).await
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    tenant_name: String,
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
    /// What the link that brought them here did, e.g. "Email confirmed".
    notice: Option<String>,
    sso_enabled: bool,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_form(
    State(portal): State<Portal>,
    Visitor { tenant, csrf }: Visitor,
    Query(query): Query<NextQuery>,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    let notice = pending_notice(&headers);
    let page = LoginPage {
        tenant_name: tenant.name.clone(),
        csrf,
        next: safe_next(query.next.as_deref()),
        email: String::new(),
        error: None,
        notice: notice.clone(),
        sso_enabled: sso_enabled(&portal, &tenant).await?,
    };
    let mut response = Html(page.render()?).into_response();
    if notice.is_some() {
        clear_notice(&mut response);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn login(
    State(portal): State<Portal>,
    Visitor { tenant, csrf }: Visitor,
    ClientAddress(client): ClientAddress,
    Form(form): Form<LoginForm>,
) -> Result<Response, PortalError> {
    let next = safe_next(form.next.as_deref());
    let refused = |error: String, email: String| async {
        let page = LoginPage {
            tenant_name: tenant.name.clone(),
            csrf: csrf.clone(),
            next: next.clone(),
            email,
            error: Some(error),
            notice: None,
            sso_enabled: sso_enabled(&portal, &tenant).await?,
        };
        Ok::<_, PortalError>(
            (axum::http::StatusCode::UNAUTHORIZED, Html(page.render()?)).into_response(),
        )
    };
    // Not an address at all: the same answer as a wrong password, and nothing counted or
    // kept for it (an address is at most 254 characters; the form echoes back no more).
    let Ok(email) = Email::parse(&form.email) else {
        let shown: String = form.email.chars().take(254).collect();
        return refused(BAD_CREDENTIALS.to_owned(), shown).await;
    };
    let attempt = Attempt::SignIn {
        tenant: tenant.id,
        email: &email,
    };
    portal.lineup.reserve_attempt(attempt, client).await??;
    match portal
        .lineup
        .sign_in_with_password(tenant.id, email.as_str(), &form.password)
        .await
    {
        Ok(new) => {
            portal.lineup.attempt_succeeded(attempt).await?;
            let response = Redirect::to(&next).into_response();
            Ok(session::with_session_cookie(&portal, &new.token, response))
        }
        Err(e @ (CoreError::NotAuthorised(_) | CoreError::Invalid { .. })) => {
            tracing::info!(tenant = tenant.slug.as_str(), "failed portal sign-in");
            refused(e.to_string(), email.to_string()).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn sso_enabled(
    portal: &Portal,
    tenant: &lineup_core::organisation::tenant::Tenant,
) -> Result<bool, PortalError> {
    let settings = portal.lineup.sso_settings(tenant.id).await?;
    Ok(settings.is_some_and(|s| s.enabled))
}

async fn logout(State(portal): State<Portal>, signed: Signed) -> Result<Response, PortalError> {
    portal
        .lineup
        .sign_out(signed.session.tenant_id, &signed.token)
        .await?;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::clear_session_cookie_header(&portal),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    csrf: String,
    form: SignupForm,
    error: Option<String>,
    /// Signed up: the address the confirmation link went to.
    sent_to: Option<String>,
}

#[derive(Deserialize, Default)]
struct SignupForm {
    organisation: String,
    slug: String,
    currency: String,
    name: String,
    email: String,
    #[serde(default)]
    password: String,
}

async fn signup_form(
    Extension(site): Extension<Site>,
    FormToken(csrf): FormToken,
) -> Result<Html<String>, PortalError> {
    if !matches!(site, Site::Root) {
        return Err(PortalError::NotFound);
    }
    let page = SignupPage {
        csrf,
        form: SignupForm {
            currency: "EUR".into(),
            ..SignupForm::default()
        },
        error: None,
        sent_to: None,
    };
    Ok(Html(page.render()?))
}

/// Create the organisation and its (unconfirmed) owner, and ask them to open the link we
/// emailed. An address that already has an account gets the very same answer.
async fn signup(
    State(portal): State<Portal>,
    Extension(site): Extension<Site>,
    FormToken(csrf): FormToken,
    ClientAddress(client): ClientAddress,
    Form(form): Form<SignupForm>,
) -> Result<Response, PortalError> {
    if !matches!(site, Site::Root) {
        return Err(PortalError::NotFound);
    }
    portal
        .lineup
        .reserve_attempt(Attempt::SignUp, client)
        .await??;
    match create_organisation(&portal, &form).await {
        Ok(email) => {
            portal.deliver_mail_soon();
            let page = SignupPage {
                csrf,
                form: SignupForm::default(),
                error: None,
                sent_to: Some(email.to_string()),
            };
            Ok(Html(page.render()?).into_response())
        }
        Err(PortalError::Invalid { field, reason }) => {
            let page = SignupPage {
                csrf,
                form: SignupForm {
                    password: String::new(),
                    ..form
                },
                error: Some(format!("{field}: {reason}")),
                sent_to: None,
            };
            Ok((
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                Html(page.render()?),
            )
                .into_response())
        }
        Err(e) => Err(e),
    }
}

async fn create_organisation(portal: &Portal, form: &SignupForm) -> Result<Email, PortalError> {
    let slug = Slug::parse(&form.slug).map_err(|e| PortalError::invalid("slug", e.to_string()))?;
    let currency = Currency::parse(form.currency.trim())
        .map_err(|e| PortalError::invalid("currency", e.to_string()))?;
    let email =
        Email::parse(&form.email).map_err(|e| PortalError::invalid("email", e.to_string()))?;
    let verify_link = |slug: &str, token: &str| {
        format!("{}/verify-email/{token}", portal.config.tenant_url(slug))
    };
    portal
        .lineup
        .sign_up(
            NewTenant {
                slug,
                name: form.organisation.clone(),
                currency,
            },
            &email,
            &form.name,
            &form.password,
            &verify_link,
        )
        .await?;
    Ok(email)
}

/// The link from the sign-up email: confirms the address, then on to sign in.
async fn verify_email(
    State(portal): State<Portal>,
    Visitor { tenant, .. }: Visitor,
    Path(token): Path<String>,
) -> Result<Response, PortalError> {
    match portal.lineup.verify_email(tenant.id, &token).await? {
        Ok(()) => Ok(redirect_with_notice(
            "/login",
            "Email confirmed; sign in with your password",
        )),
        Err(problem) => super::invites::link_problem(
            &tenant.name,
            "This confirmation link cannot be used",
            problem,
            "Use \"Forgot your password?\" on the sign-in page to get a new link by email.",
        ),
    }
}
