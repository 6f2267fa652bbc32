//! Employee CSV import: read an HRIS export, map its columns to our fields, check every row
//! against the rest of the file and the organisation, and plan what a commit creates,
//! updates or leaves alone. The commit (in `commands`) writes that plan in one transaction.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use time::OffsetDateTime;

use crate::email_address::Email;
use crate::ids::{CostCentreId, EmployeeId, ImportId, TeamId, TenantId};
use crate::messaging::chat::{ChatIdentity, Platform};
use crate::organisation::employee::{Employee, EmployeeStatus};
use crate::organisation::org_unit::{CostCentre, Team};

/// The largest file accepted: a 100,000-person HRIS export is about 10 MB.
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;

/// What "save as CSV UTF-8" means in the tools people export from.
const SAVE_AS_CSV: &str = "In Excel choose File → Save As → \"CSV UTF-8 (Comma delimited)\"; \
                           in Google Sheets File → Download → \"Comma-separated values\"; \
                           then upload that file";

/// One of our employee fields a file column can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Field {
    Email,
    GivenName,
    FamilyName,
    Team,
    CostCentre,
    ManagerEmail,
    SlackId,
    DiscordId,
    TeamsId,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Email,
        Field::GivenName,
        Field::FamilyName,
        Field::Team,
        Field::CostCentre,
        Field::ManagerEmail,
        Field::SlackId,
        Field::DiscordId,
        Field::TeamsId,
    ];

    /// The form field name.
    pub fn key(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::GivenName => "given_name",
            Self::FamilyName => "family_name",
            Self::Team => "team",
            Self::CostCentre => "cost_centre",
            Self::ManagerEmail => "manager_email",
            Self::SlackId => "slack_id",
            Self::DiscordId => "discord_id",
            Self::TeamsId => "teams_id",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Email => "Work email",
            Self::GivenName => "First name",
            Self::FamilyName => "Last name",
            Self::Team => "Team",
            Self::CostCentre => "Cost centre",
            Self::ManagerEmail => "Manager email",
            Self::SlackId => "Slack ID",
            Self::DiscordId => "Discord ID",
            Self::TeamsId => "Teams ID",
        }
    }

    /// The chat platform whose user id the field holds.
    pub fn platform(self) -> Option<Platform> {
        match self {
            Self::SlackId => Some(Platform::Slack),
            Self::DiscordId => Some(Platform::Discord),
            Self::TeamsId => Some(Platform::Teams),
            _ => None,
        }
    }

    pub fn required(self) -> bool {
        matches!(self, Self::Email | Self::GivenName | Self::FamilyName)
    }

    /// Headers of common HRIS exports, normalised, best first.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::Email => &[
                "workemail",
                "workemailaddress",
                "email",
                "emailaddress",
                "businessemail",
            ],
            Self::GivenName => &["firstname", "givenname", "forename", "legalfirstname"],
            Self::FamilyName => &["lastname", "surname", "familyname", "legallastname"],
            Self::Team => &["department", "team", "departmentname", "teamname"],
            Self::CostCentre => &[
                "costcenter",
                "costcentre",
                "costcentercode",
                "costcentrecode",
            ],
            Self::ManagerEmail => &[
                "manageremail",
                "supervisoremail",
                "managerworkemail",
                "supervisorworkemail",
                "reportstoemail",
            ],
            Self::SlackId => &["slackid", "slackmemberid", "slackuserid"],
            Self::DiscordId => &["discordid", "discorduserid", "discordmemberid"],
            // Not "AAD object ID": the bot knows Teams users by their Bot Framework id.
            Self::TeamsId => &[
                "teamsid",
                "teamsuserid",
                "msteamsid",
                "microsoftteamsid",
                "microsoftteamsuserid",
            ],
        }
    }
}

/// `Work Email`, `work_email` and `WORK-EMAIL` all read as `workemail`.
fn normalise_header(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Which file column (by index) fills each field; `None` leaves the field alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mapping([Option<usize>; 9]);

impl Mapping {
    /// Recognise the usual HRIS headers, ignoring case, spaces and punctuation.
    pub fn detect(headers: &[String]) -> Self {
        let normalised: Vec<String> = headers.iter().map(|h| normalise_header(h)).collect();
        let mut mapping = Self::default();
        for field in Field::ALL {
            let found = field
                .aliases()
                .iter()
                .find_map(|alias| normalised.iter().position(|h| h == alias));
            mapping.set(field, found);
        }
        mapping
    }

    pub fn get(&self, field: Field) -> Option<usize> {
        self.0[Self::slot(field)]
    }

    pub fn set(&mut self, field: Field, column: Option<usize>) {
        self.0[Self::slot(field)] = column;
    }

    fn slot(field: Field) -> usize {
        Field::ALL
            .iter()
            .position(|f| *f == field)
            .expect("every field is in ALL")
    }
}

/// A file that could not be read as CSV at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty; export the employee list again and upload that file")]
    Empty,
    #[error("the file is larger than 20 MB; split it into smaller files and import each")]
    TooLarge,
    #[error("this looks like {kind}, not a CSV file. {SAVE_AS_CSV}")]
    NotCsv { kind: &'static str },
    #[error(
        "the file is not UTF-8 text: row {row} has the byte 0x{byte:02X}, which UTF-8 does not \
         allow. It was probably saved as \"CSV (Comma delimited)\" in a Windows or Latin-1 \
         encoding, which garbles names like José. {SAVE_AS_CSV}"
    )]
    NotUtf8 { row: u64, byte: u8 },
    #[error("the file has no header row; the first row must name the columns (e.g. Work Email)")]
    NoHeader,
    #[error("row {row} could not be read as CSV: {reason}")]
    Malformed { row: u64, reason: String },
}

/// A CSV file read into memory: its header and its rows, each with the row number a
/// spreadsheet shows (the header is row 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvFile {
    pub headers: Vec<String>,
    pub rows: Vec<CsvRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub row: u64,
    pub values: Vec<String>,
}

/// What a file's first bytes give away when it is not text.
fn binary_kind(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (
            b"PK\x03\x04",
            "an Excel workbook (.xlsx) or another zip archive",
        ),
        (b"\xD0\xCF\x11\xE0", "an old Excel workbook (.xls)"),
        (b"\xFF\xFE", "UTF-16 text (Excel's \"Unicode Text\")"),
        (b"\xFE\xFF", "UTF-16 text"),
    ];
    if let Some((_, kind)) = SIGNATURES.iter().find(|(sig, _)| bytes.starts_with(sig)) {
        return Some(kind);
    }
    let head = &bytes[..bytes.len().min(8192)];
    head.contains(&0).then_some("a binary file")
}

/// Read an uploaded file as UTF-8 CSV (with or without a byte-order mark, LF or CRLF,
/// quoted fields with commas and line breaks inside). Rows whose cells are all blank, as
/// spreadsheets leave at the end, are skipped.
pub fn read_csv(bytes: &[u8]) -> Result<CsvFile, FileError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(FileError::TooLarge);
    }
    if let Some(kind) = binary_kind(bytes) {
        return Err(FileError::NotCsv { kind });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FileError::Empty);
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        let at = e.valid_up_to();
        let row = 1 + bytes[..at].iter().filter(|b| **b == b'\n').count() as u64;
        return Err(FileError::NotUtf8 {
            row,
            byte: bytes[at],
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let headers: Vec<String> = match records.next() {
        Some(Ok(record)) => record.iter().map(|h| h.trim().to_owned()).collect(),
        Some(Err(e)) => return Err(malformed(1, e)),
        None => return Err(FileError::NoHeader),
    };
    if headers.iter().all(String::is_empty) {
        return Err(FileError::NoHeader);
    }
    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        let row = index as u64 + 2;
        let record = record.map_err(|e| malformed(row, e))?;
        if record.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        rows.push(CsvRow {
            row,
            values: record.iter().map(|v| v.trim().to_owned()).collect(),
        });
    }
    Ok(CsvFile { headers, rows })
}

fn malformed(row: u64, e: csv::Error) -> FileError {
    FileError::Malformed {
        row,
        reason: e.to_string(),
    }
}

/// One thing wrong with the file: where (row as a spreadsheet numbers it, `None` for the
/// whole file; the column's header) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub row: Option<u64>,
    pub column: String,
    pub reason: String,
}

/// One field that an import changes on an existing employee, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// An employee the import creates (`before` is `None`) or updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployeeChange {
    pub row: u64,
    pub before: Option<Employee>,
    pub after: Employee,
    pub differences: Vec<Difference>,
    /// Whether the employee record itself changes (not only their chat accounts).
    pub employee_changed: bool,
    /// Chat accounts to link, each replacing the one the employee had on that platform.
    pub chat_links: Vec<ChatLink>,
}

/// A chat account the import links to an employee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLink {
    pub platform: Platform,
    pub external_id: String,
    /// The account it replaces.
    pub replaces: Option<String>,
}

/// What committing the file would do, and what stops it.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub rows_read: usize,
    pub problems: Vec<Problem>,
    pub new_teams: Vec<Team>,
    pub new_cost_centres: Vec<CostCentre>,
    /// In write order: every manager before the people reporting to them.
    pub changes: Vec<EmployeeChange>,
    pub unchanged: usize,
}

impl Plan {
    pub fn creates(&self) -> impl Iterator<Item = &EmployeeChange> {
        self.changes.iter().filter(|c| c.before.is_none())
    }

    pub fn updates(&self) -> impl Iterator<Item = &EmployeeChange> {
        self.changes.iter().filter(|c| c.before.is_some())
    }

    pub fn can_commit(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The organisation as it stands: what the file is compared with.
pub struct Existing {
    pub employees: Vec<Employee>,
    pub teams: Vec<Team>,
    pub cost_centres: Vec<CostCentre>,
    /// Chat accounts already linked, oldest first.
    pub chat_identities: Vec<ChatIdentity>,
}

/// A row's values for the mapped fields, checked.
struct RowValues {
    row: u64,
    email: Email,
    given_name: String,
    family_name: String,
    /// `None`: the column is not mapped (keep what is stored); `Some("")`: clear it.
    team: Option<String>,
    cost_centre: Option<String>,
    manager: Option<Option<Email>>,
    /// The chat accounts given (non-empty cells only).
    chat_ids: Vec<(Platform, String)>,
}

/// Check every row and plan the writes. `at` stamps what would be created.
pub fn plan(
    tenant: TenantId,
    file: &CsvFile,
    mapping: &Mapping,
    existing: &Existing,
    at: OffsetDateTime,
) -> Plan {
    let mut plan = Plan {
        rows_read: file.rows.len(),
        ..Plan::default()
    };
    let mut mapping = *mapping;
    for field in Field::ALL {
        if mapping.get(field).is_some_and(|i| i >= file.headers.len()) {
            mapping.set(field, None);
        }
    }
    let mapping = &mapping;
    let column_name = |field: Field| match mapping.get(field) {
        Some(i) => file.headers.get(i).cloned().unwrap_or_default(),
        None => field.label().to_owned(),
    };
    for field in Field::ALL.into_iter().filter(|f| f.required()) {
        if mapping.get(field).is_none() {
            plan.problems.push(Problem {
                row: None,
                column: field.label().to_owned(),
                reason: format!(
                    "no column is mapped to {}; choose the file's column for it below",
                    field.label()
                ),
            });
        }
    }
    // Rows are still checked without a required column, so every problem shows at once.
    let columns_missing = !plan.problems.is_empty();

    let by_email: HashMap<&Email, &Employee> =
        existing.employees.iter().map(|e| (&e.email, e)).collect();
    let by_id: HashMap<EmployeeId, &Employee> =
        existing.employees.iter().map(|e| (e.id, e)).collect();
    let owner_of_chat_id: HashMap<(Platform, &str), EmployeeId> = existing
        .chat_identities
        .iter()
        .map(|i| ((i.platform, i.external_id.as_str()), i.employee_id))
        .collect();
    // Later identities win: they are the ones messages use.
    let chat_id_of: HashMap<(EmployeeId, Platform), &str> = existing
        .chat_identities
        .iter()
        .map(|i| ((i.employee_id, i.platform), i.external_id.as_str()))
        .collect();
    let mut first_row_of_chat_id: HashMap<(Platform, String), u64> = HashMap::new();

    // Read and check each row on its own.
    let mut first_row_of: HashMap<Email, u64> = HashMap::new();
    let mut rows: Vec<RowValues> = Vec::new();
    for record in &file.rows {
        let mut problem = |field: Field, reason: String| {
            plan.problems.push(Problem {
                row: Some(record.row),
                column: column_name(field),
                reason,
            })
        };
        if record.values.len() != file.headers.len() {
            problem(
                Field::Email,
                format!(
                    "the row has {} values but the header has {} columns; a value containing a \
                     comma must be in double quotes",
                    record.values.len(),
                    file.headers.len()
                ),
            );
            continue;
        }
        let cell = |field: Field| {
            mapping
                .get(field)
                .and_then(|i| record.values.get(i))
                .map(String::as_str)
        };
        let email = match Email::parse(cell(Field::Email).unwrap_or_default()) {
            Ok(email) => Some(email),
            Err(e) => {
                problem(Field::Email, e.to_string());
                None
            }
        };
        let mut name = |field: Field| match cell(field).unwrap_or_default() {
            // Already reported for the whole file; the write plan is skipped.
            "" if mapping.get(field).is_none() => Some(String::new()),
            "" => {
                problem(field, format!("{} is empty", field.label()));
                None
            }
            value => Some(value.to_owned()),
        };
        let given_name = name(Field::GivenName);
        let family_name = name(Field::FamilyName);
        let mut manager_ok = true;
        let manager = match cell(Field::ManagerEmail) {
            None => None,
            Some("") => Some(None),
            Some(text) => match Email::parse(text) {
                Ok(m) if Some(&m) == email.as_ref() => {
                    problem(
                        Field::ManagerEmail,
                        "an employee cannot be their own manager".to_owned(),
                    );
                    manager_ok = false;
                    None
                }
                Ok(m) => Some(Some(m)),
                Err(e) => {
                    problem(Field::ManagerEmail, format!("manager {e}"));
                    manager_ok = false;
                    None
                }
            },
        };
        let mut chat_ids = Vec::new();
        let mut chat_ok = true;
        for field in Field::ALL {
            let (Some(platform), Some(id)) = (field.platform(), cell(field)) else {
                continue;
            };
            if id.is_empty() {
                continue;
            }
            if let Err(reason) = platform.check_user_id(id) {
                problem(field, reason);
                chat_ok = false;
                continue;
            }
            let stored_owner = email.as_ref().and_then(|e| by_email.get(e)).map(|e| e.id);
            match owner_of_chat_id.get(&(platform, id)) {
                Some(owner) if Some(*owner) != stored_owner => {
                    let whose = by_id
                        .get(owner)
                        .map_or_else(|| "another employee".to_owned(), |o| o.email.to_string());
                    problem(
                        field,
                        format!(
                            "{} {id} is already linked to {whose}; a chat account reaches one \
                             person",
                            field.label()
                        ),
                    );
                    chat_ok = false;
                }
                _ => {
                    let key = (platform, id.to_owned());
                    if let Some(first) = first_row_of_chat_id.get(&key) {
                        problem(
                            field,
                            format!(
                                "{} {id} appears again: it is already on row {first}",
                                field.label()
                            ),
                        );
                        chat_ok = false;
                    } else {
                        first_row_of_chat_id.insert(key, record.row);
                        chat_ids.push((platform, id.to_owned()));
                    }
                }
            }
        }
        let Some(email) = email else {
            continue;
        };
        if let Some(first) = first_row_of.get(&email) {
            problem(
                Field::Email,
                format!("{email} appears again: it is already on row {first}"),
            );
            continue;
        }
        // Known even when the row has other problems, so reports naming it as their
        // manager are not also flagged.
        first_row_of.insert(email.clone(), record.row);
        let (Some(given_name), Some(family_name), true, true) =
            (given_name, family_name, manager_ok, chat_ok)
        else {
            continue;
        };
        rows.push(RowValues {
            row: record.row,
            email,
            given_name,
            family_name,
            team: cell(Field::Team).map(str::to_owned),
            cost_centre: cell(Field::CostCentre).map(str::to_owned),
            manager,
            chat_ids,
        });
    }

    // Managers must exist in the file or the organisation.
    for values in &rows {
        if let Some(Some(manager)) = &values.manager
            && !first_row_of.contains_key(manager)
            && !by_email.contains_key(manager)
        {
            plan.problems.push(Problem {
                row: Some(values.row),
                column: column_name(Field::ManagerEmail),
                reason: format!(
                    "manager {manager} is not in this file or among the organisation's employees"
                ),
            });
        }
    }

    // The reporting lines after the import must not loop.
    let row_index: HashMap<&Email, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.email, i))
        .collect();
    let manager_of = |email: &Email| -> Option<Email> {
        match row_index.get(email) {
            Some(&i) => match &rows[i].manager {
                Some(m) => m.clone(),
                None => stored_manager(email, &by_email, &by_id),
            },
            None => stored_manager(email, &by_email, &by_id),
        }
    };
    for cycle in manager_cycles(rows.iter().map(|r| r.email.clone()), manager_of) {
        let chain = cycle
            .iter()
            .chain(cycle.first())
            .map(Email::as_str)
            .collect::<Vec<_>>()
            .join(" → ");
        for email in &cycle {
            if let Some(row) = first_row_of.get(email) {
                plan.problems.push(Problem {
                    row: Some(*row),
                    column: column_name(Field::ManagerEmail),
                    reason: format!("the reporting line loops: {chain}"),
                });
            }
        }
    }
    plan.problems.sort_by_key(|p| p.row);
    if columns_missing {
        return plan;
    }

    // What would be written.
    let mut teams: HashMap<String, (TeamId, String)> = existing
        .teams
        .iter()
        .map(|t| (t.name.to_lowercase(), (t.id, t.name.clone())))
        .collect();
    let mut centres: HashMap<String, (CostCentreId, String)> = existing
        .cost_centres
        .iter()
        .map(|c| (c.code.to_lowercase(), (c.id, c.code.clone())))
        .collect();
    let team_names: HashMap<TeamId, String> = teams.values().cloned().collect();
    let centre_codes: HashMap<CostCentreId, String> = centres.values().cloned().collect();
    let new_ids: HashMap<&Email, EmployeeId> = rows
        .iter()
        .filter(|r| !by_email.contains_key(&r.email))
        .map(|r| (&r.email, EmployeeId::new()))
        .collect();
    let id_of = |email: &Email| {
        by_email
            .get(email)
            .map(|e| e.id)
            .or_else(|| new_ids.get(email).copied())
    };
    for values in &rows {
        let stored = by_email.get(&values.email).copied();
        let team_id = match values.team.as_deref() {
            None => stored.and_then(|e| e.team_id),
            Some("") => None,
            Some(name) => Some(
                teams
                    .entry(name.to_lowercase())
                    .or_insert_with(|| {
                        let team = Team {
                            id: TeamId::new(),
                            tenant_id: tenant,
                            name: name.to_owned(),
                            created_at: at,
                        };
                        let entry = (team.id, team.name.clone());
                        plan.new_teams.push(team);
                        entry
                    })
                    .0,
            ),
        };
        let cost_centre_id = match values.cost_centre.as_deref() {
            None => stored.and_then(|e| e.cost_centre_id),
            Some("") => None,
            Some(code) => Some(
                centres
                    .entry(code.to_lowercase())
                    .or_insert_with(|| {
                        let centre = CostCentre {
                            id: CostCentreId::new(),
                            tenant_id: tenant,
                            code: code.to_owned(),
                            name: code.to_owned(),
                            created_at: at,
                        };
                        let entry = (centre.id, centre.code.clone());
                        plan.new_cost_centres.push(centre);
                        entry
                    })
                    .0,
            ),
        };
        let manager_id = match &values.manager {
            None => stored.and_then(|e| e.manager_id),
            Some(None) => None,
            Some(Some(manager)) => id_of(manager),
        };
        let after = Employee {
            id: stored.map_or_else(|| new_ids[&values.email], |e| e.id),
            tenant_id: tenant,
            email: values.email.clone(),
            given_name: values.given_name.clone(),
            family_name: values.family_name.clone(),
            team_id,
            cost_centre_id,
            manager_id,
            status: stored.map_or(EmployeeStatus::Active, |e| e.status),
            created_at: stored.map_or(at, |e| e.created_at),
            updated_at: at,
        };
        // Ids not yet stored are the ones this row's values create.
        let team_name = |id: Option<TeamId>| {
            match id {
                Some(id) => team_names.get(&id).cloned().or_else(|| values.team.clone()),
                None => None,
            }
            .unwrap_or_default()
        };
        let centre_code = |id: Option<CostCentreId>| {
            match id {
                Some(id) => centre_codes
                    .get(&id)
                    .cloned()
                    .or_else(|| values.cost_centre.clone()),
                None => None,
            }
            .unwrap_or_default()
        };
        let manager_email = |id: Option<EmployeeId>| match id {
            Some(id) => by_id
                .get(&id)
                .map(|m| m.email.to_string())
                .or_else(|| values.manager.clone().flatten().map(|m| m.to_string()))
                .unwrap_or_default(),
            None => String::new(),
        };
        // For a new employee every field it gets reads as a change from nothing.
        let mut differences = [
            (
                Field::GivenName,
                stored.map(|b| b.given_name.clone()),
                after.given_name.clone(),
            ),
            (
                Field::FamilyName,
                stored.map(|b| b.family_name.clone()),
                after.family_name.clone(),
            ),
            (
                Field::Team,
                stored.map(|b| team_name(b.team_id)),
                team_name(after.team_id),
            ),
            (
                Field::CostCentre,
                stored.map(|b| centre_code(b.cost_centre_id)),
                centre_code(after.cost_centre_id),
            ),
            (
                Field::ManagerEmail,
                stored.map(|b| manager_email(b.manager_id)),
                manager_email(after.manager_id),
            ),
        ]
        .into_iter()
        .map(|(field, before, after)| (field, before.unwrap_or_default(), after))
        .filter(|(_, before, after)| before != after)
        .map(|(field, before, after)| Difference {
            field: field.label(),
            before,
            after,
        })
        .collect::<Vec<_>>();
        let chat_links: Vec<ChatLink> = values
            .chat_ids
            .iter()
            .filter_map(|(platform, id)| {
                let replaces = stored
                    .and_then(|e| chat_id_of.get(&(e.id, *platform)))
                    .map(|id| (*id).to_owned());
                (replaces.as_deref() != Some(id)).then(|| ChatLink {
                    platform: *platform,
                    external_id: id.clone(),
                    replaces,
                })
            })
            .collect();
        differences.extend(chat_links.iter().map(|link| {
            Difference {
                field: Field::ALL
                    .into_iter()
                    .find(|f| f.platform() == Some(link.platform))
                    .map_or("Chat ID", Field::label),
                before: link.replaces.clone().unwrap_or_default(),
                after: link.external_id.clone(),
            }
        }));
        let same = stored.is_some_and(|before| {
            before.given_name == after.given_name
                && before.family_name == after.family_name
                && before.team_id == after.team_id
                && before.cost_centre_id == after.cost_centre_id
                && before.manager_id == after.manager_id
        });
        if same && chat_links.is_empty() {
            plan.unchanged += 1;
        } else {
            plan.changes.push(EmployeeChange {
                row: values.row,
                before: stored.cloned(),
                after,
                differences,
                employee_changed: !same,
                chat_links,
            });
        }
    }
    order_managers_first(&mut plan.changes);
    plan
}

fn stored_manager(
    email: &Email,
    by_email: &HashMap<&Email, &Employee>,
    by_id: &HashMap<EmployeeId, &Employee>,
) -> Option<Email> {
    by_email
        .get(email)
        .and_then(|e| e.manager_id)
        .and_then(|id| by_id.get(&id))
        .map(|m| m.email.clone())
}

/// Every loop in the reporting lines reachable from `starts`, each once, in chain order.
fn manager_cycles(
    starts: impl Iterator<Item = Email>,
    manager_of: impl Fn(&Email) -> Option<Email>,
) -> Vec<Vec<Email>> {
    let mut settled: HashSet<Email> = HashSet::new();
    let mut cycles = Vec::new();
    for start in starts {
        let mut path: Vec<Email> = Vec::new();
        let mut on_path: HashMap<Email, usize> = HashMap::new();
        let mut current = Some(start);
        while let Some(email) = current {
            if settled.contains(&email) {
                break;
            }
            if let Some(&at) = on_path.get(&email) {
                cycles.push(path[at..].to_vec());
                break;
            }
            on_path.insert(email.clone(), path.len());
            current = manager_of(&email);
            path.push(email);
        }
        settled.extend(path);
    }
    cycles
}

/// Sort so that anyone whose manager is also written comes after that manager, as the
/// database checks each manager reference when a batch is written.
fn order_managers_first(changes: &mut Vec<EmployeeChange>) {
    let index: HashMap<EmployeeId, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.after.id, i))
        .collect();
    let mut depth: Vec<Option<usize>> = vec![None; changes.len()];
    for start in 0..changes.len() {
        let mut chain = Vec::new();
        let mut current = Some(start);
        while let Some(i) = current {
            if depth[i].is_some() || chain.contains(&i) || chain.len() > changes.len() {
                break;
            }
            chain.push(i);
            current = changes[i]
                .after
                .manager_id
                .and_then(|m| index.get(&m).copied());
        }
        let base = current.and_then(|i| depth[i]).map_or(0, |d| d + 1);
        for (level, &i) in (base..).zip(chain.iter().rev()) {
            depth[i] = Some(level);
        }
    }
    let mut keyed: Vec<(usize, EmployeeChange)> = std::mem::take(changes)
        .into_iter()
        .enumerate()
        .map(|(i, c)| (depth[i].unwrap_or(0), c))
        .collect();
    keyed.sort_by_key(|(d, c)| (*d, c.row));
    changes.extend(keyed.into_iter().map(|(_, change)| change));
}

/// An uploaded file kept between preview and commit.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: ImportId,
    pub tenant_id: TenantId,
    pub uploaded_by: String,
    pub filename: String,
    pub content: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub committed_at: Option<OffsetDateTime>,
}

/// How long an upload waits for its commit.
pub const UPLOAD_LIFETIME: time::Duration = time::Duration::hours(24);

/// A previewed upload: the file, the mapping used and what committing would do.
pub struct Preview {
    pub upload: Upload,
    pub headers: Vec<String>,
    pub mapping: Mapping,
    pub plan: Plan,
}

/// What a commit wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub teams_created: usize,
    pub cost_centres_created: usize,
    pub chat_ids_linked: usize,
}

pub mod commands {
    use serde_json::json;

    use super::*;
    use crate::app::{Lineup, record, required, to_json};
    use crate::audit::{Actor, AuditEvent};
    use crate::error::{CoreError, CoreResult};
    use crate::store::{self, Tx, now};

    impl Lineup {
        /// Keep an uploaded file for preview, after checking it reads as CSV.
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
            let mut tx = self.tenant_tx(tenant).await?;
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
            let summary = ImportSummary {
                rows: plan.rows_read,
                created: plan.creates().count(),
                updated: plan.updates().count(),
                unchanged: plan.unchanged,
                teams_created: plan.new_teams.len(),
                cost_centres_created: plan.new_cost_centres.len(),
                chat_ids_linked: chat_links.len(),
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
}
