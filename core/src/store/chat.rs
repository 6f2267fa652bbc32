//! Chat installations (one workspace per tenant and platform) and employees' chat identities.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{EmployeeId, TenantId, UserId};
use crate::messaging::chat::{ChatIdentity, Platform};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstallationRow {
    pub id: uuid::Uuid,
    pub tenant_id: TenantId,
    pub platform: String,
    pub workspace_id: String,
    pub bot_user_id: Option<String>,
    pub bot_token_encrypted: Option<Vec<u8>>,
    pub settings: sqlx::types::Json<serde_json::Value>,
    pub installed_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, tenant_id, platform, workspace_id, bot_user_id, bot_token_encrypted, \
     settings, installed_at, revoked_at";

/// Install or re-install; a workspace belongs to exactly one tenant, so a workspace already
/// installed for another tenant is left alone and `false` is returned.
pub async fn upsert_installation(tx: &mut Tx, row: &InstallationRow) -> StoreResult<bool> {
    let changed = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO chat_installations (id, tenant_id, platform, workspace_id, bot_user_id,
                 bot_token_encrypted, installed_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
             ON CONFLICT (platform, workspace_id) DO UPDATE SET
                 bot_user_id = excluded.bot_user_id,
                 bot_token_encrypted = excluded.bot_token_encrypted,
                 installed_at = excluded.installed_at, revoked_at = NULL
             WHERE chat_installations.tenant_id = excluded.tenant_id",
        )
        .bind(row.id)
        .bind(row.tenant_id)
        .bind(&row.platform)
        .bind(&row.workspace_id)
        .bind(&row.bot_user_id)
        .bind(&row.bot_token_encrypted)
        .bind(row.installed_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// The live installation for a workspace, whatever its tenant (system transaction).
pub async fn find_installation(
    tx: &mut Tx,
    platform: &str,
    workspace_id: &str,
) -> StoreResult<Option<InstallationRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM chat_installations
         WHERE platform = $1 AND workspace_id = $2 AND revoked_at IS NULL"
    );
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(platform)
            .bind(workspace_id)
            .fetch_optional(conn)
            .await?
    }))
}

pub async fn installation_for_tenant(
    tx: &mut Tx,
    tenant: TenantId,
    platform: &str,
) -> StoreResult<Option<InstallationRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM chat_installations
         WHERE tenant_id = $1 AND platform = $2 AND revoked_at IS NULL"
    );
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(platform)
            .fetch_optional(conn)
            .await?
    }))
}

pub async fn revoke_installation(
    tx: &mut Tx,
    platform: &str,
    workspace_id: &str,
) -> StoreResult<Option<TenantId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "UPDATE chat_installations SET revoked_at = $3, bot_token_encrypted = NULL
             WHERE platform = $1 AND workspace_id = $2 AND revoked_at IS NULL
             RETURNING tenant_id",
        )
        .bind(platform)
        .bind(workspace_id)
        .bind(super::now())
        .fetch_optional(conn)
        .await?
    }))
}

/// Forget `tenant`'s live installation on `platform` (its token wiped, the row kept as
/// history); returns the workspace id.
pub async fn revoke_installation_of_tenant(
    tx: &mut Tx,
    tenant: TenantId,
    platform: &str,
) -> StoreResult<Option<String>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "UPDATE chat_installations SET revoked_at = $3, bot_token_encrypted = NULL
             WHERE tenant_id = $1 AND platform = $2 AND revoked_at IS NULL
             RETURNING workspace_id",
        )
        .bind(tenant)
        .bind(platform)
        .bind(super::now())
        .fetch_optional(conn)
        .await?
    }))
}

pub async fn link_identity(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    platform: &str,
    external_id: &str,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO chat_identities (tenant_id, employee_id, platform, external_id, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, platform, external_id) DO UPDATE SET
                 employee_id = excluded.employee_id",
        )
        .bind(tenant)
        .bind(employee)
        .bind(platform)
        .bind(external_id)
        .bind(super::now())
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn employee_for_identity(
    tx: &mut Tx,
    tenant: TenantId,
    platform: &str,
    external_id: &str,
) -> StoreResult<Option<EmployeeId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT employee_id FROM chat_identities
             WHERE tenant_id = $1 AND platform = $2 AND external_id = $3",
        )
        .bind(tenant)
        .bind(platform)
        .bind(external_id)
        .fetch_optional(conn)
        .await?
    }))
}

/// Removes every chat identity of an employee; returns the (platform, external id) pairs
/// removed.
pub async fn unlink_employee(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> StoreResult<Vec<(String, String)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "DELETE FROM chat_identities WHERE tenant_id = $1 AND employee_id = $2
             RETURNING platform, external_id",
        )
        .bind(tenant)
        .bind(employee)
        .fetch_all(conn)
        .await?
    }))
}

pub async fn identity_for_employee(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    platform: &str,
) -> StoreResult<Option<String>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT external_id FROM chat_identities
             WHERE tenant_id = $1 AND employee_id = $2 AND platform = $3
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(employee)
        .bind(platform)
        .fetch_optional(conn)
        .await?
    }))
}

/// Sets one key of a live installation's settings (read, change, write in this transaction).
pub async fn set_installation_setting(
    tx: &mut Tx,
    platform: &str,
    workspace_id: &str,
    key: &str,
    value: serde_json::Value,
) -> StoreResult<()> {
    let Some(row) = find_installation(tx, platform, workspace_id).await? else {
        return Ok(());
    };
    let mut settings = row.settings.0;
    if !settings.is_object() {
        settings = serde_json::json!({});
    }
    settings[key] = value;
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE chat_installations SET settings = $2 WHERE id = $1")
            .bind(row.id)
            .bind(sqlx::types::Json(&settings))
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// Every chat identity of the tenant, oldest first (so a later one for the same employee and
/// platform, the one messages use, comes last).
pub async fn list_identities(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<ChatIdentity>> {
    let rows: Vec<(EmployeeId, String, String)> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT employee_id, platform, external_id FROM chat_identities
             WHERE tenant_id = $1 ORDER BY created_at, external_id",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(employee_id, platform, external_id)| {
            Some(ChatIdentity {
                employee_id,
                platform: Platform::parse(&platform)?,
                external_id,
            })
        })
        .collect())
}

/// Give each employee exactly the account listed on its platform, replacing any other they
/// had there; an account linked to someone else moves to this employee. A few statements per
/// 400 links.
pub async fn replace_identities(
    tx: &mut Tx,
    tenant: TenantId,
    links: &[ChatIdentity],
) -> StoreResult<()> {
    let at = super::now();
    for chunk in links.chunks(super::bulk::sqlite_chunk(
        5,
        super::bulk::Placeholders::Numbered,
    )) {
        let employees = (0..chunk.len())
            .map(|i| {
                format!(
                    "(employee_id = ${} AND platform = ${})",
                    2 * i + 2,
                    2 * i + 3
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let delete = format!("DELETE FROM chat_identities WHERE tenant_id = $1 AND ({employees})");
        let insert = format!(
            "INSERT INTO chat_identities (tenant_id, employee_id, platform, external_id, created_at)
             VALUES {}
             ON CONFLICT (tenant_id, platform, external_id) DO UPDATE SET
                 employee_id = excluded.employee_id, created_at = excluded.created_at",
            super::values_placeholders(chunk.len(), 5)
        );
        on_tx!(tx, |conn| {
            let mut query = sqlx::query(&delete).bind(tenant);
            for link in chunk {
                query = query.bind(link.employee_id).bind(link.platform.as_str());
            }
            query.execute(&mut *conn).await?;
            let mut query = sqlx::query(&insert);
            for link in chunk {
                query = query
                    .bind(tenant)
                    .bind(link.employee_id)
                    .bind(link.platform.as_str())
                    .bind(&link.external_id)
                    .bind(at);
            }
            query.execute(conn).await?;
        });
    }
    Ok(())
}

/// The platforms the tenant has a live workspace on.
pub async fn connected_platforms(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<Platform>> {
    let names: Vec<String> = on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT platform FROM chat_installations
             WHERE tenant_id = $1 AND revoked_at IS NULL",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    Ok(names.iter().filter_map(|n| Platform::parse(n)).collect())
}

/// The platforms each of `employees` has an account on (one page of the directory).
pub async fn platforms_of(
    tx: &mut Tx,
    tenant: TenantId,
    employees: &[EmployeeId],
) -> StoreResult<Vec<(EmployeeId, Platform)>> {
    let mut found = Vec::new();
    for chunk in employees.chunks(super::bulk::sqlite_chunk(
        1,
        super::bulk::Placeholders::Numbered,
    )) {
        let params = (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT DISTINCT employee_id, platform FROM chat_identities
             WHERE tenant_id = $1 AND employee_id IN ({params})"
        );
        let rows: Vec<(EmployeeId, String)> = on_tx!(tx, |conn| {
            let mut query = sqlx::query_as(&sql).bind(tenant);
            for id in chunk {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await?
        });
        found.extend(
            rows.into_iter()
                .filter_map(|(id, platform)| Some((id, Platform::parse(&platform)?))),
        );
    }
    Ok(found)
}

/// Keeps a one-time link code (its hash only).
pub async fn insert_link_code(
    tx: &mut Tx,
    tenant: TenantId,
    platform: &str,
    code_hash: &str,
    created_by: UserId,
    expires_at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO chat_link_codes (code_hash, tenant_id, platform, created_by,
                 created_at, expires_at, used_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(code_hash)
        .bind(tenant)
        .bind(platform)
        .bind(created_by)
        .bind(super::now())
        .bind(expires_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Spends a live link code for `platform` (system transaction: the code is all we know);
/// returns whose it is. A used, expired or unknown code gives `None`.
pub async fn consume_link_code(
    tx: &mut Tx,
    platform: &str,
    code_hash: &str,
    now: OffsetDateTime,
) -> StoreResult<Option<(TenantId, UserId)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "UPDATE chat_link_codes SET used_at = $3
             WHERE code_hash = $1 AND platform = $2 AND used_at IS NULL AND expires_at > $3
             RETURNING tenant_id, created_by",
        )
        .bind(code_hash)
        .bind(platform)
        .bind(now)
        .fetch_optional(conn)
        .await?
    }))
}

/// Remember `conversation` as where `user_id` of a workspace is reached (`kind` `direct`: their
/// 1:1 chat with the bot; `seen`: the last conversation they wrote in).
pub async fn remember_conversation(
    tx: &mut Tx,
    tenant: TenantId,
    platform: &str,
    workspace_id: &str,
    user_id: &str,
    kind: &str,
    conversation: &str,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO chat_conversations
                 (tenant_id, platform, workspace_id, user_id, kind, conversation_id, learnt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, platform, workspace_id, user_id, kind) DO UPDATE SET
                 conversation_id = excluded.conversation_id, learnt_at = excluded.learnt_at",
        )
        .bind(tenant)
        .bind(platform)
        .bind(workspace_id)
        .bind(user_id)
        .bind(kind)
        .bind(conversation)
        .bind(super::now())
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// The conversation remembered for `user_id` of a workspace under `kind`.
pub async fn conversation(
    tx: &mut Tx,
    tenant: TenantId,
    platform: &str,
    workspace_id: &str,
    user_id: &str,
    kind: &str,
) -> StoreResult<Option<String>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT conversation_id FROM chat_conversations
             WHERE tenant_id = $1 AND platform = $2 AND workspace_id = $3 AND user_id = $4
                 AND kind = $5",
        )
        .bind(tenant)
        .bind(platform)
        .bind(workspace_id)
        .bind(user_id)
        .bind(kind)
        .fetch_optional(conn)
        .await?
    }))
}
