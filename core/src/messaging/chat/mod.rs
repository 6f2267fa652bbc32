//! Chat workspaces and people: which tenant a workspace belongs to, its sealed bot token,
//! which employee a chat user is, and the conversations each chat user is reached in.

pub mod commands;
mod recent;

pub(crate) use recent::RecentWorkspaces;

use crate::app::required;
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{EmployeeId, TenantId};
use crate::organisation::employee::EmployeeStatus;
use crate::store::{self, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Slack,
    Teams,
    Discord,
}

impl Platform {
    /// Every platform, in the order messages for a tenant try them: Slack first.
    pub const ALL: [Self; 3] = [Self::Slack, Self::Teams, Self::Discord];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Teams => "teams",
            Self::Discord => "discord",
        }
    }

    /// The platform stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The name people know it by.
    pub fn label(self) -> &'static str {
        match self {
            Self::Slack => "Slack",
            Self::Teams => "Teams",
            Self::Discord => "Discord",
        }
    }

    /// Checks that `id` is a user id as this platform's messages carry it (what chat
    /// identities store), saying which form is expected when it is not.
    pub fn check_user_id(self, id: &str) -> Result<(), String> {
        let ok = match self {
            Self::Slack => {
                (3..=21).contains(&id.len())
                    && id.starts_with(['U', 'W'])
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
            Self::Discord => {
                (17..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
            }
            Self::Teams => {
                id.len() > 3
                    && id.len() <= 200
                    && id.starts_with("29:")
                    && !id.chars().any(char::is_whitespace)
            }
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            Self::Slack => format!(
                "{id} is not a Slack member ID: those are U or W followed by capital letters and \
                 digits, e.g. U024BE7LH (in Slack: the person's profile → ⋮ → Copy member ID)"
            ),
            Self::Discord => format!(
                "{id} is not a Discord user ID: those are 17 to 20 digits, e.g. \
                 80351110224678912 (in Discord: turn on Developer Mode, then right-click the \
                 person → Copy User ID)"
            ),
            Self::Teams if uuid::Uuid::try_parse(id).is_ok() => format!(
                "{id} looks like an Azure AD object ID; Lineup reaches Teams users by the Bot \
                 Framework ID Teams gives the bot, which starts with 29: (leave the cell empty \
                 and the person is linked by email when they first use Lineup in Teams)"
            ),
            Self::Teams => format!(
                "{id} is not a Teams user ID: Lineup needs the Bot Framework ID Teams gives the \
                 bot, which starts with 29: (leave the cell empty and the person is linked by \
                 email when they first use Lineup in Teams)"
            ),
        })
    }
}

/// Which conversation of a chat user is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationKind {
    /// Their 1:1 chat with the bot: where direct messages go.
    Direct,
    /// The last conversation they wrote in: enough to look them up.
    Seen,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Seen => "seen",
        }
    }
}

/// An employee's account on a chat platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatIdentity {
    pub employee_id: EmployeeId,
    pub platform: Platform,
    pub external_id: String,
}

/// How a person can be reached on one platform, for their page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReach {
    pub platform: Platform,
    /// Their account, once linked.
    pub user_id: Option<String>,
    /// Whether the organisation has a workspace of this platform connected.
    pub connected: bool,
}

/// What looking people up by email in one platform's directory did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMatch {
    pub platform: Platform,
    /// Active people with no account linked on the platform before the lookups.
    pub unlinked: usize,
    /// Of those, the ones found and linked.
    pub linked: usize,
    /// Why the lookups stopped early (the platform failed); what was found is kept.
    pub failure: Option<String>,
}

/// Finds the organisation's people in its chat workspaces by email, where the platform lets a
/// bot look people up (Slack): implemented by the chat adapters.
#[async_trait::async_trait]
pub trait ChatDirectory: Send + Sync {
    /// Look up every active person with no account linked, on every connected platform that
    /// can find people by email, and link those found. Never fails: a platform that cannot
    /// be reached is reported in its [`EmailMatch`].
    async fn link_people_by_email(&self, tenant: TenantId) -> Vec<EmailMatch>;
}

/// A workspace's live installation with its bot token unsealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub tenant: TenantId,
    pub workspace_id: String,
    pub bot_user_id: Option<String>,
    pub bot_token: String,
    /// Platform details learned on the way (e.g. the Teams service URL).
    pub settings: serde_json::Value,
}

/// How long a link code from Settings → Chat stays usable.
pub const LINK_CODE_VALID_FOR: time::Duration = time::Duration::hours(1);

/// Codes are shown as `ABCD-1234-EF56`; people may type them in any case, with or without
/// the dashes.
fn normalise_link_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn seal_context(platform: Platform, workspace_id: &str) -> String {
    format!("{}:{workspace_id}", platform.as_str())
}

/// What a platform handed over when a workspace was connected.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkspaceGrant {
    pub workspace_id: String,
    /// The workspace's name on the platform, shown in Settings → Chat.
    pub name: Option<String>,
    pub bot_user_id: Option<String>,
    /// Empty for platforms whose bot credentials are the application's own.
    pub bot_token: String,
}

impl std::fmt::Debug for WorkspaceGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceGrant")
            .field("workspace_id", &self.workspace_id)
            .field("name", &self.name)
            .field("bot_user_id", &self.bot_user_id)
            .field("bot_token", &"<redacted>")
            .finish()
    }
}

/// A workspace connected to a tenant, as Settings → Chat shows it (no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatConnection {
    pub platform: Platform,
    pub workspace_id: String,
    pub name: Option<String>,
    pub connected_at: time::OffsetDateTime,
    /// Who connected it, as the audit log names actors (`user:…`, `system`), when known.
    pub connected_by: Option<String>,
}

fn linked_event(
    tenant: TenantId,
    employee: EmployeeId,
    platform: Platform,
    external_id: &str,
) -> AuditEvent {
    AuditEvent::new(
        tenant,
        &Actor::System,
        "employee.chat_linked",
        ("employee", employee.to_string()),
        None,
        Some(serde_json::json!({ "platform": platform.as_str(), "external_id": external_id })),
    )
}

/// Chat acts for active employees only; a leaver is told plainly that they are gone.
pub(crate) async fn refuse_leaver(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> CoreResult<EmployeeId> {
    let person = required(
        store::employees::get(tx, tenant, employee).await?,
        "employee",
        employee,
    )?;
    refuse_inactive(tx, tenant, person.status).await?;
    Ok(employee)
}

/// [`refuse_leaver`] for an employee whose status is already read.
pub(crate) async fn refuse_inactive(
    tx: &mut Tx,
    tenant: TenantId,
    status: EmployeeStatus,
) -> CoreResult<()> {
    if status == EmployeeStatus::Active {
        return Ok(());
    }
    let company = required(store::tenants::get(tx, tenant).await?, "tenant", tenant)?.name;
    Err(CoreError::NotAuthorised(format!(
        "you are no longer active at {company}, so Lineup cannot act for you here; if that is \
         a mistake, ask your IT admin"
    )))
}
