//! Employee CSV import: the fields a file's columns map to, and what a preview and a commit
//! hand back. Reading the file is `csv`, checking its rows against the organisation and
//! planning the writes is `plan`, and the commit (in `commands`) writes that plan in one
//! transaction.

mod commands;
mod csv;
mod plan;

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::{ImportId, TenantId};
use crate::messaging::chat::{ChatIdentity, Platform};
use crate::organisation::employee::Employee;
use crate::organisation::org_unit::{CostCentre, Team};

pub use csv::{CsvFile, CsvRow, FileError, read_csv};
pub use plan::plan;

/// The largest file accepted: a 100,000-person HRIS export is about 10 MB.
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;

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
    /// The HRIS employment status: `Terminated` offboards someone Lineup has (as the
    /// tenant's offboarding setting says); `Active` or empty changes nothing.
    Status,
}

impl Field {
    pub const ALL: [Field; 10] = [
        Field::Email,
        Field::GivenName,
        Field::FamilyName,
        Field::Team,
        Field::CostCentre,
        Field::ManagerEmail,
        Field::SlackId,
        Field::DiscordId,
        Field::TeamsId,
        Field::Status,
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
            Self::Status => "status",
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
            Self::Status => "Employment status",
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
            Self::Status => &[
                "employmentstatus",
                "employeestatus",
                "workerstatus",
                "status",
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
pub struct Mapping([Option<usize>; 10]);

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
    /// People Lineup has, active, whose row says `Terminated`: offboarded after the commit
    /// (their row's other values are not applied).
    pub leavers: Vec<(u64, Employee)>,
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
    /// People offboarded because their row said `Terminated`.
    pub offboarded: usize,
}
