//! Employee CSV import: upload → preview (column mapping, every problem with its row and
//! column, what would change) → commit, all or nothing. The preview is the dry run.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lineup_core::ids::{ImportId, TenantId};
use lineup_core::import::{EmployeeChange, Field, MAX_UPLOAD_BYTES, Mapping, Preview, Problem};

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::view::{Chrome, Page, form_status, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route(
            "/employees/import",
            get(upload_form)
                .post(upload)
                // Twice the largest file accepted: a file somewhat over the limit is read
                // whole and refused with the reason (core checks the size). Cutting a body off
                // mid-upload closes the connection, and the browser may see that instead of
                // the answer; only far larger bodies are cut off.
                .layer(DefaultBodyLimit::max(2 * MAX_UPLOAD_BYTES)),
        )
        .route("/employees/import/{upload}", get(preview))
        .route("/employees/import/{upload}/commit", post(commit))
}

/// The preview shows this many problems and planned rows of each kind; the counts are exact.
const SHOWN: usize = 500;

#[derive(Template)]
#[template(path = "import_upload.html")]
struct UploadPage {
    chrome: Chrome,
    error: Option<String>,
}

async fn upload_form(page: Page) -> Result<Response, PortalError> {
    page.render(&UploadPage {
        chrome: page.chrome(),
        error: None,
    })
}

async fn upload_error(page: &Page, error: String) -> Result<Response, PortalError> {
    let template = UploadPage {
        chrome: page.chrome(),
        error: Some(error),
    };
    Ok(form_status(page.render(&template)?, true))
}

async fn upload(
    State(portal): State<Portal>,
    page: Page,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PortalError> {
    let Ok(mut multipart) = multipart else {
        return upload_error(&page, "file: choose a CSV file to upload".to_owned()).await;
    };
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                let name = field.file_name().unwrap_or("upload.csv").to_owned();
                match field.bytes().await {
                    Ok(bytes) => file = Some((name, bytes.to_vec())),
                    Err(e) => return upload_error(&page, too_large_or(e)).await,
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return upload_error(&page, too_large_or(e)).await,
        }
    }
    let Some((name, content)) = file.filter(|(_, content)| !content.is_empty()) else {
        return upload_error(&page, "file: choose a CSV file to upload".to_owned()).await;
    };
    match portal
        .lineup
        .upload_employee_csv(page.tenant_id(), &page.actor(), &name, content)
        .await
    {
        Ok(upload) => Ok(Redirect::to(&format!("/employees/import/{}", upload.id)).into_response()),
        Err(e) => match PortalError::from(e) {
            PortalError::Invalid { field, reason } => {
                upload_error(&page, format!("{field}: {reason}")).await
            }
            other => Err(other),
        },
    }
}

fn too_large_or(e: axum::extract::multipart::MultipartError) -> String {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "file: the file is larger than 20 MB; split it into smaller files and import each"
            .to_owned()
    } else {
        format!(
            "file: the upload did not arrive whole ({}); try again",
            e.body_text()
        )
    }
}

/// One field's row in the mapping form.
struct MappedField {
    key: &'static str,
    label: &'static str,
    required: bool,
    column: Option<usize>,
}

impl MappedField {
    fn is_column(&self, index: &usize) -> bool {
        self.column == Some(*index)
    }
}

#[derive(Template)]
#[template(path = "import_preview.html")]
struct PreviewPage {
    chrome: Chrome,
    preview: Preview,
    fields: Vec<MappedField>,
    problems: Vec<Problem>,
    creates: Vec<EmployeeChange>,
    updates: Vec<EmployeeChange>,
    create_count: usize,
    update_count: usize,
    /// People whose row says Terminated: offboarded by the import.
    leavers: Vec<String>,
    shown: usize,
    error: Option<String>,
}

/// `map_<field>=<column index>` pairs, as the mapping form sends them; `None` when the form
/// sent none (then the headers are recognised automatically).
fn mapping_from(params: &HashMap<String, String>) -> Option<Mapping> {
    let mut mapping = Mapping::default();
    let mut any = false;
    for field in Field::ALL {
        if let Some(value) = params.get(&format!("map_{}", field.key())) {
            any = true;
            mapping.set(field, value.trim().parse().ok());
        }
    }
    any.then_some(mapping)
}

fn import_id(raw: &str) -> Result<ImportId, PortalError> {
    raw.parse().map_err(|_| PortalError::NotFound)
}

async fn preview_page(
    portal: &Portal,
    page: &Page,
    id: ImportId,
    mapping: Option<Mapping>,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let preview = portal
        .lineup
        .preview_import(page.tenant_id(), id, mapping)
        .await?;
    let plan = &preview.plan;
    let template = PreviewPage {
        chrome: page.chrome(),
        fields: Field::ALL
            .into_iter()
            .map(|field| MappedField {
                key: field.key(),
                label: field.label(),
                required: field.required(),
                column: preview.mapping.get(field),
            })
            .collect(),
        problems: plan.problems.iter().take(SHOWN).cloned().collect(),
        creates: plan.creates().take(SHOWN).cloned().collect(),
        updates: plan.updates().take(SHOWN).cloned().collect(),
        create_count: plan.creates().count(),
        update_count: plan.updates().count(),
        leavers: plan
            .leavers
            .iter()
            .map(|(row, e)| format!("{} (row {row})", e.full_name()))
            .collect(),
        shown: SHOWN,
        error: error.clone(),
        preview,
    };
    Ok(form_status(page.render(&template)?, error.is_some()))
}

async fn preview(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    preview_page(&portal, &page, import_id(&id)?, mapping_from(&params), None).await
}

/// Commit with the mapping the preview showed; the stored file is checked again first.
async fn commit(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(params): Form<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    let id = import_id(&id)?;
    let Some(mapping) = mapping_from(&params) else {
        return Err(PortalError::invalid(
            "mapping",
            "missing; commit from the preview page",
        ));
    };
    match portal
        .lineup
        .commit_import(page.tenant_id(), &page.actor(), id, mapping)
        .await
    {
        Ok(s) => {
            let mut notice = format!(
                "Imported {} rows: {} created, {} updated, {} unchanged; {} teams and {} cost \
                 centres created",
                s.rows, s.created, s.updated, s.unchanged, s.teams_created, s.cost_centres_created
            );
            if s.chat_ids_linked > 0 {
                notice.push_str(&format!("; {} chat IDs linked", s.chat_ids_linked));
            }
            notice.push('.');
            if let Some(found) = find_in_chat(&portal, page.tenant_id()).await {
                notice.push(' ');
                notice.push_str(&found);
            }
            Ok(redirect_with_notice("/employees", &notice))
        }
        Err(e) => match PortalError::from(e) {
            PortalError::Invalid { field, reason } => {
                let error = Some(format!("Nothing was imported. {field}: {reason}"));
                preview_page(&portal, &page, id, Some(mapping), error).await
            }
            other => Err(other),
        },
    }
}

/// How long the import's answer waits for the lookups in chat; the rest carry on behind it.
const CHAT_LOOKUP_WAIT: Duration = Duration::from_secs(5);

/// Look the organisation's unlinked people up in chat by email, and say what came of it. The
/// import is already saved: a chat platform that is down only shows here.
async fn find_in_chat(portal: &Portal, tenant: TenantId) -> Option<String> {
    let directory = portal.chat_directory.clone()?;
    let lookups = tokio::spawn(async move { directory.link_people_by_email(tenant).await });
    let outcomes = match tokio::time::timeout(CHAT_LOOKUP_WAIT, lookups).await {
        Ok(Ok(outcomes)) => outcomes,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "looking people up in chat by email failed");
            return Some(LATER.to_owned());
        }
        Err(_) => {
            return Some(
                "Finding people in chat by their email continues in the background; their \
                 pages show it as it happens."
                    .to_owned(),
            );
        }
    };
    let said: Vec<String> = outcomes
        .iter()
        .filter(|o| o.unlinked > 0 || o.failure.is_some())
        .map(|o| {
            let name = o.platform.label();
            match &o.failure {
                None => format!(
                    "{name}: {} of {} people not yet linked were found by email and linked.",
                    o.linked, o.unlinked
                ),
                Some(reason) => format!(
                    "{name} could not be searched by email ({reason}); {} people were linked \
                     before it stopped. {LATER}",
                    o.linked
                ),
            }
        })
        .collect();
    (!said.is_empty()).then(|| said.join(" "))
}

/// What happens to people the lookups missed.
const LATER: &str = "The others are looked up by email again at the next import, and each one \
     when Lineup first messages them.";
