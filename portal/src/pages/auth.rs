//! Signing in and out, and signing up a new organisation on the bare base domain.

use askama::Template;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use lineup_core::CoreError;
use lineup_core::email::Email;
use lineup_core::money::Currency;
use lineup_core::tenant::Slug;
use lineup_core::tenant::commands::NewTenant;
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::host::Site;
use crate::redirect::safe_next;
use crate::session::{self, FormToken, Signed};
use crate::view::{Page, Visitor};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/", get(front))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/signup", get(signup_form).post(signup))
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
) -> Result<Html<String>, PortalError> {
    let page = LoginPage {
        tenant_name: tenant.name.clone(),
        csrf,
        next: safe_next(query.next.as_deref()),
        email: String::new(),
        error: None,
        sso_enabled: sso_enabled(&portal, &tenant).await?,
    };
    Ok(Html(page.render()?))
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
    Form(form): Form<LoginForm>,
) -> Result<Response, PortalError> {
    let limiter = &portal.sign_in_limiter;
    let slug = tenant.slug.as_str();
    if let Some(wait) = limiter.blocked_for(slug, &form.email) {
        return Err(PortalError::TooManyAttempts {
            minutes: wait.as_secs().div_ceil(60),
        });
    }
    let next = safe_next(form.next.as_deref());
    match portal
        .lineup
        .sign_in_with_password(tenant.id, &form.email, &form.password)
        .await
    {
        Ok(new) => {
            limiter.succeeded(slug, &form.email);
            let response = Redirect::to(&next).into_response();
            Ok(session::with_session_cookie(&portal, &new.token, response))
        }
        Err(e @ (CoreError::NotAuthorised(_) | CoreError::Invalid { .. })) => {
            limiter.failed(slug, &form.email);
            tracing::info!(tenant = slug, "failed portal sign-in");
            let page = LoginPage {
                tenant_name: tenant.name.clone(),
                csrf,
                next,
                email: form.email,
                error: Some(e.to_string()),
                sso_enabled: sso_enabled(&portal, &tenant).await?,
            };
            Ok((axum::http::StatusCode::UNAUTHORIZED, Html(page.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn sso_enabled(
    portal: &Portal,
    tenant: &lineup_core::tenant::Tenant,
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
    };
    Ok(Html(page.render()?))
}

/// Create the organisation and its owner, then send them to their own portal to sign in.
async fn signup(
    State(portal): State<Portal>,
    Extension(site): Extension<Site>,
    FormToken(csrf): FormToken,
    Form(form): Form<SignupForm>,
) -> Result<Response, PortalError> {
    if !matches!(site, Site::Root) {
        return Err(PortalError::NotFound);
    }
    match create_organisation(&portal, &form).await {
        Ok(slug) => {
            let url = format!("{}/login?welcome=1", portal.config.tenant_url(&slug));
            Ok(Redirect::to(&url).into_response())
        }
        Err(PortalError::Invalid { field, reason }) => {
            let page = SignupPage {
                csrf,
                form: SignupForm {
                    password: String::new(),
                    ..form
                },
                error: Some(format!("{field}: {reason}")),
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

async fn create_organisation(portal: &Portal, form: &SignupForm) -> Result<String, PortalError> {
    let slug = Slug::parse(&form.slug).map_err(|e| PortalError::invalid("slug", e.to_string()))?;
    let currency = Currency::parse(form.currency.trim())
        .map_err(|e| PortalError::invalid("currency", e.to_string()))?;
    let email =
        Email::parse(&form.email).map_err(|e| PortalError::invalid("email", e.to_string()))?;
    let tenant = portal
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
        )
        .await?;
    Ok(tenant.slug.to_string())
}
