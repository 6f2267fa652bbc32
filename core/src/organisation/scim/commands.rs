//! SCIM commands and queries: tokens (create, list, revoke, authenticate), and users and
//! groups as the identity provider reads and writes them. Users are employees: deleting or
//! deactivating one runs the same offboarding an admin's click does.

use serde::Serialize;
use serde_json::json;

use super::filter::{GroupFilter, UserFilter};
use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::AuditEvent;
use crate::error::{CoreError, CoreResult};
use crate::identity::session::{random_token, token_hash};
use crate::ids::{CostCentreId, TeamId};
use crate::organisation::employee::EmployeeStatus;
use crate::organisation::employee::commands::check_reporting_line;
use crate::organisation::org_unit::commands::{cost_centre_coded, team_named};
use crate::store::scim::{GroupMatch, StoredGroup, UserMatch};
use crate::store::{self, Tx, now};

/// A token's last use is written at most this often, so a busy provider does not turn
/// every read into a write.
const LAST_USED_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// What the audit log keeps of a SCIM user: the employee and the SCIM-only fields.
#[derive(Serialize)]
struct AuditedUser<'a> {
    #[serde(flatten)]
    employee: &'a Employee,
    user_name: Option<&'a str>,
    external_id: Option<&'a str>,
    employee_number: Option<&'a str>,
}

impl<'a> From<&'a ScimUser> for AuditedUser<'a> {
    fn from(user: &'a ScimUser) -> Self {
        Self {
            employee: &user.employee,
            user_name: user.user_name.as_deref(),
            external_id: user.external_id.as_deref(),
            employee_number: user.employee_number.as_deref(),
        }
    }
}

impl Lineup {
    /// A new token for an identity provider; its secret is in the answer and nowhere else.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn create_scim_token(
        &self,
        tenant: TenantId,
        actor: &Actor,
        created_by: UserId,
        name: &str,
    ) -> CoreResult<IssuedScimToken> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CoreError::invalid("name", "must not be empty"));
        }
        if name.chars().count() > 100 {
            return Err(CoreError::invalid("name", "must be at most 100 characters"));
        }
        let secret = random_token();
        let token = ScimToken {
            id: ScimTokenId::new(),
            tenant_id: tenant,
            name: name.to_owned(),
            created_by,
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        let mut tx = self.tenant_tx(tenant).await?;
        match store::scim::insert_token(&mut tx, tenant, &token, &token_hash(&secret)).await {
            Err(e) if e.is_unique_violation() => {
                return Err(CoreError::invalid(
                    "name",
                    format!("a token named {name} already exists; pick another name"),
                ));
            }
            other => other?,
        }
        let event = AuditEvent::new(
            tenant,
            actor,
            "scim_token.created",
            ("scim_token", token.id.to_string()),
            None,
            to_json(&token),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(IssuedScimToken { token, secret })
    }

    pub async fn scim_tokens(&self, tenant: TenantId) -> CoreResult<Vec<ScimToken>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::scim::list_tokens(&mut tx, tenant).await?)
    }

    /// Revoke a token: every call with it is refused from now on. Revoking twice is fine.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, token = %id))]
    pub async fn revoke_scim_token(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: ScimTokenId,
    ) -> CoreResult<ScimToken> {
        let mut tx = self.tenant_tx(tenant).await?;
        let before = required(
            store::scim::get_token(&mut tx, tenant, id).await?,
            "SCIM token",
            id,
        )?;
        let at = now();
        if !store::scim::revoke_token(&mut tx, tenant, id, at).await? {
            return Ok(before);
        }
        let after = ScimToken {
            revoked_at: Some(at),
            ..before.clone()
        };
        let event = AuditEvent::new(
            tenant,
            actor,
            "scim_token.revoked",
            ("scim_token", id.to_string()),
            to_json(&before),
            to_json(&after),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Log one SCIM call of `tenant` (its error shortened); only the newest calls are kept.
    pub async fn record_scim_call(&self, tenant: TenantId, mut call: ScimCall) -> CoreResult<()> {
        if let Some(error) = &mut call.error
            && error.chars().count() > CALL_ERROR_CHARS
        {
            *error = error.chars().take(CALL_ERROR_CHARS - 1).collect::<String>() + "…";
        }
        let mut tx = self.tenant_tx(tenant).await?;
        store::scim::record_call(&mut tx, tenant, &call).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's newest SCIM calls, newest first.
    pub async fn scim_calls(&self, tenant: TenantId) -> CoreResult<Vec<ScimCall>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::scim::list_calls(&mut tx, tenant).await?)
    }

    /// Who is calling SCIM with `bearer` on `tenant`'s host: a live token of that tenant.
    pub async fn scim_client(&self, tenant: TenantId, bearer: &str) -> CoreResult<ScimClient> {
        let refused = || CoreError::NotAuthorised("the bearer token is not valid".to_owned());
        if bearer.is_empty() {
            return Err(refused());
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let token = store::scim::find_live_token(&mut tx, tenant, &token_hash(bearer))
            .await?
            .ok_or_else(refused)?;
        let at = now();
        if token
            .last_used_at
            .is_none_or(|last| at - last >= LAST_USED_GRANULARITY)
        {
            store::scim::touch_token(&mut tx, tenant, token.id, at).await?;
            tx.commit().await?;
        }
        Ok(ScimClient {
            tenant,
            token: token.id,
            name: token.name,
        })
    }

    /// One page of users (`start_index` 1-based), narrowed by `filter`.
    pub async fn scim_users(
        &self,
        client: &ScimClient,
        filter: Option<&UserFilter>,
        start_index: i64,
        count: i64,
    ) -> CoreResult<ScimPage<ScimUser>> {
        let tenant = client.tenant;
        let start_index = start_index.max(1);
        let count = count.clamp(0, MAX_PAGE);
        let matching = match filter {
            None => None,
            Some(UserFilter::UserName(v)) => Some(UserMatch::UserName(v.clone())),
            Some(UserFilter::WorkEmail(v)) => match Email::parse(v) {
                Ok(email) => Some(UserMatch::Email(email.as_str().to_owned())),
                Err(_) => return Ok(empty_page(start_index)),
            },
            Some(UserFilter::ExternalId(v)) => Some(UserMatch::ExternalId(v.clone())),
            Some(UserFilter::Id(v)) => match v.parse() {
                Ok(id) => Some(UserMatch::Id(id)),
                Err(_) => return Ok(empty_page(start_index)),
            },
        };
        let mut tx = self.tenant_read_tx(tenant).await?;
        let (resources, total) =
            store::scim::list_users(&mut tx, tenant, matching.as_ref(), start_index - 1, count)
                .await?;
        Ok(ScimPage {
            resources,
            total,
            start_index,
        })
    }

    pub async fn scim_user(&self, client: &ScimClient, id: &str) -> CoreResult<ScimUser> {
        let mut tx = self.tenant_read_tx(client.tenant).await?;
        scim_user_in(&mut tx, client.tenant, id).await
    }

    /// A new employee from the provider. A taken email is a duplicate.
    #[tracing::instrument(skip_all, fields(tenant = %client.tenant))]
    pub async fn scim_create_user(
        &self,
        client: &ScimClient,
        user: UserRecord,
    ) -> CoreResult<ScimUser> {
        let (tenant, actor) = (client.tenant, client.actor());
        let mut tx = self.tenant_tx(tenant).await?;
        if store::employees::find_by_email(&mut tx, tenant, &user.email)
            .await?
            .is_some()
        {
            return Err(taken(&user.email));
        }
        check_user_name_free(&mut tx, tenant, &user, None).await?;
        let at = now();
        let mut employee = Employee {
            id: EmployeeId::new(),
            tenant_id: tenant,
            email: user.email.clone(),
            given_name: user.given_name.to_string(),
            family_name: user.family_name.to_string(),
            team_id: None,
            cost_centre_id: None,
            manager_id: None,
            status: EmployeeStatus::Active,
            created_at: at,
            updated_at: at,
        };
        let org = resolve_org(&mut tx, tenant, &actor, &user, &employee, None).await?;
        (
            employee.team_id,
            employee.cost_centre_id,
            employee.manager_id,
        ) = org;
        store::employees::insert(&mut tx, tenant, &employee).await?;
        let external_id = user.external_id.applied_to(None);
        let employee_number = user.employee_number.applied_to(None);
        store::scim::save_user(
            &mut tx,
            tenant,
            employee.id,
            user.user_name.as_deref(),
            external_id.as_deref(),
            employee_number.as_deref(),
        )
        .await?;
        crate::organisation::joiner::commands::enrol(
            &mut tx,
            tenant,
            &actor,
            employee.id,
            user.start_date.applied_to(None),
        )
        .await?;
        let created = scim_user_in(&mut tx, tenant, &employee.id.to_string()).await?;
        let event = AuditEvent::new(
            tenant,
            &actor,
            "employee.created",
            ("employee", employee.id.to_string()),
            None,
            to_json(&AuditedUser::from(&created)),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        if user.active == Some(false) {
            self.offboard_employee(tenant, &actor, employee.id).await?;
            return self.scim_user(client, &employee.id.to_string()).await;
        }
        Ok(created)
    }

    /// Replace what the provider manages of a user (see [`Update`] for what is left out).
    /// `active: false` offboards them; `active: true` brings an offboarded one back.
    #[tracing::instrument(skip_all, fields(tenant = %client.tenant))]
    pub async fn scim_replace_user(
        &self,
        client: &ScimClient,
        id: &str,
        user: UserRecord,
        if_match: Option<&str>,
    ) -> CoreResult<ScimUser> {
        let (tenant, actor) = (client.tenant, client.actor());
        let mut tx = self.tenant_tx(tenant).await?;
        let before = scim_user_in(&mut tx, tenant, id).await?;
        check_version(&before.version, if_match)?;
        if user.email != before.employee.email
            && store::employees::find_by_email(&mut tx, tenant, &user.email)
                .await?
                .is_some()
        {
            return Err(taken(&user.email));
        }
        check_user_name_free(&mut tx, tenant, &user, Some(before.employee.id)).await?;
        let current = &before.employee;
        let org = resolve_org(&mut tx, tenant, &actor, &user, current, Some(&before)).await?;
        let mut after = Employee {
            email: user.email.clone(),
            given_name: user.given_name.to_string(),
            family_name: user.family_name.to_string(),
            team_id: org.0,
            cost_centre_id: org.1,
            manager_id: org.2,
            ..current.clone()
        };
        let reactivate = user.active == Some(true) && current.status == EmployeeStatus::Offboarded;
        if reactivate {
            after.status = EmployeeStatus::Active;
        }
        let external_id = user.external_id.applied_to(before.external_id.clone());
        let employee_number = user
            .employee_number
            .applied_to(before.employee_number.clone());
        if user.start_date != Update::Keep {
            crate::organisation::joiner::commands::move_start_date(
                &mut tx,
                tenant,
                &actor,
                current.id,
                user.start_date.applied_to(before.start_date),
            )
            .await?;
        }
        let employee_changed = after != *current;
        let scim_changed = external_id != before.external_id
            || employee_number != before.employee_number
            || user.user_name != before.user_name;
        if employee_changed || scim_changed {
            if employee_changed {
                after.updated_at = now();
                store::employees::update(&mut tx, tenant, &after).await?;
                crate::organisation::mover::employee_moved(
                    &mut tx,
                    &actor,
                    current,
                    &after,
                    after.updated_at,
                )
                .await?;
            }
            store::scim::save_user(
                &mut tx,
                tenant,
                current.id,
                user.user_name.as_deref(),
                external_id.as_deref(),
                employee_number.as_deref(),
            )
            .await?;
            let written = scim_user_in(&mut tx, tenant, id).await?;
            let action = if reactivate {
                "employee.reactivated"
            } else {
                "employee.updated"
            };
            let event = AuditEvent::new(
                tenant,
                &actor,
                action,
                ("employee", current.id.to_string()),
                to_json(&AuditedUser::from(&before)),
                to_json(&AuditedUser::from(&written)),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
        } else {
            drop(tx);
        }
        if user.active == Some(false) && current.status == EmployeeStatus::Active {
            self.offboard_employee(tenant, &actor, current.id).await?;
        }
        self.scim_user(client, id).await
    }

    /// The provider deleted the user: they are offboarded (as an admin's offboarding does)
    /// and SCIM no longer serves them; their records stay for history.
    #[tracing::instrument(skip_all, fields(tenant = %client.tenant))]
    pub async fn scim_delete_user(
        &self,
        client: &ScimClient,
        id: &str,
        if_match: Option<&str>,
    ) -> CoreResult<()> {
        let (tenant, actor) = (client.tenant, client.actor());
        let user = self.scim_user(client, id).await?;
        check_version(&user.version, if_match)?;
        self.offboard_employee(tenant, &actor, user.employee.id)
            .await?;
        let mut tx = self.tenant_tx(tenant).await?;
        store::scim::mark_user_deleted(&mut tx, tenant, user.employee.id, now()).await?;
        let event = AuditEvent::new(
            tenant,
            &actor,
            "employee.scim_deleted",
            ("employee", user.employee.id.to_string()),
            to_json(&AuditedUser::from(&user)),
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One page of groups (`start_index` 1-based), narrowed by `filter`.
    pub async fn scim_groups(
        &self,
        client: &ScimClient,
        filter: Option<&GroupFilter>,
        start_index: i64,
        count: i64,
    ) -> CoreResult<ScimPage<ScimGroup>> {
        let tenant = client.tenant;
        let start_index = start_index.max(1);
        let count = count.clamp(0, MAX_PAGE);
        let matching = match filter {
            None => None,
            Some(GroupFilter::DisplayName(v)) => Some(GroupMatch::Name(v.clone())),
            Some(GroupFilter::ExternalId(v)) => Some(GroupMatch::ExternalId(v.clone())),
            Some(GroupFilter::Id(v)) => match v.parse() {
                Ok(id) => Some(GroupMatch::Id(id)),
                Err(_) => return Ok(empty_page(start_index)),
            },
        };
        let mut tx = self.tenant_read_tx(tenant).await?;
        let (stored, total) =
            store::scim::list_groups(&mut tx, tenant, matching.as_ref(), start_index - 1, count)
                .await?;
        let mut resources = Vec::with_capacity(stored.len());
        for group in stored {
            resources.push(with_members(&mut tx, tenant, group).await?);
        }
        Ok(ScimPage {
            resources,
            total,
            start_index,
        })
    }

    pub async fn scim_group(&self, client: &ScimClient, id: &str) -> CoreResult<ScimGroup> {
        let mut tx = self.tenant_read_tx(client.tenant).await?;
        scim_group_in(&mut tx, client.tenant, id).await
    }

    /// A new team from the provider, with its members. A taken name is a duplicate.
    #[tracing::instrument(skip_all, fields(tenant = %client.tenant))]
    pub async fn scim_create_group(
        &self,
        client: &ScimClient,
        group: GroupRecord,
    ) -> CoreResult<ScimGroup> {
        let (tenant, actor) = (client.tenant, client.actor());
        let name = group_name(&group.display_name)?;
        let mut tx = self.tenant_tx(tenant).await?;
        if store::org::find_team_named(&mut tx, tenant, &name)
            .await?
            .is_some()
        {
            return Err(CoreError::Duplicate(format!(
                "a team named {name} already exists"
            )));
        }
        let team = Team {
            id: TeamId::new(),
            tenant_id: tenant,
            name,
            created_at: now(),
        };
        store::org::insert_team(&mut tx, tenant, &team).await?;
        let external_id = group.external_id.applied_to(None);
        store::scim::save_group(&mut tx, tenant, team.id, external_id.as_deref(), None).await?;
        let event = AuditEvent::new(
            tenant,
            &actor,
            "team.created",
            ("team", team.id.to_string()),
            None,
            Some(json!({ "team": team, "external_id": external_id })),
        );
        record(&mut tx, &event).await?;
        if let Some(members) = &group.members {
            set_members(&mut tx, tenant, &actor, team.id, members).await?;
        }
        let created = scim_group_in(&mut tx, tenant, &team.id.to_string()).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Rename the team, set its external id, and (when given) exactly its members.
    #[tracing::instrument(skip_all, fields(tenant = %client.tenant))]
    pub async fn scim_replace_group(
        &self,
        client: &ScimClient,
        id: &str,
        group: GroupRecord,
        if_match: Option<&str>,
    ) -> CoreResult<ScimGroup> {
        let (tenant, actor) = (client.tenant, client.actor());
        let name = group_name(&group.display_name)?;
        let mut tx = self.tenant_tx(tenant).await?;
        let before = scim_group_in(&mut tx, tenant, id).await?;
        check_version(&before.version, if_match)?;
        let team = before.team.id;
        if name != before.team.name {
            if store::org::find_team_named(&mut tx, tenant, &name)
                .await?
                .is_some_and(|other| other.id != team)
            {
                return Err(CoreError::Duplicate(format!(
                    "a team named {name} already exists"
                )));
            }
            store::org::rename_team(&mut tx, tenant, team, &name).await?;
        }
        let external_id = group.external_id.applied_to(before.external_id.clone());
        store::scim::save_group(&mut tx, tenant, team, external_id.as_deref(), None).await?;
        if name != before.team.name || external_id != before.external_id {
            let event = AuditEvent::new(
                tenant,
                &actor,
                "team.updated",
                ("team", team.to_string()),
                Some(json!({ "name": before.team.name, "external_id": before.external_id })),
                Some(json!({ "name": name, "external_id": external_id })),
            );
            record(&mut tx, &event).await?;
        }
        if let Some(members) = &group.members {
            set_members(&mut tx, tenant, &actor, team, members).await?;
        }
        let after = scim_group_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The provider deleted the group: its members leave the team and SCIM no longer serves
    /// it. The team itself stays, as policies and past spend may name it.
    #[tracing::instrument(skip_all, fields(tenant = %client.tenant))]
    pub async fn scim_delete_group(
        &self,
        client: &ScimClient,
        id: &str,
        if_match: Option<&str>,
    ) -> CoreResult<()> {
        let (tenant, actor) = (client.tenant, client.actor());
        let mut tx = self.tenant_tx(tenant).await?;
        let group = scim_group_in(&mut tx, tenant, id).await?;
        check_version(&group.version, if_match)?;
        set_members(&mut tx, tenant, &actor, group.team.id, &[]).await?;
        store::scim::save_group(
            &mut tx,
            tenant,
            group.team.id,
            group.external_id.as_deref(),
            Some(now()),
        )
        .await?;
        let event = AuditEvent::new(
            tenant,
            &actor,
            "team.scim_deleted",
            ("team", group.team.id.to_string()),
            Some(json!({ "team": group.team, "external_id": group.external_id })),
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn empty_page<T>(start_index: i64) -> ScimPage<T> {
    ScimPage {
        resources: Vec::new(),
        total: 0,
        start_index,
    }
}

/// A userName is unique (ignoring case) among the users SCIM serves, emails included.
async fn check_user_name_free(
    tx: &mut Tx,
    tenant: TenantId,
    user: &UserRecord,
    except: Option<EmployeeId>,
) -> CoreResult<()> {
    let name = user.user_name.as_deref().unwrap_or(user.email.as_str());
    let matching = UserMatch::UserName(name.to_owned());
    let (holders, _) = store::scim::list_users(tx, tenant, Some(&matching), 0, 2).await?;
    if holders.iter().any(|h| Some(h.employee.id) != except) {
        return Err(CoreError::Duplicate(format!(
            "the userName {name} is already taken"
        )));
    }
    Ok(())
}

fn taken(email: &Email) -> CoreError {
    CoreError::Duplicate(format!("{email} is already an employee"))
}

/// An `If-Match` naming another version than the current one is refused.
fn check_version(current: &str, if_match: Option<&str>) -> CoreResult<()> {
    match if_match {
        Some(wanted) if wanted != "*" && wanted != current => Err(CoreError::Stale(format!(
            "the resource changed: it is at version {current}, not {wanted}"
        ))),
        _ => Ok(()),
    }
}

fn group_name(display_name: &str) -> CoreResult<String> {
    let name = display_name.trim();
    if name.is_empty() {
        return Err(CoreError::invalid("displayName", "must not be empty"));
    }
    Ok(name.to_owned())
}

async fn scim_user_in(tx: &mut Tx, tenant: TenantId, id: &str) -> CoreResult<ScimUser> {
    let employee: EmployeeId = id.parse().map_err(|_| CoreError::not_found("user", id))?;
    required(
        store::scim::get_user(tx, tenant, employee).await?,
        "user",
        id,
    )
}

async fn scim_group_in(tx: &mut Tx, tenant: TenantId, id: &str) -> CoreResult<ScimGroup> {
    let team: TeamId = id.parse().map_err(|_| CoreError::not_found("group", id))?;
    let (mut found, _) =
        store::scim::list_groups(tx, tenant, Some(&GroupMatch::Id(team)), 0, 1).await?;
    let group = required(found.pop(), "group", id)?;
    with_members(tx, tenant, group).await
}

async fn with_members(tx: &mut Tx, tenant: TenantId, group: StoredGroup) -> CoreResult<ScimGroup> {
    Ok(ScimGroup {
        members: store::scim::group_members(tx, tenant, group.team.id).await?,
        team: group.team,
        external_id: group.external_id,
        version: group.version,
    })
}

/// The team, cost centre and manager the record leaves `employee` with: department and
/// cost centre found ignoring case or created (as an import does), the manager an employee
/// of this tenant whose own reporting line does not lead back to `employee`.
async fn resolve_org(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    user: &UserRecord,
    employee: &Employee,
    before: Option<&ScimUser>,
) -> CoreResult<(Option<TeamId>, Option<CostCentreId>, Option<EmployeeId>)> {
    let team = match &user.department {
        Update::Keep => employee.team_id,
        Update::Clear => None,
        Update::Set(name) if name.trim().is_empty() => None,
        Update::Set(name) => Some(team_named(tx, tenant, actor, name.trim()).await?),
    };
    let centre = match &user.cost_centre {
        Update::Keep => employee.cost_centre_id,
        Update::Clear => None,
        Update::Set(code) if code.trim().is_empty() => None,
        Update::Set(code) => Some(cost_centre_coded(tx, tenant, actor, code.trim()).await?),
    };
    let manager = match &user.manager {
        Update::Keep => employee.manager_id,
        Update::Clear => None,
        Update::Set(id) if id.trim().is_empty() => None,
        Update::Set(id) => {
            let unknown = || {
                CoreError::invalid(
                    "manager",
                    format!("{id} is not the id of a user in this organisation"),
                )
            };
            let boss_id: EmployeeId = id.trim().parse().map_err(|_| unknown())?;
            let boss = store::employees::get(tx, tenant, boss_id)
                .await?
                .ok_or_else(unknown)?;
            if before.is_some() {
                check_reporting_line(tx, tenant, employee, &boss).await?;
            }
            Some(boss.id)
        }
    };
    Ok((team, centre, manager))
}

/// Make exactly `members` (SCIM user ids) the team's members: the others leave it.
async fn set_members(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    team: TeamId,
    members: &[String],
) -> CoreResult<()> {
    let mut wanted = Vec::with_capacity(members.len());
    for id in members {
        let user = scim_user_in(tx, tenant, id).await.map_err(|_| {
            CoreError::invalid(
                "members",
                format!("{id} is not the id of a user in this organisation"),
            )
        })?;
        wanted.push(user.employee);
    }
    let current = store::scim::group_members(tx, tenant, team).await?;
    let at = now();
    let leaving = current
        .iter()
        .filter(|(id, _)| !wanted.iter().any(|e| e.id == *id));
    let mut moved = Vec::new();
    for (id, _) in leaving {
        if let Some(employee) = store::employees::get(tx, tenant, *id).await? {
            moved.push((employee, None));
        }
    }
    for employee in wanted {
        if employee.team_id != Some(team) {
            moved.push((employee, Some(team)));
        }
    }
    for (before, team_id) in moved {
        let after = Employee {
            team_id,
            updated_at: at,
            ..before.clone()
        };
        store::employees::update(tx, tenant, &after).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "employee.updated",
            ("employee", after.id.to_string()),
            to_json(&before),
            to_json(&after),
        );
        record(tx, &event).await?;
    }
    Ok(())
}
