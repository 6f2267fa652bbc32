//! The import commands: keep an upload, preview it, and commit its plan in one transaction
//! with an audit event per change.

use serde_json::json;

use super::{
    Existing, ImportSummary, Mapping, Preview, UPLOAD_LIFETIME, Upload, plan::plan, read_csv,
};
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{ImportId, TenantId};
use crate::messaging::chat::ChatIdentity;
use crate::organisation::employee::Employee;
use crate::store::{self, Tx, now};

impl Lineup {
    /// Keep an uploaded file for preview, after checking it reads as CSV.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn upload_employee_csv(
        &self,
        tenant: TenantId,
        actor: &Actor,
        filename: &str,
        content: Vec<u8>,
    ) -> CoreResult<Upload> {
        read_csv(&content).map_err(|e| CoreError::invalid("file", e))?;
        let at = now();
        let upload = Upload {
            id: ImportId::new(),
            tenant_id: tenant,
            uploaded_by: actor.to_text(),
            filename: filename.trim().to_owned(),
            content,
            created_at: at,
            expires_at: at + UPLOAD_LIFETIME,
            committed_at: None,
        };
        let mut tx = self.tenant_tx(tenant).await?;
        store::imports::delete_expired(&mut tx, tenant, at).await?;
        store::imports::insert(&mut tx, tenant, &upload).await?;
        tx.commit().await?;
        Ok(upload)
    }

    /// What committing `upload` with `mapping` (or the detected one) would do.
    pub async fn preview_import(
        &self,
        tenant: TenantId,
        upload: ImportId,
        mapping: Option<Mapping>,
    ) -> CoreResult<Preview> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let upload = live_upload(&mut tx, tenant, upload).await?;
        let existing = load_existing(&mut tx, tenant).await?;
        drop(tx);
        let file = read_csv(&upload.content).map_err(|e| CoreError::invalid("file", e))?;
        let mapping = mapping.unwrap_or_else(|| Mapping::detect(&file.headers));
        let plan = plan(tenant, &file, &mapping, &existing, now());
        Ok(Preview {
            upload,
            headers: file.headers,
            mapping,
            plan,
        })
    }

    /// Write the import in one transaction, all or nothing, after checking the stored
    /// file again against the organisation as it is now.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, upload = %upload))]
    pub async fn commit_import(
        &self,
        tenant: TenantId,
        actor: &Actor,
        upload: ImportId,
        mapping: Mapping,
    ) -> CoreResult<ImportSummary> {
        let mut tx = self.tenant_tx(tenant).await?;
        let upload = live_upload(&mut tx, tenant, upload).await?;
        let file = read_csv(&upload.content).map_err(|e| CoreError::invalid("file", e))?;
        let existing = load_existing(&mut tx, tenant).await?;
        let at = now();
        let plan = plan(tenant, &file, &mapping, &existing, at);
        if !plan.can_commit() {
            return Err(CoreError::invalid(
                "file",
                format!(
                    "{} problem(s) remain; fix them in the file and upload it again",
                    plan.problems.len()
                ),
            ));
        }
        if !store::imports::mark_committed(&mut tx, tenant, upload.id, at).await? {
            return Err(CoreError::Conflict(
                "this file has already been imported".to_owned(),
            ));
        }
        store::org::insert_teams(&mut tx, tenant, &plan.new_teams).await?;
        store::org::insert_cost_centres(&mut tx, tenant, &plan.new_cost_centres).await?;
        let employees: Vec<Employee> = plan
            .changes
            .iter()
            .filter(|c| c.employee_changed)
            .map(|c| c.after.clone())
            .collect();
        store::employees::upsert_many(&mut tx, tenant, &employees).await?;
        for change in plan.updates() {
            if let Some(before) = &change.before {
                crate::organisation::mover::employee_moved(
                    &mut tx,
                    actor,
                    before,
                    &change.after,
                    at,
                )
                .await?;
            }
        }
        let chat_links: Vec<ChatIdentity> = plan
            .changes
            .iter()
            .flat_map(|c| {
                c.chat_links.iter().map(|link| ChatIdentity {
                    employee_id: c.after.id,
                    platform: link.platform,
                    external_id: link.external_id.clone(),
                })
            })
            .collect();
        store::chat::replace_identities(&mut tx, tenant, &chat_links).await?;

        let mut events = Vec::with_capacity(plan.changes.len() + 8);
        for team in &plan.new_teams {
            events.push(AuditEvent::new(
                tenant,
                actor,
                "team.created",
                ("team", team.id.to_string()),
                None,
                to_json(team),
            ));
        }
        for centre in &plan.new_cost_centres {
            events.push(AuditEvent::new(
                tenant,
                actor,
                "cost_centre.created",
                ("cost_centre", centre.id.to_string()),
                None,
                to_json(centre),
            ));
        }
        for change in &plan.changes {
            let action = match change.before {
                None => "employee.created",
                Some(_) => "employee.updated",
            };
            if change.employee_changed {
                events.push(AuditEvent::new(
                    tenant,
                    actor,
                    action,
                    ("employee", change.after.id.to_string()),
                    change.before.as_ref().and_then(to_json),
                    to_json(&change.after),
                ));
            }
            for link in &change.chat_links {
                let account =
                    |id: &str| json!({ "platform": link.platform.as_str(), "external_id": id });
                events.push(AuditEvent::new(
                    tenant,
                    actor,
                    "employee.chat_linked",
                    ("employee", change.after.id.to_string()),
                    link.replaces.as_deref().map(account),
                    Some(account(&link.external_id)),
                ));
            }
        }
        store::audit::insert_many(&mut tx, tenant, &events).await?;
        // The file has no start dates: new people from it get their joiner line at once.
        for created in plan.creates() {
            crate::organisation::joiner::commands::enrol(
                &mut tx,
                tenant,
                actor,
                created.after.id,
                None,
            )
            .await?;
        }
        let summary = ImportSummary {
            rows: plan.rows_read,
            created: plan.creates().count(),
            updated: plan.updates().count(),
            unchanged: plan.unchanged,
            teams_created: plan.new_teams.len(),
            cost_centres_created: plan.new_cost_centres.len(),
            chat_ids_linked: chat_links.len(),
            offboarded: plan.leavers.len(),
        };
        let event = AuditEvent::new(
            tenant,
            actor,
            "employee_import.committed",
            ("employee_import", upload.id.to_string()),
            None,
            Some(json!({ "filename": upload.filename, "summary": summary })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        // Each in its own steps, as the Offboard button does: a provider failure on one
        // leaver's line leaves the import and the other leavers done.
        for (row, leaver) in &plan.leavers {
            if let Err(e) = self.offboard_employee(tenant, actor, leaver.id).await {
                tracing::warn!(%tenant, row, employee = %leaver.id, error = %e, "offboarding a Terminated row failed");
            }
        }
        Ok(summary)
    }
}

async fn live_upload(tx: &mut Tx, tenant: TenantId, id: ImportId) -> CoreResult<Upload> {
    let upload = required(
        store::imports::get(tx, tenant, id).await?,
        "employee import",
        id,
    )?;
    if upload.committed_at.is_some() {
        return Err(CoreError::Conflict(
            "this file has already been imported; upload it again to re-import".to_owned(),
        ));
    }
    if upload.expires_at < now() {
        return Err(CoreError::invalid(
            "file",
            "this upload has expired (uploads are kept for 24 hours); upload the file again",
        ));
    }
    Ok(upload)
}

async fn load_existing(tx: &mut Tx, tenant: TenantId) -> CoreResult<Existing> {
    Ok(Existing {
        employees: store::employees::list(tx, tenant).await?,
        teams: store::org::list_teams(tx, tenant).await?,
        cost_centres: store::org::list_cost_centres(tx, tenant).await?,
        chat_identities: store::chat::list_identities(tx, tenant).await?,
    })
}
