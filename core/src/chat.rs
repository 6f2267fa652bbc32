//! Chat workspaces and people: which tenant a workspace belongs to, its sealed bot token,
//! and which employee a chat user is.

use std::collections::{HashMap, HashSet};

use crate::app::{Lineup, record, required};
use crate::audit::{Actor, AuditEvent};
use crate::email::Email;
use crate::employee::{Employee, EmployeeStatus};
use crate::error::{CoreError, CoreResult};
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::session::{random_token, token_hash};
use crate::store::{self, Tx, chat::InstallationRow, now};

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

impl Lineup {
    /// Record (or renew) a workspace install for `tenant`. A workspace already installed for
    /// another tenant is refused: one workspace, one tenant.
    pub async fn install_workspace(
        &self,
        tenant: TenantId,
        actor: &Actor,
        platform: Platform,
        workspace_id: &str,
        bot_user_id: Option<&str>,
        bot_token: &str,
    ) -> CoreResult<()> {
        let grant = WorkspaceGrant {
            workspace_id: workspace_id.to_owned(),
            name: None,
            bot_user_id: bot_user_id.map(str::to_owned),
            bot_token: bot_token.to_owned(),
        };
        self.connect_workspace(tenant, actor, platform, &grant)
            .await
    }

    /// [`Lineup::install_workspace`], remembering the workspace's name and who connected it.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, platform = platform.as_str()))]
    pub async fn connect_workspace(
        &self,
        tenant: TenantId,
        actor: &Actor,
        platform: Platform,
        grant: &WorkspaceGrant,
    ) -> CoreResult<()> {
        let mut tx = self.store().system().await?;
        self.connect_in(&mut tx, tenant, actor, platform, grant)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Lineup::connect_workspace`] inside `tx` (a system transaction), uncommitted.
    async fn connect_in(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        actor: &Actor,
        platform: Platform,
        grant: &WorkspaceGrant,
    ) -> CoreResult<()> {
        let workspace_id = grant.workspace_id.as_str();
        if workspace_id.trim().is_empty() {
            return Err(CoreError::invalid(
                "workspace",
                format!("the {} workspace id is empty", platform.as_str()),
            ));
        }
        let sealed = self
            .secrets()?
            .seal(&grant.bot_token, &seal_context(platform, workspace_id));
        let row = InstallationRow {
            id: uuid::Uuid::now_v7(),
            tenant_id: tenant,
            platform: platform.as_str().to_owned(),
            workspace_id: workspace_id.to_owned(),
            bot_user_id: grant.bot_user_id.clone(),
            bot_token_encrypted: Some(sealed),
            settings: sqlx::types::Json(serde_json::json!({})),
            installed_at: now(),
            revoked_at: None,
        };
        if !store::chat::upsert_installation(tx, &row).await? {
            return Err(CoreError::Conflict(format!(
                "this {} workspace is already connected to another organisation",
                platform.as_str()
            )));
        }
        let (platform_name, workspace) = (platform.as_str(), workspace_id);
        if let Some(name) = &grant.name {
            store::chat::set_installation_setting(
                tx,
                platform_name,
                workspace,
                "name",
                serde_json::json!(name),
            )
            .await?;
        }
        store::chat::set_installation_setting(
            tx,
            platform_name,
            workspace,
            "connected_by",
            serde_json::json!(actor.to_text()),
        )
        .await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "chat.installed",
            (
                "chat_installation",
                format!("{}:{workspace_id}", platform.as_str()),
            ),
            None,
            Some(serde_json::json!({ "bot_user_id": grant.bot_user_id, "name": grant.name })),
        );
        record(tx, &event).await?;
        Ok(())
    }

    /// The workspace `tenant` has connected on `platform`, for showing (the token stays sealed).
    pub async fn chat_connection(
        &self,
        tenant: TenantId,
        platform: Platform,
    ) -> CoreResult<Option<ChatConnection>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = store::chat::installation_for_tenant(&mut tx, tenant, platform.as_str()).await?;
        Ok(row.map(|row| {
            let setting = |key: &str| {
                row.settings
                    .0
                    .get(key)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            ChatConnection {
                platform,
                name: setting("name"),
                connected_by: setting("connected_by"),
                workspace_id: row.workspace_id,
                connected_at: row.installed_at,
            }
        }))
    }

    /// An admin disconnects the tenant's workspace on `platform`: its token is wiped, the
    /// history kept. Returns the workspace id forgotten, `None` when nothing was connected.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, platform = platform.as_str()))]
    pub async fn disconnect_workspace(
        &self,
        tenant: TenantId,
        actor: &Actor,
        platform: Platform,
    ) -> CoreResult<Option<String>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let Some(workspace_id) =
            store::chat::revoke_installation_of_tenant(&mut tx, tenant, platform.as_str()).await?
        else {
            return Ok(None);
        };
        let event = AuditEvent::new(
            tenant,
            actor,
            "chat.disconnected",
            (
                "chat_installation",
                format!("{}:{workspace_id}", platform.as_str()),
            ),
            None,
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Some(workspace_id))
    }

    /// A one-time code (valid [`LINK_CODE_VALID_FOR`], single use) that links the workspace
    /// whose platform-authenticated message carries it to `tenant`. Only its hash is kept.
    pub async fn issue_chat_link_code(
        &self,
        tenant: TenantId,
        admin: UserId,
        platform: Platform,
    ) -> CoreResult<String> {
        let raw = random_token();
        let code = format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12]).to_uppercase();
        let mut tx = self.tenant_tx(tenant).await?;
        store::chat::insert_link_code(
            &mut tx,
            tenant,
            platform.as_str(),
            &token_hash(&normalise_link_code(&code)),
            admin,
            now() + LINK_CODE_VALID_FOR,
        )
        .await?;
        let event = AuditEvent::new(
            tenant,
            &Actor::User(admin),
            "chat.link_code_issued",
            ("chat_installation", platform.as_str().to_owned()),
            None,
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(code)
    }

    /// Links `workspace_id` (which the platform vouched for: it came with an authenticated
    /// message) to the tenant whose live link code `code` is, in one transaction: the code is
    /// spent only if the link is made. The connection is the code's admin's, audited as theirs.
    pub async fn link_workspace_with_code(
        &self,
        platform: Platform,
        code: &str,
        grant: &WorkspaceGrant,
    ) -> CoreResult<crate::tenant::Tenant> {
        let mut tx = self.store().system().await?;
        let Some((tenant, admin)) = store::chat::consume_link_code(
            &mut tx,
            platform.as_str(),
            &token_hash(&normalise_link_code(code)),
            now(),
        )
        .await?
        else {
            return Err(CoreError::invalid(
                "code",
                "this link code is unknown, used or more than an hour old; make a new one in \
                 Lineup's Settings → Chat",
            ));
        };
        self.connect_in(&mut tx, tenant, &Actor::User(admin), platform, grant)
            .await?;
        let found = required(
            store::tenants::get(&mut tx, tenant).await?,
            "tenant",
            tenant,
        )?;
        tx.commit().await?;
        Ok(found)
    }

    /// The live installation of a workspace; `None` for a workspace we do not serve.
    pub async fn workspace(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> CoreResult<Option<Workspace>> {
        let mut tx = self.store().system().await?;
        let Some(row) =
            store::chat::find_installation(&mut tx, platform.as_str(), workspace_id).await?
        else {
            return Ok(None);
        };
        self.unseal(platform, row).map(Some)
    }

    pub async fn workspace_of_tenant(
        &self,
        tenant: TenantId,
        platform: Platform,
    ) -> CoreResult<Option<Workspace>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let Some(row) =
            store::chat::installation_for_tenant(&mut tx, tenant, platform.as_str()).await?
        else {
            return Ok(None);
        };
        self.unseal(platform, row).map(Some)
    }

    fn unseal(&self, platform: Platform, row: InstallationRow) -> CoreResult<Workspace> {
        let sealed = row.bot_token_encrypted.unwrap_or_default();
        let token = self
            .secrets()?
            .open(&sealed, &seal_context(platform, &row.workspace_id))
            .map_err(|e| CoreError::invalid("LINEUP_SECRET_KEY", e))?;
        Ok(Workspace {
            tenant: row.tenant_id,
            workspace_id: row.workspace_id,
            bot_user_id: row.bot_user_id,
            bot_token: token,
            settings: row.settings.0,
        })
    }

    /// Remember a platform detail of a workspace (e.g. where to send Teams messages).
    pub async fn set_workspace_setting(
        &self,
        platform: Platform,
        workspace_id: &str,
        key: &str,
        value: serde_json::Value,
    ) -> CoreResult<()> {
        let mut tx = self.store().system().await?;
        store::chat::set_installation_setting(&mut tx, platform.as_str(), workspace_id, key, value)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The app was removed or its tokens revoked: forget the token, keep the history.
    pub async fn uninstall_workspace(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> CoreResult<()> {
        let mut tx = self.store().system().await?;
        if let Some(tenant) =
            store::chat::revoke_installation(&mut tx, platform.as_str(), workspace_id).await?
        {
            let event = AuditEvent::new(
                tenant,
                &Actor::System,
                "chat.uninstalled",
                (
                    "chat_installation",
                    format!("{}:{workspace_id}", platform.as_str()),
                ),
                None,
                None,
            );
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Which employee a chat user is: by the stored link, else by their email (linking it
    /// for next time). `None` when neither matches an employee; refused (`NotAuthorised`,
    /// saying so) when it matches one who has been offboarded.
    pub async fn employee_for_chat_user(
        &self,
        tenant: TenantId,
        platform: Platform,
        external_id: &str,
        email: Option<&Email>,
    ) -> CoreResult<Option<EmployeeId>> {
        let mut tx = self.tenant_tx(tenant).await?;
        if let Some(id) =
            store::chat::employee_for_identity(&mut tx, tenant, platform.as_str(), external_id)
                .await?
        {
            return refuse_leaver(&mut tx, tenant, id).await.map(Some);
        }
        let Some(email) = email else { return Ok(None) };
        let Some(employee) = store::employees::find_by_email(&mut tx, tenant, email).await? else {
            return Ok(None);
        };
        refuse_leaver(&mut tx, tenant, employee.id).await?;
        store::chat::link_identity(&mut tx, tenant, employee.id, platform.as_str(), external_id)
            .await?;
        let event = AuditEvent::new(
            tenant,
            &Actor::System,
            "employee.chat_linked",
            ("employee", employee.id.to_string()),
            None,
            Some(serde_json::json!({ "platform": platform.as_str(), "external_id": external_id })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Some(employee.id))
    }

    /// The employee already linked to a chat user, if any (no lookup by email); refused when
    /// they have been offboarded.
    pub async fn chat_employee(
        &self,
        tenant: TenantId,
        platform: Platform,
        external_id: &str,
    ) -> CoreResult<Option<EmployeeId>> {
        let mut tx = self.tenant_tx(tenant).await?;
        match store::chat::employee_for_identity(&mut tx, tenant, platform.as_str(), external_id)
            .await?
        {
            Some(id) => refuse_leaver(&mut tx, tenant, id).await.map(Some),
            None => Ok(None),
        }
    }

    /// The chat user id of an employee on a platform, once known.
    pub async fn chat_user_of(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
        platform: Platform,
    ) -> CoreResult<Option<String>> {
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(
            store::chat::identity_for_employee(&mut tx, tenant, employee, platform.as_str())
                .await?,
        )
    }

    /// Link a chat user id to an employee explicitly (e.g. found by email through the
    /// platform's directory).
    pub async fn link_chat_user(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
        platform: Platform,
        external_id: &str,
    ) -> CoreResult<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        store::chat::link_identity(&mut tx, tenant, employee, platform.as_str(), external_id)
            .await?;
        record(
            &mut tx,
            &linked_event(tenant, employee, platform, external_id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The platforms that reach each of `employees`, in the order messages try them.
    pub async fn chat_platforms_of(
        &self,
        tenant: TenantId,
        employees: &[EmployeeId],
    ) -> CoreResult<HashMap<EmployeeId, Vec<Platform>>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let mut platforms: HashMap<EmployeeId, Vec<Platform>> = HashMap::new();
        for (employee, platform) in store::chat::platforms_of(&mut tx, tenant, employees).await? {
            platforms.entry(employee).or_default().push(platform);
        }
        for list in platforms.values_mut() {
            list.sort_by_key(|p| Platform::ALL.iter().position(|q| q == p));
        }
        Ok(platforms)
    }

    /// Active employees with no account linked on `platform`: whom a directory lookup by
    /// email could still find.
    pub async fn employees_unlinked_on(
        &self,
        tenant: TenantId,
        platform: Platform,
    ) -> CoreResult<Vec<Employee>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let linked: HashSet<EmployeeId> = store::chat::list_identities(&mut tx, tenant)
            .await?
            .into_iter()
            .filter(|i| i.platform == platform)
            .map(|i| i.employee_id)
            .collect();
        Ok(store::employees::list(&mut tx, tenant)
            .await?
            .into_iter()
            .filter(|e| e.status == EmployeeStatus::Active && !linked.contains(&e.id))
            .collect())
    }

    /// Link the accounts a platform's directory found by email (employee, user id), in one
    /// transaction, one audit event each. An account already linked to someone, or a person
    /// linked meanwhile, is left as it is. Returns how many were linked.
    pub async fn link_chat_users_found_by_email(
        &self,
        tenant: TenantId,
        platform: Platform,
        found: &[(EmployeeId, String)],
    ) -> CoreResult<usize> {
        let mut tx = self.tenant_tx(tenant).await?;
        let identities = store::chat::list_identities(&mut tx, tenant).await?;
        let mut taken: HashSet<&str> = HashSet::new();
        let mut linked: HashSet<EmployeeId> = HashSet::new();
        for identity in identities.iter().filter(|i| i.platform == platform) {
            taken.insert(&identity.external_id);
            linked.insert(identity.employee_id);
        }
        let mut events = Vec::new();
        for (employee, user) in found {
            if taken.contains(user.as_str()) || !linked.insert(*employee) {
                continue;
            }
            taken.insert(user);
            store::chat::link_identity(&mut tx, tenant, *employee, platform.as_str(), user).await?;
            let mut event = linked_event(tenant, *employee, platform, user);
            event.after = Some(serde_json::json!({
                "platform": platform.as_str(), "external_id": user, "found_by": "email",
            }));
            events.push(event);
        }
        store::audit::insert_many(&mut tx, tenant, &events).await?;
        tx.commit().await?;
        Ok(events.len())
    }
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
async fn refuse_leaver(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> CoreResult<EmployeeId> {
    let person = required(
        store::employees::get(tx, tenant, employee).await?,
        "employee",
        employee,
    )?;
    if person.status == EmployeeStatus::Active {
        return Ok(employee);
    }
    let company = required(store::tenants::get(tx, tenant).await?, "tenant", tenant)?.name;
    Err(CoreError::NotAuthorised(format!(
        "you are no longer active at {company}, so Lineup cannot act for you here; if that is \
         a mistake, ask your IT admin"
    )))
}
