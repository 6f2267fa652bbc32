//! Reading lines for people: the filtered, paged directory, one line's history, and finding
//! a line by the key it was issued with.

use super::LineSearch;
use crate::app::Lineup;
use crate::audit::AuditEvent;
use crate::error::CoreResult;
use crate::ids::{LineId, TenantId};
use crate::lines::line::Line;
use crate::organisation::employee::Visibility;
use crate::store::{self, lines::ListedLine};

/// Largest page the directory serves.
pub const MAX_PAGE: i64 = 200;

impl Lineup {
    /// One page of lines matching `search` that `visibility` lets through, newest first,
    /// and how many match in all. The reporting tree is filtered in SQL.
    pub async fn search_lines(
        &self,
        tenant: TenantId,
        visibility: Visibility,
        mut search: LineSearch,
    ) -> CoreResult<(Vec<ListedLine>, i64)> {
        search.reports_of = match visibility {
            Visibility::Everyone => None,
            Visibility::ReportsOf(manager) => Some(manager),
            Visibility::Nobody => return Ok((Vec::new(), 0)),
        };
        search.limit = search.limit.clamp(1, MAX_PAGE);
        search.offset = search.offset.max(0);
        search.text = search
            .text
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::lines::search(&mut tx, tenant, &search).await?)
    }

    /// Everything that happened to a line, oldest first.
    pub async fn line_history(
        &self,
        tenant: TenantId,
        line: LineId,
    ) -> CoreResult<Vec<AuditEvent>> {
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::audit::list_for_subject(&mut tx, tenant, "line", &line.to_string()).await?)
    }

    /// The line issued with `issue_key`, if one was.
    pub async fn line_issued_with(
        &self,
        tenant: TenantId,
        issue_key: &str,
    ) -> CoreResult<Option<Line>> {
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::lines::find_by_issue_key(&mut tx, tenant, issue_key).await?)
    }
}
