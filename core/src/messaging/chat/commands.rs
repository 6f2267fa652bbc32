//! Chat commands and queries: install, connect, link and uninstall workspaces, their
//! settings, and which employee each chat user is.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::app::{Lineup, record, required};
use crate::audit::{Actor, AuditEvent};
use crate::email_address::Email;
use crate::error::{CoreError, CoreResult};
use crate::identity::session::{random_token, token_hash};
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::organisation::employee::{Employee, EmployeeStatus};
use crate::store::{self, Tx, chat::InstallationRow, now};

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
        self.recent_workspaces().forget_all();
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
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        self.recent_workspaces().forget_all();
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
    ) -> CoreResult<crate::organisation::tenant::Tenant> {
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
        self.recent_workspaces().forget_all();
        Ok(found)
    }

    /// The live installation of a workspace; `None` for a workspace we do not serve. Read
    /// at most once a second per workspace in this process (see [`RecentWorkspaces`]).
    pub async fn workspace(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> CoreResult<Option<Workspace>> {
        if let Some(known) = self.recent_workspaces().get(platform, workspace_id) {
            return Ok(Some(known));
        }
        let mut tx = self.store().system().await?;
        let Some(row) =
            store::chat::find_installation(&mut tx, platform.as_str(), workspace_id).await?
        else {
            return Ok(None);
        };
        let workspace = self.unseal(platform, row)?;
        self.recent_workspaces().remember(platform, &workspace);
        Ok(Some(workspace))
    }

    pub async fn workspace_of_tenant(
        &self,
        tenant: TenantId,
        platform: Platform,
    ) -> CoreResult<Option<Workspace>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        self.recent_workspaces().forget_all();
        Ok(())
    }

    /// Remember the conversation where `user_id` of a served workspace is reached, so every
    /// replica can message them. Returns false (nothing kept) for a workspace we do not serve.
    pub async fn remember_chat_conversation(
        &self,
        platform: Platform,
        workspace_id: &str,
        user_id: &str,
        kind: ConversationKind,
        conversation: &str,
    ) -> CoreResult<bool> {
        let Some(tenant) = self.tenant_of_workspace(platform, workspace_id).await? else {
            return Ok(false);
        };
        let mut tx = self.tenant_tx(tenant).await?;
        store::chat::remember_conversation(
            &mut tx,
            tenant,
            platform.as_str(),
            workspace_id,
            user_id,
            kind.as_str(),
            conversation,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The conversation remembered for `user_id` of a workspace, whichever replica learnt it.
    pub async fn chat_conversation(
        &self,
        platform: Platform,
        workspace_id: &str,
        user_id: &str,
        kind: ConversationKind,
    ) -> CoreResult<Option<String>> {
        let Some(tenant) = self.tenant_of_workspace(platform, workspace_id).await? else {
            return Ok(None);
        };
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::chat::conversation(
            &mut tx,
            tenant,
            platform.as_str(),
            workspace_id,
            user_id,
            kind.as_str(),
        )
        .await?)
    }

    /// The tenant a live workspace belongs to (a system look-up: the request names only the
    /// workspace).
    async fn tenant_of_workspace(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> CoreResult<Option<TenantId>> {
        let mut tx = self.store().system_read().await?;
        let row = store::chat::find_installation(&mut tx, platform.as_str(), workspace_id).await?;
        Ok(row.map(|r| r.tenant_id))
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
        self.recent_workspaces().forget_all();
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
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.tenant_read_tx(tenant).await?;
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
