//! Settings → Chat: which Slack workspace, Discord server and Microsoft 365 tenant this
//! organisation has connected, and the buttons to connect or disconnect them. The install
//! flows themselves live in the bot crate, reached through [`crate::ChatConnections`].

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lineup_core::audit::Actor;
use lineup_core::ids::UserId;
use lineup_core::messaging::chat::{ChatConnection, Platform};
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/settings/chat", get(show))
        .route("/settings/chat/{platform}/connect", post(connect))
        .route("/settings/chat/{platform}/disconnect", post(disconnect))
        .route("/settings/chat/teams/app.zip", get(teams_app))
        .route("/settings/chat/teams/code", post(teams_code))
}

/// One platform's row on the page.
struct PlatformView {
    key: &'static str,
    label: &'static str,
    connection: Option<ConnectionView>,
    /// The server holds this platform's app credentials.
    configured: bool,
    /// The portal can start the connection itself (else an operator uses the CLI).
    can_connect: bool,
    /// What the operator must set when the server is not set up for the platform.
    setup: &'static str,
    /// Configured but not connectable here: what would make it so, and the operator's
    /// command meanwhile.
    operator_hint: String,
}

struct ConnectionView {
    name: String,
    workspace_id: String,
    connected_at: String,
    connected_by: String,
}

#[derive(Template)]
#[template(path = "chat_settings.html")]
struct ChatSettingsPage {
    chrome: Chrome,
    platforms: Vec<PlatformView>,
    /// Set when the browser has just come back from a platform's install page.
    just_connected: Option<&'static str>,
    /// A Teams link code just made, shown once.
    link_code: Option<String>,
}

fn label(platform: Platform) -> &'static str {
    match platform {
        Platform::Slack => "Slack",
        Platform::Discord => "Discord",
        Platform::Teams => "Microsoft Teams",
    }
}

fn setup(platform: Platform) -> &'static str {
    match platform {
        Platform::Slack => {
            "SLACK_SIGNING_SECRET, SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (see the README, \
             Connect Slack)"
        }
        Platform::Discord => {
            "DISCORD_APPLICATION_ID, DISCORD_PUBLIC_KEY, DISCORD_BOT_TOKEN and \
             DISCORD_CLIENT_SECRET (see the README, Connect Discord)"
        }
        Platform::Teams => "TEAMS_APP_ID and TEAMS_APP_PASSWORD (see the README, Connect Teams)",
    }
}

/// Why the portal cannot connect a configured platform, and the operator's command.
fn operator_hint(platform: Platform, slug: &str) -> String {
    match platform {
        Platform::Slack => {
            format!("An operator prints an install link: lineup slack-install-link --tenant {slug}")
        }
        Platform::Discord => format!(
            "To add it from here the operator sets DISCORD_CLIENT_SECRET. Meanwhile an \
             operator connects a server: lineup discord link-guild --tenant {slug} --guild <id>"
        ),
        Platform::Teams => format!(
            "An operator connects your Microsoft 365 tenant: lineup teams link-tenant \
             --tenant {slug} --aad-tenant <directory id>"
        ),
    }
}

fn platform_of(path: &str) -> Result<Platform, PortalError> {
    Platform::ALL
        .into_iter()
        .find(|p| p.as_str() == path)
        .ok_or(PortalError::NotFound)
}

#[derive(Deserialize)]
struct ShowQuery {
    connected: Option<String>,
}

async fn show(
    State(portal): State<Portal>,
    page: Page,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PortalError> {
    let just_connected = query
        .connected
        .and_then(|p| platform_of(&p).ok())
        .map(label);
    render(&portal, &page, just_connected, None).await
}

async fn render(
    portal: &Portal,
    page: &Page,
    just_connected: Option<&'static str>,
    link_code: Option<String>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let members = portal.lineup.members(tenant).await?;
    let who = |actor: Option<String>| -> String {
        let Some(actor) = actor else {
            return "unknown".to_owned();
        };
        match actor
            .strip_prefix("user:")
            .and_then(|id| id.parse::<UserId>().ok())
        {
            Some(id) => members
                .iter()
                .find(|m| m.user_id == id)
                .map_or_else(|| "a former member".to_owned(), |m| m.name.clone()),
            None => "an operator (command line)".to_owned(),
        }
    };
    let connections = portal.chat_connections.as_deref();
    let mut platforms = Vec::new();
    for platform in [Platform::Slack, Platform::Discord, Platform::Teams] {
        let connection =
            portal
                .lineup
                .chat_connection(tenant, platform)
                .await?
                .map(|c: ChatConnection| ConnectionView {
                    name: c.name.unwrap_or_else(|| c.workspace_id.clone()),
                    workspace_id: c.workspace_id,
                    connected_at: c.connected_at.date().to_string(),
                    connected_by: who(c.connected_by),
                });
        let configured = connections.is_some_and(|c| c.configured(platform));
        platforms.push(PlatformView {
            key: platform.as_str(),
            label: label(platform),
            connection,
            configured,
            can_connect: configured && connections.is_some_and(|c| c.connects(platform)),
            setup: setup(platform),
            operator_hint: operator_hint(platform, page.tenant.slug.as_str()),
        });
    }
    page.render(&ChatSettingsPage {
        chrome: page.chrome(),
        platforms,
        just_connected,
        link_code,
    })
}

/// The app package to upload in Teams, with this server's host and bot id.
async fn teams_app(State(portal): State<Portal>) -> Result<Response, PortalError> {
    let package = portal
        .chat_connections
        .as_deref()
        .and_then(|c| c.teams_app_package())
        .ok_or_else(|| {
            PortalError::Conflict(format!(
                "this server is not set up for Microsoft Teams; the operator sets {}",
                setup(Platform::Teams)
            ))
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"lineup-teams-app.zip\"",
            ),
        ],
        package,
    )
        .into_response())
}

/// A one-time code that links the Microsoft 365 tenant of whoever sends `link <code>` to
/// Lineup in Teams; shown on this answer only.
async fn teams_code(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    if !portal
        .chat_connections
        .as_deref()
        .is_some_and(|c| c.configured(Platform::Teams))
    {
        return Err(PortalError::Conflict(format!(
            "this server is not set up for Microsoft Teams; the operator sets {}",
            setup(Platform::Teams)
        )));
    }
    let code = portal
        .lineup
        .issue_chat_link_code(
            page.tenant_id(),
            page.signed.session.user_id,
            Platform::Teams,
        )
        .await?;
    render(&portal, &page, None, Some(code)).await
}

/// "Add to …": off to the platform with a state naming this tenant and this admin; the
/// install step then binds it to this browser.
async fn connect(
    State(portal): State<Portal>,
    page: Page,
    Path(platform): Path<String>,
) -> Result<Response, PortalError> {
    let platform = platform_of(&platform)?;
    if platform == Platform::Teams {
        // Teams is connected from inside Teams, with a code made here.
        return teams_code(State(portal), page).await;
    }
    let url = portal
        .chat_connections
        .as_deref()
        .filter(|c| c.configured(platform))
        .and_then(|c| c.connect_url(platform, page.tenant_id(), page.signed.session.user_id))
        .ok_or_else(|| {
            PortalError::Conflict(format!(
                "this server is not set up to connect {} from the portal; the operator sets {}",
                label(platform),
                setup(platform)
            ))
        })?;
    Ok(Redirect::to(&url).into_response())
}

/// Revoke at the platform (best effort), then wipe the token here, audited.
async fn disconnect(
    State(portal): State<Portal>,
    page: Page,
    Path(platform): Path<String>,
) -> Result<Response, PortalError> {
    let platform = platform_of(&platform)?;
    let tenant = page.tenant_id();
    // A token that no longer opens (a changed LINEUP_SECRET_KEY) must not keep the
    // workspace connected: skip the revoke, still forget it.
    let workspace = portal
        .lineup
        .workspace_of_tenant(tenant, platform)
        .await
        .ok()
        .flatten();
    if let (Some(workspace), Some(connections)) = (&workspace, portal.chat_connections.as_deref()) {
        connections.revoke(platform, workspace).await;
    }
    let actor: Actor = page.actor();
    let notice = match portal
        .lineup
        .disconnect_workspace(tenant, &actor, platform)
        .await?
    {
        Some(id) => format!(
            "{} {id} is disconnected; Lineup no longer holds its token",
            label(platform)
        ),
        None => format!("{} was not connected", label(platform)),
    };
    Ok(redirect_with_notice("/settings/chat", &notice))
}
