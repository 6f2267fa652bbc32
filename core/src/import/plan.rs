//! The import plan: each row checked on its own, then against the rest of the file and the
//! organisation (unknown managers, reporting lines that loop), then what a commit would
//! create, update or leave alone.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use super::{
    ChatLink, CsvFile, CsvRow, Difference, EmployeeChange, Existing, Field, Mapping, Plan, Problem,
};
use crate::email_address::Email;
use crate::ids::{CostCentreId, EmployeeId, TeamId, TenantId};
use crate::messaging::chat::Platform;
use crate::organisation::employee::{Employee, EmployeeStatus};
use crate::organisation::org_unit::{CostCentre, Team};

/// Check every row and plan the writes. `at` stamps what would be created.
pub fn plan(
    tenant: TenantId,
    file: &CsvFile,
    mapping: &Mapping,
    existing: &Existing,
    at: OffsetDateTime,
) -> Plan {
    let columns = Columns::of(file, mapping);
    let mut problems = unmapped_required_fields(&columns);
    // Rows are still checked without a required column, so every problem shows at once.
    let columns_missing = !problems.is_empty();
    let organisation = Organisation::of(existing);
    let checked = check_rows(file, &columns, &organisation, &mut problems);
    problems.extend(unknown_managers(&checked, &columns, &organisation));
    problems.extend(reporting_loops(&checked, &columns, &organisation));
    problems.sort_by_key(|p| p.row);
    let mut plan = Plan {
        rows_read: file.rows.len(),
        problems,
        ..Plan::default()
    };
    if columns_missing {
        return plan;
    }
    plan_writes(
        tenant,
        &checked.rows,
        existing,
        &organisation,
        at,
        &mut plan,
    );
    order_managers_first(&mut plan.changes);
    plan
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
    /// The status column says `Terminated`.
    terminated: bool,
}

/// The file's columns as the mapping reads them.
struct Columns<'a> {
    headers: &'a [String],
    mapping: Mapping,
}

impl<'a> Columns<'a> {
    /// A mapping to a column the file does not have maps nothing.
    fn of(file: &'a CsvFile, mapping: &Mapping) -> Self {
        let mut mapping = *mapping;
        for field in Field::ALL {
            if mapping.get(field).is_some_and(|i| i >= file.headers.len()) {
                mapping.set(field, None);
            }
        }
        Self {
            headers: &file.headers,
            mapping,
        }
    }

    fn is_mapped(&self, field: Field) -> bool {
        self.mapping.get(field).is_some()
    }

    /// What a problem with `field` names as its column: the file's header, or the field's
    /// label when no column is mapped to it.
    fn name(&self, field: Field) -> String {
        match self.mapping.get(field) {
            Some(i) => self.headers.get(i).cloned().unwrap_or_default(),
            None => field.label().to_owned(),
        }
    }

    /// The row's value for `field`; `None` when no column is mapped to it.
    fn cell<'r>(&self, record: &'r CsvRow, field: Field) -> Option<&'r str> {
        self.mapping
            .get(field)
            .and_then(|i| record.values.get(i))
            .map(String::as_str)
    }
}

fn unmapped_required_fields(columns: &Columns) -> Vec<Problem> {
    Field::ALL
        .into_iter()
        .filter(|field| field.required() && !columns.is_mapped(*field))
        .map(|field| Problem {
            row: None,
            column: field.label().to_owned(),
            reason: format!(
                "no column is mapped to {}; choose the file's column for it below",
                field.label()
            ),
        })
        .collect()
}

/// The organisation's employees and chat accounts, indexed the ways rows are matched.
struct Organisation<'a> {
    by_email: HashMap<&'a Email, &'a Employee>,
    by_id: HashMap<EmployeeId, &'a Employee>,
    owner_of_chat_id: HashMap<(Platform, &'a str), EmployeeId>,
    chat_id_of: HashMap<(EmployeeId, Platform), &'a str>,
}

impl<'a> Organisation<'a> {
    fn of(existing: &'a Existing) -> Self {
        Self {
            by_email: existing.employees.iter().map(|e| (&e.email, e)).collect(),
            by_id: existing.employees.iter().map(|e| (e.id, e)).collect(),
            owner_of_chat_id: existing
                .chat_identities
                .iter()
                .map(|i| ((i.platform, i.external_id.as_str()), i.employee_id))
                .collect(),
            // Later identities win: they are the ones messages use.
            chat_id_of: existing
                .chat_identities
                .iter()
                .map(|i| ((i.employee_id, i.platform), i.external_id.as_str()))
                .collect(),
        }
    }

    fn employee(&self, email: &Email) -> Option<&'a Employee> {
        self.by_email.get(email).copied()
    }

    fn stored_manager(&self, email: &Email) -> Option<Email> {
        self.employee(email)
            .and_then(|e| e.manager_id)
            .and_then(|id| self.by_id.get(&id))
            .map(|m| m.email.clone())
    }
}

/// The rows that passed their own checks, and the row each email is first on (rows with
/// other problems included).
struct CheckedRows {
    rows: Vec<RowValues>,
    first_row_of: HashMap<Email, u64>,
}

/// A problem with the row was reported; the row is not written.
struct Reported;

/// Read and check each row on its own, and against the rows before it.
fn check_rows(
    file: &CsvFile,
    columns: &Columns,
    organisation: &Organisation,
    problems: &mut Vec<Problem>,
) -> CheckedRows {
    let mut checker = RowChecker {
        columns,
        organisation,
        problems,
        first_row_of: HashMap::new(),
        first_row_of_chat_id: HashMap::new(),
    };
    let rows = file
        .rows
        .iter()
        .filter_map(|record| checker.check(record))
        .collect();
    CheckedRows {
        rows,
        first_row_of: checker.first_row_of,
    }
}

struct RowChecker<'a> {
    columns: &'a Columns<'a>,
    organisation: &'a Organisation<'a>,
    problems: &'a mut Vec<Problem>,
    first_row_of: HashMap<Email, u64>,
    first_row_of_chat_id: HashMap<(Platform, String), u64>,
}

impl RowChecker<'_> {
    fn report(&mut self, record: &CsvRow, field: Field, reason: String) {
        self.problems.push(Problem {
            row: Some(record.row),
            column: self.columns.name(field),
            reason,
        });
    }

    fn check(&mut self, record: &CsvRow) -> Option<RowValues> {
        if record.values.len() != self.columns.headers.len() {
            self.report(
                record,
                Field::Email,
                format!(
                    "the row has {} values but the header has {} columns; a value containing a \
                     comma must be in double quotes",
                    record.values.len(),
                    self.columns.headers.len()
                ),
            );
            return None;
        }
        let email = self.email(record);
        let given_name = self.name(record, Field::GivenName);
        let family_name = self.name(record, Field::FamilyName);
        let manager = self.manager(record, email.as_ref().ok());
        let chat_ids = self.chat_ids(record, email.as_ref().ok());
        let terminated = self.terminated(record, email.as_ref().ok());
        let email = email.ok()?;
        if let Some(first) = self.first_row_of.get(&email) {
            let reason = format!("{email} appears again: it is already on row {first}");
            self.report(record, Field::Email, reason);
            return None;
        }
        // Known even when the row has other problems, so reports naming it as their
        // manager are not also flagged.
        self.first_row_of.insert(email.clone(), record.row);
        let (Ok(given_name), Ok(family_name), Ok(manager), Ok(chat_ids), Ok(terminated)) =
            (given_name, family_name, manager, chat_ids, terminated)
        else {
            return None;
        };
        Some(RowValues {
            row: record.row,
            email,
            given_name,
            family_name,
            team: self.columns.cell(record, Field::Team).map(str::to_owned),
            cost_centre: self
                .columns
                .cell(record, Field::CostCentre)
                .map(str::to_owned),
            manager,
            chat_ids,
            terminated,
        })
    }

    /// Whether the status cell says the person has left. Someone Lineup does not have yet
    /// cannot arrive already terminated.
    fn terminated(&mut self, record: &CsvRow, email: Option<&Email>) -> Result<bool, Reported> {
        let cell = self.columns.cell(record, Field::Status).unwrap_or_default();
        let terminated = match cell.trim().to_ascii_lowercase().as_str() {
            "" | "active" => false,
            "terminated" | "inactive" => true,
            _ => {
                let reason = format!("{cell:?} is not Active or Terminated");
                self.report(record, Field::Status, reason);
                return Err(Reported);
            }
        };
        if terminated
            && let Some(email) = email
            && self.organisation.employee(email).is_none()
        {
            let reason =
                format!("{email} is Terminated but not in Lineup; leave them out of the file");
            self.report(record, Field::Status, reason);
            return Err(Reported);
        }
        Ok(terminated)
    }

    fn email(&mut self, record: &CsvRow) -> Result<Email, Reported> {
        let cell = self.columns.cell(record, Field::Email).unwrap_or_default();
        Email::parse(cell).map_err(|e| {
            self.report(record, Field::Email, e.to_string());
            Reported
        })
    }

    fn name(&mut self, record: &CsvRow, field: Field) -> Result<String, Reported> {
        match self.columns.cell(record, field).unwrap_or_default() {
            // Already reported for the whole file; the write plan is skipped.
            "" if !self.columns.is_mapped(field) => Ok(String::new()),
            "" => {
                self.report(record, field, format!("{} is empty", field.label()));
                Err(Reported)
            }
            value => Ok(value.to_owned()),
        }
    }

    /// `None`: no manager column; `Some(None)`: the cell is empty, which clears it.
    fn manager(
        &mut self,
        record: &CsvRow,
        email: Option<&Email>,
    ) -> Result<Option<Option<Email>>, Reported> {
        let text = match self.columns.cell(record, Field::ManagerEmail) {
            None => return Ok(None),
            Some("") => return Ok(Some(None)),
            Some(text) => text,
        };
        match Email::parse(text) {
            Ok(manager) if Some(&manager) == email => {
                let reason = "an employee cannot be their own manager".to_owned();
                self.report(record, Field::ManagerEmail, reason);
                Err(Reported)
            }
            Ok(manager) => Ok(Some(Some(manager))),
            Err(e) => {
                self.report(record, Field::ManagerEmail, format!("manager {e}"));
                Err(Reported)
            }
        }
    }

    /// The row's chat accounts: well-formed, not another employee's, not on an earlier row.
    fn chat_ids(
        &mut self,
        record: &CsvRow,
        email: Option<&Email>,
    ) -> Result<Vec<(Platform, String)>, Reported> {
        let stored_owner = email
            .and_then(|e| self.organisation.employee(e))
            .map(|e| e.id);
        let mut chat_ids = Vec::new();
        let mut all_ok = true;
        for field in Field::ALL {
            let (Some(platform), Some(id)) = (field.platform(), self.columns.cell(record, field))
            else {
                continue;
            };
            if id.is_empty() {
                continue;
            }
            match self.chat_id(record, field, platform, id, stored_owner) {
                Ok(()) => chat_ids.push((platform, id.to_owned())),
                Err(Reported) => all_ok = false,
            }
        }
        if all_ok { Ok(chat_ids) } else { Err(Reported) }
    }

    fn chat_id(
        &mut self,
        record: &CsvRow,
        field: Field,
        platform: Platform,
        id: &str,
        stored_owner: Option<EmployeeId>,
    ) -> Result<(), Reported> {
        if let Err(reason) = platform.check_user_id(id) {
            self.report(record, field, reason);
            return Err(Reported);
        }
        if let Some(owner) = self.organisation.owner_of_chat_id.get(&(platform, id))
            && Some(*owner) != stored_owner
        {
            let whose = self
                .organisation
                .by_id
                .get(owner)
                .map_or_else(|| "another employee".to_owned(), |o| o.email.to_string());
            let reason = format!(
                "{} {id} is already linked to {whose}; a chat account reaches one person",
                field.label()
            );
            self.report(record, field, reason);
            return Err(Reported);
        }
        let key = (platform, id.to_owned());
        if let Some(first) = self.first_row_of_chat_id.get(&key) {
            let reason = format!(
                "{} {id} appears again: it is already on row {first}",
                field.label()
            );
            self.report(record, field, reason);
            return Err(Reported);
        }
        self.first_row_of_chat_id.insert(key, record.row);
        Ok(())
    }
}

/// Managers must exist in the file or the organisation.
fn unknown_managers(
    checked: &CheckedRows,
    columns: &Columns,
    organisation: &Organisation,
) -> Vec<Problem> {
    checked
        .rows
        .iter()
        .filter_map(|values| match &values.manager {
            Some(Some(manager))
                if !checked.first_row_of.contains_key(manager)
                    && !organisation.by_email.contains_key(manager) =>
            {
                Some(Problem {
                    row: Some(values.row),
                    column: columns.name(Field::ManagerEmail),
                    reason: format!(
                        "manager {manager} is not in this file or among the organisation's \
                         employees"
                    ),
                })
            }
            _ => None,
        })
        .collect()
}

/// The reporting lines after the import must not loop: each loop is reported on every row
/// in it.
fn reporting_loops(
    checked: &CheckedRows,
    columns: &Columns,
    organisation: &Organisation,
) -> Vec<Problem> {
    let rows = &checked.rows;
    let row_index: HashMap<&Email, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.email, i))
        .collect();
    let manager_of = |email: &Email| -> Option<Email> {
        match row_index.get(email).map(|&i| &rows[i].manager) {
            Some(Some(manager)) => manager.clone(),
            _ => organisation.stored_manager(email),
        }
    };
    let mut problems = Vec::new();
    for cycle in manager_cycles(rows.iter().map(|r| r.email.clone()), manager_of) {
        let chain = cycle
            .iter()
            .chain(cycle.first())
            .map(Email::as_str)
            .collect::<Vec<_>>()
            .join(" → ");
        for email in &cycle {
            if let Some(row) = checked.first_row_of.get(email) {
                problems.push(Problem {
                    row: Some(*row),
                    column: columns.name(Field::ManagerEmail),
                    reason: format!("the reporting line loops: {chain}"),
                });
            }
        }
    }
    problems
}

/// What committing the checked rows writes: the teams and cost centres they name that do
/// not exist yet, and each employee created or changed; the rest count as unchanged.
fn plan_writes(
    tenant: TenantId,
    rows: &[RowValues],
    existing: &Existing,
    organisation: &Organisation,
    at: OffsetDateTime,
    plan: &mut Plan,
) {
    let mut writes = Writes::new(tenant, rows, existing, organisation, at);
    for values in rows {
        let stored = organisation.employee(&values.email);
        if let (true, Some(leaver)) = (values.terminated, stored) {
            if leaver.status == EmployeeStatus::Active {
                plan.leavers.push((values.row, leaver.clone()));
            } else {
                plan.unchanged += 1;
            }
            continue;
        }
        let after = writes.employee_after(values, stored);
        let chat_links = writes.chat_links(values, stored);
        let same = stored.is_some_and(|before| same_record(before, &after));
        if same && chat_links.is_empty() {
            plan.unchanged += 1;
            continue;
        }
        plan.changes.push(EmployeeChange {
            row: values.row,
            before: stored.cloned(),
            differences: writes.differences(values, stored, &after, &chat_links),
            after,
            employee_changed: !same,
            chat_links,
        });
    }
    plan.new_teams = writes.new_teams;
    plan.new_cost_centres = writes.new_cost_centres;
}

fn same_record(before: &Employee, after: &Employee) -> bool {
    before.given_name == after.given_name
        && before.family_name == after.family_name
        && before.team_id == after.team_id
        && before.cost_centre_id == after.cost_centre_id
        && before.manager_id == after.manager_id
}

/// The ids rows resolve to, and the teams and cost centres they create along the way.
struct Writes<'a> {
    tenant: TenantId,
    at: OffsetDateTime,
    organisation: &'a Organisation<'a>,
    /// By lowercased name: the id and the name as first written.
    teams: HashMap<String, (TeamId, String)>,
    centres: HashMap<String, (CostCentreId, String)>,
    /// The names stored before the import.
    stored_team_names: HashMap<TeamId, String>,
    stored_centre_codes: HashMap<CostCentreId, String>,
    /// Ids for the people the file adds, so rows can name them as managers.
    new_ids: HashMap<&'a Email, EmployeeId>,
    new_teams: Vec<Team>,
    new_cost_centres: Vec<CostCentre>,
}

impl<'a> Writes<'a> {
    fn new(
        tenant: TenantId,
        rows: &'a [RowValues],
        existing: &Existing,
        organisation: &'a Organisation<'a>,
        at: OffsetDateTime,
    ) -> Self {
        let teams: HashMap<String, (TeamId, String)> = existing
            .teams
            .iter()
            .map(|t| (t.name.to_lowercase(), (t.id, t.name.clone())))
            .collect();
        let centres: HashMap<String, (CostCentreId, String)> = existing
            .cost_centres
            .iter()
            .map(|c| (c.code.to_lowercase(), (c.id, c.code.clone())))
            .collect();
        Self {
            tenant,
            at,
            organisation,
            stored_team_names: teams.values().cloned().collect(),
            stored_centre_codes: centres.values().cloned().collect(),
            teams,
            centres,
            new_ids: rows
                .iter()
                .filter(|r| !organisation.by_email.contains_key(&r.email))
                .map(|r| (&r.email, EmployeeId::new()))
                .collect(),
            new_teams: Vec::new(),
            new_cost_centres: Vec::new(),
        }
    }

    /// The employee as the row leaves them; unmapped columns keep what is stored.
    fn employee_after(&mut self, values: &RowValues, stored: Option<&Employee>) -> Employee {
        let team_id = match values.team.as_deref() {
            None => stored.and_then(|e| e.team_id),
            Some("") => None,
            Some(name) => Some(self.team_named(name)),
        };
        let cost_centre_id = match values.cost_centre.as_deref() {
            None => stored.and_then(|e| e.cost_centre_id),
            Some("") => None,
            Some(code) => Some(self.cost_centre_coded(code)),
        };
        let manager_id = match &values.manager {
            None => stored.and_then(|e| e.manager_id),
            Some(None) => None,
            Some(Some(manager)) => self.id_of(manager),
        };
        Employee {
            id: stored.map_or_else(|| self.new_ids[&values.email], |e| e.id),
            tenant_id: self.tenant,
            email: values.email.clone(),
            given_name: values.given_name.clone(),
            family_name: values.family_name.clone(),
            team_id,
            cost_centre_id,
            manager_id,
            status: stored.map_or(EmployeeStatus::Active, |e| e.status),
            created_at: stored.map_or(self.at, |e| e.created_at),
            updated_at: self.at,
        }
    }

    /// The team of that name, ignoring case; created on first use.
    fn team_named(&mut self, name: &str) -> TeamId {
        let (tenant, at) = (self.tenant, self.at);
        self.teams
            .entry(name.to_lowercase())
            .or_insert_with(|| {
                let team = Team {
                    id: TeamId::new(),
                    tenant_id: tenant,
                    name: name.to_owned(),
                    created_at: at,
                };
                let entry = (team.id, team.name.clone());
                self.new_teams.push(team);
                entry
            })
            .0
    }

    /// The cost centre with that code, ignoring case; created on first use.
    fn cost_centre_coded(&mut self, code: &str) -> CostCentreId {
        let (tenant, at) = (self.tenant, self.at);
        self.centres
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
                self.new_cost_centres.push(centre);
                entry
            })
            .0
    }

    fn id_of(&self, email: &Email) -> Option<EmployeeId> {
        self.organisation
            .employee(email)
            .map(|e| e.id)
            .or_else(|| self.new_ids.get(email).copied())
    }

    /// The row's chat accounts the employee does not have yet.
    fn chat_links(&self, values: &RowValues, stored: Option<&Employee>) -> Vec<ChatLink> {
        values
            .chat_ids
            .iter()
            .filter_map(|(platform, id)| {
                let replaces = stored
                    .and_then(|e| self.organisation.chat_id_of.get(&(e.id, *platform)))
                    .map(|id| (*id).to_owned());
                (replaces.as_deref() != Some(id)).then(|| ChatLink {
                    platform: *platform,
                    external_id: id.clone(),
                    replaces,
                })
            })
            .collect()
    }

    /// Each changed field as a person reads it. For a new employee every field it gets
    /// reads as a change from nothing.
    fn differences(
        &self,
        values: &RowValues,
        stored: Option<&Employee>,
        after: &Employee,
        chat_links: &[ChatLink],
    ) -> Vec<Difference> {
        // Ids not yet stored are the ones this row's values create.
        let team_name = |id: Option<TeamId>| {
            match id {
                Some(id) => self
                    .stored_team_names
                    .get(&id)
                    .cloned()
                    .or_else(|| values.team.clone()),
                None => None,
            }
            .unwrap_or_default()
        };
        let centre_code = |id: Option<CostCentreId>| {
            match id {
                Some(id) => self
                    .stored_centre_codes
                    .get(&id)
                    .cloned()
                    .or_else(|| values.cost_centre.clone()),
                None => None,
            }
            .unwrap_or_default()
        };
        let manager_email = |id: Option<EmployeeId>| match id {
            Some(id) => self
                .organisation
                .by_id
                .get(&id)
                .map(|m| m.email.to_string())
                .or_else(|| values.manager.clone().flatten().map(|m| m.to_string()))
                .unwrap_or_default(),
            None => String::new(),
        };
        let fields = [
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
        ];
        let field_changes = fields
            .into_iter()
            .map(|(field, before, after)| (field, before.unwrap_or_default(), after))
            .filter(|(_, before, after)| before != after)
            .map(|(field, before, after)| Difference {
                field: field.label(),
                before,
                after,
            });
        let link_changes = chat_links.iter().map(|link| Difference {
            field: Field::ALL
                .into_iter()
                .find(|f| f.platform() == Some(link.platform))
                .map_or("Chat ID", Field::label),
            before: link.replaces.clone().unwrap_or_default(),
            after: link.external_id.clone(),
        });
        field_changes.chain(link_changes).collect()
    }
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
